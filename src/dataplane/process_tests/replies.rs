//! The replies of ambiguous NAT flows (an HA-ports rule and a public rule on the same
//! backends, whose replies from port 80 the rules map to the public frontend): each finds the
//! frontend its own flow was addressed to, for as long as that flow's entry lives.

use super::errors_and_transit::internal_and_public_on_the_same_backends;
use super::*;

const PUBLIC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 200);

/// A TCP packet of the client's flow `sport` → `frontend`:80.
fn from_client(frontend: Ipv4Addr, sport: u16, flags: u8) -> Vec<u8> {
    tcp_frame(CLIENT_MAC, CLIENT, sport, frontend, 80, flags)
}

/// Sends backend `i`'s reply to the client's port `sport` at `at`; the frontend (address and
/// port) it leaves from.
fn reply(i: usize, sport: u16, st: &mut WorkerState, fwd: &Forwarding, at: u64) -> (Ipv4Addr, u16) {
    let frame = tcp_frame(
        BACKEND_MACS[i],
        BACKENDS[i],
        80,
        CLIENT,
        sport,
        TcpFlags::ACK,
    );
    sent_back(frame, st, fwd, at)
}

/// A backend's reply `frame`, rewritten at `at` and sent back to the client: the frontend
/// (address and port) it leaves from.
fn sent_back(
    mut frame: Vec<u8>,
    st: &mut WorkerState,
    fwd: &Forwarding,
    at: u64,
) -> (Ipv4Addr, u16) {
    let action = process(&mut frame, LAN, st, fwd, at);
    assert!(
        matches!(action, Action::Transmit { backend: None, .. }),
        "{action:?}"
    );
    assert_checksums(&frame);
    endpoints(&frame).0
}

/// A flow's packet decided for a backend: which one (by index in `BACKENDS`).
fn decided(frame: &mut [u8], st: &mut WorkerState, fwd: &Forwarding, at: u64) -> usize {
    match process(frame, LAN, st, fwd, at) {
        Action::Transmit {
            backend: Some(b), ..
        } => backend_index(fwd, b),
        other => panic!("{other:?}"),
    }
}

/// A lone SYN's flow takes the idle timeout with the handshake's ACK, and its replies with
/// it: the backend's reply a minute later (past the SYN's 5 s) still comes from the frontend
/// the client addressed, whichever of the two.
#[test]
fn a_reply_keeps_its_frontend_past_the_handshake() {
    let fwd = build(&internal_and_public_on_the_same_backends(), &[]);
    for frontend in [FRONTEND, PUBLIC] {
        let (mut st, _) = worker();
        let i = decided(
            &mut from_client(frontend, 40_000, TcpFlags::SYN),
            &mut st,
            &fwd,
            NOW,
        );
        let ack = decided(
            &mut from_client(frontend, 40_000, TcpFlags::ACK),
            &mut st,
            &fwd,
            NOW + 100,
        );
        assert_eq!(ack, i, "the flow stays on its backend");
        let at = NOW + 60_000;
        assert_eq!(
            reply(i, 40_000, &mut st, &fwd, at),
            (frontend, 80),
            "via {frontend}"
        );
    }
}

/// The mapping lives as long as the flow's entry, which the client's packets renew: a flow
/// whose backend is silent for longer than the idle timeout (240 s) while its client goes on
/// sending still gets its reply from the frontend it addressed. (A reply entry of its own,
/// renewed only by replies, had expired by then, and the rules sent the reply from the
/// public frontend.)
#[test]
fn a_reply_after_a_long_silence_of_the_backend_keeps_its_frontend() {
    let fwd = build(&internal_and_public_on_the_same_backends(), &[]);
    let (mut st, _) = worker();
    let i = decided(
        &mut from_client(FRONTEND, 40_000, TcpFlags::SYN),
        &mut st,
        &fwd,
        NOW,
    );
    for s in 0..=4u64 {
        let at = NOW + 100 + s * 100_000;
        let b = decided(
            &mut from_client(FRONTEND, 40_000, TcpFlags::ACK),
            &mut st,
            &fwd,
            at,
        );
        assert_eq!(b, i, "the flow stays on its backend at {s}00 s");
    }
    let at = NOW + 450_000;
    assert_eq!(reply(i, 40_000, &mut st, &fwd, at), (FRONTEND, 80));
}

