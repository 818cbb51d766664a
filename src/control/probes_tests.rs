//! Tests of `control::probes`.
use super::once::{interim_end, local, send_request, status_code};
use super::*;
use std::io;

fn target(unhealthy: u32, healthy: u32) -> Target {
    Target {
        address: "10.0.0.11".parse().unwrap(),
        protocol: ProbeProtocol::Tcp,
        port: 22,
        path: "/".into(),
        interval_ms: 100,
        unhealthy_threshold: unhealthy,
        healthy_threshold: healthy,
        device: None,
    }
}

/// An http probe (thresholds 3 and 1) of `path` on this host's `port`.
fn http_target(port: u16, path: &str) -> Target {
    let mut t = target(3, 1);
    t.address = "127.0.0.1".parse().unwrap();
    t.protocol = ProbeProtocol::Http;
    t.port = port;
    t.path = path.into();
    t
}

#[test]
fn thresholds_count_consecutive_results_and_the_first_result_decides() {
    let t = target(2, 3);
    let mut h = Health::default();
    assert_eq!(
        h.observe(&t, &Outcome::Pass),
        Some(true),
        "first result decides"
    );
    assert_eq!(h.observe(&t, &Outcome::Fail("x".into())), None);
    assert_eq!(
        h.observe(&t, &Outcome::Pass),
        None,
        "a pass resets the failure count"
    );
    assert_eq!(h.observe(&t, &Outcome::Fail("x".into())), None);
    assert_eq!(h.observe(&t, &Outcome::Fail("x".into())), Some(false));
    assert_eq!(h.observe(&t, &Outcome::Pass), None);
    assert_eq!(h.observe(&t, &Outcome::Pass), None);
    assert_eq!(h.observe(&t, &Outcome::Pass), Some(true));
}

#[test]
fn a_rejection_marks_down_at_once() {
    let t = target(5, 1);
    let mut h = Health::default();
    h.observe(&t, &Outcome::Pass);
    assert_eq!(
        h.observe(&t, &Outcome::Reject("HTTP 503".into())),
        Some(false)
    );
    let mut fresh = Health::default();
    assert_eq!(
        fresh.observe(&t, &Outcome::Fail("timeout".into())),
        Some(false)
    );
}

#[test]
fn removing_a_probe_does_not_wait_for_the_probe_in_flight() {
    use std::io::Read;
    // A server that accepts and never answers: an HTTP probe waits its whole timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut t = target(1, 1);
    t.address = "127.0.0.1".parse().unwrap();
    t.port = listener.local_addr().unwrap().port();
    t.protocol = ProbeProtocol::Http;
    t.interval_ms = 2000;
    let (mut prober, _events) = Prober::new();
    prober.set_targets(&HashSet::from([t.clone()]), &mut HashMap::new());
    let (mut conn, _) = listener.accept().unwrap();
    // The probe is in flight: removing it returns at once, without its verdict.
    prober.set_targets(&HashSet::new(), &mut HashMap::new());
    assert!(!prober.probes(&t));
    conn.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let mut still_open = false;
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue, // the request itself
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                still_open = true;
                break;
            }
            Err(_) => break,
        }
    }
    assert!(still_open, "set_targets waited for the probe to time out");
    prober.stop();
    assert!(
        lock(&prober.status).get(&t).is_none(),
        "no verdict after removal"
    );
}

#[test]
fn probing_a_closed_port_fails_and_an_open_one_passes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut t = target(1, 1);
    t.address = "127.0.0.1".parse().unwrap();
    t.port = listener.local_addr().unwrap().port();
    assert_eq!(probe_once(&t), Outcome::Pass);
    drop(listener);
    assert!(matches!(probe_once(&t), Outcome::Fail(_)));
}

