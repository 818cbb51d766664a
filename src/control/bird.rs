//! BIRD 2's control socket, as `birdc` speaks it: a greeting, then one command and its reply.
//! Bounded whatever answers on the socket: each reply is read within [`BIRD_TIMEOUT`] of its
//! start (however slowly its bytes come) and up to [`REPLY_MAX`] bytes, so that neither the
//! start (which withdraws stale routes through it) nor the stop (which waits for the
//! announcer thread) can hang on it, nor its memory grow.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a connection, or one reply, may take before the exchange counts as failed.
pub(super) const BIRD_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest reply read, in bytes: BIRD's answers to `configure`, `enable` and `disable`
/// are a few lines (a refused config's error among them).
pub(super) const REPLY_MAX: usize = 16 * 1024;

/// Why BIRD did not take a new routes file.
#[derive(Debug, thiserror::Error)]
pub enum BirdError {
    /// Nothing listens on the socket, or BIRD is shutting down: BIRD is not running (it reads
    /// the file when it starts).
    #[error("BIRD is not running ({0})")]
    NotRunning(io::Error),
    #[error("talking to BIRD: {0}")]
    Io(#[from] io::Error),
    /// BIRD answered with an error: its lines, as `birdc` would print them.
    #[error("BIRD refused its config: {0}")]
    Refused(String),
}

/// `configure` over BIRD's control socket: BIRD reads its config (and so the routes file)
/// again. Replies are `CODE text` lines, `CODE-text` while more follow; codes from 8000 up
/// are errors.
///
/// BIRD takes the file unless it says otherwise: `0003 Reconfigured`, and, where protocols
/// restart first or another reconfiguration runs, `0004 Reconfiguration in progress` and
/// `0005 … queueing new config` (applied once that one is done). `0006 Reconfiguration
/// ignored, shutting down` takes nothing: BIRD is going away (its sessions, and so its routes,
/// with it; peers with graceful restart keep them a while, as for a BIRD that crashed), and
/// reads the file when it starts again, as where it is not running.
pub fn configure(socket: &Path) -> Result<(), BirdError> {
    match command(socket, "configure")? {
        (Some(6), text) => Err(BirdError::NotRunning(io::Error::other(format!(
            "it said: {text}"
        )))),
        _ => Ok(()),
    }
}

/// One command over BIRD's control socket; its reply's last line (code and text).
pub(super) fn command(socket: &Path, line: &str) -> Result<(Option<u32>, String), BirdError> {
    let stream = connect(socket).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => BirdError::NotRunning(e),
        _ => BirdError::Io(e),
    })?;
    stream.set_write_timeout(Some(BIRD_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    read_reply(&mut reader, Instant::now() + BIRD_TIMEOUT)?; // 0001 BIRD x.y ready.
    (&stream).write_all(format!("{line}\n").as_bytes())?;
    read_reply(&mut reader, Instant::now() + BIRD_TIMEOUT)
}

/// Connects to BIRD's control socket within [`BIRD_TIMEOUT`]: a wedged BIRD whose listen
/// queue is full would block a plain connect, and with it the start, or the announcer thread
/// that the stop waits for.
fn connect(socket: &Path) -> io::Result<UnixStream> {
    super::socket::connect_within(socket, BIRD_TIMEOUT)
}

/// Where a reply is read from: before each read, told how long is left.
pub(super) trait Source: BufRead {
    fn wait_at_most(&mut self, left: Duration) -> io::Result<()>;
}

impl Source for BufReader<UnixStream> {
    fn wait_at_most(&mut self, left: Duration) -> io::Result<()> {
        self.get_ref().set_read_timeout(Some(left))
    }
}

/// Bytes at hand (tests): nothing to wait for.
impl Source for &[u8] {
    fn wait_at_most(&mut self, _: Duration) -> io::Result<()> {
        Ok(())
    }
}

/// One reply, by `deadline`: lines up to the one whose code is followed by a space, which is
/// returned (its code and text).
pub(super) fn read_reply(
    reader: &mut impl Source,
    deadline: Instant,
) -> Result<(Option<u32>, String), BirdError> {
    let mut lines = Vec::new();
    let mut room = REPLY_MAX;
    loop {
        let line = read_line(reader, deadline, &mut room)?;
        let line = line.trim_end();
        let code = line.get(..4).and_then(|c| c.parse::<u32>().ok());
        let last = code.is_some() && line.as_bytes().get(4) == Some(&b' ');
        let text = if code.is_some() {
            line.get(5..).unwrap_or("")
        } else {
            line.trim_start()
        };
        lines.push((code, text.to_owned()));
        if last {
            break;
        }
    }
    if lines.iter().any(|(c, _)| c.is_some_and(|c| c >= 8000)) {
        let text: Vec<String> = lines.into_iter().map(|(_, t)| t).collect();
        return Err(BirdError::Refused(text.join("; ")));
    }
    Ok(lines.pop().unwrap_or_default())
}

/// One line (any bytes, read as UTF-8 where they are), by `deadline`, taking its length from
/// `room`: each read waits at most for what is left of the time.
fn read_line(reader: &mut impl Source, deadline: Instant, room: &mut usize) -> io::Result<String> {
    let mut line = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "BIRD's reply is too slow",
            ));
        }
        reader.wait_at_most(left)?;
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let end = buf.iter().position(|&b| b == b'\n').map(|i| i + 1);
        let take = end.unwrap_or(buf.len());
        if take > *room {
            let what = format!("BIRD's reply is longer than {REPLY_MAX} bytes");
            return Err(io::Error::new(io::ErrorKind::InvalidData, what));
        }
        *room -= take;
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if end.is_some() {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;
    use std::sync::mpsc;

    use super::*;

    /// A deadline no test reaches.
    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn replies_end_at_the_code_followed_by_a_space_and_8000s_are_errors() {
        let mut ok = "0002-Reading configuration\n0003 Reconfigured\nnext".as_bytes();
        let last = read_reply(&mut ok, later()).unwrap();
        assert_eq!(last, (Some(3), "Reconfigured".to_owned()));
        assert_eq!(ok, b"next");
        let mut continued = "0002-Reading\n more text\n0020 Configuration OK\n".as_bytes();
        read_reply(&mut continued, later()).unwrap();
        let mut bad = "0002-Reading\n8002 file:1:2 syntax error\n".as_bytes();
        match read_reply(&mut bad, later()) {
            Err(BirdError::Refused(text)) => assert!(text.contains("file:1:2 syntax error")),
            other => panic!("{other:?}"),
        }
        let mut cut = "0002-Reading\n".as_bytes();
        assert!(matches!(
            read_reply(&mut cut, later()),
            Err(BirdError::Io(_))
        ));
    }

    /// Whatever bytes follow a line's code are read, not sliced inside a character: a
    /// multi-byte character right after the code (which BIRD never sends) panicked the
    /// announcer, and with it the appliance.
    #[test]
    fn a_reply_of_any_bytes_is_read_without_a_panic() {
        let mut odd: &[u8] = b"0001\xc3\xa9 ready\n0002\xc3\xa9\n\xc3\xa9\n\xff\n0003 done\n";
        read_reply(&mut odd, later()).unwrap();
        let mut bytes: &[u8] = b"0001 \xff\xfe\n";
        read_reply(&mut bytes, later()).unwrap();
        let mut short = "0\n00\n0001\n0001-\n0003 x\n".as_bytes();
        read_reply(&mut short, later()).unwrap();
    }

    /// A reply that never ends (continuation lines without a last one, or a line without
    /// its newline) is cut at REPLY_MAX bytes: an error, not memory without end.
    #[test]
    fn an_endless_reply_is_cut_at_its_size() {
        let endless = "0002-more\n".repeat(REPLY_MAX);
        let e = read_reply(&mut endless.as_bytes(), later()).unwrap_err();
        assert!(matches!(&e, BirdError::Io(io) if io.kind() == io::ErrorKind::InvalidData));
        let unending = "0".repeat(REPLY_MAX * 4);
        let e = read_reply(&mut unending.as_bytes(), later()).unwrap_err();
        assert!(matches!(&e, BirdError::Io(io) if io.kind() == io::ErrorKind::InvalidData));
    }

    /// A BIRD that is shutting down takes nothing: `configure` says it is not running (it
    /// reads the file when it starts again); one that reconfigures in the background took it.
    #[test]
    fn a_bird_shutting_down_takes_no_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bird.ctl");
        let listener = UnixListener::bind(&path).unwrap();
        let answers = [
            "0006 Reconfiguration ignored, shutting down\n",
            "0004 Reconfiguration in progress\n",
        ];
        let bird = std::thread::spawn(move || {
            for answer in answers {
                let (conn, _) = listener.accept().unwrap();
                (&conn).write_all(b"0001 BIRD 2.0.12 ready.\n").unwrap();
                let mut line = String::new();
                BufReader::new(&conn).read_line(&mut line).unwrap();
                assert_eq!(line, "configure\n");
                (&conn)
                    .write_all(format!("0002-Reading configuration\n{answer}").as_bytes())
                    .unwrap();
            }
        });
        match configure(&path) {
            Err(BirdError::NotRunning(e)) => assert!(e.to_string().contains("shutting down")),
            other => panic!("{other:?}"),
        }
        configure(&path).unwrap();
        bird.join().unwrap();
    }

    /// A peer on the socket that sends its greeting a byte at a time, slower than nothing at
    /// all but never done, makes `configure` an error once the reply's time is up, not a
    /// wait for as long as the peer goes on (each read had its own 2 s).
    #[test]
    fn a_peer_that_answers_a_byte_at_a_time_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bird.ctl");
        let listener = UnixListener::bind(&path).unwrap();
        let drip = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            // Until the other end goes away (each byte within one read's timeout).
            let mut sent = 0;
            while conn.write_all(b"0").is_ok() && sent < 600 {
                sent += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            sent
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(configure(&path).map_err(|e| e.to_string())));
        let answer = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("configure returns");
        assert!(answer.is_err(), "{answer:?}");
        let sent = drip.join().unwrap();
        assert!(sent > 5 && sent < 600, "the peer dripped {sent} bytes");
    }
}
