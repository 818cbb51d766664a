//! A small HTTP/1.1 server for the metrics endpoint that no client can take down: one thread,
//! at most [`MAX_CONNECTIONS`] connections at a time and [`MAX_PER_PEER`] from one peer,
//! each given [`REQUEST_TIMEOUT`] to send at most [`MAX_REQUEST`] bytes of request head,
//! answered once (the answer written as the client takes it, each part within
//! [`WRITE_TIMEOUT`] of the last, the whole within [`WRITE_LIMIT`]) and closed. Idle, slow or
//! garbage connections, slow readers included, cost a slot for a bounded time, never a
//! thread or unbounded memory, and never stop it answering the others. Where every slot is
//! taken, a new connection takes the slot of the oldest one still sending its request (a
//! scraper sends its request at once), and one peer (an IPv4 address, an IPv6 /64) holds at
//! most its share, a new connection of its own taking the place of its oldest still
//! sending; failing that, a new connection takes the slot of the oldest whose
//! client has been taking its answer for longer than [`SLOW_READER`] (a scraper takes it at
//! once); one that finds no place is closed unread. One whose request is already in when it
//! is accepted is answered at once (before a later arrival could take its place). Found
//! answers to one path within [`SAME_ANSWER_FOR`] of each other are one answer, made once
//! and shared by the connections writing it (a request for another path does not push it
//! out): many requests at once cost neither one encoding each nor a copy each; nor do slow
//! readers of one path asking further apart hold more than [`OLDER_ANSWERS_HELD`] bytes of
//! its older answers (beyond, the last is given again). A query asks for no other answer:
//! the path is answered without it.

use std::cell::RefCell;
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
/// How long a client may take none of its answer: a remote scraper taking a large answer (tens
/// of MiB for a large config) over a slow link takes it in parts for longer than this.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a client may take to take its whole answer, however steadily: Prometheus' default
/// scrape timeout. It bounds too how old an answer may be given again while older ones fill
/// [`OLDER_ANSWERS_HELD`].
pub const WRITE_LIMIT: Duration = Duration::from_secs(10);
/// The pause when nothing happened, between polls of the listener and the connections.
const IDLE_POLL: Duration = Duration::from_millis(5);
/// How long a client may take its answer before a new connection, finding no other room, may
/// take its slot.
pub const SLOW_READER: Duration = Duration::from_millis(500);
/// How long a found answer to a path is given again rather than made anew: a tenth of the
/// shortest interval `haports stats` samples over (50 ms), whose rates it then moves by a
/// tenth at most.
pub const SAME_ANSWER_FOR: Duration = Duration::from_millis(5);
/// The bytes of older answers that connections may still be writing, beyond which the last
/// answer made is given again however old (up to [`WRITE_LIMIT`], [`WRITE_TIMEOUT`] and
/// [`SLOW_READER`]'s eviction): slow readers asking a few milliseconds apart would each hold
/// an answer of their own, tens of MiB for a large config.
pub const OLDER_ANSWERS_HELD: usize = 64 << 20;

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
    /// When the client last took some of it.
    taken: Instant,
}

/// The last answer made for a path: its bytes and the length of their head.
struct Made {
    path: String,
    at: Instant,
    bytes: Arc<[u8]>,
    head: usize,
}

/// Serves `listener` until `stop` is set, answering each request's path with `answer`.
pub fn serve(listener: TcpListener, stop: &Arc<AtomicBool>, answer: impl FnMut(&str) -> Response) {
    serve_within(listener, stop, answer, (WRITE_TIMEOUT, SAME_ANSWER_FOR));
}

/// [`serve`], each client given `write_timeout` to take some of its answer each time (and
/// [`WRITE_LIMIT`] for all of it), found answers given again for `same_for`.
fn serve_within(
    listener: TcpListener,
    stop: &Arc<AtomicBool>,
    mut answer: impl FnMut(&str) -> Response,
    (write_timeout, same_for): (Duration, Duration),
) {
    if let Err(e) = listener.set_nonblocking(true) {
        tracing::error!(error = %e, "metrics listener: cannot poll; not serving");
        return;
    }
    let mut connections: Vec<Connection> = Vec::with_capacity(MAX_CONNECTIONS);
    let mut refused: u64 = 0;
    let mut made: Option<Made> = None;
    // The answers made before the last that connections still hold (let go of each round,
    // once theirs have).
    let older: RefCell<Vec<Arc<[u8]>>> = RefCell::default();
    let held_only_here = |b: &Arc<[u8]>| Arc::strong_count(b) == 1;
    let mut answer = |path: &str, head_only: bool| {
        // A query asks for no other answer (a Prometheus job's `params`): else ever new
        // queries would have each answer made anew.
        let path = path.split('?').next().unwrap_or_default();
        older.borrow_mut().retain(|b| !held_only_here(b));
        let held: usize = older.borrow().iter().map(|b| b.len()).sum();
        let crowded = held >= OLDER_ANSWERS_HELD;
        let fresh = made
            .as_ref()
            .filter(|m| m.path == path && (m.at.elapsed() < same_for || crowded));
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
                let previous = made.take().map(|m| m.bytes);
                older
                    .borrow_mut()
                    .extend(previous.filter(|b| !held_only_here(b)));
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
                    if advance(&mut c, &mut answer, write_timeout).0 {
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
            let (keep, progressed) = advance(c, &mut answer, write_timeout);
            busy |= progressed;
            keep
        });
        older.borrow_mut().retain(|b| !held_only_here(b));
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
    write_timeout: Duration,
) -> (bool, bool) {
    if c.out.is_some() {
        return write_out(c, write_timeout);
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
                        Ok((head_only, path)) => answer(path, head_only),
                        Err(405) => refused(405, "only GET and HEAD\n"),
                        Err(status) => refused(status, "bad request\n"),
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
                    taken: since,
                });
                let (keep, _) = write_out(c, write_timeout);
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
/// whether to keep the connection (the answer is not all written, the client took some of it
/// within `timeout`, and [`WRITE_LIMIT`] is not up), and whether anything was written.
fn write_out(c: &mut Connection, timeout: Duration) -> (bool, bool) {
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
                if progressed {
                    a.taken = Instant::now();
                }
                let keep = a.taken.elapsed() < timeout && a.since.elapsed() < WRITE_LIMIT;
                return (keep, progressed);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return (false, true),
        }
    }
    (false, true)
}

/// Whether a `GET` or `HEAD` request line asks for the head alone (`HEAD`), and its path;
/// else the status of the refusal: 405 for a well-formed request of another method (`POST`,
/// `OPTIONS`…), 400 for anything else.
fn request(head: &[u8]) -> Result<(bool, &str), u16> {
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .ok_or(400u16)?;
    let line = std::str::from_utf8(line).map_err(|_| 400u16)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    // A method is a token (RFC 9110 §9.1, §5.6.2), in whatever case (methods are case
    // sensitive: `get` is another method than GET).
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let token = !method.is_empty() && method.bytes().all(tchar);
    match method {
        _ if !version.starts_with("HTTP/1.") || !token => Err(400),
        "GET" | "HEAD" => Ok((method == "HEAD", path)),
        _ => Err(405),
    }
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
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    }
}

/// An answer's bytes: status line, head (its `Content-Length` the body's) and body; and the
/// length of all but the body (what a `HEAD` request gets).
fn encode(r: &Response) -> (Arc<[u8]>, usize) {
    // A 405 names the methods there are (RFC 9110 §15.5.6).
    let allow = if r.status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Connection: \
         close\r\n\r\n",
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
#[path = "http_tests.rs"]
mod tests;