/// A probe's socket is bound to its device: through the loopback device it reaches a local
/// service; through a device the host has not, nothing (it never goes another way).
#[test]
fn a_probe_goes_out_of_its_device_only() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut t = target(1, 1);
    t.address = "127.0.0.1".parse().unwrap();
    t.port = listener.local_addr().unwrap().port();
    t.device = Some("lo".into());
    assert_eq!(probe_once(&t), Outcome::Pass);
    // A twin gone fails the probe, saying which.
    t.device = Some("hp-nowhere".into());
    let Outcome::Fail(why) = probe_once(&t) else {
        panic!("a probe through no device passed")
    };
    assert!(
        why.starts_with("binding to the kernel twin hp-nowhere: "),
        "{why}"
    );
}

#[test]
fn http_probes_want_2xx_and_reject_anything_else() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let handle = std::thread::spawn(move || {
        for (i, req) in server.incoming_requests().take(2).enumerate() {
            let code = if i == 0 { 200 } else { 503 };
            let _ = req.respond(tiny_http::Response::from_string("x").with_status_code(code));
        }
    });
    let t = http_target(port, "/healthz");
    assert_eq!(probe_once(&t), Outcome::Pass);
    assert_eq!(probe_once(&t), Outcome::Reject("HTTP 503".into()));
    handle.join().unwrap();
    // A refused connection marks an http probe down at once.
    assert!(matches!(probe_once(&t), Outcome::Reject(_)));
}

/// A status line ended by a bare LF, as `printf 'HTTP/1.1 200 OK\n\n' | nc -l` sends it,
/// is read as one ended by CRLF.
#[test]
fn http_probes_take_a_status_line_ended_by_a_bare_lf() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for answer in ["HTTP/1.1 200 OK\n\nup\n", "HTTP/1.0 503 Busy\n\n"] {
            let (mut s, _) = listener.accept().unwrap();
            // The whole request read, so that closing sends no reset.
            let mut request = Vec::new();
            let mut buf = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the request ends with an empty line");
                request.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer.as_bytes()).unwrap();
        }
    });
    let t = http_target(port, "/");
    assert_eq!(probe_once(&t), Outcome::Pass);
    assert_eq!(probe_once(&t), Outcome::Reject("HTTP 503".into()));
    handle.join().unwrap();
}

/// Interim answers (100 Continue, 103 Early Hints) are skipped to the final one, which
/// decides; and the request comes in one piece (the backend's first read holds all of it:
/// written piece by piece, Nagle held the rest behind the first piece's acknowledgement,
/// which backends delaying their ACKs send late).
#[test]
fn http_probes_skip_interim_answers_and_send_their_request_whole() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let answers = [
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
             HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.1 100 Continue\n\nHTTP/1.1 503 Busy\n\n",
            // Final, though 1xx: what follows is another protocol's.
            "HTTP/1.1 101 Switching Protocols\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        ];
        let mut whole_at_once = Vec::new();
        for answer in answers {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 512];
            let mut reads = 0;
            while !request.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the request ends with an empty line");
                request.extend_from_slice(&buf[..n]);
                reads += 1;
            }
            whole_at_once.push(reads == 1);
            // The interim answers one by one, as a server sends them.
            for part in answer
                .split_inclusive("\n\n")
                .flat_map(|p| p.split_inclusive("\r\n\r\n"))
            {
                s.write_all(part.as_bytes()).unwrap();
                s.flush().unwrap();
            }
        }
        whole_at_once
    });
    let t = http_target(port, "/");
    assert_eq!(probe_once(&t), Outcome::Pass);
    assert_eq!(probe_once(&t), Outcome::Reject("HTTP 503".into()));
    assert_eq!(probe_once(&t), Outcome::Reject("HTTP 101".into()));
    assert_eq!(
        handle.join().unwrap(),
        vec![true, true, true],
        "the request in one read"
    );
}

/// Two rules of one pool, both probed by `p`.
const PROBED: &str = r#"
[[interface]]
name = "lan"
port = 0
address = "10.0.0.2/24"
[[load_balancer]]
name = "ilb"
kind = "internal"
  [[load_balancer.frontend]]
  name = "a"
  address = "10.0.0.100"
  [[load_balancer.frontend]]
  name = "b"
  address = "10.0.0.101"
  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [{ address = "10.0.0.11" }, { address = "10.0.0.12" }]
  [[load_balancer.probe]]
  name = "p"
  protocol = "tcp"
  port = 22
  interval_ms = 100
  [[load_balancer.rule]]
  name = "ra"
  frontend = "a"
  backend_pool = "pool"
  probe = "p"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = true
  [[load_balancer.rule]]
  name = "rb"
  frontend = "b"
  backend_pool = "pool"
  probe = "p"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = true
