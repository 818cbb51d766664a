//! systemd's service notifications (sd_notify(3)): under `Type=notify` the service counts as
//! started once haports says `READY=1` (it forwards and answers; a reload or stop waits for
//! it), and as stopping once it says `STOPPING=1`. Outside systemd (no `NOTIFY_SOCKET`),
//! nothing is sent.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (`READY=1`, `STOPPING=1`) to the socket systemd names, if any; a failure is
/// logged, not fatal (systemd then times the start out, and says so).
pub(super) fn send(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        // An abstract socket's name is written with a leading '@'.
        let address = match path.as_bytes().strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(&path)?,
        };
        socket.send_to_addr(state.as_bytes(), &address)
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, socket = ?path, "cannot tell systemd {state}");
    }
}