/// A reload that makes the backends' replies ambiguous (the public rule added on them) leaves
/// the flows established before it, which recorded nothing for their replies then, their
/// frontend: the reply finds its flow. (The rules alone send it from the public frontend.)
#[test]
fn a_reload_making_the_replies_ambiguous_keeps_established_flows_frontends() {
    let after = internal_and_public_on_the_same_backends();
    let mut before = after.clone();
    before.load_balancer.truncate(1);
    let fwd_before = build(&before, &[]);
    let fwd_after = rebuild(&after, &fwd_before);
    let (mut st, _) = worker();
    let mut flows = Vec::new();
    for sport in 40_000..40_016 {
        let i = decided(
            &mut from_client(FRONTEND, sport, TcpFlags::SYN),
            &mut st,
            &fwd_before,
            NOW,
        );
        assert_eq!(reply(i, sport, &mut st, &fwd_before, NOW), (FRONTEND, 80));
        flows.push((sport, i));
    }
    for &(sport, i) in &flows {
        let at = NOW + 1_000;
        let b = decided(
            &mut from_client(FRONTEND, sport, TcpFlags::ACK),
            &mut st,
            &fwd_after,
            at,
        );
        assert_eq!(b, i, "the reload moved no flow");
        assert_eq!(
            reply(i, sport, &mut st, &fwd_after, at),
            (FRONTEND, 80),
            "flow {sport}"
        );
    }
    // A new flow to the public frontend after the reload gets its replies from there.
    let i = decided(
        &mut from_client(PUBLIC, 41_000, TcpFlags::SYN),
        &mut st,
        &fwd_after,
        NOW,
    );
    assert_eq!(reply(i, 41_000, &mut st, &fwd_after, NOW), (PUBLIC, 80));
}

/// Every flow the table holds has its replies mapped back, however full the worker's tables:
/// nothing but the flow's own entry is needed (a side table of reply entries, a quarter of the
/// flow table's size, left the replies of flows beyond it to the rules).
#[test]
fn every_held_flow_s_replies_find_their_frontend() {
    let fwd = build(&internal_and_public_on_the_same_backends(), &[]);
    let mut st = WorkerState::new(8, Arc::new(ArrayQueue::new(64)));
    let flows: Vec<(u16, usize)> = (40_000..40_008)
        .map(|sport| {
            let frame = &mut from_client(FRONTEND, sport, TcpFlags::SYN);
            (sport, decided(frame, &mut st, &fwd, NOW))
        })
        .collect();
    assert_eq!(
        (st.flows.v4.len(), st.flows.refused),
        (8, 0),
        "every flow held"
    );
    for (sport, i) in flows {
        assert_eq!(
            reply(i, sport, &mut st, &fwd, NOW),
            (FRONTEND, 80),
            "flow {sport}"
        );
    }
}

/// A reply from a backend its flow no longer is on (the flow moved when the backend went
/// down) is not taken for that flow's: the rules map it.
#[test]
fn a_reply_from_a_backend_the_flow_left_is_mapped_by_the_rules() {
    let cfg = internal_and_public_on_the_same_backends();
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    let i = decided(
        &mut from_client(FRONTEND, 40_000, TcpFlags::SYN),
        &mut st,
        &fwd,
        NOW,
    );
    let down = build(&cfg, &[BACKENDS[i]]);
    let j = decided(
        &mut from_client(FRONTEND, 40_000, TcpFlags::ACK),
        &mut st,
        &down,
        NOW,
    );
    assert_ne!(j, i, "the flow moved");
    assert_eq!(reply(j, 40_000, &mut st, &down, NOW), (FRONTEND, 80));
    assert_eq!(reply(i, 40_000, &mut st, &down, NOW), (PUBLIC, 80));
}

