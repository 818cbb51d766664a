//! A small HTTP/1.1 server for the metrics endpoint that no client can take down: one thread,
//! at most [`MAX_CONNECTIONS`] connections at a time and [`MAX_PER_PEER`] from one peer,
//! each given [`REQUEST_TIMEOUT`] to send at most [`MAX_REQUEST`] bytes of request head,
//! answered once (the answer written as the client takes it, within [`WRITE_TIMEOUT`] in
//! all) and closed. Idle, slow or garbage connections, slow readers included, cost a slot for
//! a bounded time, never a thread or unbounded memory, and never stop it answering the
//! others. Where every slot is taken, a new connection takes the slot of the oldest one still
//! sending its request (a scraper sends its request at once), and one peer (an IPv4 address,
//! an IPv6 /64) holds at most its share, a new connection of its own taking the place of its
//! oldest still sending; failing that, a new connection takes the slot of the oldest whose
//! client has been taking its answer for longer than [`SLOW_READER`] (a scraper takes it at
//! once); one that finds no place is closed unread. One whose request is already in when it
//! is accepted is answered at once (before a later arrival could take its place). Found
//! answers to one path within [`SAME_ANSWER_FOR`] of each other are one answer, made once
//! and shared by the connections writing it (a request for another path does not push it
//! out): many requests at once cost neither one encoding each nor a copy each.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections served at once; a further one takes the place of the oldest that has not sent
/// its whole request yet, or, where every one has, is closed unread as soon as it is accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections from one peer (an IPv4 address, an IPv6 /64) at once; a further one from it
/// takes the place of its oldest still sending its request (or is closed, where none is).
pub const MAX_PER_PEER: usize = 16;
/// How long a client has to send its whole request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest request head read; a longer one is answered 431 and closed.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a client has to take its whole answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause when nothing happened, between polls of the listener and the connections.
const IDLE_POLL: Duration = Duration::from_millis(5);
/// How long a client may take its answer before a new connection, finding no other room, may
/// take its slot.
pub const SLOW_READER: Duration = Duration::from_millis(500);
/// How long a found answer to a path is given again rather than made anew: a tenth of the
/// shortest interval `haports stats` samples over (50 ms), whose rates it then moves by a
/// tenth at most.
pub const SAME_ANSWER_FOR: Duration = Duration::from_millis(5);

/// An answer: status code, content type and body.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

struct Connection {
    stream: TcpStream,
    peer: IpAddr,
    head: Vec<u8>,
    since: Instant,
    /// The answer, once the head is whole: its bytes (shared with other connections given the
    /// same answer), how many of them to write (a `HEAD` answer's head alone), how many are
    /// written, and since when.
    out: Option<Answer>,
}

struct Answer {
    bytes: Arc<[u8]>,
    end: usize,
    written: usize,
    since: Instant,
}

/// The last answer made for a path: its bytes and the length of their head.
struct Made {
    path: String,
    at: Instant,
    bytes: Arc<[u8]>,
    head: usize,
}

