//! The routes file, the BIRD control-socket exchange against a stand-in socket that answers
//! as BIRD 2.0 does, the announcer thread, and which frontends are served.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::sync::atomic::AtomicBool;

use super::*;
use crate::lb::forwarding::Observations;

fn routes(pairs: &[(&str, &str)]) -> Routes {
    pairs
        .iter()
        .map(|(a, via)| (a.parse().unwrap(), via.to_string()))
        .collect()
}

/// A directory of its own for a test, removed with the guard.
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let guard = tempfile::Builder::new()
        .prefix(&format!("haports-announce-{name}-"))
        .tempdir()
        .unwrap();
    let dir = guard.path().to_path_buf();
    (guard, dir)
}

/// A socket that answers like BIRD: a greeting, then for each `configure` the lines
/// `answer` gives for the routes file's text at that moment, and for `disable` or `enable`
/// of a protocol that it is done. Records those texts, and every command.
struct FakeBird {
    socket: PathBuf,
    seen: Arc<Mutex<Vec<String>>>,
    commands: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakeBird {
    fn start(dir: &Path, file: PathBuf, answer: fn(&str) -> &'static str) -> FakeBird {
        let socket = dir.join("bird.ctl");
        let listener = UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, c, st) = (seen.clone(), commands.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                let mut w = conn.try_clone().unwrap();
                w.write_all(b"0001 BIRD 2.0.12 ready.\n").unwrap();
                let mut line = String::new();
                if BufReader::new(conn).read_line(&mut line).unwrap() > 0 {
                    let command = line.trim_end().to_owned();
                    let name = |verb: &str| command.strip_prefix(verb).map(|n| n.replace('"', ""));
                    if command == "configure" {
                        let text = std::fs::read_to_string(&file).unwrap_or_default();
                        w.write_all(answer(&text).as_bytes()).unwrap();
                        s.lock().unwrap().push(text);
                    } else if let Some(p) = name("disable ") {
                        w.write_all(format!("0009 {p}: disabled\n").as_bytes())
                            .unwrap();
                    } else if let Some(p) = name("enable ") {
                        w.write_all(format!("0011 {p}: enabled\n").as_bytes())
                            .unwrap();
                    } else if command == "show status" {
                        w.write_all(b"1000-BIRD 2.0.12\n0013 Daemon is up and running\n")
                            .unwrap();
                    } else {
                        w.write_all(b"9001 Parse error\n").unwrap();
                    }
                    c.lock().unwrap().push(command);
                }
            }
        });
        FakeBird {
            socket,
            seen,
            commands,
            stop,
        }
    }
}

impl Drop for FakeBird {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn reconfigured(_: &str) -> &'static str {
    "0002-Reading configuration from /etc/bird/bird.conf\n0003 Reconfigured\n"
}

fn parse_error(_: &str) -> &'static str {
    "0002-Reading configuration from /etc/bird/bird.conf\n8002 /run/haports/bird-routes.conf:3:9 syntax error\n"
}

#[test]
fn the_routes_file_has_both_protocols_and_a_host_route_a_frontend() {
    let text = render(&routes(&[
        ("10.0.0.100", "hp-lan"),
        ("fd00::100", "hp-lan"),
        ("10.0.0.101", "hp-lan"),
    ]));
    assert!(text.contains(
        "protocol static haports4 {\n  ipv4;\n  route 10.0.0.100/32 via \"hp-lan\";\n  route 10.0.0.101/32 via \"hp-lan\";\n}\n"
    ), "{text}");
    assert!(
        text.contains(
            "protocol static haports6 {\n  ipv6;\n  route fd00::100/128 via \"hp-lan\";\n}\n"
        ),
        "{text}"
    );
    let empty = render(&Routes::new());
    assert!(
        empty.contains("protocol static haports4 {\n  ipv4;\n}\n"),
        "{empty}"
    );
    assert!(!empty.contains("route"), "{empty}");
}