"#;

#[test]
fn equal_probes_of_two_rules_are_one_target() {
    let text = PROBED;
    let cfg = Config::from_toml(text, "test").unwrap();
    let ts = targets(&cfg);
    assert_eq!(ts.len(), 2, "one target per backend, not per rule");
    assert!(
        ts.iter().all(|t| t.device.as_deref() == Some("hp-lan")),
        "bound to the twin of the backends' interface: {ts:?}"
    );
    let states: HashMap<Target, bool> = ts
        .iter()
        .map(|t| (t.clone(), t.address.to_string().ends_with("11")))
        .collect();
    let down = down_by_probe(&cfg, &states);
    assert_eq!(
        down.into_iter().collect::<Vec<_>>(),
        vec![(
            "10.0.0.12".parse::<IpAddr>().unwrap(),
            "ilb".to_owned(),
            "p".to_owned()
        )]
    );
}

/// A reload that changes a probe's timing or thresholds keeps its backends' states; a new
/// service starts without one (down until its first result), a removed one is forgotten.
#[test]
fn a_reload_carries_health_over_to_the_same_check_with_new_timing() {
    let (old, other) = (
        target(2, 3),
        Target {
            port: 80,
            ..target(2, 3)
        },
    );
    let health = HashMap::from([(old.clone(), true), (other, false)]);
    let retimed = Target {
        interval_ms: 500,
        ..target(3, 1)
    };
    let new_service = Target {
        port: 443,
        ..target(2, 3)
    };
    let carried = carried_health(
        &health,
        &HashSet::from([retimed.clone(), new_service.clone(), old.clone()]),
        |_| false,
    );
    assert_eq!(
        carried.get(&retimed),
        Some(&true),
        "the same check, retimed"
    );
    assert_eq!(carried.get(&old), Some(&true), "unchanged");
    assert_eq!(
        carried.get(&new_service),
        None,
        "a new service has no state yet"
    );
    assert_eq!(carried.len(), 2, "the port-80 check is gone");
    // Two old checks of the same service that disagree: down, until the new one says.
    let split = HashMap::from([(target(2, 3), true), (target(5, 5), false)]);
    let carried = carried_health(&split, &HashSet::from([retimed.clone()]), |_| false);
    assert_eq!(carried.get(&retimed), Some(&false));
}

/// A reload that gives a rule a probe (or changes a probe's port or path): a backend that was
/// serving stays up until its first result, one new to the config (or down before) starts
/// down, as at start; and `serving` says which served.
#[test]
fn a_new_check_of_a_serving_backend_starts_up_until_its_first_result() {
    let cfg = Config::from_toml(PROBED, "test").unwrap();
    let targets = super::targets(&cfg);
    let (b11, b12) = (
        "10.0.0.11".parse::<IpAddr>().unwrap(),
        "10.0.0.12".parse::<IpAddr>().unwrap(),
    );
    // Before: .11 up by its probe, .12 down by it.
    let health: HashMap<Target, bool> = targets
        .iter()
        .map(|t| (t.clone(), t.address == b11))
        .collect();
    let served = serving(&cfg, &health);
    let rule = |r: &str, a: IpAddr| ("ilb".to_owned(), r.to_owned(), a);
    assert!(
        served.contains(&rule("ra", b11)) && !served.contains(&rule("ra", b12)),
        "{served:?}"
    );
    let next = Config::from_toml(&PROBED.replace("port = 22", "port = 2222"), "test").unwrap();
    let moved = super::targets(&next);
    assert!(moved.iter().all(|t| t.port == 2222) && moved.len() == 2);
    let carried = carried_health(&health, &moved, served_under(&next, &served));
    let state = |a: IpAddr| {
        carried
            .iter()
            .find(|(t, _)| t.address == a)
            .map(|(_, &s)| s)
    };
    assert_eq!(state(b11), Some(true), "served before: up until it says");
    assert_eq!(state(b12), None, "down before: down until its first result");
    assert_eq!(
        carried_health(&HashMap::new(), &moved, |_| false).len(),
        0,
        "nothing served before (a new config): every new check waits for its result"
    );
}

