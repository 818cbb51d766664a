//! End to end: IP fragments through haports on DPDK's AF_XDP PMD, which hands the appliance
//! the fragments as they come (the AF_PACKET PMD of the other labs joins a fanout group that
//! has the kernel put datagrams together first). Real kernels fragment and reassemble; every
//! datagram must come back whole. Needs root.

mod common;

use std::collections::BTreeSet;

use common::{metric, metric_sum, Appliance, Capture, Lab, FRONTEND};

/// The lab's appliance on the AF_XDP PMD over the same veth instead of AF_PACKET.
fn on_af_xdp(lab: &Lab) {
    lab.edit_config(|c| {
        assert!(c.contains("--vdev=net_af_packet0,iface=eth0\""), "{c}");
        c.replace("net_af_packet0,", "net_af_xdp0,")
    });
}

/// UDP payload of each datagram: two fragments on a 1500-byte MTU, and an answer (the
/// backend's name and port before it) still within the 2048 bytes a backend reads.
const SIZE: usize = 2000;

/// What the client's datagrams got: answers whole by backend, and what went wrong.
#[derive(serde::Deserialize, Debug)]
struct Answers {
    answers: std::collections::BTreeMap<String, usize>,
    failures: Vec<String>,
}

/// `n` datagrams of `SIZE` bytes from the client, each from a socket (a flow) of its own,
/// to ports 8000 up of the frontend, each fragmented by the client's kernel; each answered
/// whole, or a failure.
fn datagrams(lab: &Lab, n: usize) -> Answers {
    let (size, n) = (SIZE.to_string(), n.to_string());
    let out = lab.exec(
        "c",
        &["python3", "-c", DATAGRAMS, lab.frontend(), &size, &n],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

const DATAGRAMS: &str = r#"
import json, socket, sys
dst, size, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
IP_MTU_DISCOVER, IP_PMTUDISC_DONT = 10, 0
answers, failures = {}, []
for i in range(n):
    if ":" in dst:  # IPv6: the sender fragments whatever the path cannot carry
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    s.connect((dst, 8000 + i % 24))
    s.settimeout(2.0)
    payload = bytes([65 + i % 26]) * size
    s.send(payload)
    try:
        name, port, data = s.recv(65536).split(b" ", 2)
    except socket.timeout:
        failures.append(f"datagram {i}: no answer in 2 s")
        continue
    if data == payload:
        answers[name.decode()] = answers.get(name.decode(), 0) + 1
    else:
        failures.append(f"datagram {i}: {len(data)} bytes back of {size}")
print(json.dumps({"answers": answers, "failures": failures}))
"#;

/// NAT: each fragment of a client's datagram follows its first to one backend, rewritten to
/// it, and the backend's answer, fragmented in turn, comes back with the frontend's address
/// on every fragment, or the client could not put it together.
#[test]
fn fragmented_datagrams_and_their_fragmented_answers_cross_nat_whole() {
    through_nat(Lab::up("nat"));
}

/// The same over IPv6, whose fragments sit behind a fragment header.
#[test]
fn fragmented_ipv6_datagrams_and_their_fragmented_answers_cross_nat_whole() {
    through_nat(Lab::up("nat6"));
}

fn through_nat(lab: Lab) {
    on_af_xdp(&lab);
    let lb = Appliance::start(&lab, &lab.config());
    let got = datagrams(&lab, 24);
    assert!(got.failures.is_empty(), "{got:?}");
    assert_eq!(got.answers.values().sum::<usize>(), 24, "{got:?}");
    assert!(got.answers.len() >= 2, "spread over backends: {got:?}");
    let m = lb.metrics();
    // The event itself: haports saw every datagram as fragments (two or more each), not
    // put together, and its answer too.
    let to_backends = metric_sum(&m, "haports_backend_packets_total");
    assert!(
        to_backends >= 48.0,
        "fragments to the backends: {to_backends}"
    );
    let received = metric(&m, "haports_worker_rx_packets_total", &[("worker", "0")]);
    assert!(
        received.is_some_and(|r| r >= 96.0),
        "fragments each way: {received:?}"
    );
    let dropped = metric(&m, "haports_drops_total", &[("reason", "fragment")]);
    assert_eq!(dropped, Some(0.0));
}

/// Behind VXLAN, each fragment goes inside the tunnel on its own, every fragment of a
/// datagram with one outer UDP source port (a later fragment has no ports to hash, so none
/// of them counts), and the backend answers the datagram whole.
#[test]
fn fragments_go_through_vxlan_with_one_outer_source_port() {
    let lab = Lab::up("vxlan");
    on_af_xdp(&lab);
    // Fragments that fit the tunnel (1400 + 50 bytes of outer headers), answers at 1500.
    let route = ["ip", "route", "add", FRONTEND, "dev", "eth0", "mtu", "1400"];
    assert!(lab.exec("c", &route).status.success());
    let (lb, seen) = eight_through_vxlan(&lab);

    // "TIME IP 10.0.0.2.SPORT > 10.9.0.1N.4789: VXLAN, …", then the inner packet: a first
    // fragment names the ports ("IP 10.0.0.50.PORT > 10.0.0.100.8000: UDP, …"), a later one
    // does not ("IP 10.0.0.50 > 10.0.0.100: udp").
    let mut sports = BTreeSet::new();
    let (mut first, mut later) = (0, 0);
    for pair in seen.windows(2) {
        let Some(outer) = pair[0].split(" IP 10.0.0.2.").nth(1) else {
            continue;
        };
        if pair[1].starts_with("IP 10.0.0.50 > 10.0.0.100:") {
            later += 1;
        } else if pair[1].starts_with("IP 10.0.0.50.") {
            first += 1;
        } else {
            continue;
        }
        sports.insert(outer.split(' ').next().unwrap_or_default().to_owned());
    }
    assert!(
        first >= 8 && later >= 8,
        "{first} first and {later} later fragments: {seen:?}"
    );
    assert_eq!(sports.len(), 1, "outer source ports: {sports:?}");
    let dropped = metric(
        &lb.metrics(),
        "haports_drops_total",
        &[("reason", "too_big")],
    );
    assert_eq!(dropped, Some(0.0), "nothing too big for the tunnel");
}

/// Fragments too big for the tunnel (the client's 1,500-byte ones, 50 bytes short) and
/// without DF are split again, as a router splits them, each piece inside VXLAN on its own;
/// the backend puts the datagram back together from the pieces and answers it whole.
#[test]
fn fragments_too_big_for_the_tunnel_are_split_again() {
    let lab = Lab::up("vxlan");
    on_af_xdp(&lab);
    let (lb, seen) = eight_through_vxlan(&lab);
    // Each datagram came as two fragments (1,500 and 548 bytes), the first split in two: at
    // least three packets inside the tunnel for each.
    let inside = seen.iter().filter(|l| l.contains(": VXLAN")).count();
    assert!(inside >= 24, "{inside} packets inside VXLAN: {seen:?}");
    let m = lb.metrics();
    assert_eq!(
        metric(&m, "haports_drops_total", &[("reason", "too_big")]),
        Some(0.0)
    );
    let received = metric(&m, "haports_worker_rx_packets_total", &[("worker", "0")]);
    assert!(
        received.is_some_and(|r| r >= 16.0),
        "two fragments each: {received:?}"
    );
}

/// Starts the appliance of a VXLAN lab and sends 8 datagrams through it, each answered
/// whole; the appliance, and what crossed the router towards the backends meanwhile.
fn eight_through_vxlan(lab: &Lab) -> (Appliance, Vec<String>) {
    let lb = Appliance::start(lab, &lab.config());
    let capture = Capture::start_on(lab, "r", "eth1", "udp dst port 4789");
    let got = datagrams(lab, 8);
    let seen = capture.stop();
    assert!(got.failures.is_empty(), "{got:?}");
    assert_eq!(got.answers.values().sum::<usize>(), 8, "{got:?}");
    (lb, seen)
}
