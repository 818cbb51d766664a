//! End to end: real kernel TCP and UDP through haports on DPDK's AF_PACKET PMD, in network
//! namespaces (client, appliance, three backends on one bridge). Needs root.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    assert_all_served, endpoint, metric, metric_sum, wait_for, Appliance, Capture, Lab, Traffic,
    FRONTEND,
};

/// 24 destination ports, 8000-8023 (the backends listen on all of them).
fn ports() -> Vec<u16> {
    (8000..8024).collect()
}

fn assert_balanced(what: &str, t: &Traffic, expected: usize) {
    assert!(
        t.failures.is_empty(),
        "{what}: {} failures, first: {:?}",
        t.failures.len(),
        t.failures.first()
    );
    assert_eq!(t.total(), expected, "{what}: every exchange answered");
    assert_eq!(
        t.served.len(),
        3,
        "{what}: all three backends served: {:?}",
        t.served
    );
    for (backend, n) in &t.served {
        let share = *n as f64 / expected as f64;
        assert!(
            share >= 0.15,
            "{what}: {backend} got {:.1}% (< 15%): {:?}",
            share * 100.0,
            t.served
        );
    }
    let dports: BTreeSet<u16> = t.flows.iter().map(|f| f.1).collect();
    assert!(
        dports.len() >= 20,
        "{what}: {} destination ports",
        dports.len()
    );
    let sports: BTreeSet<u16> = t.flows.iter().map(|f| f.0).collect();
    assert!(
        sports.len() >= expected * 9 / 10,
        "{what}: distinct source ports: {}",
        sports.len()
    );
}

/// `haports lookup` must name, for each flow the client ran, the backend that served it.
fn assert_lookup_agrees(config: &std::path::Path, lab: &Lab, proto: &str, t: &Traffic) {
    let input: String = t
        .flows
        .iter()
        .map(|(sport, dport, _)| {
            let (from, to) = (
                endpoint(lab.client(), *sport),
                endpoint(lab.frontend(), *dport),
            );
            format!("{proto} {from} {to}\n")
        })
        .collect();
    let lines: Vec<String> = common::lookup(config, &input)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), t.flows.len());
    for ((_, _, served_by), line) in t.flows.iter().zip(&lines) {
        let index: usize = served_by.trim_start_matches('b').parse().unwrap();
        let expected = lab.backends()[index - 1];
        assert!(
            line.ends_with(&format!("-> {expected}")),
            "lookup says `{line}`, but {served_by} ({expected}) served it"
        );
    }
}

