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
    let mut frame = tcp_frame(
        BACKEND_MACS[i],
        BACKENDS[i],
        80,
        CLIENT,
        sport,
        TcpFlags::ACK,
    );
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
    let (fwd_before, fwd_after) = (build(&before, &[]), build(&after, &[]));
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