#[test]
fn configure_without_bird_says_it_is_not_running() {
    let (_guard, dir) = scratch("absent");
    assert!(matches!(
        configure(&dir.join("bird.ctl")),
        Err(BirdError::NotRunning(_))
    ));
}

#[test]
fn the_announcer_hands_bird_each_new_set_and_reports_what_it_took() {
    let (_guard, dir) = scratch("took");
    let file = dir.join("run/routes.conf");
    let bird = FakeBird::start(&dir, file.clone(), reconfigured);
    let mut a = Announcer::start(&Announce {
        bird_socket: bird.socket.clone(),
        routes_file: file.clone(),
        ..Announce::default()
    })
    .unwrap();
    a.want(routes(&[("10.0.0.100", "hp-lan")]));
    assert!(a.wait_settled(Duration::from_secs(5)));
    assert_eq!(
        a.status.lock().unwrap().announced,
        ["10.0.0.100".parse().unwrap()].into()
    );
    // The same set again is not a new exchange.
    a.want(routes(&[("10.0.0.100", "hp-lan")]));
    assert!(a.settled());
    a.want(Routes::new());
    assert!(a.wait_settled(Duration::from_secs(5)));
    assert!(a.status.lock().unwrap().announced.is_empty());
    let seen = bird.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].contains("route 10.0.0.100/32 via \"hp-lan\";"));
    assert!(!seen[1].contains("route "));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), seen[1]);
    assert_eq!(a.status.lock().unwrap().errors, 0);
}

/// BIRD stopping after it took the routes shows in the status (nothing announced, errors
/// counted) within a few seconds, with no change of routes to find it; a BIRD started again
/// is handed them, and they show as announced again.
#[test]
fn a_bird_that_stops_later_is_noticed_and_handed_the_routes_when_back() {
    let (_guard, dir) = scratch("restart");
    let file = dir.join("routes.conf");
    let bird = FakeBird::start(&dir, file.clone(), reconfigured);
    let mut a = Announcer::start(&Announce {
        bird_socket: bird.socket.clone(),
        routes_file: file.clone(),
        ..Announce::default()
    })
    .unwrap();
    let one = routes(&[("10.0.0.100", "hp-lan")]);
    a.want(one.clone());
    assert!(a.wait_settled(Duration::from_secs(5)));
    assert_eq!(a.status.lock().unwrap().announced.len(), 1);
    let until = |what: &str, done: &dyn Fn(&AnnounceStatus) -> bool| {
        let start = Instant::now();
        while !done(&a.status.lock().unwrap()) {
            assert!(start.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // Stopped: its socket is left behind, refusing connections.
    let socket = bird.socket.clone();
    drop(bird);
    until("BIRD's stop noticed", &|st| {
        st.announced.is_empty() && st.errors > 0
    });
    std::fs::remove_file(&socket).unwrap();
    let bird = FakeBird::start(&dir, file, reconfigured);
    until("announced again", &|st| st.announced.len() == 1);
    let seen = bird.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|t| t.contains("route 10.0.0.100/32")),
        "{seen:?}"
    );
}

#[test]
fn a_refusal_is_counted_and_tried_again_and_never_counts_as_taken() {
    let (_guard, dir) = scratch("refused");
    let file = dir.join("routes.conf");
    let bird = FakeBird::start(&dir, file.clone(), parse_error);
    let mut a = Announcer::start(&Announce {
        bird_socket: bird.socket.clone(),
        routes_file: file,
        ..Announce::default()
    })
    .unwrap();
    a.want(routes(&[("10.0.0.100", "hp-lan")]));
    // Asked once, then again a second later.
    let start = Instant::now();
    while bird.seen.lock().unwrap().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "no retry");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!a.settled());
    assert!(a.status.lock().unwrap().errors >= 1);
    assert!(a.status.lock().unwrap().announced.is_empty());
}