fn balances_both_protocols(mode: &'static str) {
    let lab = Lab::up(mode);
    let config = lab.config();
    let mut lb = Appliance::start(&lab, &config);
    // Every connection gets through, the first one too (in the IPv6 DSR lab it once lost its
    // SYN for a second or three, while the backends' link-local addresses were tentative:
    // see scripts/netns-lib.sh).
    let tcp = lab.traffic("tcp", lab.frontend(), &ports(), 240, None);
    assert_balanced("tcp", &tcp, 240);
    let udp = lab.traffic("udp", lab.frontend(), &ports(), 240, None);
    assert_balanced("udp", &udp, 240);
    assert_lookup_agrees(&config, &lab, "tcp", &tcp);
    assert_lookup_agrees(&config, &lab, "udp", &udp);

    let m = lb.metrics();
    for b in lab.backends() {
        let n = metric(&m, "haports_backend_packets_total", &[("backend", b)]).unwrap_or(0.0);
        // At least the SYN, the request, the ACKs and FIN of its connections, plus datagrams.
        assert!(n >= 100.0, "backend {b} packets: {n}\n{m}");
    }
    let rx = metric(&m, "haports_port_rx_packets_total", &[("port", "0")]).unwrap();
    let tx = metric(&m, "haports_port_tx_packets_total", &[("port", "0")]).unwrap();
    assert!(
        rx >= 240.0 * 5.0 && tx >= 240.0 * 5.0,
        "port counters rx {rx} tx {tx}"
    );
    assert!(metric(&m, "haports_flow_table_entries", &[("worker", "0")]).unwrap() >= 1.0);
    if let Some(workers) = mode.strip_prefix("nat-").and_then(|w| w.strip_suffix('w')) {
        // Every worker took flows: the fanout split them, and a flow's replies (another
        // five-tuple, hashed apart from its requests) reach any worker, where the rules map
        // them back; every connection above succeeded through them.
        for w in 1..workers.parse::<usize>().unwrap() {
            let held = metric(
                &m,
                "haports_flow_table_entries",
                &[("worker", &w.to_string())],
            );
            assert!(held >= Some(1.0), "worker {w} holds no flow:\n{m}");
        }
    }
    assert_eq!(
        metric(&m, "haports_config_generation", &[]),
        Some(1.0),
        "no reload happened"
    );
    // None of this traffic may be dropped as broken, unmatched or undeliverable.
    for reason in [
        "truncated",
        "malformed",
        "no_rule",
        "no_healthy_backend",
        "no_neighbour",
        "tx_full",
        "martian_source",
        "tcp_flags",
        "ip_checksum",
    ] {
        let n = metric(&m, "haports_drops_total", &[("reason", reason)]).unwrap_or(0.0);
        assert_eq!(n, 0.0, "drops for {reason}:\n{m}");
    }

    // The appliance answers pings to the frontend itself (ARP or neighbour discovery first).
    let ping = lab.exec(
        "c",
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", lab.frontend()],
    );
    assert!(
        ping.status.success(),
        "ping {}: {}",
        lab.frontend(),
        String::from_utf8_lossy(&ping.stdout)
    );

    // A ping to the appliance's own address is answered once, by the kernel twin alone.
    let own = match mode {
        "dsr" => "10.0.0.2",
        "dsr6" => "fd00::2",
        "nat6" => "fd00:1::2",
        _ => "10.0.1.2",
    };
    let kernel = |lb: &Appliance| metric(&lb.metrics(), "haports_kernel_packets_total", &[]);
    let before = kernel(&lb).unwrap_or(0.0);
    let ping = lab.exec("c", &["ping", "-c", "3", "-i", "0.2", "-W", "2", own]);
    let out = String::from_utf8_lossy(&ping.stdout);
    assert!(ping.status.success(), "ping {own}: {out}");
    assert!(
        out.contains("3 packets transmitted, 3 received") && !out.contains("DUP!"),
        "one answer per ping from {own}: {out}"
    );
    // Counted as they reached the twin (by the control thread where the workers hand them
    // over): the three echo requests at least.
    let to_kernel = kernel(&lb).unwrap_or(0.0) - before;
    assert!(
        to_kernel >= 3.0,
        "{to_kernel} to the kernel: {}",
        lb.metrics()
    );

    let status = lb.stop();
    assert!(
        status.success(),
        "haports did not stop cleanly on SIGTERM: {status}\n{}",
        lb.logs()
    );
    // Every handle on DPDK's memory was gone by then: EAL was cleaned up, not left.
    assert!(
        !lb.logs().contains("EAL not cleaned up"),
        "a handle outlived the stop: {}",
        lb.logs()
    );
}

#[test]
fn non_floating_ha_ports_balances_tcp_and_udp_over_three_backends() {
    balances_both_protocols("nat");
}

#[test]
fn non_floating_ha_ports_with_two_workers_balances_tcp_and_udp_over_three_backends() {
    balances_both_protocols("nat-2w");
}

/// Five workers: each has its own RX and TX queue on the port, while the kernel twin has one
/// of each, the control thread's, which sends what the workers hand it (DPDK 22.11's net_tap
/// overflowed its stack starting a port with more than 8 queues: haports with five workers or
/// more aborted at start). The pings to the appliance's own address go through the twin.
#[test]
fn non_floating_ha_ports_with_five_workers_balances_tcp_and_udp_over_three_backends() {
    balances_both_protocols("nat-5w");
}

