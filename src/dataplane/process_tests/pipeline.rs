//! The burst pipeline: its fast path against the packet-by-packet slow path over bursts
//! that mix fast- and slow-path packets in every position, and the data plane against
//! `haports lookup` over random configs, health and flows.

use super::errors_and_transit::internal_and_public_on_the_same_backends;
use super::icmp_and_ipv6::{tcp6_frame, CLIENT6, FRONTEND6};
use super::never_panics::{states, templates};
use super::*;
use crate::dataplane::classify::takes_fast_path;
use crate::dataplane::pipeline::{classify_burst, decide_burst, process_burst, Classified};
use crate::dpdk::BURST;

/// Frames of many kinds, `variant` varying the client's port where there is one: the fast
/// path's (TCP and UDP to the frontend, by its MAC or the interface's) and the slow path's
/// (VLAN tag, IP options, fragments, NAT replies, ARP, pings, IPv6, lies about lengths,
/// other hosts' frames).
fn kind(which: usize, variant: u16) -> Vec<u8> {
    let port = 40_000 + variant;
    let templates = templates();
    match which {
        0 => syn(port, 443),
        1 => tcp_frame(CLIENT_MAC, CLIENT, port, FRONTEND, 443, TcpFlags::ACK),
        2 => udp_frame(CLIENT_MAC, CLIENT, port, FRONTEND, 53),
        3 => {
            let mut f = udp_frame(CLIENT_MAC, CLIENT, port, FRONTEND, 8080);
            f[0..6].copy_from_slice(&frontend_mac(IpAddr::V4(FRONTEND)).0);
            f
        }
        4 => tcp_frame(
            CLIENT_MAC,
            CLIENT,
            port,
            FRONTEND,
            443,
            TcpFlags::FIN | TcpFlags::ACK,
        ),
        5 => {
            // A VLAN tag: slow path.
            let mut f = syn(port, 443);
            f.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
            f
        }
        6 => {
            // IP options: slow path.
            let seg = tcp(CLIENT, FRONTEND, port, 443, TcpFlags::SYN, b"o");
            let ip = ipv4_with(CLIENT, FRONTEND, IpProtocol::TCP, DF, &[1, 1, 1, 0], &seg);
            eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &ip)
        }
        7 => {
            // A first fragment: slow path.
            let dgram = udp(CLIENT, FRONTEND, port, 53, &[7; 32]);
            let ip = ipv4_with(CLIENT, FRONTEND, IpProtocol::UDP, MF, &[], &dgram[..24]);
            eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &ip)
        }
        8 => {
            // The IP total length runs past the frame: slow path, dropped.
            let mut f = syn(port, 443);
            f[16..18].copy_from_slice(&1400u16.to_be_bytes());
            f
        }
        9 => {
            // For another host.
            let mut f = syn(port, 443);
            f[0..6].copy_from_slice(&OTHER_HOST_MAC.0);
            f
        }
        10 => {
            // Looped back: our own MAC as the source.
            tcp_frame(IF_MAC, CLIENT, port, FRONTEND, 443, TcpFlags::SYN)
        }
        11 => tcp6_frame(CLIENT_MAC, CLIENT6, port, FRONTEND6, 443, TcpFlags::SYN),
        12 => {
            // A TCP header whose data offset runs past the segment.
            let mut f = syn(port, 443);
            f[46] = 0xf0;
            f
        }
        n => templates[n % templates.len()].clone(),
    }
}

const KINDS: usize = 22;

#[test]
fn the_mix_has_both_paths() {
    let fwd = build(&ha_ports(), &[]);
    let fast: Vec<bool> = (0..KINDS)
        .map(|k| takes_fast_path(&kind(k, 0), LAN, &fwd))
        .collect();
    assert_eq!(
        &fast[..5],
        &[true; 5],
        "plain IPv4 TCP and UDP to the frontend"
    );
    assert!(fast[5..13].iter().all(|f| !f), "{fast:?}");
    // IPv6 TCP to an IPv6 frontend takes the fast path too, where there is one.
    let fwd6 = build(&super::icmp_and_ipv6::ipv6_config(), &[]);
    assert!(takes_fast_path(&kind(11, 0), LAN, &fwd6));
    // The templates from ping on: ping, ARP twice, IPv6 twice, SYN and UDP to the frontend
    // (fast), NAT replies.
    assert_eq!(
        &fast[13..22],
        &[false, false, false, false, false, true, true, false, false]
    );
}