/// A backend's ICMP error about an ambiguous NAT flow's segment reaches the client from the
/// frontend the flow was addressed to, quoting the segment as the client sent it there.
#[test]
fn a_backend_s_icmp_error_about_an_ambiguous_flow_names_its_frontend() {
    let fwd = build(&internal_and_public_on_the_same_backends(), &[]);
    let (mut st, _) = worker();
    let i = decided(
        &mut from_client(FRONTEND, 40_000, TcpFlags::SYN),
        &mut st,
        &fwd,
        NOW,
    );
    let segment = tcp(CLIENT, BACKENDS[i], 40_000, 80, TcpFlags::SYN, &[]);
    let got = ipv4(CLIENT, BACKENDS[i], IpProtocol::TCP, &segment);
    let mut m = vec![IcmpType::DEST_UNREACHABLE, 13, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&got[..28]);
    let csum = internet_checksum(&m);
    m[2..4].copy_from_slice(&csum.to_be_bytes());
    let packet = ipv4(BACKENDS[i], CLIENT, IpProtocol::ICMP, &m);
    let mut frame = eth(IF_MAC, BACKEND_MACS[i], EtherType::IPV4, &packet);
    let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
    assert!(
        matches!(action, Action::Transmit { backend: None, .. }),
        "{action:?}"
    );
    let ip = Ipv4Packet::new_checked(&frame[ETH_LEN..]).unwrap();
    assert_eq!((ip.src(), ip.dst()), (FRONTEND, CLIENT));
    let q = crate::wire::QuotedIpv4::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (q.src(), q.dst(), q.ports()),
        (CLIENT, FRONTEND, (40_000, 80))
    );
}

/// An internal HA-ports frontend (`.100`) and a public one (`.200`) whose rule takes `proto`
/// port `from` to port `to` of the same three backends, over IPv4 or IPv6 (`fd00::`).
pub(super) fn shared_backends(v6: bool, proto: &str, from: u16, to: u16) -> Config {
    let (net, pre) = if v6 {
        ("\"fd00::2/64\"", "fd00::")
    } else {
        ("\"10.0.0.2/24\", \"10.0.1.2/24\"", "10.0.0.")
    };
    let pool = r#"
  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [
    { address = "PRE11", mac = "02:00:00:00:00:11" },
    { address = "PRE12", mac = "02:00:00:00:00:12" },
    { address = "PRE13", mac = "02:00:00:00:00:13" },
  ]
"#;
    let text = format!(
        r#"
[dataplane]
maglev_table_size = 1021

[[interface]]
name = "lan"
port = 0
address = [{net}]

[[load_balancer]]
name = "ilb"
kind = "internal"
  [[load_balancer.frontend]]
  name = "fe1"
  address = "PRE100"
{pool}
  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe1"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0

[[load_balancer]]
name = "plb"
kind = "public"
  [[load_balancer.frontend]]
  name = "web"
  address = "PRE200"
{pool}
  [[load_balancer.rule]]
  name = "public"
  frontend = "web"
  backend_pool = "pool"
  protocol = "{proto}"
  frontend_port = {from}
  backend_port = {to}
"#
    );
    Config::from_toml(&text.replace("PRE", pre), "test").expect("test config parses")
}

/// A backend's reply from port `to` may belong to a flow of the public rule (to its port
/// `from`) or of the HA-ports rule (to the internal frontend's port `to`), which the rules map
/// to the public frontend: each goes back from the frontend its client addressed, over TCP,
/// UDP and IPv6.
#[test]
fn replies_from_a_translated_port_find_the_frontend_of_either_rule() {
    let cases = [
        (false, "tcp", 443, 8443),
        (false, "udp", 53, 5353),
        (true, "tcp", 443, 8443),
    ];
    for (v6, proto, from, to) in cases {
        let cfg = shared_backends(v6, proto, from, to);
        assert_eq!(crate::config::validate(&cfg), vec![]);
        let fwd = build(&cfg, &[]);
        let (mut st, _) = worker();
        // The frontends' addresses end in 100 and 200 as written (hexadecimal in IPv6).
        let at = |last: u16| -> IpAddr {
            if v6 {
                let hex = u16::from_str_radix(&last.to_string(), 16).unwrap();
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, hex))
            } else {
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, last as u8))
            }
        };
        let client = if v6 {
            IpAddr::V6(icmp_and_ipv6::CLIENT6)
        } else {
            IpAddr::V4(CLIENT)
        };
        let frame = |src: IpAddr, sport: u16, dst: IpAddr, dport: u16, mac: MacAddr| match (
            src, dst, proto,
        ) {
            (IpAddr::V6(s), IpAddr::V6(d), _) => {
                icmp_and_ipv6::tcp6_frame(mac, s, sport, d, dport, TcpFlags::ACK)
            }
            (IpAddr::V4(s), IpAddr::V4(d), "udp") => udp_frame(mac, s, sport, d, dport),
            (IpAddr::V4(s), IpAddr::V4(d), _) => tcp_frame(mac, s, sport, d, dport, TcpFlags::ACK),
            _ => unreachable!("one family"),
        };
        let source = |f: &[u8]| -> (IpAddr, u16) {
            if v6 {
                let ((a, p), _) = icmp_and_ipv6::endpoints6(f);
                (IpAddr::V6(a), p)
            } else {
                let ((a, p), _) = endpoints(f);
                (IpAddr::V4(a), p)
            }
        };
        for (sport, frontend, port) in [(40_000, at(200), from), (40_001, at(100), to)] {
            let mut out = frame(client, sport, frontend, port, CLIENT_MAC);
            let b = match process(&mut out, LAN, &mut st, &fwd, NOW) {
                Action::Transmit {
                    backend: Some(b), ..
                } => b,
                other => panic!("{proto} to {frontend}: {other:?}"),
            };
            let backend = fwd.backends[b as usize].address;
            let mac = BACKEND_MACS[backend_index_any(backend)];
            let mut back = frame(backend, to, client, sport, mac);
            let action = process(&mut back, LAN, &mut st, &fwd, NOW);
            assert!(
                matches!(action, Action::Transmit { backend: None, .. }),
                "{action:?}"
            );
            assert_eq!(source(&back), (frontend, port), "{proto} via {frontend}");
        }
    }
}

