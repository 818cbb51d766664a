//! The control socket (`control.socket`): a Unix socket only root may use, through which
//! `haports reload` and `haports status` talk to a running appliance.
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

/// How long a client may take to send its line (in all, however it trickles), and the control
/// thread to answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
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
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) if !trusted(&conn) => {
                tracing::warn!("control socket: a client neither root nor haports' own user");
            }
            Ok((conn, _)) => {
                if let Err(e) = serve(conn, tx) {
                    tracing::debug!(error = %e, "control socket client");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
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
    conn.set_write_timeout(Some(CLIENT_TIMEOUT))?;
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
    let mut conn = conn;
    writeln!(conn, "{answer}")
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
mod tests {
    use super::*;

    /// A socket's path in a directory of its own (`run/` in it not there yet), removed
    /// with the guard.
    fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
        let guard = tempfile::Builder::new()
            .prefix(&format!("haports-socket-{name}-"))
            .tempdir()
            .unwrap();
        let path = guard.path().join("run/haports.sock");
        (guard, path)
    }

    #[test]
    fn a_request_reaches_the_control_thread_and_its_answer_the_client() {
        let (_guard, path) = scratch("answer");
        let socket = ControlSocket::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let client = std::thread::spawn({
            let path = path.clone();
            move || ask(&path, "status").unwrap()
        });
        let (request, reply) = loop {
            if let Some(asked) = socket.next() {
                break asked;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(request, Request::Status);
        reply
            .send(serde_json::json!({"config_generation": 3}))
            .unwrap();
        assert_eq!(client.join().unwrap()["config_generation"], 3);
        // Nonsense gets an error without bothering the control thread.
        let answer = ask(&path, "shutdown").unwrap();
        assert!(answer["error"]
            .as_str()
            .unwrap()
            .contains("unknown request"));
        assert!(socket.next().is_none());
        drop(socket);
        assert!(!path.exists(), "the socket file goes with the socket");
    }

    /// A client neither root nor the appliance's user is refused even where the file's mode
    /// would let it connect (here opened to all on purpose, as a loose umask leaves it
    /// between the bind and the chmod); nothing else is left beside the socket.
    #[test]
    fn only_root_and_its_own_user_are_served() {
        let (guard, path) = scratch("peer");
        let socket = ControlSocket::bind(&path).unwrap();
        let dir = path.parent().unwrap();
        let names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["haports.sock"]);
        for p in [guard.path(), dir, &path] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        // `nobody` connects and asks: the connection is closed unanswered (reset, or ended).
        let script = "import socket,sys\n\
                      s=socket.socket(socket.AF_UNIX)\n\
                      s.connect(sys.argv[1])\n\
                      s.sendall(b'status\\n')\n\
                      try: print(repr(s.recv(4096)))\n\
                      except ConnectionResetError: print(repr(b''))";
        let out = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
            ])
            .arg(script)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "b''");
        assert!(
            socket.next().is_none(),
            "nothing asked of the control thread"
        );
        // Root (this process) still is.
        let client = std::thread::spawn({
            let path = path.clone();
            move || ask(&path, "status").unwrap()
        });
        let (request, reply) = loop {
            if let Some(asked) = socket.next() {
                break asked;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(request, Request::Status);
        reply.send(serde_json::json!({"ok": true})).unwrap();
        assert_eq!(client.join().unwrap()["ok"], true);
    }

    /// A client that trickles its line gets no longer than the time for a whole line; bytes
    /// that are not UTF-8 are an unknown request, not a dropped connection.
    #[test]
    fn a_request_line_is_read_within_its_time_in_all() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let trickle = std::thread::spawn(move || {
            // "status\n", a byte at a time, slower in all than the reader's time.
            for b in b"status\n" {
                if client.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(150));
            }
        });
        let e = read_request(&server, Duration::from_millis(500)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop(server);
        trickle.join().unwrap();

        let (server, mut client) = UnixStream::pair().unwrap();
        client.write_all(b"\xff\xfe\n").unwrap();
        let line = read_request(&server, CLIENT_TIMEOUT).unwrap();
        assert_eq!(Request::parse(&line), None);
        let (server, mut client) = UnixStream::pair().unwrap();
        client.write_all(b"reload\n").unwrap();
        assert_eq!(read_request(&server, CLIENT_TIMEOUT).unwrap(), "reload");
    }

    #[test]
    fn a_stale_socket_file_is_replaced_and_a_live_one_refused() {
        let (_guard, path) = scratch("stale");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        drop(UnixListener::bind(&path).unwrap()); // leaves the file, nobody listening
        let first = ControlSocket::bind(&path).unwrap();
        let e = ControlSocket::bind(&path).unwrap_err().to_string();
        assert!(e.contains("another haports runs"), "{e}");
        drop(first);
    }

    /// A listener that takes no connections, its queue full, is a haports in the way: not
    /// replaced, and neither the check nor a client waits on it for ever.
    #[test]
    fn a_listener_whose_queue_is_full_is_in_use_and_answers_no_one_in_time() {
        let (_guard, path) = scratch("full");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A queue of one (std's listener asks for the most the kernel allows: thousands of
        // descriptors to fill).
        let wedged = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None);
        let wedged = wedged.unwrap();
        wedged
            .bind(&socket2::SockAddr::unix(&path).unwrap())
            .unwrap();
        wedged.listen(1).unwrap();
        let mut queued = Vec::new();
        let full = loop {
            let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None);
            let s = s.unwrap();
            s.set_nonblocking(true).unwrap();
            match s.connect(&socket2::SockAddr::unix(&path).unwrap()) {
                Ok(()) if queued.len() < 16 => queued.push(s),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                _ => break false,
            }
        };
        assert!(
            full,
            "the listener's queue never filled ({} queued)",
            queued.len()
        );
        assert!(in_use(&path));
        let e = ControlSocket::bind(&path).unwrap_err().to_string();
        assert!(e.contains("another haports runs"), "{e}");
        let e = ask(&path, "status").unwrap_err();
        assert!(e.contains("connecting to"), "{e}");
        drop((queued, wedged));
    }

    /// Anything but a socket at the path is someone's file: refused, and left as it was.
    #[test]
    fn a_path_that_is_not_a_socket_is_refused_and_left_alone() {
        let (_guard, path) = scratch("file");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "not haports'").unwrap();
        let e = ControlSocket::bind(&path).unwrap_err().to_string();
        assert!(e.contains("is not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not haports'");
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let e = ControlSocket::bind(&path).unwrap_err().to_string();
        assert!(e.contains("is not a socket"), "{e}");
        assert!(path.is_dir());
    }

    /// A request the control thread has not taken when the appliance stops is answered so,
    /// at once: the socket's drop (which joins the accepting thread, waiting for that answer)
    /// does not wait out ANSWER_TIMEOUT.
    #[test]
    fn dropping_the_socket_answers_a_queued_request_without_waiting() {
        let (_guard, path) = scratch("queued");
        let mut socket = ControlSocket::bind(&path).unwrap();
        let client = std::thread::spawn({
            let path = path.clone();
            move || ask(&path, "status").unwrap()
        });
        let asked = loop {
            if let Some(asked) = socket.next() {
                break asked;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        // Back in a queue of the socket's, untaken, as the client's thread waits for it.
        let (queue, requests) = mpsc::channel();
        queue.send(asked).unwrap();
        socket.requests = requests;
        let (dropped, done) = mpsc::channel();
        std::thread::spawn(move || {
            drop(socket);
            let _ = dropped.send(());
        });
        // Far under ANSWER_TIMEOUT (30 s), far over what the drop takes (milliseconds).
        done.recv_timeout(Duration::from_secs(10))
            .expect("the socket's drop waited for the queued request's answer");
        assert_eq!(client.join().unwrap()["error"], "haports is stopping");
        assert!(!path.exists());
    }

    #[test]
    fn without_a_running_appliance_the_client_says_so() {
        let e = ask(&scratch("none").1, "status").unwrap_err();
        assert!(e.contains("is haports running"), "{e}");
    }
}