/// `kernel_pps` is over all workers: a burst of pings to the appliance's own address (one
/// flow, so one worker of five) within the budget's burst all reach the kernel and are
/// answered. At 1000 a second the budget admits bursts of 100; when each worker had a fifth
/// of the rate, its burst was 32 (the least), and most of the 90 were dropped as over it.
/// The pings go at once (`ping -l`): a slow machine spreads them no more than a fast one.
#[test]
fn one_flow_to_the_appliance_may_take_the_whole_kernel_rate_of_five_workers() {
    let lab = Lab::up("nat-5w");
    lab.edit_config(|t| t.replacen("[dataplane]\n", "[dataplane]\nkernel_pps = 1000\n", 1));
    let config = std::fs::read_to_string(lab.config()).expect("the lab's config");
    assert!(config.contains("kernel_pps = 1000\n"), "{config}");
    let mut lb = Appliance::start(&lab, &lab.config());
    // One first, so that the client's host knows the appliance's MAC: ping sends the rest
    // one a second where its kernel, still asking, will not take them all at once.
    let first = lab.exec("c", &["ping", "-q", "-c", "1", "-W", "2", "10.0.1.2"]);
    assert!(first.status.success(), "{first:?}");
    let before = metric(&lb.metrics(), "haports_kernel_packets_total", &[]).unwrap_or(0.0);
    let ping = lab.exec(
        "c",
        &["ping", "-q", "-c", "90", "-l", "90", "-W", "2", "10.0.1.2"],
    );
    let out = String::from_utf8_lossy(&ping.stdout);
    let received: u32 = out
        .split(", ")
        .find_map(|part| part.strip_suffix(" received")?.parse().ok())
        .unwrap_or_else(|| panic!("ping said: {out} {}", String::from_utf8_lossy(&ping.stderr)));
    let m = lb.metrics();
    let over = metric(&m, "haports_drops_total", &[("reason", "kernel_limit")]);
    assert_eq!(over, Some(0.0), "{out}\n{m}");
    let to_kernel = metric(&m, "haports_kernel_packets_total", &[]).unwrap() - before;
    assert!(received >= 85 && to_kernel >= 90.0, "{out}\n{m}");
    assert!(lb.stop().success(), "{}", lb.logs());
}

#[test]
fn floating_ha_ports_balances_tcp_and_udp_over_three_backends() {
    balances_both_protocols("dsr");
}

#[test]
fn non_floating_ha_ports_balances_ipv6_tcp_and_udp_over_three_backends() {
    balances_both_protocols("nat6");
}

#[test]
fn floating_ha_ports_balances_ipv6_tcp_and_udp_over_three_backends() {
    balances_both_protocols("dsr6");
}

#[test]
fn one_five_tuple_always_reaches_one_backend() {
    let lab = Lab::up("nat");
    let _lb = Appliance::start(&lab, &lab.config());
    for (proto, sport) in [("tcp", 41000), ("udp", 41001)] {
        let t = lab.traffic(proto, FRONTEND, &[8005], 12, Some(sport));
        assert!(t.failures.is_empty(), "{proto}: {:?}", t.failures);
        assert_eq!(t.total(), 12);
        assert_eq!(
            t.served.len(),
            1,
            "{proto}: one five-tuple went to several backends: {:?}",
            t.served
        );
    }
}

#[test]
fn traffic_to_an_address_that_is_no_frontend_is_dropped_and_counted() {
    let lab = Lab::up("nat");
    let lb = Appliance::start(&lab, &lab.config());
    let before = lb.metrics();
    // 10.0.0.99 is routed by the client through the appliance, but no frontend has it.
    let t = lab.traffic_timeout("udp", "10.0.0.99", &[8000, 8001], 20, None, 0.3);
    assert_eq!(
        t.total(),
        0,
        "a non-frontend address was answered: {:?}",
        t.served
    );
    assert_eq!(t.failures.len(), 20);
    common::wait_for(
        "the drops to be counted",
        std::time::Duration::from_secs(10),
        || {
            let m = lb.metrics();
            let drops = metric(&m, "haports_drops_total", &[("reason", "no_frontend")])
                .unwrap_or(0.0)
                - metric(&before, "haports_drops_total", &[("reason", "no_frontend")])
                    .unwrap_or(0.0);
            (drops >= 20.0).then_some(())
        },
    );
    let after = lb.metrics();
    assert_eq!(
        metric_sum(&after, "haports_backend_packets_total"),
        metric_sum(&before, "haports_backend_packets_total"),
        "nothing may reach a backend"
    );
}