/// Health is per rule: a backend up by one load balancer's probe and down by another's
/// served the first, and a reload that changes the first probe's port starts its new check
/// up, rather than down until its first result (which moved its established flows).
#[test]
fn a_new_check_starts_up_where_its_rule_served_the_backend_whatever_other_probes_said() {
    let public = r#"
[[load_balancer]]
name = "plb"
kind = "internal"
  [[load_balancer.frontend]]
  name = "c"
  address = "10.0.0.102"
  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [{ address = "10.0.0.11" }, { address = "10.0.0.12" }]
  [[load_balancer.probe]]
  name = "q"
  protocol = "tcp"
  port = 80
  [[load_balancer.rule]]
  name = "rc"
  frontend = "c"
  backend_pool = "pool"
  probe = "q"
  protocol = "tcp"
  frontend_port = 80
  backend_port = 80
"#;
    let before = Config::from_toml(&format!("{PROBED}{public}"), "test").unwrap();
    let b11: IpAddr = "10.0.0.11".parse().unwrap();
    // .11: up by ilb's probe p (port 22), down by plb's q (port 80).
    let health: HashMap<Target, bool> = super::targets(&before)
        .into_iter()
        .map(|t| {
            let up = t.port == 22;
            (t, up)
        })
        .collect();
    let served = serving(&before, &health);
    let after = before_with_port(&format!("{PROBED}{public}"), 2222);
    let targets = super::targets(&after);
    let carried = carried_health(&health, &targets, served_under(&after, &served));
    let p = |t: &&Target| t.address == b11 && t.port == 2222;
    let new = targets.iter().find(p).expect("the new check of .11");
    assert_eq!(carried.get(new), Some(&true), "ilb's rules served .11: up");
    let q = targets
        .iter()
        .find(|t| t.address == b11 && t.port == 80)
        .unwrap();
    assert_eq!(carried.get(q), Some(&false), "q's own state stays");
}

/// `text` with its port-22 probe on `port`.
fn before_with_port(text: &str, port: u16) -> Config {
    Config::from_toml(
        &text.replace("port = 22\n", &format!("port = {port}\n")),
        "test",
    )
    .unwrap()
}

/// A target started from a state carried over a reload keeps it until its thresholds say
/// otherwise: up, a dead service is marked down after `unhealthy_threshold` failures, as a
/// healthy backend's would be; without a state, its first result decides.
#[test]
fn a_target_started_from_a_carried_state_keeps_it_until_its_thresholds_say() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut t = target(3, 1);
    t.address = "127.0.0.1".parse().unwrap();
    t.port = closed;
    // The count is read after the event, while the prober goes on: a second between probes
    // leaves the test thread that long to read it before the next one (200 ms was a race
    // on a busy machine).
    t.interval_ms = 1000;
    for (state, failures) in [(None, 1), (Some(true), 3)] {
        let (mut prober, events) = Prober::new();
        let mut states: HashMap<Target, bool> = state.map(|s| (t.clone(), s)).into_iter().collect();
        prober.set_targets(&HashSet::from([t.clone()]), &mut states);
        let down = events
            .recv_timeout(Duration::from_secs(10))
            .expect("the dead service is marked down");
        assert!(!down.healthy);
        let probes = lock(&prober.status).get(&t).map(|s| s.probes);
        assert_eq!(probes, Some(failures), "starting from {state:?}");
        prober.stop();
    }
}