/// Which of the three backends (`.11` to `.13`, either family) an address is.
fn backend_index_any(addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(a) => usize::from(a.octets()[3] - 11),
        IpAddr::V6(a) => usize::from(a.segments()[7] - 0x11),
    }
}

/// Only a backend some reply of which the rules would give two frontends is looked up by its
/// flows: the servers of `examples/port-translation.toml` (three translating rules, two
/// frontends, each server port one frontend's) have every reply mapped by its port.
#[test]
fn only_backends_with_ambiguous_replies_have_their_flows_looked_up() {
    let shared = build(&internal_and_public_on_the_same_backends(), &[]);
    for b in BACKENDS {
        assert_eq!(shared.reply_candidates(IpAddr::V4(b)).len(), 2, "{b}");
    }
    let text = include_str!("../../../examples/port-translation.toml");
    let cfg = Config::from_toml(text, "port-translation").expect("the example parses");
    let ports = build(&cfg, &[]);
    assert!(ports.backends.len() >= 3, "servers built");
    for b in &ports.backends {
        assert_eq!(ports.reply_candidates(b.address), &[], "{}", b.address);
    }
}

/// A UDP request, one datagram, whose answers go on for longer than a lone packet's 5 s:
/// the first answer confirms the flow, and the later ones still leave from the frontend the
/// client addressed, whichever of the two. (Its entry had lapsed after 5 s, and the rules
/// sent the answers from the public frontend.)
#[test]
fn a_one_datagram_request_keeps_its_frontend_for_its_answers() {
    let fwd = build(&shared_backends(false, "udp", 80, 80), &[]);
    for frontend in [FRONTEND, PUBLIC] {
        let (mut st, _) = worker();
        let mut request = udp_frame(CLIENT_MAC, CLIENT, 40_000, frontend, 80);
        let i = decided(&mut request, &mut st, &fwd, NOW);
        for at in [NOW + 1_000, NOW + 60_000, NOW + 120_000] {
            let answer = udp_frame(BACKEND_MACS[i], BACKENDS[i], 80, CLIENT, 40_000);
            let from = sent_back(answer, &mut st, &fwd, at);
            assert_eq!(from, (frontend, 80), "via {frontend} at {at}");
        }
    }
}

/// A backend's SYN-ACK confirms nothing: a SYN's entry (a forged source's, which never
/// sends the handshake's ACK) still goes after 5 s, though the backend answered it; only the
/// client's ACK earns the idle timeout (a flood of forged SYNs at ambiguous backends held
/// the table for it).
#[test]
fn a_syn_ack_does_not_confirm_a_lone_syn() {
    let fwd = build(&internal_and_public_on_the_same_backends(), &[]);
    let (mut st, _) = worker();
    let i = decided(
        &mut from_client(FRONTEND, 40_000, TcpFlags::SYN),
        &mut st,
        &fwd,
        NOW,
    );
    assert_eq!(reply(i, 40_000, &mut st, &fwd, NOW + 100), (FRONTEND, 80));
    assert_eq!(st.flows.len(), 1);
    st.flows
        .expire(NOW + 100 + crate::lb::decision::SYN_TIMEOUT_MS, 1 << 20);
    assert_eq!(st.flows.len(), 0, "the lone SYN's entry went after 5 s");
}