#[test]
fn kernel_twin_holds_the_appliance_address_and_pings_both_ways() {
    let lab = Lab::up("nat");
    let lb = Appliance::start(&lab, &lab.config());
    let kernel = || metric(&lb.metrics(), "haports_kernel_packets_total", &[]).unwrap_or(0.0);
    let before = kernel();
    let from_backend = lab.exec(
        "b2",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"],
    );
    assert!(
        from_backend.status.success(),
        "backend -> appliance: {}",
        String::from_utf8_lossy(&from_backend.stdout)
    );
    let from_twin = lab.exec(
        "lb",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.12"],
    );
    assert!(
        from_twin.status.success(),
        "appliance -> backend: {}",
        String::from_utf8_lossy(&from_twin.stdout)
    );
    // The appliance itself answers pings to its frontend.
    let to_frontend = lab.exec("c", &["ping", "-c", "3", "-i", "0.2", "-W", "2", FRONTEND]);
    assert!(
        to_frontend.status.success(),
        "client -> frontend: {}",
        String::from_utf8_lossy(&to_frontend.stdout)
    );
    // The backend's three echo requests and the three answers to the twin's, at least.
    let to_kernel = kernel() - before;
    assert!(
        to_kernel >= 6.0,
        "{to_kernel} to the kernel: {}",
        lb.metrics()
    );
}

/// A frame the kernel twin sends that its buffers hold only as a chain of segments (its MTU
/// raised past one 2 KiB buffer) is dropped as `unsupported`, counted, rather than handed to
/// a port set up for single-segment frames; the twin's ordinary traffic goes on.
#[test]
fn a_twin_frame_in_several_segments_is_a_counted_drop() {
    let lab = Lab::up("nat");
    let lb = Appliance::start(&lab, &lab.config());
    let unsupported = || {
        let m = lb.metrics();
        metric(&m, "haports_drops_total", &[("reason", "unsupported")]).unwrap_or(0.0)
    };
    let before = unsupported();
    let raised = lab.exec("lb", &["ip", "link", "set", "dev", "hp-lan", "mtu", "4000"]);
    assert!(
        raised.status.success(),
        "{}",
        String::from_utf8_lossy(&raised.stderr)
    );
    // 3,000 bytes of ICMP: no answer can come (the frame never leaves).
    let big = lab.exec(
        "lb",
        &[
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "1",
            "-s",
            "3000",
            "-M",
            "dont",
            "10.0.0.12",
        ],
    );
    assert!(!big.status.success(), "a 3000-byte ping left whole");
    // (At least the first: the TAP device's later ones may not come whole.)
    let dropped = unsupported() - before;
    assert!(
        dropped >= 1.0,
        "{dropped} dropped as unsupported: {}",
        lb.metrics()
    );
    let small = lab.exec(
        "lb",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.12"],
    );
    assert!(
        small.status.success(),
        "appliance -> backend after: {}",
        String::from_utf8_lossy(&small.stdout)
    );
}

