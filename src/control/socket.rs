//! The control socket (`control.socket`): a Unix socket only root and haports' own user may
//! use, through which `haports reload` and `haports status` talk to a running appliance.
//!
//! One request a connection: a line (`reload` or `status`), answered with one JSON object,
//! then the connection closes. A thread of its own accepts and reads; the control thread
//! carries the request out between two rounds of its loop and hands back the answer, so a
//! reload over the socket is the same reload as SIGHUP's.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Error;

/// How long a client may take to send its line (in all, however it trickles), and to take
/// its answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the control thread may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest answer a client reads: far beyond the status of the largest config.
const ANSWER_MAX: u64 = 64 << 20;
/// How often the accepting thread looks for a stop.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// What a client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Reload,
    Status,
}

impl Request {
    fn parse(line: &str) -> Option<Request> {
        match line.trim() {
            "reload" => Some(Request::Reload),
            "status" => Some(Request::Status),
            _ => None,
        }
    }
}

/// A request and where its answer (a JSON object) goes.
pub type Asked = (Request, mpsc::Sender<serde_json::Value>);

/// How long a connect to a listener that takes no connections (its queue full) is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether another haports listens on the control socket at `path`: one that takes the
/// connection, or whose queue is full (wedged, or busy): not a stale file to replace, and
/// no wait on it without end.
pub fn in_use(path: &Path) -> bool {
    match connect_within(path, CONNECT_TIMEOUT) {
        Ok(_) => true,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

/// Connects to the Unix socket at `path` within `within`: a plain connect to a listener
/// whose queue is full waits until it takes connections, perhaps never. A full queue
/// refuses a connect that does not wait (EAGAIN), so it is tried again until then (the
/// error then is that refusal, `WouldBlock`): a busy listener gets its time.
pub(super) fn connect_within(path: &Path, within: Duration) -> io::Result<UnixStream> {
    let address = socket2::SockAddr::unix(path)?;
    let deadline = Instant::now() + within;
    loop {
        let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
        // A Unix socket's connect that does not wait is done at once or refused, never
        // in progress.
        s.set_nonblocking(true)?;
        match s.connect(&address) {
            Ok(()) => {
                s.set_nonblocking(false)?;
                return Ok(s.into());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The listening socket and its thread; the socket file goes when this is dropped.
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
    requests: mpsc::Receiver<Asked>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlSocket {
    /// Listens at `path` (mode 0600). A socket file left by a process that is gone is
    /// replaced; one that answers belongs to a running haports, and is an error, as is
    /// anything else at `path` (a file, a directory, a link): never removed. Only root and
    /// the appliance's own user are served, by the peer's credentials, checked as each
    /// connects: one that connected between the bind and the chmod (a loose umask) is
    /// refused too.
    pub fn bind(path: &Path) -> Result<ControlSocket, Error> {
        let fail =
            |what: &str, e: io::Error| Error::Control(format!("{what} {}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail("creating the directory of", e))?;
        }
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail("looking at", e)),
            Ok(m) if !m.file_type().is_socket() => {
                return Err(Error::Control(format!(
                    "{} exists and is not a socket: move it away, or set control.socket to \
                     another path",
                    path.display()
                )))
            }
            Ok(_) if in_use(path) => {
                return Err(Error::Control(format!(
                    "{} is in use: another haports runs with this control socket",
                    path.display()
                )))
            }
            Ok(_) => std::fs::remove_file(path).map_err(|e| fail("removing the stale", e))?,
        }
        let listener = UnixListener::bind(path).map_err(|e| fail("listening on", e))?;
        // What fails from here on leaves no socket file behind.
        let removed = |e| {
            let _ = std::fs::remove_file(path);
            e
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| removed(fail("restricting", e)))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| removed(fail("setting up", e)))?;
        let (tx, requests) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("haports-control".into())
            .spawn(move || accept_loop(&listener, &tx, &st))
            .map_err(|e| removed(fail("starting the thread of", e)))?;
        tracing::info!(socket = %path.display(), "control socket");
        Ok(ControlSocket {
            path: path.to_owned(),
            requests,
            stop,
            thread: Some(thread),
        })
    }

    /// The next request waiting, if any (never blocks).
    pub fn next(&self) -> Option<Asked> {
        self.requests.try_recv().ok()
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The queue closes before the join: the accepting thread may be waiting for the
        // answer to a request still in it, which goes with the queue (answered "stopping").
        drop(std::mem::replace(&mut self.requests, mpsc::channel().1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: &UnixListener, tx: &mpsc::Sender<Asked>, stop: &AtomicBool) {
    // A local user connecting in a loop, or an accept error that lasts (no file descriptor
    // left), is said at most once a minute, with how often it happened meanwhile.
    let (mut untrusted, mut failing) = (Sparing::default(), Sparing::default());
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) if !trusted(&conn) => {
                if let Some(n) = untrusted.due(Instant::now()) {
                    tracing::warn!(
                        times = n,
                        "control socket: a client neither root nor haports' own user"
                    );
                }
            }
            Ok((conn, _)) => {
                if let Err(e) = serve(conn, tx) {
                    tracing::debug!(error = %e, "control socket client");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) => {
                if let Some(n) = failing.due(Instant::now()) {
                    tracing::warn!(error = %e, times = n, "control socket accept");
                }
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

/// A warning said at most once a [`SPARING`]: [`due`](Sparing::due) gives how many times
/// it happened since it was last said (this one included) when it is to be said again.
#[derive(Debug, Default)]
struct Sparing {
    said: Option<Instant>,
    unsaid: u64,
}

/// How often a [`Sparing`] warning is said at most.
const SPARING: Duration = Duration::from_secs(60);

impl Sparing {
    fn due(&mut self, now: Instant) -> Option<u64> {
        self.unsaid += 1;
        if self.said.is_some_and(|t| now.duration_since(t) < SPARING) {
            return None;
        }
        self.said = Some(now);
        Some(std::mem::take(&mut self.unsaid))
    }
}

/// Whether the client at the other end of `conn` runs as root or as this process's user.
fn trusted(conn: &UnixStream) -> bool {
    let own = rustix::process::geteuid();
    rustix::net::sockopt::socket_peercred(conn)
        .is_ok_and(|peer| peer.uid.is_root() || peer.uid == own)
}

fn serve(conn: UnixStream, tx: &mpsc::Sender<Asked>) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    let line = read_request(&conn, CLIENT_TIMEOUT)?;
    let answer = match Request::parse(&line) {
        None => serde_json::json!({
            "error": format!("unknown request {:?}: `reload` or `status`", line.trim())
        }),
        Some(request) => {
            let (reply, answer) = mpsc::channel();
            match tx
                .send((request, reply))
                .map(|()| answer.recv_timeout(ANSWER_TIMEOUT))
            {
                Ok(Ok(answer)) => answer,
                Ok(Err(mpsc::RecvTimeoutError::Timeout)) => {
                    serde_json::json!({"error": "haports did not answer in time"})
                }
                // The queue closed with the request in it, or the control thread dropped
                // the request unanswered: both only as the appliance stops.
                Err(_) | Ok(Err(mpsc::RecvTimeoutError::Disconnected)) => {
                    serde_json::json!({"error": "haports is stopping"})
                }
            }
        }
    };
    write_answer(&conn, format!("{answer}\n").as_bytes(), CLIENT_TIMEOUT)
}

/// Writes `answer` to the client within `within` in all: a client that takes it slowly holds
/// the one accepting thread no longer (a write timeout alone would start anew with each
/// write that got anywhere).
fn write_answer(mut conn: &UnixStream, answer: &[u8], within: Duration) -> io::Result<()> {
    let deadline = Instant::now() + within;
    let mut left = answer;
    while !left.is_empty() {
        let time = deadline.saturating_duration_since(Instant::now());
        if time.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        conn.set_write_timeout(Some(time))?;
        match conn.write(left) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => left = &left[n..],
            // The write's time ran out (a socket says "would block").
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::ErrorKind::TimedOut.into())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A request line: at most 64 bytes (anything longer is no request), up to a newline or the
/// client's end, within `within` in all, so that a client trickling bytes holds the one
/// accepting thread no longer; bytes that are not UTF-8 read as an unknown request.
fn read_request(mut conn: &UnixStream, within: Duration) -> io::Result<String> {
    let deadline = Instant::now() + within;
    let (mut line, mut buf) = (Vec::new(), [0u8; 64]);
    while line.len() < buf.len() && !line.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        conn.set_read_timeout(Some(left))?;
        let n = match conn.read(&mut buf[..64 - line.len()]) {
            // The read's time ran out (a socket says "would block").
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::ErrorKind::TimedOut.into())
            }
            read => read?,
        };
        if n == 0 {
            break;
        }
        line.extend_from_slice(&buf[..n]);
    }
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    Ok(String::from_utf8_lossy(&line[..end]).into_owned())
}

/// The client side: sends `request` to the socket at `path` and returns the JSON answer.
pub fn ask(path: &Path, request: &str) -> Result<serde_json::Value, String> {
    let mut conn = connect_within(path, CONNECT_TIMEOUT).map_err(|e| {
        format!(
            "connecting to {}: {e} (is haports running, with control.socket set to this path? \
             the socket is root's only)",
            path.display()
        )
    })?;
    conn.set_read_timeout(Some(ANSWER_TIMEOUT + CLIENT_TIMEOUT))
        .map_err(|e| e.to_string())?;
    writeln!(conn, "{request}").map_err(|e| format!("sending to {}: {e}", path.display()))?;
    // One line, as long as a status of many backends may be (an endless one is cut there
    // and is no JSON).
    let mut answer = String::new();
    BufReader::new(conn.take(ANSWER_MAX))
        .read_line(&mut answer)
        .map_err(|e| format!("reading from {}: {e}", path.display()))?;
    serde_json::from_str(&answer).map_err(|e| format!("answer {answer:?}: {e}"))
}

#[cfg(test)]
#[path = "socket_tests.rs"]
mod tests;
