//! Tests of `control::socket`.
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

/// A client's `status` at `path`, as the control thread sees it (waited for), answered with
/// `answer`: what the client got.
fn status_answered(
    socket: &ControlSocket,
    path: &Path,
    answer: serde_json::Value,
) -> serde_json::Value {
    let client = std::thread::spawn({
        let path = path.to_owned();
        move || ask(&path, "status").unwrap()
    });
    let (request, reply) = loop {
        if let Some(asked) = socket.next() {
            break asked;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(request, Request::Status);
    reply.send(answer).unwrap();
    client.join().unwrap()
}

#[test]
fn a_request_reaches_the_control_thread_and_its_answer_the_client() {
    let (_guard, path) = scratch("answer");
    let socket = ControlSocket::bind(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let answer = serde_json::json!({"config_generation": 3});
    assert_eq!(status_answered(&socket, &path, answer.clone()), answer);
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
    let answer = serde_json::json!({"ok": true});
    assert_eq!(status_answered(&socket, &path, answer.clone()), answer);
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

/// A client that takes its answer a little at a time gets no longer than the time for a
/// whole answer; one that takes it at once gets all of it.
#[test]
fn an_answer_is_written_within_its_time_in_all() {
    let (server, mut client) = UnixStream::pair().unwrap();
    let answer = vec![b'x'; 8 << 20];
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let sip = std::thread::spawn(move || {
        // A few bytes at a time, each read well within a write's timeout.
        let mut buf = [0u8; 16];
        while !flag.load(Ordering::Relaxed) && client.read(&mut buf).is_ok_and(|n| n > 0) {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    // In a thread: without the whole answer's time it would take the sipping reader's
    // (most of an hour), where the test must fail.
    let (done, written) = std::sync::mpsc::channel();
    let big = answer.clone();
    std::thread::spawn(move || {
        let _ = done.send(write_answer(&server, &big, Duration::from_millis(500)));
    });
    let e = written
        .recv_timeout(Duration::from_secs(30))
        .expect("the answer was written on past its 500 ms")
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    stop.store(true, Ordering::Relaxed);
    sip.join().unwrap();

    let (server, client) = UnixStream::pair().unwrap();
    let read = std::thread::spawn(move || {
        let mut all = Vec::new();
        (&client).read_to_end(&mut all).map(|_| all.len())
    });
    write_answer(&server, &answer, CLIENT_TIMEOUT).unwrap();
    drop(server);
    assert_eq!(read.join().unwrap().unwrap(), answer.len());
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

/// A warning that repeats (a client connecting in a loop, an accept error that lasts) is
/// said once a minute at most, with the count of the times it was not.
#[test]
fn a_repeated_warning_is_said_once_a_minute_with_its_count() {
    let mut w = Sparing::default();
    let t = Instant::now();
    assert_eq!(w.due(t), Some(1));
    let quiet = (1..3000).filter_map(|ms| w.due(t + Duration::from_millis(ms * 20)));
    assert_eq!(quiet.count(), 0, "a minute's worth at 50 a second, unsaid");
    assert_eq!(w.due(t + Duration::from_secs(61)), Some(3000));
}
