//! One probe of one target: a connection through the backend's kernel twin, and for http a
//! request and its answer's status, within the probe's time; and the appliance's own limit
//! on open files, which the probes' sockets take from.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Instant;

use super::Target;
use crate::config::ProbeProtocol;

/// One probe's verdict.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Pass,
    /// Counts towards `unhealthy_threshold`.
    Fail(String),
    /// Marks down at once (an http probe's answer that is not 2xx, its connection refused or
    /// reset).
    Reject(String),
    /// The appliance could not probe (out of descriptors, buffers or local ports): says
    /// nothing of the backend, whose state stays as it was; a target without one yet takes
    /// it as a failed first probe (down, `healthy_threshold` passes to come up), so that it
    /// has a first result.
    Local(String),
}

/// Whether a socket error is the appliance's own want of resources, not the backend's doing.
pub(super) fn local(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL)
    )
}

pub(super) fn probe_once(t: &Target) -> Outcome {
    let refused_or_reset = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
        )
    };
    // One deadline for the whole probe: connect, request and answer.
    let deadline = Instant::now() + t.timeout();
    let stream = match connect(t) {
        Ok(stream) => stream,
        // Refused: an http probe's marks down at once, a tcp probe's counts as a failure.
        Err(e) if t.protocol == ProbeProtocol::Http && refused_or_reset(&e) => {
            return Outcome::Reject(e.to_string())
        }
        Err(e) if local(&e) => return Outcome::Local(e.to_string()),
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    match t.protocol {
        ProbeProtocol::Tcp => Outcome::Pass,
        ProbeProtocol::Http => match http_status(stream, t, deadline) {
            Ok(code) if (200..300).contains(&code) => Outcome::Pass,
            Ok(code) => Outcome::Reject(format!("HTTP {code}")),
            Err(e) if refused_or_reset(&e) => Outcome::Reject(e.to_string()),
            Err(e) if local(&e) => Outcome::Local(e.to_string()),
            // The read's timeout (EAGAIN, which says "resource temporarily unavailable"):
            // the backend's silence, not the appliance's want of resources.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let ms = t.timeout().as_millis();
                Outcome::Fail(format!("no complete HTTP answer within {ms} ms"))
            }
            Err(e) => Outcome::Fail(e.to_string()),
        },
    }
}

/// A connection to the target's service, from a socket bound to its kernel twin where it has
/// one, within the probe's time.
fn connect(t: &Target) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = SocketAddr::new(t.address, t.port);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(device) = &t.device {
        // A twin gone (deleted from the kernel) fails every probe through it, and so its
        // backends: the reason, logged with them, names it.
        let named = |e: io::Error| {
            let what = format!("binding to the kernel twin {device}: {e}");
            if local(&e) {
                io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0))
            } else {
                io::Error::new(e.kind(), what)
            }
        };
        socket.bind_device(Some(device.as_bytes())).map_err(named)?;
    }
    socket.connect_timeout(&addr.into(), t.timeout())?;
    Ok(socket.into())
}

/// The status code of `GET path` over `stream` (HTTP/1.1, one request, no redirect followed),
/// read from the answer's status line by `deadline`; interim answers (1xx: 100 Continue, 103
/// Early Hints) are skipped, as a client must (RFC 9110 §15.2), up to the final one.
fn http_status(mut stream: TcpStream, t: &Target, deadline: Instant) -> io::Result<u16> {
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero())
            .then_some(left)
            .ok_or(io::ErrorKind::TimedOut)
    };
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(left()?))?;
    send_request(&mut stream, t)?;
    let (mut head, mut buf) = (Vec::new(), [0u8; 512]);
    loop {
        // Up to the first LF: a recipient may take a bare LF for the end of a line (RFC
        // 9112 §2.2), which simple health responders (`printf ... | nc -l`) send.
        let Some(end) = head.iter().position(|&b| b == b'\n') else {
            if head.len() > 1024 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "no HTTP status line",
                ));
            }
            stream.set_read_timeout(Some(left()?))?;
            match stream.read(&mut buf)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => head.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        let code = status_code(&head[..end])?;
        // 101 Switching Protocols is final: what follows is no longer HTTP.
        if !(100..200).contains(&code) || code == 101 {
            return Ok(code);
        }
        // An interim answer: its header block (up to an empty line) goes, then the next.
        match interim_end(&head) {
            Some(at) => {
                head.drain(..at);
            }
            None if head.len() > 4096 => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "an interim HTTP answer without end",
                ))
            }
            None => {
                stream.set_read_timeout(Some(left()?))?;
                match stream.read(&mut buf)? {
                    0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                    n => head.extend_from_slice(&buf[..n]),
                }
            }
        }
    }
}

/// Writes the probe's request to `w` in one write: written piece by piece, Nagle held each
/// piece after the first until its acknowledgement, which a backend delaying its ACKs (BSD,
/// Windows) sends 100-200 ms late, past a short probe's time.
pub(super) fn send_request(w: &mut impl Write, t: &Target) -> io::Result<()> {
    let host = match t.address {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: haports-probe\r\n\
         Connection: close\r\n\r\n",
        t.path, t.port
    );
    w.write_all(request.as_bytes())
}

/// The code of an HTTP status line ("HTTP/1.1 200 OK", its CR if any included).
pub(super) fn status_code(line: &[u8]) -> io::Result<u16> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(v), Some(Ok(code))) if v.starts_with("HTTP/1.") && (100..600).contains(&code) => {
            Ok(code)
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP status line: {line:?}"),
        )),
    }
}

/// Where the answer heading `head` ends (just past its empty line, LF or CRLF): its first
/// line is its status line, never empty.
pub(super) fn interim_end(head: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(nl) = head[at..].iter().position(|&b| b == b'\n') {
        let line = &head[at..at + nl];
        at += nl + 1;
        if at > nl + 1 && (line.is_empty() || line == b"\r") {
            return Some(at);
        }
    }
    None
}

/// Raises the soft limit on open files to the hard one (a service's soft limit is often
/// 1024, which DPDK's hugepage files and a probe socket a target share): a probe the
/// appliance cannot open a socket for says nothing of its backend, and where that lasts
/// from the start, the backend stays down.
pub fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum) {
        if soft < hard {
            let raised = Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => tracing::debug!(from = soft, to = hard, "open files limit raised"),
                Err(e) => {
                    tracing::warn!(limit = soft, error = %e, "cannot raise the open files limit")
                }
            }
        }
    }
}
