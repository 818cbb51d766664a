//! The control plane's endpoints: `[control]`'s socket, and `[announce]` (where the routes
//! go, through which twin, and how long a drain lasts).

use super::{limit, Problems};
use crate::config::announce::Announce;
use crate::config::model::Config;

/// The longest path a Unix socket may have: `sun_path` holds 108 bytes on Linux, the last
/// for the terminating NUL. A longer one passes every other check and fails only at start.
pub const MAX_SOCKET_PATH_BYTES: usize = 107;

/// Why a Unix socket's path cannot be bound or reached, if it is too long.
fn too_long(path: &std::path::Path) -> Option<String> {
    let len = path.as_os_str().len();
    (len > MAX_SOCKET_PATH_BYTES).then(|| {
        format!(
            "{:?} is {len} bytes long: a Unix socket's path takes at most \
             {MAX_SOCKET_PATH_BYTES}",
            path.display().to_string()
        )
    })
}

pub(super) fn socket(cfg: &Config, out: &mut Problems) {
    if cfg.control.metrics_listen.is_some_and(|a| a.port() == 0) {
        out.error(
            "control.metrics_listen",
            limit::METRICS_PORT,
            "port 0 would listen on a port the system picks, which nothing scraping knows; \
             give a port (the examples use 9900)",
        );
    }
    if let Some(path) = &cfg.control.socket {
        if !path.is_absolute() || path.file_name().is_none() {
            out.error(
                "control.socket",
                limit::CONTROL_SOCKET,
                format!(
                    "{:?} is not an absolute path to a file: `haports reload` and `status` \
                     find the socket from any directory",
                    path.display().to_string()
                ),
            );
        } else if let Some(why) = too_long(path) {
            out.error("control.socket", limit::CONTROL_SOCKET, why);
        }
    }
}

pub(super) fn announce(cfg: &Config, out: &mut Problems) {
    let Some(a) = &cfg.announce else { return };
    for (key, path) in [
        ("announce.bird_socket", &a.bird_socket),
        ("announce.routes_file", &a.routes_file),
    ] {
        if !path.is_absolute() || path.file_name().is_none() {
            out.error(
                key,
                limit::ANNOUNCE_PATHS,
                format!(
                    "{:?} is not an absolute path to a file: BIRD and haports run in \
                     different directories",
                    path.display().to_string()
                ),
            );
        } else if let Some(why) = (key == "announce.bird_socket")
            .then(|| too_long(path))
            .flatten()
        {
            out.error(key, limit::ANNOUNCE_PATHS, why);
        }
    }
    if a.drain_s > Announce::MAX_DRAIN_S {
        out.error(
            "announce.drain_s",
            limit::DRAIN,
            format!(
                "{} s is more than {} s (seconds haports keeps forwarding after it withdrew \
                 its routes on SIGTERM)",
                a.drain_s,
                Announce::MAX_DRAIN_S
            ),
        );
    }
    if let Some(name) = &a.interface {
        if !cfg.interface.iter().any(|i| &i.name == name) {
            out.error(
                "announce.interface",
                limit::ANNOUNCE_INTERFACE,
                format!(
                    "no interface is named {name:?}: the routes go through an interface's \
                     kernel twin"
                ),
            );
        }
    }
}