/// Serves `listener` until `stop` is set, answering each request's path with `answer`.
pub fn serve(
    listener: TcpListener,
    stop: &Arc<AtomicBool>,
    mut answer: impl FnMut(&str) -> Response,
) {
    if let Err(e) = listener.set_nonblocking(true) {
        tracing::error!(error = %e, "metrics listener: cannot poll; not serving");
        return;
    }
    let mut connections: Vec<Connection> = Vec::with_capacity(MAX_CONNECTIONS);
    let mut refused: u64 = 0;
    let mut made: Option<Made> = None;
    let mut answer = |path: &str, head_only: bool| {
        let fresh = made
            .as_ref()
            .filter(|m| m.path == path && m.at.elapsed() < SAME_ANSWER_FOR);
        let m = match fresh {
            Some(m) => m,
            None => {
                let response = answer(path);
                let (bytes, head) = encode(&response);
                // Only a found answer is kept: a request for another path (a 404) must not
                // push out the one worth sharing.
                if response.status != 200 {
                    let end = if head_only { head } else { bytes.len() };
                    return (bytes, end);
                }
                let at = Instant::now();
                let path = path.to_owned();
                made.insert(Made {
                    path,
                    at,
                    bytes,
                    head,
                })
            }
        };
        let end = if head_only { m.head } else { m.bytes.len() };
        (m.bytes.clone(), end)
    };
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        // At most a table's worth a round: a flood of connections must not keep the others
        // (and `stop`) waiting.
        for _ in 0..MAX_CONNECTIONS {
            match listener.accept() {
                Ok((stream, from)) => {
                    busy = true;
                    let peer = peer_of(from.ip());
                    // Room first (a slot, or the one a waiting connection gives up): a
                    // connection without is closed before anything is read or written to it.
                    let room = room_for(&connections, peer);
                    if room.is_none() || stream.set_nonblocking(true).is_err() {
                        refused += 1;
                        if refused.is_power_of_two() {
                            tracing::warn!(
                                refused,
                                "metrics: connection limit reached; closing new ones"
                            );
                        }
                        continue;
                    }
                    let mut c = Connection {
                        stream,
                        peer,
                        head: Vec::new(),
                        since: Instant::now(),
                        out: None,
                    };
                    // A request already in (a scraper sends it with the connection) is
                    // answered now, and takes no slot unless its answer waits for the client.
                    if advance(&mut c, &mut answer).0 {
                        if let Some(Some(i)) = room {
                            connections.swap_remove(i);
                        }
                        connections.push(c);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // Out of descriptors and the like: try again on the next round.
                Err(_) => break,
            }
        }
        connections.retain_mut(|c| {
            let (keep, progressed) = advance(c, &mut answer);
            busy |= progressed;
            keep
        });
        if !busy {
            std::thread::sleep(IDLE_POLL);
        }
    }
}

/// Where a new connection from `peer` would go: `Some(None)`, a free slot; `Some(Some(i))`,
/// the slot of connection `i`, still sending its request, which gives it up (the peer's own
/// oldest such where the peer is at its share, else, every slot taken, anyone's oldest);
/// `None`, nowhere (every connection in the way is being answered).
fn room_for(connections: &[Connection], peer: IpAddr) -> Option<Option<usize>> {
    let theirs = connections.iter().filter(|o| o.peer == peer).count();
    let own = theirs >= MAX_PER_PEER;
    if !own && connections.len() < MAX_CONNECTIONS {
        return Some(None);
    }
    let in_the_way = |o: &&Connection| !own || o.peer == peer;
    let waiting =
        (connections.iter().enumerate()).filter(|(_, o)| o.out.is_none() && in_the_way(o));
    let slow = (connections.iter().enumerate()).filter_map(|(i, o)| {
        let since = o.out.as_ref()?.since;
        (in_the_way(&o) && since.elapsed() >= SLOW_READER).then_some((i, since))
    });
    (waiting.min_by_key(|(_, o)| o.since).map(|(i, _)| i))
        .or_else(|| slow.min_by_key(|&(_, since)| since).map(|(i, _)| i))
        .map(Some)
}

/// Whose share of the slots a connection from `ip` takes: an IPv6 host's, its /64 (a host is
/// given one, and may take any address in it; link-local peers, who may take any address in
/// fe80::/64, share that one); an IPv4 one's (mapped into IPv6 too), its own.
fn peer_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

/// Reads what a connection has sent and, once its request head is whole, writes its answer
/// as far as the client takes it. Returns whether to keep the connection, and whether
/// anything happened.
fn advance(
    c: &mut Connection,
    answer: &mut impl FnMut(&str, bool) -> (Arc<[u8]>, usize),
) -> (bool, bool) {
    if c.out.is_some() {
        return write_out(c);
    }
    let mut chunk = [0u8; 1024];
    loop {
        match c.stream.read(&mut chunk) {
            Ok(0) => return (false, true),
            Ok(n) => {
                let room = MAX_REQUEST.saturating_sub(c.head.len());
                c.head.extend_from_slice(&chunk[..n.min(room)]);
                let end = find(&c.head, b"\r\n\r\n").or_else(|| find(&c.head, b"\n\n"));
                let refused = |status, body| {
                    let (bytes, _) = encode(&plain(status, body));
                    let end = bytes.len();
                    (bytes, end)
                };
                let (bytes, end) = match end {
                    Some(end) => match request(&c.head[..end]) {
                        Some((head_only, path)) => answer(path, head_only),
                        None => refused(400, "bad request\n"),
                    },
                    None if c.head.len() >= MAX_REQUEST => refused(431, "request head too large\n"),
                    None => continue,
                };
                let since = Instant::now();
                c.out = Some(Answer {
                    bytes,
                    end,
                    written: 0,
                    since,
                });
                let (keep, _) = write_out(c);
                return (keep, true);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return (c.since.elapsed() < REQUEST_TIMEOUT, false);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return (false, true),
        }
    }
}

/// Writes what the client takes of a connection's answer without waiting for it. Returns
/// whether to keep the connection (the answer is not all written, and its time is not up),
/// and whether anything was written.
fn write_out(c: &mut Connection) -> (bool, bool) {
    let Some(a) = c.out.as_mut() else {
        return (false, false);
    };
    let mut progressed = false;
    while a.written < a.end {
        match c.stream.write(&a.bytes[a.written..a.end]) {
            Ok(0) => return (false, true),
            Ok(n) => {
                a.written += n;
                progressed = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return (a.since.elapsed() < WRITE_TIMEOUT, progressed);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return (false, true),
        }
    }
    (false, true)
}

/// Whether a `GET` or `HEAD` request line asks for the head alone (`HEAD`), and its path;
/// None for anything else.
fn request(head: &[u8]) -> Option<(bool, &str)> {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = matches!(method, "GET" | "HEAD")
        && version.starts_with("HTTP/1.")
        && parts.next().is_none();
    ok.then_some((method == "HEAD", path))
}

fn plain(status: u16, body: &str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_owned(),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    }
}

/// An answer's bytes: status line, head (its `Content-Length` the body's) and body; and the
/// length of all but the body (what a `HEAD` request gets).
fn encode(r: &Response) -> (Arc<[u8]>, usize) {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    )
    .into_bytes();
    let head = out.len();
    out.extend_from_slice(r.body.as_bytes());
    (out.into(), head)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn start() -> (SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            serve(listener, &flag, |path| Response {
                status: if path == "/metrics" { 200 } else { 404 },
                content_type: "text/plain",
                body: format!("path {path}\n"),
            })
        });
        (addr, stop, handle)
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
        const BIG: usize = 32 << 20;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            serve(listener, &flag, |path| Response {
                status: 200,
                content_type: "text/plain",
                body: if path == "/big" {
                    "x".repeat(BIG)
                } else {
                    "small\n".into()
                },
            })
        });
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
    /// takes the oldest one's slot. Their answers, made within [`SAME_ANSWER_FOR`] of each
    /// other, are one (the big answer is not made once for each, nor held once for each).
    #[test]
    fn slow_readers_from_many_peers_keep_no_scraper_out() {
        const BIG: usize = 8 << 20;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, made) = (
            stop.clone(),
            Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        );
        let count = made.clone();
        let handle = std::thread::spawn(move || {
            serve(listener, &flag, |path| {
                let big = path == "/big";
                count.fetch_add(usize::from(big), Ordering::Relaxed);
                Response {
                    status: 200,
                    content_type: "text/plain",
                    body: if big {
                        "x".repeat(BIG)
                    } else {
                        "small\n".into()
                    },
                }
            })
        });
        let mut readers = Vec::new();
        for peer in 2..2 + MAX_CONNECTIONS / MAX_PER_PEER {
            for mut s in idle_from(&format!("127.0.0.{peer}"), addr, MAX_PER_PEER) {
                s.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
                readers.push(s);
            }
        }
        // Every slot answering, none of it taken (each reader's buffers hold a little): a
        // scraper trying again as a real one does (a connection finding no room is closed)
        // gets in once the readers have been slow for long enough: before any of them has
        // run out of its time to take its answer (which frees a slot in any case).
        let deadline = Instant::now() + WRITE_TIMEOUT;
        let answer = loop {
            let answer = ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
            if !answer.is_empty() || Instant::now() > deadline {
                break answer;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(answer.ends_with("\r\n\r\nsmall\n"), "{answer:?}");
        let made = made.load(Ordering::Relaxed);
        assert!(made >= 1, "the slow readers were answered");
        assert!(
            made < readers.len(),
            "{made} answers made for {} requests at once",
            readers.len()
        );
        drop(readers);
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
        assert!(ask(addr, b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400"));
        stop.store(true, Ordering::Relaxed);
        handle.join().unwrap();
    }
}