/// Takes a file that announces a route, refuses one that announces none (a bird.conf
/// broken meanwhile would refuse both).
fn refuses_withdrawals(text: &str) -> &'static str {
    if text.contains("route ") {
        reconfigured(text)
    } else {
        parse_error(text)
    }
}

/// BIRD refusing its config cannot keep a withdrawn frontend announced: the protocol that
/// holds it is disabled (withdrawing its routes), which counts as taken where that is all
/// that was asked for, and enabled again once BIRD takes the file.
#[test]
fn a_withdrawal_bird_refuses_disables_the_protocol_until_it_takes_the_file_again() {
    let (_guard, dir) = scratch("disable");
    let file = dir.join("routes.conf");
    let bird = FakeBird::start(&dir, file.clone(), refuses_withdrawals);
    let mut a = Announcer::start(&Announce {
        bird_socket: bird.socket.clone(),
        routes_file: file,
        ..Announce::default()
    })
    .unwrap();
    let one = routes(&[("10.0.0.100", "hp-lan")]);
    a.want(one.clone());
    assert!(a.wait_settled(Duration::from_secs(10)), "announced");
    a.want(Routes::new());
    assert!(
        a.wait_settled(Duration::from_secs(10)),
        "withdrawn by disabling"
    );
    assert!(a.status.lock().unwrap().announced.is_empty());
    let commands = bird.commands.lock().unwrap().clone();
    assert!(
        commands.contains(&"disable \"haports4\"".to_owned()),
        "{commands:?}"
    );
    assert!(
        !commands.iter().any(|c| c.contains("haports6")),
        "nothing IPv6 was announced"
    );
    a.want(one);
    assert!(a.wait_settled(Duration::from_secs(10)), "announced again");
    let commands = bird.commands.lock().unwrap().clone();
    let last = commands.iter().rev().find(|c| *c != "show status");
    assert_eq!(last.map(String::as_str), Some("enable \"haports4\""));
    assert_eq!(a.status.lock().unwrap().announced.len(), 1);
}

#[test]
fn without_bird_the_file_is_written_and_the_change_counts_as_settled() {
    let (_guard, dir) = scratch("nobird");
    let file = dir.join("routes.conf");
    let mut a = Announcer::start(&Announce {
        bird_socket: dir.join("bird.ctl"),
        routes_file: file.clone(),
        ..Announce::default()
    })
    .unwrap();
    a.want(routes(&[("10.0.0.100", "hp-lan")]));
    assert!(a.wait_settled(Duration::from_secs(5)));
    assert!(a.status.lock().unwrap().announced.is_empty());
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("route 10.0.0.100/32"));
    // At start, an empty file even when BIRD is away.
    withdraw_at_start(&Announce {
        bird_socket: dir.join("bird.ctl"),
        routes_file: file.clone(),
        ..Announce::default()
    })
    .unwrap();
    assert!(!std::fs::read_to_string(&file).unwrap().contains("route "));
}

/// An announcer whose BIRD socket is `socket`, asked for one route: the change counts as
/// settled (BIRD reads the file when it starts), yet each try is a failed exchange, counted,
/// and tried again every second.
fn unreachable_bird_is_counted_at_each_try(dir: &Path, socket: PathBuf) {
    assert!(matches!(configure(&socket), Err(BirdError::NotRunning(_))));
    let mut a = Announcer::start(&Announce {
        bird_socket: socket,
        routes_file: dir.join("routes.conf"),
        ..Announce::default()
    })
    .unwrap();
    a.want(routes(&[("10.0.0.100", "hp-lan")]));
    assert!(a.wait_settled(Duration::from_secs(5)));
    let start = Instant::now();
    while a.status.lock().unwrap().errors < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "errors {}: BIRD unreachable is not counted at each try",
            a.status.lock().unwrap().errors
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(a.status.lock().unwrap().announced.is_empty());
}

#[test]
fn a_missing_bird_socket_is_counted_as_an_error_at_each_try() {
    let (_guard, dir) = scratch("unreachable-missing");
    unreachable_bird_is_counted_at_each_try(&dir, dir.join("bird.ctl"));
}

