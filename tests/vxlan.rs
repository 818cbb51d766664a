//! End to end: DSR over VXLAN through a Linux router to backends on another subnet, each
//! decapsulating with a Linux vxlan device and holding the frontend on loopback. Needs root.

mod common;

use std::collections::BTreeSet;

use common::{Appliance, Capture, Lab, FRONTEND, FRONTEND6};

#[test]
fn dsr_over_vxlan_through_a_router_balances_and_spreads_outer_source_ports() {
    let lab = Lab::up("vxlan");
    let lb = Appliance::start(&lab, &lab.config());
    // What crosses the router towards the backends.
    let capture = Capture::start_on(&lab, "r", "eth1", "udp dst port 4789");

    let ports: Vec<u16> = (8000..8024).collect();
    let t = lab.traffic("tcp", FRONTEND, &ports, 240, None);
    assert!(
        t.failures.is_empty(),
        "{} failures: {:?}",
        t.failures.len(),
        t.failures.first()
    );
    assert_eq!(t.total(), 240);
    assert_eq!(t.served.len(), 3, "{:?}", t.served);
    for (backend, n) in &t.served {
        assert!(
            *n * 100 >= 240 * 15,
            "{backend} got {n} of 240: {:?}",
            t.served
        );
    }

    let seen = capture.stop();
    // "IP 10.0.0.2.SPORT > 10.9.0.1N.4789: VXLAN, flags [I] (0x08), vni 100"
    let outer: Vec<&String> = seen.iter().filter(|l| l.contains(": VXLAN")).collect();
    assert!(
        outer.len() >= 240,
        "VXLAN packets on the router: {} of {:?}",
        outer.len(),
        &seen[..seen.len().min(4)]
    );
    assert!(outer
        .iter()
        .all(|l| l.contains("vni 100") && l.contains("IP 10.0.0.2.")));
    // Each outer line is followed by the inner packet's: "IP 10.0.0.50.SPORT > 10.0.0.100.PORT: …".
    // Every packet of an inner flow has its flow's outer source port; the flows' ports differ
    // (a hash over 16384 ports: a few collisions among a few hundred flows). Counted over the
    // flows the capture holds, which under load may miss some.
    let mut by_flow: std::collections::BTreeMap<&str, BTreeSet<&str>> = Default::default();
    for pair in seen.windows(2) {
        let (Some(sport), Some(inner)) = (
            pair[0]
                .contains(": VXLAN")
                .then(|| pair[0].split("IP 10.0.0.2.").nth(1)?.split(' ').next())
                .flatten(),
            pair[1]
                .strip_prefix("IP ")
                .and_then(|l| l.split(':').next()),
        ) else {
            continue;
        };
        by_flow.entry(inner).or_default().insert(sport);
    }
    assert!(
        by_flow.len() >= 24,
        "inner flows captured: {}",
        by_flow.len()
    );
    assert!(
        by_flow.values().all(|s| s.len() == 1),
        "one outer source port per flow: {by_flow:?}"
    );
    let sports: BTreeSet<&str> = by_flow.values().flatten().copied().collect();
    eprintln!(
        "outer source ports: {} for {} inner flows captured",
        sports.len(),
        by_flow.len()
    );
    assert!(
        sports.len() * 10 >= by_flow.len() * 9,
        "outer source ports vary by flow: {} for {} flows; {:?}",
        sports.len(),
        by_flow.len(),
        &outer[..10]
    );
    let to: BTreeSet<&str> = outer
        .iter()
        .filter_map(|l| l.split(" > ").nth(1)?.split(".4789").next())
        .collect();
    assert_eq!(to.len(), 3, "to every backend's address: {to:?}");

    // Path-MTU discovery through the tunnel: a UDP datagram with DF too big once wrapped
    // (1440 bytes of payload: a 1468-byte IP packet, above 1500 - 50) is answered with
    // "fragmentation needed", and the client's kernel learns the tunnel's MTU.
    let out = lab.exec("c", &["python3", "-c", PMTU, FRONTEND]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1450");
    drop(lb);
}

/// Sends a 1440-byte UDP datagram with DF to port 8000 of the frontend, then prints the path
/// MTU the kernel learnt for it.
const PMTU: &str = r#"
import socket, sys, time
IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 10, 2, 14
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
s.connect((sys.argv[1], 8000))
mtu = 0
for _ in range(50):
    try:
        s.send(b"x" * 1440)
    except OSError:
        pass
    time.sleep(0.1)
    mtu = s.getsockopt(socket.IPPROTO_IP, IP_MTU)
    if mtu < 1500:
        break
print(mtu)
"#;

/// IPv6 inside the same IPv4 tunnel: an IPv6 frontend's flows balanced over the backends
/// behind VXLAN, each packet to its backend's address inside VXLAN, the IPv6 packet as the
/// client sent it, answered directly (DSR) through the router.
#[test]
fn ipv6_goes_inside_the_ipv4_tunnel_and_is_balanced() {
    let lab = Lab::up("vxlan6");
    let lb = Appliance::start(&lab, &lab.config());
    let capture = Capture::start_on(&lab, "r", "eth1", "udp dst port 4789");
    let ports: Vec<u16> = (8000..8024).collect();
    let t = lab.traffic("tcp", FRONTEND6, &ports, 120, None);
    let seen = capture.stop();
    assert!(
        t.failures.is_empty(),
        "{} failures: {:?}",
        t.failures.len(),
        t.failures.first()
    );
    assert_eq!(t.total(), 120);
    assert_eq!(t.served.len(), 3, "{:?}", t.served);
    // "TIME IP 10.0.0.2.SPORT > 10.9.0.1N.4789: VXLAN, …", then "IP6 fd00::50.PORT >
    // fd00::100.PORT: Flags …": IPv6 inside.
    let inside = seen
        .windows(2)
        .filter(|p| p[0].contains(": VXLAN") && p[1].starts_with("IP6 fd00::50."))
        .count();
    assert!(
        inside >= 120,
        "IPv6 inside VXLAN: {inside} of {:?}",
        &seen[..seen.len().min(4)]
    );
    drop(lb);
}

/// The routes through the kernel twin leave the host's own alone: a route of the host's to
/// the backends' network through another device (a management interface) is still there and
/// still what the host's own traffic takes, while the probes, bound to the twin, reach the
/// backends through the data plane (a `replace` of the same prefix took the host's route's
/// place, and the twin took it away with it on exit).
#[test]
fn the_twin_s_routes_leave_the_host_s_own_routes_alone() {
    let lab = Lab::up("vxlan");
    lab.add_probe(200, 2, 2);
    for cmd in [
        // Strict reverse-path filtering (some distributions' default): the probes' answers
        // come in on the twin, while the host routes their sources out of mgmt0.
        "sysctl -qw net.ipv4.conf.all.rp_filter=1",
        "ip link add mgmt0 type veth peer name mgmt1",
        "ip addr add 192.168.77.1/24 dev mgmt0",
        "ip link set mgmt1 up",
        "ip link set mgmt0 up",
        "ip route add 10.9.0.0/24 via 192.168.77.2 dev mgmt0",
    ] {
        let out = lab.exec("lb", &cmd.split(' ').collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lb = Appliance::start(&lab, &lab.config());
    for b in lab.backends() {
        lb.wait_health(b, true);
    }
    let shown = lab.exec("lb", &["ip", "route", "show", "10.9.0.0/24"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("via 192.168.77.2 dev mgmt0"), "{shown}");
    assert!(shown.contains("via 10.0.0.1 dev hp-lan"), "{shown}");
    let get = lab.exec("lb", &["ip", "route", "get", "10.9.0.11"]);
    let get = String::from_utf8_lossy(&get.stdout);
    assert!(get.contains("dev mgmt0"), "the host's own traffic: {get}");
    let t = lab.traffic("tcp", FRONTEND, &[8000, 8001], 20, None);
    assert!(t.failures.is_empty(), "{:?}", t.failures);
    drop(lb);
}