/// Two tcp probes of one service that differ only in a `path` (which tcp probes do not use,
/// and `check` warns of) are one target: one connection, one set of metric series.
#[test]
fn a_tcp_probe_s_path_makes_no_other_target() {
    let with_path = PROBED.replacen(
        "  interval_ms = 100\n",
        "  interval_ms = 100\n  path = \"/x\"\n",
        1,
    );
    assert_ne!(with_path, PROBED);
    let a = targets(&Config::from_toml(PROBED, "t").unwrap());
    let b = targets(&Config::from_toml(&with_path, "t").unwrap());
    assert_eq!(a, b);
}

/// A probe leaves by the interface the data would: the most specific prefix, a route more
/// specific than another interface's subnet included, and between routes to one prefix on
/// two interfaces the first, as `Forwarding::route` chooses.
#[test]
fn a_probe_leaves_by_the_interface_the_data_plane_routes_by() {
    let cfg = Config::from_toml(
        r#"
[[interface]]
name = "lan"
port = 0
address = "10.0.0.2/16"
routes = [{ to = "10.9.0.0/16", via = "10.0.0.1" }]
[[interface]]
name = "wan"
port = 1
address = "192.0.2.2/24"
routes = [
  { to = "10.0.5.0/24", via = "192.0.2.1" },
  { to = "10.0.0.0/16", via = "192.0.2.1" },
  { to = "10.9.0.0/16", via = "192.0.2.1" },
]
"#,
        "t",
    )
    .unwrap();
    let fwd = crate::lb::forwarding::Forwarding::build(&cfg, &Default::default(), 1, None);
    let name = crate::control::twin::kernel_name;
    for (addr, expected) in [
        ("10.0.5.7", Some("wan")),
        ("10.0.6.7", Some("lan")),
        ("10.9.1.1", Some("lan")),
        ("192.0.2.9", Some("wan")),
        ("198.51.100.1", None),
    ] {
        let addr: IpAddr = addr.parse().unwrap();
        let data = fwd
            .route(addr)
            .map(|r| name(&cfg.interface[r.interface as usize].name));
        assert_eq!(twin_of(&cfg, addr), data, "{addr}: as the data plane");
        assert_eq!(twin_of(&cfg, addr), expected.map(name), "{addr}");
    }
}

/// A result from a probe thread told to stop is stale, even once a reload has brought its
/// target back under a new thread: that thread starts from the state carried over and says
/// only what changes, so a late word from the old one would stand until the next change.
#[test]
fn a_transition_from_a_stopped_thread_is_stale_even_for_its_target_brought_back() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut t = target(1, 1);
    t.address = "127.0.0.1".parse().unwrap();
    t.port = listener.local_addr().unwrap().port();
    let (mut prober, events) = Prober::new();
    let wanted = HashSet::from([t.clone()]);
    prober.set_targets(&wanted, &mut HashMap::new());
    let first = events.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(first.healthy && prober.is_current(&first));
    prober.set_targets(&HashSet::new(), &mut HashMap::new());
    prober.set_targets(&wanted, &mut HashMap::from([(t.clone(), true)]));
    assert!(prober.probes(&t), "probed again");
    assert!(!prober.is_current(&first), "a word from the stopped thread");
    prober.stop();
    drop(listener);
}

/// The appliance out of descriptors, buffers or local ports says nothing of a backend: such a
/// probe neither fails it nor passes it, up or down. A refused or unreachable connection is
/// the backend's.
#[test]
fn a_probe_the_appliance_could_not_make_leaves_the_backend_as_it_was() {
    let errno = |n| io::Error::from_raw_os_error(n);
    for n in [
        libc::EMFILE,
        libc::ENFILE,
        libc::ENOBUFS,
        libc::EADDRNOTAVAIL,
    ] {
        assert!(local(&errno(n)), "{n}");
    }
    for n in [
        libc::ECONNREFUSED,
        libc::EHOSTUNREACH,
        libc::ETIMEDOUT,
        libc::ENODEV,
    ] {
        assert!(!local(&errno(n)), "{n}");
    }
    let t = target(1, 1);
    let short = Outcome::Local("Too many open files".into());
    for state in [Some(true), Some(false)] {
        let mut h = Health {
            healthy: state,
            ..Health::default()
        };
        for _ in 0..3 {
            assert_eq!(h.observe(&t, &short), None);
        }
        assert_eq!(h.healthy, state);
    }
    // Without a state yet, it is a first result, as a failed first probe (down, and up after
    // `healthy_threshold` passes): else no frontend would be announced while it lasts, every
    // target's first result awaited.
    let t = target(1, 2);
    let mut h = Health::default();
    assert_eq!(h.observe(&t, &short), Some(false));
    assert_eq!(h.observe(&t, &short), None);
    assert_eq!(h.observe(&t, &Outcome::Pass), None);
    assert_eq!(h.observe(&t, &Outcome::Pass), Some(true));
}