#[test]
fn a_bird_socket_that_refuses_connections_is_counted_as_an_error_at_each_try() {
    let (_guard, dir) = scratch("unreachable-refused");
    // The socket file of a BIRD that stopped: it is left behind, and connecting is refused.
    let socket = dir.join("bird.ctl");
    drop(UnixListener::bind(&socket).unwrap());
    unreachable_bird_is_counted_at_each_try(&dir, socket);
}

#[test]
fn withdraw_at_start_fails_when_bird_refuses_the_empty_file() {
    let (_guard, dir) = scratch("start-refused");
    let file = dir.join("routes.conf");
    let bird = FakeBird::start(&dir, file.clone(), parse_error);
    let e = withdraw_at_start(&Announce {
        bird_socket: bird.socket.clone(),
        routes_file: file,
        ..Announce::default()
    })
    .unwrap_err();
    assert!(
        e.contains("syntax error") && e.contains("stale announcement"),
        "{e}"
    );
}

/// A BIRD that accepts no connection (its listen queue full) is an error, not a wait
/// without end: the start and the stop would hang on it.
#[test]
fn a_bird_that_accepts_nothing_is_an_error_not_a_hang() {
    let (_guard, dir) = scratch("wedged");
    let path = dir.join("bird.ctl");
    let listener =
        socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(&socket2::SockAddr::unix(&path).unwrap())
        .unwrap();
    listener.listen(0).unwrap();
    // Fill the queue: connections nobody accepts.
    let mut queued = Vec::new();
    while queued.len() < 8 {
        let c = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
        c.set_nonblocking(true).unwrap();
        if c.connect(&socket2::SockAddr::unix(&path).unwrap()).is_err() {
            break;
        }
        queued.push(c);
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(configure(&path).map_err(|e| e.to_string())));
    let answer = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("configure returns");
    assert!(answer.is_err(), "{answer:?}");
    drop((listener, queued));
}