/// Runs `frames` as one burst on `a` and one by one on `b`; both must agree on every action
/// and every byte.
fn burst_agrees(
    frames: &[Vec<u8>],
    fwd: &Forwarding,
    a: &mut WorkerState,
    b: &mut WorkerState,
    now: u64,
) -> Result<(), TestCaseError> {
    let mut burst = frames.to_vec();
    let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
    let traffic = |st: &WorkerState| -> Vec<(u64, u64)> {
        st.traffic
            .iter()
            .flat_map(|t| t.iter())
            .map(|t| (t.packets.get(), t.bytes.get()))
            .collect()
    };
    let mut expected = traffic(a);
    process_burst(&mut burst, LAN, a, fwd, now, &mut actions, &mut spill());
    // Stage 2 counts each packet it sends to a backend, its frame as it leaves.
    for (action, frame) in actions.iter().zip(&burst) {
        if let Action::Transmit {
            backend: Some(b), ..
        } = action
        {
            let (packets, bytes) = &mut expected[*b as usize];
            *packets += 1;
            *bytes += frame.len() as u64;
        }
    }
    prop_assert_eq!(traffic(a), expected, "backend traffic counted in stage 2");
    for (i, frame) in frames.iter().enumerate() {
        let mut one = frame.clone();
        let action = process(&mut one, LAN, b, fwd, now);
        prop_assert_eq!(
            actions[i],
            action,
            "packet {} of kind {:?}",
            i,
            &frame[..14]
        );
        prop_assert_eq!(&burst[i], &one, "packet {}", i);
    }
    prop_assert_eq!(a.flows.len(), b.flows.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every packet of a burst gets what the slow path alone gives it, whatever the mix and
    /// order of fast- and slow-path packets, over bursts that hit and miss the flow table.
    #[test]
    fn a_burst_decides_every_packet_as_the_slow_path_does(
        picks in proptest::collection::vec((0..KINDS, 0u16..6), 1..=BURST),
        state in 0usize..5,
        bursts in 1u64..4,
    ) {
        let fwd = match state {
            4 => build(&internal_and_public_on_the_same_backends(), &[]),
            s => states().into_iter().nth(s).expect("four states"),
        };
        let (mut a, _) = worker();
        let (mut b, _) = worker();
        for round in 0..bursts {
            let frames: Vec<Vec<u8>> = picks
                .iter()
                .map(|&(k, v)| kind(k, v.wrapping_add(round as u16)))
                .collect();
            burst_agrees(&frames, &fwd, &mut a, &mut b, NOW + round * 1000)?;
        }
    }
}

/// As the worker runs the stages: each burst classified before the one received ahead of it
/// is decided. Stage 1 changes nothing, so every packet gets what its burst gets through
/// both stages in turn; a burst classified under one forwarding state and decided under the
/// next (published in between) is classified again: its frontend, gone in the new state,
/// is not balanced by the frontend that took its number.
#[test]
fn bursts_classified_a_burst_ahead_are_decided_as_bursts_in_turn() {
    let fwd = build(&ha_ports(), &[]);
    let mut moved = ha_ports();
    moved.load_balancer[0].frontend[0].address = Ipv4Addr::new(10, 0, 0, 101).into();
    let mut next = build(&moved, &[]);
    next.generation = fwd.generation + 1;
    let bursts: Vec<Vec<Vec<u8>>> = (0..4u16)
        .map(|b| (0..KINDS).map(|k| kind(k, b)).collect())
        .collect();
    // Fed as the worker feeds them: the state changes before the last burst is decided.
    let states = [&fwd, &fwd, &fwd, &next];
    let (mut a, _) = worker();
    let (mut b, _) = worker();
    let mut ahead = bursts.clone();
    let mut found: Vec<Classified> = bursts.iter().map(|_| Classified::default()).collect();
    classify_burst(&mut ahead[0], LAN, &a, &fwd, &mut found[0]);
    for i in 0..bursts.len() {
        if let Some(next_burst) = ahead.get_mut(i + 1) {
            classify_burst(next_burst, LAN, &a, states[i], &mut found[i + 1]);
        }
        let now = NOW + i as u64;
        let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
        decide_burst(
            &mut ahead[i],
            &found[i],
            &mut a,
            states[i],
            now,
            &mut actions,
            &mut spill(),
        );
        let mut in_turn = bursts[i].clone();
        let mut expected = [Action::Drop(DropReason::Unsupported); BURST];
        process_burst(
            &mut in_turn,
            LAN,
            &mut b,
            states[i],
            now,
            &mut expected,
            &mut spill(),
        );
        assert_eq!(actions, expected, "burst {i}");
        assert_eq!(ahead[i], in_turn, "burst {i}");
    }
    // The last burst's fast packets were classified for a frontend the new state lacks.
    let mut stale = bursts[3].clone();
    let mut found = Classified::default();
    classify_burst(&mut stale, LAN, &a, &fwd, &mut found);
    let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
    decide_burst(
        &mut stale,
        &found,
        &mut a,
        &next,
        NOW + 9,
        &mut actions,
        &mut spill(),
    );
    assert!(
        actions[..5].iter().all(|a| !matches!(
            a,
            Action::Transmit {
                backend: Some(_),
                ..
            }
        )),
        "to 10.0.0.100, no longer a frontend: {:?}",
        &actions[..5]
    );
}

// ---------------------------------------------------------------------------------------
// The data plane and `haports lookup` decide alike

/// A load balancer over `backends` backends of one family, HA ports, floating or not.
fn random_config(v6: bool, backends: usize, floating: bool) -> Config {
    let addr = |i: usize| {
        if v6 {
            format!("fd00::{:x}", 0x11 + i)
        } else {
            format!("10.0.0.{}", 11 + i)
        }
    };
    let list: Vec<String> = (0..backends)
        .map(|i| {
            format!(
                r#"{{ address = "{}", mac = "02:00:00:00:01:{:02x}" }}"#,
                addr(i),
                i
            )
        })
        .collect();
    let frontend = if v6 { "fd00::100" } else { "10.0.0.100" };
    let text = format!(
        r#"
[dataplane]
maglev_table_size = 1021

[[interface]]
name = "lan"
port = 0
address = ["10.0.0.2/24", "10.0.1.2/24", "fd00::2/64"]

[[load_balancer]]
name = "ilb"
kind = "internal"

  [[load_balancer.frontend]]
  name = "fe1"
  address = "{frontend}"

  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [{}]

  [[load_balancer.rule]]
  name = "r"
  frontend = "fe1"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = {floating}
"#,
        list.join(", ")
    );
    Config::from_toml(&text, "test").expect("generated config parses")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// For random configs, health and flows (IPv4 and IPv6, TCP and UDP, to the frontend and
    /// in transit through it, NAT and DSR), the pipeline sends each new flow where
    /// `haports lookup` says, or drops it for the reason lookup gives.
    #[test]
    fn the_data_plane_and_lookup_pick_the_same_backend(
        v6 in any::<bool>(),
        backends in 1usize..6,
        floating in any::<bool>(),
        down in proptest::collection::vec(any::<bool>(), 6),
        flows in proptest::collection::vec((any::<u16>(), any::<u16>(), any::<u8>(), any::<bool>(), any::<bool>()), 1..BURST),
    ) {
        let cfg = random_config(v6, backends, floating);
        let obs = Observations {
            down: (0..backends)
                .filter(|&i| down[i])
                .map(|i| -> IpAddr {
                    if v6 { format!("fd00::{:x}", 0x11 + i).parse().unwrap() }
                    else { Ipv4Addr::new(10, 0, 0, 11 + i as u8).into() }
                })
                .collect(),
            interface_macs: vec![IF_MAC],
            ..Observations::default()
        };
        let fwd = Forwarding::build(&cfg, &obs, 1, None);
        let (mut st, _) = worker();
        let mut frames = Vec::new();
        let mut expected = Vec::new();
        let mut keys = Vec::new();
        for &(sport, dport, host, udp_kind, transit) in &flows {
            let (frame, key) = if v6 {
                let client = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 1, u16::from(host));
                let dst = if transit { Ipv6Addr::new(0xfd09, 0, 0, 0, 0, 0, 0, 1) } else { FRONTEND6 };
                let mut f = tcp6_frame(CLIENT_MAC, client, sport, dst, dport, TcpFlags::SYN);
                if transit {
                    f[0..6].copy_from_slice(&frontend_mac(IpAddr::V6(FRONTEND6)).0);
                }
                let key = FlowKey { proto: IpProtocol::TCP, src: client.into(), dst: dst.into(), src_port: sport, dst_port: dport };
                (f, key)
            } else {
                let client = Ipv4Addr::new(10, 0, 1, host.max(3));
                let dst = if transit { Ipv4Addr::new(10, 9, 0, 1) } else { FRONTEND };
                let mut f = if udp_kind {
                    udp_frame(CLIENT_MAC, client, sport, dst, dport)
                } else {
                    tcp_frame(CLIENT_MAC, client, sport, dst, dport, TcpFlags::SYN)
                };
                if transit {
                    f[0..6].copy_from_slice(&frontend_mac(IpAddr::V4(FRONTEND)).0);
                }
                let proto = if udp_kind { IpProtocol::UDP } else { IpProtocol::TCP };
                let key = FlowKey { proto, src: client.into(), dst: dst.into(), src_port: sport, dst_port: dport };
                (f, key)
            };
            expected.push(match lookup(&fwd, &key, transit.then_some(0)) {
                Ok(d) => Action::Transmit { interface: LAN, backend: Some(d.backend) },
                Err(reason) => Action::Drop(reason),
            });
            frames.push(frame);
            keys.push((key, transit));
        }
        let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
        process_burst(&mut frames, LAN, &mut st, &fwd, NOW, &mut actions, &mut spill());
        prop_assert_eq!(&actions[..frames.len()], &expected[..]);
        // And each frame left as addressed to that backend: its MAC, and under NAT (to the
        // frontend, not floating) its address; DSR and transit keep the destination.
        for (frame, (action, (key, transit))) in frames.iter().zip(actions.iter().zip(&keys)) {
            if let Action::Transmit { backend: Some(b), .. } = *action {
                let be = &fwd.backends[b as usize];
                prop_assert_eq!(&frame[..6], &be.mac.expect("configured").0[..]);
                let dst = crate::wire::parse_headers(frame).expect("still a packet").dst;
                let nat = !floating && !transit;
                prop_assert_eq!(dst, if nat { be.address } else { key.dst }, "{:?}", key);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// NAT replies: clients on either side of the backends' (and the frontend's) addresses

/// With an HA-ports rule and a public rule on the same backends and port, a reply can only be
/// mapped back by its flow's entry; the entry is found whichever side of the backend's and the
/// frontend's addresses the client's sorts on (keys are canonical), from a reply through the
/// burst pipeline.
#[test]
fn ambiguous_nat_replies_find_their_frontend_for_clients_below_and_above_the_backends() {
    let cfg = internal_and_public_on_the_same_backends();
    let low = Ipv4Addr::new(10, 0, 0, 5);
    let clients = [low, CLIENT].map(|c| (IpAddr::V4(c), CLIENT_MAC));
    let fwd = build_knowing(&cfg, &[], &clients);
    for client in [low, CLIENT] {
        let (mut st, _) = worker();
        let mut syn = tcp_frame(CLIENT_MAC, client, 40_000, FRONTEND, 80, TcpFlags::SYN);
        let i = backend_index(&fwd, to_backend(&mut syn, &mut st, &fwd));
        let mut reply = tcp_frame(
            BACKEND_MACS[i],
            BACKENDS[i],
            80,
            client,
            40_000,
            TcpFlags::SYN | TcpFlags::ACK,
        );
        let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
        let mut burst = vec![reply.clone()];
        process_burst(
            &mut burst,
            LAN,
            &mut st,
            &fwd,
            NOW,
            &mut actions,
            &mut spill(),
        );
        assert_eq!(
            actions[0],
            Action::Transmit {
                interface: LAN,
                backend: None
            },
            "client {client}"
        );
        reply = burst.remove(0);
        assert_eq!(
            endpoints(&reply),
            ((FRONTEND, 80), (client, 40_000)),
            "client {client} talks to the internal frontend, not the public one"
        );
        assert_checksums(&reply);
    }
}

/// NAT with two workers: a reply that lands on the worker that never saw its flow is mapped
/// back by the rules, as long as they are unambiguous (seed rule 3), for clients on either
/// side of the backends' addresses.
#[test]
fn nat_replies_on_another_worker_are_mapped_back_by_the_rules() {
    let low = Ipv4Addr::new(10, 0, 0, 5);
    // Both clients resolved, as the control thread publishes them.
    let clients = [low, CLIENT].map(|c| (IpAddr::V4(c), CLIENT_MAC));
    let fwd = build_knowing(&ha_ports(), &[], &clients);
    for client in [low, CLIENT] {
        let (mut first, _) = worker();
        let (mut other, _) = worker();
        let mut syn = tcp_frame(CLIENT_MAC, client, 40_000, FRONTEND, 443, TcpFlags::SYN);
        let i = backend_index(&fwd, to_backend(&mut syn, &mut first, &fwd));
        let mut reply = tcp_frame(
            BACKEND_MACS[i],
            BACKENDS[i],
            443,
            client,
            40_000,
            TcpFlags::SYN | TcpFlags::ACK,
        );
        let action = process(&mut reply, LAN, &mut other, &fwd, NOW);
        assert_eq!(
            action,
            Action::Transmit {
                interface: LAN,
                backend: None
            }
        );
        assert_eq!(endpoints(&reply), ((FRONTEND, 443), (client, 40_000)));
        assert_eq!(macs(&reply).0, CLIENT_MAC);
        assert!(
            other.flows.is_empty(),
            "the other worker remembered nothing"
        );
    }
}