/// A second `haports run` beside a running one, with its config (by hand, beside the
/// service; here without the control socket, which would refuse it first), refuses to start
/// and says why, before it touches anything: the running one's twin stays up and answers,
/// and its traffic is balanced still. (DPDK had joined the running twin's tap device, taken
/// it down and up, and down again on the way out: its address went unanswered.)
#[test]
fn a_second_instance_refuses_to_start_and_leaves_the_running_one_alone() {
    let lab = Lab::up("nat");
    let _lb = Appliance::start(&lab, &lab.config());
    let config = std::fs::read_to_string(lab.config()).unwrap();
    let second_config = lab.config().with_file_name("second.toml");
    let without_socket: Vec<&str> = (config.lines())
        .filter(|l| !l.starts_with("socket ="))
        .collect();
    std::fs::write(&second_config, without_socket.join("\n")).unwrap();
    let second = std::process::Command::new("ip")
        .args(["netns", "exec", &format!("{}-lb", lab.tag)])
        .args([env!("CARGO_BIN_EXE_haports"), "run", "--config"])
        .arg(&second_config)
        .output()
        .expect("run a second haports");
    let said = String::from_utf8_lossy(&second.stderr).into_owned()
        + &String::from_utf8_lossy(&second.stdout);
    assert!(!second.status.success(), "{said}");
    assert!(said.contains("hp-lan exists"), "{said}");
    let link = lab.exec("lb", &["ip", "link", "show", "dev", "hp-lan"]);
    let link = String::from_utf8_lossy(&link.stdout).into_owned();
    assert!(link.contains("state UP") || link.contains(",UP"), "{link}");
    let ping = lab.exec(
        "b2",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"],
    );
    assert!(
        ping.status.success(),
        "the running twin no longer answers: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let t = lab.traffic("udp", FRONTEND, &ports(), 48, None);
    assert_all_served("after the second start", &t, 48);
}

/// Under systemd's `Type=notify` (the shipped unit), haports says `READY=1` once it
/// forwards and answers, and `STOPPING=1` when a stop begins: to the datagram socket
/// `NOTIFY_SOCKET` names (here one the test holds).
#[test]
fn systemd_is_told_when_the_appliance_is_ready_and_when_it_stops() {
    use std::os::unix::net::UnixDatagram;
    let lab = Lab::up("nat");
    let socket_path = lab.config().with_file_name("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &format!("{}-lb", lab.tag)])
        .args([
            "setpriv",
            "--pdeathsig",
            "TERM",
            env!("CARGO_BIN_EXE_haports"),
            "run",
        ])
        .arg("--config")
        .arg(lab.config())
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start haports");
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 within a minute");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means serving: the metrics answer and the frontend balances at once.
    let metrics = lab.exec("lb", &["curl", "-sf", "http://127.0.0.1:9900/metrics"]);
    assert!(metrics.status.success(), "{metrics:?}");
    let t = lab.traffic("udp", FRONTEND, &ports(), 48, None);
    assert_all_served("once ready", &t, 48);
    // (`ip netns exec` and `setpriv` exec haports: the child is haports itself.)
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let n = socket.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_file(&socket_path);
}

/// A start that fails once the ports are up (the metrics address taken by another process)
/// never told systemd it was ready: systemd would have counted the service started.
#[test]
fn a_start_that_fails_late_tells_systemd_nothing() {
    use std::os::unix::net::UnixDatagram;
    let lab = Lab::up("nat");
    let socket_path = lab.config().with_file_name("notify.sock");
    let notify = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    let taker = "import socket, sys\n\
        s = socket.socket()\n\
        s.bind(('127.0.0.1', 9900))\n\
        s.listen()\n\
        print('listening', flush=True)\n\
        sys.stdin.read()\n";
    let mut holder = std::process::Command::new("ip")
        .args(["netns", "exec", &format!("{}-lb", lab.tag)])
        .args(["/usr/bin/python3", "-c", taker])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the address's taker");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "listening");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &format!("{}-lb", lab.tag)])
        .arg(env!("CARGO_BIN_EXE_haports"))
        .args(["run", "--config"])
        .arg(lab.config())
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run haports");
    drop(holder.stdin.take());
    let _ = holder.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("9900"),
        "it failed for the metrics address: {err}"
    );
    // It got as far as the ports: their twins were up (and are gone again).
    assert!(err.contains("interface up"), "{err}");
    notify.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let said = notify.recv(&mut buf).map(|n| buf[..n].to_vec());
    assert!(
        said.as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "told systemd {:?} before failing",
        said.map(|b| String::from_utf8_lossy(&b).into_owned())
    );
    let _ = std::fs::remove_file(&socket_path);
}

/// Frames written to the kernel twin by a process on the appliance's host (scapy): 50 from
/// an address that is not the interface's, 20 ICMP redirects from its own, then a datagram
/// from its own.
const TWIN_SENDS: &str = r#"
import sys
from scapy.all import Ether, IP, UDP, ICMP, Raw, get_if_hwaddr, sendp
eth = Ether(src=get_if_hwaddr("hp-lan"), dst=sys.argv[1])
to_b1 = lambda src: IP(src=src, dst="10.0.0.11")
frames = [eth / to_b1("10.0.0.77") / UDP(sport=5000, dport=9999) / Raw(b"spoofed")] * 50
frames += [eth / to_b1("10.0.0.2") / ICMP(type=5, code=1, gw="10.0.0.99")
           / IP(src="10.0.0.11", dst="10.0.1.10") / UDP(sport=1, dport=2)] * 20
frames.append(eth / to_b1("10.0.0.2") / UDP(sport=5000, dport=9999) / Raw(b"own"))
sendp(frames, iface="hp-lan", verbose=False)
"#;

/// The kernel twin is the host's: a process there (or the host's routing) may write any
/// frame to it. Only the appliance's own traffic leaves: frames from other addresses are
/// `martian_source` drops and ICMP redirects `unsupported` ones, and the twin's kernel is set
/// as a host that routes nothing and learns nothing from router messages, whatever the
/// host's defaults.
#[test]
fn the_twin_sends_only_the_interfaces_own_traffic() {
    let lab = Lab::up("nat");
    let lb = Appliance::start(&lab, &lab.config());
    for (key, value) in [
        ("net.ipv4.conf.hp-lan.forwarding", "0"),
        ("net.ipv4.conf.hp-lan.accept_redirects", "0"),
        ("net.ipv4.conf.hp-lan.arp_ignore", "1"),
        ("net.ipv4.conf.hp-lan.arp_announce", "2"),
        ("net.ipv6.conf.hp-lan.accept_ra", "0"),
        ("net.ipv6.conf.hp-lan.autoconf", "0"),
        ("net.ipv6.conf.hp-lan.accept_dad", "0"),
    ] {
        let out = lab.exec("lb", &["sysctl", "-n", key]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), value, "{key}");
    }
    let drops = |reason: &str| {
        metric(&lb.metrics(), "haports_drops_total", &[("reason", reason)]).unwrap_or(0.0)
    };
    let (martian, unsupported) = (drops("martian_source"), drops("unsupported"));
    let capture = Capture::start(&lab, "b1", "udp port 9999 or icmp[0] == 5");
    let b1_mac = {
        let out = lab.exec("b1", &["cat", "/sys/class/net/eth0/address"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let sent = lab.exec("lb", &["/usr/bin/python3", "-c", TWIN_SENDS, &b1_mac]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    // The last frame, the twin's own, reaches the backend: the others went before it.
    wait_for(
        "the twin's own datagram at the backend",
        Duration::from_secs(10),
        || {
            let seen = capture.seen();
            seen.iter()
                .any(|l| l.contains("10.0.0.2.5000 > 10.0.0.11.9999"))
                .then_some(())
        },
    );
    let seen = capture.stop();
    assert!(
        !seen
            .iter()
            .any(|l| l.contains("10.0.0.77") || l.contains("redirect")),
        "{seen:?}"
    );
    // As many drops as frames at least: no background drop of the same reason makes as many.
    assert!(drops("martian_source") - martian >= 50.0);
    assert!(drops("unsupported") - unsupported >= 20.0);
}

/// Hand-made broken, spoofed and martian frames (scapy) sent at the appliance from the
/// client's segment, five times each, then one good SYN from port 4321. Every hostile one is
/// to port 80 or 2 (or from port 1234), which no other traffic uses, so a capture on the
/// backends can tell them apart.
const HOSTILE: &str = r#"
import sys
from scapy.all import Dot1Q, Ether, IP, IPv6, IPv6ExtHdrDestOpt, TCP, UDP, Raw, get_if_hwaddr, sendp
mac, client, frontend, own = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
# A real source MAC: a bridge drops frames from 00:00:00:00:00:00.
me = get_if_hwaddr("eth0")
eth = Ether(dst=mac, src=me, type=0x0800)
good = IP(src=client, dst=frontend) / TCP(sport=1234, dport=80)
frames = [
    # truncated: the IPv4 header cut short, and a total length past the frame's end
    eth / Raw(bytes(good)[:12]),
    eth / IP(src=client, dst=frontend, len=400) / UDP(sport=1, dport=2),
    # malformed: IHL below 5, and a TCP data offset below 5
    eth / Raw(b"\x43" + bytes(good)[1:]),
    eth / IP(src=client, dst=frontend) / TCP(sport=1234, dport=80, dataofs=2),
    # unsupported: an unknown ethertype; vlan: three VLAN tags (interfaces are untagged).
    # (Not IP fragments here: the AF_PACKET PMD's fanout socket has the kernel reassemble
    # them before haports sees them.)
    Ether(dst=mac, src=me, type=0x88B5) / Raw(b"x" * 50),
    Ether(dst=mac, src=me) / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / good,
    # extension_headers: nine IPv6 destination-options headers before TCP
    Ether(dst=mac, src=me) / IPv6(src="fd00:1::10", dst="fd00::100") /
        IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
        IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
        IPv6ExtHdrDestOpt() / TCP(sport=1234, dport=80),
    # martian_source: broadcast, multicast, loopback, the frontend's and the appliance's own
    eth / IP(src="255.255.255.255", dst=frontend) / TCP(sport=1234, dport=80, flags="S"),
    eth / IP(src="224.0.0.5", dst=frontend) / UDP(sport=1234, dport=2),
    eth / IP(src="127.0.0.1", dst=frontend) / TCP(sport=1234, dport=80, flags="S"),
    eth / IP(src=frontend, dst=frontend) / TCP(sport=1234, dport=80, flags="S"),
    eth / IP(src=own, dst=frontend) / TCP(sport=1234, dport=80, flags="S"),
    # ttl: TTL 0; tcp_flags: SYN+FIN, SYN+RST, none; ip_checksum: a wrong header checksum
    eth / IP(src=client, dst=frontend, ttl=0) / TCP(sport=1234, dport=80, flags="S"),
    eth / IP(src=client, dst=frontend) / TCP(sport=1234, dport=80, flags="SF"),
    eth / IP(src=client, dst=frontend) / TCP(sport=1234, dport=80, flags="SR"),
    eth / IP(src=client, dst=frontend) / TCP(sport=1234, dport=80, flags=""),
    eth / IP(src=client, dst=frontend, chksum=0xbad) / TCP(sport=1234, dport=80, flags="S"),
]
for _ in range(5):
    sendp(frames, iface="eth0", verbose=False)
# One good SYN (from port 4321): the captures must see it, and nothing else.
sendp(eth / IP(src=client, dst=frontend) / TCP(sport=4321, dport=81, flags="S"), iface="eth0", verbose=False)
"#;

/// Drop reasons and how many frames of [`HOSTILE`] each must count (five sends each).
const HOSTILE_DROPS: [(&str, f64); 9] = [
    ("truncated", 10.0),
    ("malformed", 10.0),
    ("unsupported", 5.0),
    ("vlan", 5.0),
    ("extension_headers", 5.0),
    ("martian_source", 25.0),
    ("ttl", 5.0),
    ("tcp_flags", 15.0),
    ("ip_checksum", 5.0),
];

#[test]
fn hostile_frames_are_counted_drops_none_reaches_a_backend_and_service_goes_on() {
    let lab = Lab::up("nat");
    let lb = Appliance::start(&lab, &lab.config());
    let mac_out = lab.exec("lb", &["cat", "/sys/class/net/eth0/address"]);
    let mac = String::from_utf8_lossy(&mac_out.stdout).trim().to_owned();
    // A capture on every backend of anything but the good traffic (ports 8000 to 8002), ARP,
    // neighbour discovery and the hosts' own multicast (MLD reports): any hostile frame that
    // got through, of whatever kind (not IP at all, VLAN-tagged, IPv6 behind extension
    // headers, truncated). (`inbound` would leave out the backends' own packets, but it
    // matches nothing on these veths.)
    let filter = "not arp and not icmp6 and not ip multicast and not ip6 multicast \
                  and not ( port 8000 or port 8001 or port 8002 )";
    let captures: Vec<_> = ["b1", "b2", "b3"]
        .iter()
        .map(|b| common::Capture::start(&lab, b, filter))
        .collect();
    let before = lb.metrics();
    let mut streams = lab.streams(&[
        "--udp-flows",
        "4",
        "--session-port",
        "8002",
        "--duration",
        "60",
        "--until-stdin-closes",
        "--at-least",
        "3",
    ]);
    // The hostile frames go in among good traffic: once it flows.
    lb.wait_backend_traffic(50.0);
    let sent = lab.exec(
        "c",
        &[
            "/usr/bin/python3",
            "-c",
            HOSTILE,
            &mac,
            lab.client(),
            FRONTEND,
            "10.0.1.2",
        ],
    );
    assert!(
        sent.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let grew = |m: &str, reason: &str| {
        metric(m, "haports_drops_total", &[("reason", reason)]).unwrap_or(0.0)
            - metric(&before, "haports_drops_total", &[("reason", reason)]).unwrap_or(0.0)
    };
    common::wait_for(
        "every hostile frame to be counted",
        std::time::Duration::from_secs(10),
        || {
            let m = lb.metrics();
            HOSTILE_DROPS
                .iter()
                .all(|(reason, n)| grew(&m, reason) >= *n)
                .then_some(())
        },
    );
    // Good traffic went on throughout: the session and the UDP flows lost nothing.
    assert!(
        streams.running(),
        "the good traffic ended before every hostile frame was counted"
    );
    let report = streams.stop();
    common::assert_every_connection_served(&report);
    let session = &report["session"];
    assert_eq!(session["errors"].as_array().unwrap().len(), 0, "{session}");
    assert!(session["sent"].as_u64().unwrap() > 10, "{session}");
    assert_eq!(session["sent"], session["answered"], "{session}");
    for flow in report["udp"].as_array().unwrap() {
        assert!(flow["sent"].as_u64().unwrap() > 50, "{flow}");
        assert_eq!(flow["missing"], 0, "{flow}");
    }
    // The captures worked (the good SYN reached a backend), and saw nothing else.
    let seen: Vec<String> = captures
        .into_iter()
        .flat_map(common::Capture::stop)
        .collect();
    assert!(
        seen.iter().any(|l| l.contains(".4321 > ")),
        "the good SYN was captured: {seen:?}"
    );
    assert!(
        seen.iter().all(|l| l.contains(".4321")),
        "hostile frames reached a backend: {seen:?}"
    );
    let t = lab.traffic("tcp", FRONTEND, &ports(), 48, None);
    assert!(
        t.failures.is_empty() && t.total() == 48,
        "service after the hostile frames: {:?}",
        t.failures
    );
}

/// Holds 500 connections to the metrics endpoint (garbage on every tenth) from the
/// appliance's namespace, says how many, and keeps them 8 s.
const METRICS_HOLDER: &str = r#"
import socket, time
held = []
for i in range(500):
    s = socket.create_connection(("127.0.0.1", 9900), timeout=5)
    if i % 10 == 0:
        s.sendall(b"\x00\x01garbage\r\n\r\n")
    held.append(s)
print(len(held), flush=True)
time.sleep(60)
"#;

#[test]
fn the_metrics_endpoint_survives_idle_and_garbage_connections_and_forwarding_goes_on() {
    use std::io::BufRead;
    let lab = Lab::up("nat");
    let lb = Appliance::start(&lab, &lab.config());
    let threads = || {
        std::fs::read_dir(format!("/proc/{}/task", lb.pid()))
            .unwrap()
            .count()
    };
    let before = threads();
    let mut holder = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{}-lb", lab.tag),
            "python3",
            "-c",
            METRICS_HOLDER,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the connection holder");
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "500", "every connection was made");
    // No thread per connection: the appliance has the threads it had.
    assert!(
        threads() <= before + 1,
        "{} threads, {before} before",
        threads()
    );
    // Forwarding goes on, and the metrics are served again once idle slots time out.
    let t = lab.traffic("tcp", FRONTEND, &ports(), 48, None);
    assert!(t.failures.is_empty() && t.total() == 48, "{:?}", t.failures);
    let m = common::wait_for(
        "the metrics to be served again",
        std::time::Duration::from_secs(10),
        || lb.try_metrics(),
    );
    assert!(m.contains("haports_backend_packets_total"), "{m}");
    // While the holder still held its connections: the server let them go, not the holder.
    assert!(
        matches!(holder.try_wait(), Ok(None)),
        "the holder had closed its connections by then"
    );
    let _ = holder.kill();
    let _ = holder.wait();
}

/// An AF_PACKET device with more queue pairs than workers: the kernel spreads frames over
/// every pair's socket, so one that no worker polls would lose its share. haports refuses to
/// start and says what to give, rather than losing a share of the flows without a counter.
#[test]
fn more_device_queues_than_workers_is_refused_at_start() {
    let lab = Lab::up("nat");
    lab.edit_config(|t| t.replace("iface=eth0\"", "iface=eth0,qpairs=2\""));
    assert!(
        std::fs::read_to_string(lab.config())
            .unwrap()
            .contains("qpairs=2"),
        "the lab's vdev changed"
    );
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &format!("{}-lb", lab.tag)])
        .arg(env!("CARGO_BIN_EXE_haports"))
        .args(["run", "--config"])
        .arg(lab.config())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start haports");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("haports kept running with more queue pairs than workers");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("fills 2 RX queues") && err.contains("qpairs=1"),
        "{err}"
    );
}