/// An instance's claim on its routes file keeps a second one (in this process or another)
/// from taking it until the first lets go.
#[test]
fn a_routes_file_is_claimed_by_one_instance_at_a_time() {
    let (_guard, dir) = scratch("claim");
    let announce = Announce {
        routes_file: dir.join("bird").join("routes.conf"),
        ..Announce::default()
    };
    let mut first = routes_claim(&announce).unwrap();
    let held = first.try_write().expect("a free file is claimed");
    let mut second = routes_claim(&announce).unwrap();
    let e = second.try_write().map(|_| ()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
    // Another process sees the lock too (flock(1), util-linux).
    let lock = dir.join("bird").join("routes.conf.lock");
    let other = |path: &Path| {
        let mut flock = std::process::Command::new("flock");
        flock.arg("-n").arg(path).arg("true");
        flock.status().expect("flock(1) runs").success()
    };
    assert!(!other(&lock), "held for other processes");
    drop(held);
    assert!(other(&lock), "let go");
    assert!(
        second.try_write().is_ok(),
        "the second takes it once the first let go"
    );
}

const TWO_FRONTENDS: &str = r#"
[[interface]]
name = "lan"
port = 0
address = ["10.0.0.2/24", "fd00::2/64"]

[[load_balancer]]
name = "ilb"
kind = "internal"
frontend = [{ name = "v4", address = "10.0.0.100" }, { name = "v6", address = "fd00::100" }]
backend_pool = [
  { name = "p4", backends = [{ address = "10.0.0.11" }, { address = "10.0.0.12" }] },
  { name = "p6", backends = [{ address = "fd00::11" }] },
]
rule = [
  { name = "r4", frontend = "v4", backend_pool = "p4", protocol = "all", frontend_port = 0, backend_port = 0, floating_ip = true },
  { name = "r6", frontend = "v6", backend_pool = "p6", protocol = "all", frontend_port = 0, backend_port = 0, floating_ip = true },
]

[announce]
"#;

#[test]
fn a_frontend_is_served_while_a_rule_of_it_has_a_backend_for_new_flows() {
    let cfg = Config::from_toml(TWO_FRONTENDS, "t.toml").unwrap();
    assert_eq!(cfg.check(), Ok(()));
    let with_down = |down: &[&str]| {
        let obs = Observations {
            down: down.iter().map(|a| a.parse().unwrap()).collect(),
            ..Default::default()
        };
        serving(&Forwarding::build(&cfg, &obs, 1, None), &cfg)
    };
    assert_eq!(
        with_down(&[]),
        routes(&[("10.0.0.100", "hp-lan"), ("fd00::100", "hp-lan")])
    );
    assert_eq!(with_down(&["10.0.0.11"]).len(), 2);
    assert_eq!(
        with_down(&["10.0.0.11", "10.0.0.12"]),
        routes(&[("fd00::100", "hp-lan")])
    );
    assert_eq!(
        with_down(&["fd00::11", "10.0.0.12"]),
        routes(&[("10.0.0.100", "hp-lan")])
    );
    // Without [announce] nothing is.
    let mut quiet = cfg.clone();
    quiet.announce = None;
    assert!(serving(
        &Forwarding::build(&quiet, &Observations::default(), 1, None),
        &quiet
    )
    .is_empty());
}

/// The file as BIRD 2 reads it (`bird -p`: parse only), with routes of both families.
#[test]
fn bird_parses_the_routes_file() {
    let (_guard, dir) = scratch("parse");
    let file = dir.join("routes.conf");
    write_routes(
        &file,
        &render(&routes(&[
            ("10.0.0.100", "hp-lan"),
            ("fd00::100", "hp-lan"),
        ])),
    )
    .unwrap();
    let conf = dir.join("bird.conf");
    std::fs::write(
        &conf,
        format!(
            "router id 1.1.1.1;\nprotocol device {{ }}\ninclude \"{}\";\n",
            file.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new("bird")
        .args(["-p", "-c"])
        .arg(&conf)
        .output()
        .expect("run bird (Debian package bird2; scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_frontend_rejoins_only_once_health_has_settled_and_leaves_at_once() {
    let both = routes(&[("10.0.0.100", "hp-lan"), ("10.0.0.101", "hp-lan")]);
    let one = routes(&[("10.0.0.100", "hp-lan")]);
    // Nothing announced yet: nothing until settled, then all that serves.
    assert!(to_announce(both.clone(), None, false).is_empty());
    assert_eq!(to_announce(both.clone(), None, true), both);
    // Announced ones stay while they serve; a new one waits.
    assert_eq!(to_announce(both.clone(), Some(&one), false), one);
    // One that stops serving leaves at once, settled or not.
    let other = routes(&[("10.0.0.101", "hp-lan")]);
    assert_eq!(to_announce(other.clone(), Some(&one), false), Routes::new());
    assert_eq!(to_announce(other.clone(), Some(&both), false), other);
}

#[test]
fn health_settles_over_twice_the_longest_probe_interval() {
    let mut cfg = Config::from_toml(TWO_FRONTENDS, "t.toml").unwrap();
    assert_eq!(
        settle_time(&cfg),
        Duration::from_millis(500),
        "no probe: the floor"
    );
    let lb = &mut cfg.load_balancer[0];
    lb.probe = vec![crate::config::Probe {
        name: "fast".into(),
        protocol: crate::config::ProbeProtocol::Tcp,
        port: 9000,
        path: None,
        interval_ms: 400,
        unhealthy_threshold: 2,
        healthy_threshold: 2,
    }];
    lb.probe[0].interval_ms = 400;
    assert_eq!(
        settle_time(&cfg),
        Duration::from_millis(500),
        "a probe no rule uses"
    );
    cfg.load_balancer[0].rule[0].probe = Some("fast".into());
    assert_eq!(settle_time(&cfg), Duration::from_millis(800));
}