/// The request goes in one write (so one segment, with Nagle off): written piece by piece,
/// Nagle held the pieces after the first behind its acknowledgement.
#[test]
fn an_http_probes_request_is_one_write() {
    struct Writes(Vec<Vec<u8>>);
    impl io::Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = Writes(Vec::new());
    send_request(&mut w, &http_target(8080, "/healthz")).unwrap();
    assert_eq!(w.0.len(), 1, "{:?}", w.0);
    let text = String::from_utf8(w.0.remove(0)).unwrap();
    assert!(
        text.starts_with("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\n"), "{text}");
}

/// Status lines and interim answers' ends, whole or cut short, CRLF or bare LF.
#[test]
fn status_lines_and_interim_answers_are_read_whole_or_waited_for() {
    assert_eq!(status_code(b"HTTP/1.1 200 OK\r").unwrap(), 200);
    assert_eq!(status_code(b"HTTP/1.0 103").unwrap(), 103);
    assert!(status_code(b"HTTP/2 200").is_err());
    assert!(status_code(b"HTTP/1.1 999 Odd").is_err());
    assert!(status_code(b"SSH-2.0-OpenSSH").is_err());
    let whole = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n";
    assert_eq!(interim_end(whole), Some(25));
    assert_eq!(&whole[25..29], b"HTTP");
    let hints = b"HTTP/1.1 103 Early Hints\nLink: </s.css>\n\nHTTP/1.1 204\n";
    assert_eq!(interim_end(hints), Some(41));
    for cut in [10, 24, 26, 40] {
        assert_eq!(interim_end(&hints[..cut]), None, "cut at {cut}");
    }
}

/// Targets started together probe a second time each at a phase of its own within the
/// interval, spread over it rather than in step; a target's phase is the same every time.
#[test]
fn targets_started_together_spread_their_second_probes_over_the_interval() {
    let mut bins = [0u32; 10];
    for n in 0..1000u32 {
        let mut t = target(2, 2);
        (t.address, t.interval_ms) = (std::net::Ipv4Addr::from(0x0a00_0000 + n).into(), 5000);
        let gap = t.first_gap();
        assert!(
            gap > Duration::ZERO && gap <= Duration::from_millis(5000),
            "{gap:?}"
        );
        assert_eq!(gap, t.clone().first_gap());
        bins[(gap.as_millis() as usize - 1) / 500] += 1;
    }
    // A thousand targets, a tenth of the interval each tenth, give or take a few dozen.
    assert!(bins.iter().all(|&b| (50..=150).contains(&b)), "{bins:?}");
    // A target of an interval of 1 ms probes again after it, never at once.
    let mut t = target(2, 2);
    t.interval_ms = 1;
    assert_eq!(t.first_gap(), Duration::from_millis(1));
}

/// A new target probes at once; one a reload starts from a carried state keeps it until its
/// first probe, at its own phase, so that the targets of one reload do not probe in step.
#[test]
fn a_target_started_from_a_carried_state_first_probes_at_its_phase() {
    let mut t = target(2, 2);
    t.interval_ms = 5000;
    let phase = t.first_gap();
    assert_eq!(first_probes(&t, None), (Duration::ZERO, Some(phase)));
    for state in [true, false] {
        assert_eq!(first_probes(&t, Some(state)), (phase, None));
    }
    // Spread: a thousand such targets do not wait alike.
    let waits: std::collections::HashSet<Duration> = (0..1000u32)
        .map(|n| {
            let mut t = t.clone();
            t.address = std::net::Ipv4Addr::from(0x0a00_0000 + n).into();
            first_probes(&t, Some(true)).0
        })
        .collect();
    // (of 5000 ms: about 906 distinct expected)
    assert!(waits.len() > 800, "{}", waits.len());
}

