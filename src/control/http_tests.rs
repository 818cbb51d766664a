//! Tests of `control::http`.
use super::*;
use std::net::SocketAddr;

type Server = (SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<()>);

/// A server on a port of its own answering with `answer`, until its flag is set.
fn serving(answer: impl FnMut(&str) -> Response + Send + 'static) -> Server {
    serving_within(answer, WRITE_TIMEOUT)
}

/// [`serving`], each client given `write_timeout` to take its answer.
fn serving_within(
    answer: impl FnMut(&str) -> Response + Send + 'static,
    write_timeout: Duration,
) -> Server {
    serving_sharing(answer, (write_timeout, SAME_ANSWER_FOR))
}

/// [`serving_within`], found answers given again for the second of `limits`.
fn serving_sharing(
    answer: impl FnMut(&str) -> Response + Send + 'static,
    limits: (Duration, Duration),
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || serve_within(listener, &flag, answer, limits));
    (addr, stop, handle)
}

/// `/metrics` found (its body naming its path), anything else not.
fn start() -> Server {
    serving(|path| Response {
        status: if path == "/metrics" { 200 } else { 404 },
        content_type: "text/plain",
        body: format!("path {path}\n"),
    })
}

/// `/big` answered with `big` bytes, anything else with a small answer.
fn big_or_small(path: &str, big: usize) -> Response {
    Response {
        status: 200,
        content_type: "text/plain",
        body: if path == "/big" {
            "x".repeat(big)
        } else {
            "small\n".into()
        },
    }
}

/// Sends `request` and reads the whole answer (the server closes after it).
fn ask(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn answers_while_idle_and_garbage_connections_are_held_open() {
    let (addr, stop, handle) = start();
    assert!(ask(addr, b"\x00\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
    // A slow, never-finished head, then every slot filled with idle connections, and
    // more besides.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS + 50)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    // The idle ones time out and free their slots: a real request is answered (until
    // then, a connection over the limit is closed unanswered).
    let deadline = Instant::now() + REQUEST_TIMEOUT * 5;
    let mut answer = String::new();
    while answer.is_empty() && Instant::now() < deadline {
        answer = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
    assert!(answer.ends_with("path /metrics\n"), "{answer:?}");
    // Each idle connection was closed by the server, none left to hang.
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)), "closed");
    }
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

/// Clients that never read their (large) answers hold up no one else's: the answers are
/// written as far as each client takes them, between the others'.
#[test]
fn slow_readers_hold_up_no_other_answer() {
    let (addr, stop, handle) = serving(|path| big_or_small(path, 32 << 20));
    let readers: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
            s
        })
        .collect();
    // Blocking writes of 2 s each to the four would leave this one unanswered after 5 s.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.ends_with("\r\n\r\nsmall\n"), "{out:?}");
    drop(readers);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

/// Slow readers from many peers, filling every slot with answers they do not take, keep
/// no scraper out: once they have been taking theirs for [`SLOW_READER`], a new connection
/// takes the oldest one's slot. Their answers, made within the time an answer is given
/// again of each other, are one (the big answer is not made once for each, nor held once for
/// each).
#[test]
fn slow_readers_from_many_peers_keep_no_scraper_out() {
    let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = made.clone();
    // The readers' time to take their answers outlasts the test: only the eviction of a
    // slow one can make room. An answer is given again for as long (not for
    // SAME_ANSWER_FOR: the requests, sent one after another, need not come within 5 ms).
    let within = Duration::from_secs(600);
    let (addr, stop, handle) = serving_sharing(
        move |path| {
            count.fetch_add(usize::from(path == "/big"), Ordering::Relaxed);
            big_or_small(path, 8 << 20)
        },
        (within, within),
    );
    let mut readers = Vec::new();
    for peer in 2..2 + MAX_CONNECTIONS / MAX_PER_PEER {
        for mut s in idle_from(&format!("127.0.0.{peer}"), addr, MAX_PER_PEER) {
            s.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
            readers.push(s);
        }
    }
    // Every slot answering, none of it taken (each reader's buffers hold a little): a
    // scraper trying again as a real one does (a connection finding no room is closed)
    // gets in once the readers have been slow for long enough, long before any of them
    // runs out of its time to take its answer.
    let deadline = Instant::now() + SLOW_READER * 20;
    let answer = loop {
        let answer = ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        if !answer.is_empty() || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(answer.ends_with("\r\n\r\nsmall\n"), "{answer:?}");
    // Once, or twice where the scraper's answer (the one place kept) came between two
    // readers' requests, which a loaded machine may read late.
    let made = made.load(Ordering::Relaxed);
    assert!(
        (1..=2).contains(&made),
        "{made} answers made for {} requests",
        readers.len()
    );
    drop(readers);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

/// Slow readers asking one after another, each past the time an answer is given again, hold
/// no more than [`OLDER_ANSWERS_HELD`] bytes of older answers: beyond, the last is given
/// again. (Each held its own: 64 readers of a large config's answer, gigabytes.)
#[test]
fn slow_readers_asking_apart_hold_a_bounded_memory_of_answers() {
    let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = made.clone();
    let big = 8 << 20;
    // Never the same answer by age (given again for no time at all); readers slower than
    // the test.
    let within = Duration::from_secs(600);
    let (addr, stop, handle) = serving_sharing(
        move |path| {
            count.fetch_add(usize::from(path == "/big"), Ordering::Relaxed);
            big_or_small(path, big)
        },
        (within, Duration::ZERO),
    );
    let readers = OLDER_ANSWERS_HELD / big + 4;
    let mut held = Vec::new();
    for mut s in idle_from("127.0.0.2", addr, readers) {
        s.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
        // Its answer begun (the rest waits for the reader) before the next asks.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut status = [0u8; 12];
        s.read_exact(&mut status).unwrap();
        assert_eq!(&status, b"HTTP/1.1 200");
        held.push(s);
    }
    assert_eq!(made.load(Ordering::Relaxed), OLDER_ANSWERS_HELD / big + 1);
    drop(held);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

/// `n` connections from `source` that send nothing.
fn idle_from(source: &str, addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None);
            let s = s.unwrap();
            let from: SocketAddr = format!("{source}:0").parse().unwrap();
            s.bind(&from.into()).unwrap();
            s.connect(&addr.into()).unwrap();
            s.into()
        })
        .collect()
}