/// An HTTP probe that gets no answer in its time says so, not "resource temporarily
/// unavailable" (its read's timeout), which reads as the appliance's own want of resources.
#[test]
fn an_http_probe_answered_by_silence_says_so() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut t = target(1, 1);
    t.address = "127.0.0.1".parse().unwrap();
    t.port = listener.local_addr().unwrap().port();
    t.protocol = ProbeProtocol::Http;
    t.interval_ms = 100;
    match probe_once(&t) {
        Outcome::Fail(why) => assert_eq!(why, "no complete HTTP answer within 100 ms"),
        other => panic!("{other:?}"),
    }
    drop(listener);
}

/// A target removed while it waits for its next probe (an hour away) ends at once: it sleeps
/// until then rather than waking to look at its flag, and removing it wakes it.
#[test]
fn a_target_removed_between_probes_ends_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut t = target(1, 1);
    t.address = "127.0.0.1".parse().unwrap();
    t.port = listener.local_addr().unwrap().port();
    t.interval_ms = 3_600_000;
    let (mut prober, events) = Prober::new();
    prober.set_targets(&HashSet::from([t.clone()]), &mut HashMap::new());
    // Its first probe (a connection accepted by the backlog) passed: it waits for the next.
    let up = events.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(up.healthy);
    prober.set_targets(&HashSet::new(), &mut HashMap::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !prober.stopping.iter().all(JoinHandle::is_finished) {
        assert!(
            Instant::now() < deadline,
            "still waiting for its next probe"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    prober.stop();
}

/// A target a reload starts from a carried state is on the board (its metrics) with that
/// state from the start, not only from its first probe, an interval away.
#[test]
fn a_carried_target_is_on_the_board_before_its_first_probe() {
    let mut t = target(2, 2);
    t.address = "127.0.0.1".parse().unwrap();
    t.interval_ms = 3_600_000;
    let (mut prober, _events) = Prober::new();
    prober.set_targets(
        &HashSet::from([t.clone()]),
        &mut HashMap::from([(t.clone(), true)]),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let on_board = loop {
        if let Some(s) = lock(&prober.status).get(&t).cloned() {
            break s;
        }
        assert!(Instant::now() < deadline, "not on the board");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!((on_board.healthy, on_board.probes), (Some(true), 0));
    prober.stop();
    assert!(
        lock(&prober.status).get(&t).is_none(),
        "off the board once removed"
    );
}

/// A target whose thread cannot start (no thread may have the stack asked for) loses the
/// state carried for it: nothing probes it, so it counts as down, not up for good; the call
/// says so, and it starts once a thread can, afresh.
#[test]
fn a_target_whose_thread_cannot_start_loses_its_carried_state() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut t = target(2, 2);
    t.address = "127.0.0.1".parse().unwrap();
    t.port = listener.local_addr().unwrap().port();
    let (mut prober, events) = Prober::new();
    prober.stack_size = Some(usize::MAX / 2);
    let wanted = HashSet::from([t.clone()]);
    let mut states = HashMap::from([(t.clone(), true)]);
    assert!(prober.set_targets(&wanted, &mut states), "a state was lost");
    assert!(states.is_empty() && !prober.probes(&t), "{states:?}");
    // Tried again (as every housekeeping round does): nothing more lost, still not probed.
    assert!(!prober.set_targets(&wanted, &mut states));
    prober.stack_size = None;
    assert!(!prober.set_targets(&wanted, &mut states));
    assert!(prober.probes(&t));
    // Started afresh: its first result decides.
    let up = events.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(up.healthy);
    prober.stop();
}