/// Idle connections cannot keep a scraper out: one peer holds at most its share of the
/// slots, and where several fill them all, a new connection takes the oldest idle one's.
/// The request is answered at once, not after the idle ones time out.
#[test]
fn idle_connections_neither_from_one_peer_nor_from_many_keep_a_scraper_out() {
    let (addr, stop, handle) = start();
    let one_peer = idle_from("127.0.0.2", addr, MAX_CONNECTIONS + 10);
    let answer = ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(answer.ends_with("path /metrics\n"), "one peer: {answer:?}");
    // The peer's own scraper too (a host beside the idle ones in its IPv6 /64 likewise).
    // At its share, the peer gives one of its idle ones up for it (room is found before
    // anything is read, so whether its request is in yet makes no difference).
    let mut own = idle_from("127.0.0.2", addr, 1).remove(0);
    own.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    own.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = own.read_to_string(&mut answer);
    assert!(
        answer.ends_with("path /metrics\n"),
        "the peer's own: {answer:?}"
    );
    let mut many = Vec::new();
    for peer in 3..3 + MAX_CONNECTIONS / MAX_PER_PEER {
        many.extend(idle_from(&format!("127.0.0.{peer}"), addr, MAX_PER_PEER));
    }
    let answer = ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(
        answer.ends_with("path /metrics\n"),
        "many peers: {answer:?}"
    );
    drop((one_peer, many));
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

#[test]
fn a_peer_is_an_ipv4_address_or_an_ipv6_slash_64() {
    let peer = |a: &str| peer_of(a.parse().unwrap());
    assert_eq!(peer("192.0.2.7"), peer("::ffff:192.0.2.7"));
    assert_ne!(peer("192.0.2.7"), peer("192.0.2.8"));
    assert_eq!(peer("2001:db8:0:1::7"), peer("2001:db8:0:1:ffff:1:2:3"));
    assert_ne!(peer("2001:db8:0:1::7"), peer("2001:db8:0:2::7"));
    assert_eq!(peer("fe80::1"), peer("fe80::2:3:4:5"));
}

#[test]
fn head_gets_the_head_alone_and_a_bare_newline_ends_a_request() {
    let (addr, stop, handle) = start();
    let head = ask(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head:?}");
    assert!(head.contains("Content-Length: 14\r\n"), "{head:?}");
    assert!(head.ends_with("\r\n\r\n"), "no body: {head:?}");
    let bare = ask(addr, b"GET /metrics HTTP/1.1\n\n");
    assert!(bare.ends_with("path /metrics\n"), "{bare:?}");
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

#[test]
fn an_oversized_head_is_refused_and_other_paths_are_not_found() {
    let (addr, stop, handle) = start();
    // A head that never ends within the limit (all of it read, so the close is clean).
    let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    big.resize(MAX_REQUEST, b'a');
    assert!(ask(addr, &big).starts_with("HTTP/1.1 431"));
    assert!(ask(addr, b"GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404"));
    // Another method: 405, naming those there are.
    let post = ask(addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert!(
        post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{post}"
    );
    assert!(post.contains("\r\nAllow: GET, HEAD\r\n"), "{post}");
    assert!(ask(addr, b"get /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    assert!(ask(addr, b"G(ET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(ask(addr, b"GET /metrics\r\n\r\n").starts_with("HTTP/1.1 400"));
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

/// Requests for one path with ever new queries (which ask for no other answer) are given
/// the one answer, made once: they made it anew each.
#[test]
fn queries_make_no_answer_anew() {
    let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = made.clone();
    let long = Duration::from_secs(600);
    let (addr, stop, handle) = serving_sharing(
        move |path| {
            count.fetch_add(1, Ordering::Relaxed);
            big_or_small(path, 1 << 10)
        },
        (WRITE_TIMEOUT, long),
    );
    for query in ["", "?1", "?2", "?job=haports&x=1"] {
        let answer = ask(addr, format!("GET /big{query} HTTP/1.1\r\n\r\n").as_bytes());
        assert!(
            answer.ends_with(&"x".repeat(1 << 10)),
            "{query}: {answer:?}"
        );
    }
    assert_eq!(made.load(Ordering::Relaxed), 1);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

/// A client that takes its (large) answer steadily but slowly, for longer in all than the
/// write timeout, gets all of it: the timeout is for taking none of it (a remote scraper of a
/// large config's answer over a slow link), not for the whole.
#[test]
fn a_slow_but_steady_reader_gets_its_whole_answer() {
    let timeout = Duration::from_millis(300);
    // Beyond what the kernel's send and receive buffers take however tuned (16 MiB and 64
    // KiB), so that the server waits for the reader.
    let big = 24 << 20;
    let (addr, stop, handle) = serving_within(move |path| big_or_small(path, big), timeout);
    // A small receive window, so that the answer does not all go into the sockets' buffers.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 << 10).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
    // 64 KiB every 2 ms at most: the 24 MiB take most of a second, each part well within the
    // timeout.
    let (mut got, mut buf) = (Vec::new(), vec![0; 64 << 10]);
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let head = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(got.len() - head, big, "the answer was cut short");
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}
