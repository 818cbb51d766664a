//! Flow stickiness and health; every drop reason.

use super::*;

// ---------------------------------------------------------------------------------------
// Flow stickiness and health

#[test]
fn same_five_tuple_always_gets_the_same_backend() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let first = to_backend(&mut syn(40_000, 443), &mut st, &fwd);
    for flags in [TcpFlags::ACK, TcpFlags::PSH | TcpFlags::ACK, TcpFlags::ACK] {
        let mut frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, flags);
        assert_eq!(to_backend(&mut frame, &mut st, &fwd), first);
    }
    assert_eq!(st.flows.len(), 1, "one entry for the flow");
}

#[test]
fn distinct_flows_spread_over_the_pool() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut seen = [false; 3];
    for sport in 40_000..40_064 {
        let mut frame = syn(sport, 443);
        let key = flow_key(&frame);
        let b = to_backend(&mut frame, &mut st, &fwd);
        assert_eq!(lookup(&fwd, &key, None).unwrap().backend, b);
        seen[backend_index(&fwd, b)] = true;
    }
    assert_eq!(seen, [true; 3]);
    assert_eq!(st.flows.len(), 64, "one entry per flow");
}

#[test]
fn established_flow_keeps_its_backend_when_another_goes_down() {
    let cfg = ha_ports();
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    let b = to_backend(&mut syn(40_000, 443), &mut st, &fwd);
    let i = backend_index(&fwd, b);
    let other = BACKENDS[(i + 1) % 3];

    let fwd = build(&cfg, &[other]);
    let mut frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::ACK);
    let new_flows = |st: &WorkerState| st.new_flows.iter().map(|c| c.get()).sum::<u64>();
    let decided = new_flows(&st);
    assert_eq!(to_backend(&mut frame, &mut st, &fwd), b);
    // By its flow-table entry, not a new decision that happened to agree.
    assert_eq!(
        new_flows(&st),
        decided,
        "no new decision for an established flow"
    );
    assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));
}

/// Flows a full table refuses are counted as refused, each packet (decided anew), and not
/// as new flows: every packet of one counted as a new flow of its backend, so that a full
/// table's new-flow rates said more flows than there were.
#[test]
fn flows_a_full_table_refuses_are_not_new_flows_at_each_packet() {
    let fwd = build(&ha_ports(), &[]);
    let mut st = WorkerState::new(4, crate::dataplane::NeighbourReports::new_queue());
    for _ in 0..3 {
        for sport in 40_000..40_010 {
            to_backend(
                &mut udp_frame(CLIENT_MAC, CLIENT, sport, FRONTEND, 53),
                &mut st,
                &fwd,
            );
        }
    }
    let new_flows: u64 = st.new_flows.iter().map(|c| c.get()).sum();
    assert_eq!(st.flows.len(), 4);
    assert_eq!(new_flows, 4, "the flows remembered");
    assert_eq!(
        st.flows.refused, 18,
        "six flows refused, at each of their packets"
    );
}

#[test]
fn flow_moves_to_a_healthy_backend_when_its_own_goes_down() {
    let cfg = ha_ports();
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    let b = to_backend(&mut syn(40_000, 443), &mut st, &fwd);
    let down = BACKENDS[backend_index(&fwd, b)];

    let fwd = build(&cfg, &[down]);
    let mut frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::ACK);
    let key = flow_key(&frame);
    let moved = to_backend(&mut frame, &mut st, &fwd);

    assert_ne!(moved, b);
    assert!(fwd.backends[moved as usize].healthy);
    assert_eq!(lookup(&fwd, &key, None).unwrap().backend, moved);
    let j = backend_index(&fwd, moved);
    assert_eq!(endpoints(&frame).1, (BACKENDS[j], 443));
    assert_eq!(macs(&frame), (BACKEND_MACS[j], IF_MAC));
    assert_checksums(&frame);
    assert_eq!(st.flows.len(), 1, "the entry is replaced, not duplicated");

    // It stays on its new backend.
    let mut frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::ACK);
    assert_eq!(to_backend(&mut frame, &mut st, &fwd), moved);
}

#[test]
fn with_every_backend_down_new_flows_drop_and_established_ones_keep_going() {
    let cfg = ha_ports();
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    let b = to_backend(&mut syn(40_000, 443), &mut st, &fwd);

    // Nowhere better to go: the established flow stays on its (probe-failing) backend.
    let fwd = build(&cfg, &BACKENDS);
    let mut established = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::ACK);
    assert_eq!(to_backend(&mut established, &mut st, &fwd), b);
    let mut new = syn(40_001, 443);
    assert_eq!(
        process(&mut new, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoHealthyBackend)
    );
}

// ---------------------------------------------------------------------------------------
// Drops

#[test]
fn frame_for_another_hosts_mac_is_not_for_us() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = syn(40_000, 443);
    frame[0..6].copy_from_slice(&OTHER_HOST_MAC.0);
    let before = frame.clone();
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NotForUs)
    );
    assert_eq!(frame, before);
    assert!(st.flows.is_empty());
}

#[test]
fn frame_from_our_own_mac_is_not_for_us() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = tcp_frame(IF_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::SYN);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NotForUs)
    );
    let mut arp = arp_request(IF_MAC, OWN, FRONTEND);
    assert_eq!(
        process(&mut arp, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NotForUs)
    );
}

#[test]
fn ipv4_to_an_unknown_address_has_no_frontend() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = tcp_frame(
        CLIENT_MAC,
        CLIENT,
        40_000,
        Ipv4Addr::new(10, 0, 0, 77),
        443,
        TcpFlags::SYN,
    );
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoFrontend)
    );
}

/// Spoils a good frame in one way.
type Mangle = fn(&mut Vec<u8>);

#[test]
fn short_or_inconsistent_ipv4_headers_are_truncated_or_malformed() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let good = {
        let seg = tcp(CLIENT, FRONTEND, 40_000, 443, TcpFlags::SYN, &[]);
        let mut f = [IF_MAC.0, CLIENT_MAC.0].concat();
        f.extend_from_slice(&EtherType::IPV4.to_be_bytes());
        f.extend_from_slice(&ipv4(CLIENT, FRONTEND, IpProtocol::TCP, &seg));
        f
    };
    assert_eq!(good.len(), 54, "no padding: lengths below are exact");
    let cases: [(&str, Mangle, DropReason); 7] = [
        (
            "ethernet header cut",
            |f| f.truncate(10),
            DropReason::Truncated,
        ),
        (
            "IPv4 header cut",
            |f| f.truncate(ETH_LEN + 19),
            DropReason::Truncated,
        ),
        (
            "total length past the frame",
            |f| f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&100u16.to_be_bytes()),
            DropReason::Truncated,
        ),
        (
            "TCP header cut",
            |f| {
                f.truncate(ETH_LEN + 30);
                f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&30u16.to_be_bytes())
            },
            DropReason::Truncated,
        ),
        (
            "version 6 in an IPv4 ethertype",
            |f| f[ETH_LEN] = 0x65,
            DropReason::Malformed,
        ),
        (
            "header length below 20",
            |f| f[ETH_LEN] = 0x44,
            DropReason::Malformed,
        ),
        (
            "total length below the header",
            |f| f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&12u16.to_be_bytes()),
            DropReason::Malformed,
        ),
    ];
    for (what, mangle, want) in cases {
        let mut frame = good.clone();
        mangle(&mut frame);
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::Drop(want),
            "{what}"
        );
    }
    assert!(st.flows.is_empty());
}

/// The three fragments of one UDP datagram from `src` to `dst` (ident 0x1234): the first
/// carries the UDP header, the later two only payload (offsets in 8-byte units).
pub(super) fn udp_fragments(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<Vec<u8>> {
    let dgram = udp(src, dst, sport, dport, &[0x5a; 40]);
    [(MF, 0..24), (MF | 3, 24..40), (6, 40..48)]
        .into_iter()
        .map(|(ff, range)| ipv4_with(src, dst, IpProtocol::UDP, ff, &[], &dgram[range]))
        .collect()
}

#[test]
fn every_fragment_of_a_datagram_follows_its_first_and_orphans_are_dropped() {
    for floating in [false, true] {
        let fwd = build(&config("all", 0, 0, floating), &[]);
        let (mut st, _) = worker();
        let mut chosen = None;
        for (i, packet) in udp_fragments(CLIENT, 5353, FRONTEND, 53)
            .into_iter()
            .enumerate()
        {
            let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &packet);
            let b = to_backend(&mut frame, &mut st, &fwd);
            assert_eq!(
                *chosen.get_or_insert(b),
                b,
                "fragment {i} follows the first"
            );
            let ip = Ipv4Packet::new_checked(&frame[ETH_LEN..]).unwrap();
            assert!(ip.verify_checksum());
            let expected = if floating {
                FRONTEND
            } else {
                BACKENDS[backend_index(&fwd, b)]
            };
            assert_eq!(ip.dst(), expected, "fragment {i} rewritten like the first");
            let j = backend_index(&fwd, b);
            assert_eq!(
                macs(&frame),
                (BACKEND_MACS[j], IF_MAC),
                "fragment {i}'s MACs"
            );
            if i > 0 || floating {
                // (The first fragment's UDP checksum follows the NATed address.)
                assert_eq!(
                    ip.payload(),
                    &packet[20..],
                    "fragment {i}'s payload untouched"
                );
            }
        }
        assert_eq!(st.fragments.len(), 1);
    }
    // A later fragment whose first was never seen has nowhere known to go.
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let orphan = udp_fragments(CLIENT, 5353, FRONTEND, 53).remove(1);
    let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &orphan);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Fragment)
    );
}

/// A TCP fragment 8 bytes in overlaps its first and would rewrite the flags checked there
/// (RFC 1858's overlapping-fragment attack): dropped, while the datagram's true later
/// fragment follows its first.
#[test]
fn a_tcp_fragment_overlapping_its_firsts_header_is_dropped() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let segment = tcp(CLIENT, FRONTEND, 40_000, 443, TcpFlags::SYN, &[0x5a; 20]);
    let fragment = |ff: u16, range: std::ops::Range<usize>, data: &[u8]| {
        let packet = ipv4_with(CLIENT, FRONTEND, IpProtocol::TCP, ff, &[], &data[range]);
        eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &packet)
    };
    let mut first = fragment(MF, 0..24, &segment);
    let b = to_backend(&mut first, &mut st, &fwd);
    // Bytes 8.. of the header again, the flags (byte 13) now SYN and FIN.
    let mut overlapping = segment.clone();
    overlapping[13] = TcpFlags::SYN | TcpFlags::FIN;
    let mut overlap = fragment(MF | 1, 8..24, &overlapping);
    let action = process(&mut overlap, LAN, &mut st, &fwd, NOW);
    assert_eq!(action, Action::Drop(DropReason::Fragment));
    let mut rest = fragment(3, 24..40, &segment);
    assert_eq!(
        to_backend(&mut rest, &mut st, &fwd),
        b,
        "the true rest follows"
    );
}

/// Through a NAT rule that translates the port, the first fragment gets the backend's port in
/// its header (whose UDP length counts the whole datagram), the later ones follow it, and the
/// datagram's checksum stays right; the backend's fragmented answer gets the frontend's port.
#[test]
fn fragments_through_a_port_translating_nat_rule_keep_every_rewrite() {
    let fwd = build(&config("udp", 53, 5300, false), &[]);
    let (mut st, _) = worker();
    let mut out = Vec::new();
    let mut chosen = None;
    for packet in udp_fragments(CLIENT, 5353, FRONTEND, 53) {
        let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &packet);
        let b = to_backend(&mut frame, &mut st, &fwd);
        assert_eq!(
            *chosen.get_or_insert(b),
            b,
            "each fragment follows the first"
        );
        out.extend_from_slice(
            Ipv4Packet::new_checked(&frame[ETH_LEN..])
                .unwrap()
                .payload(),
        );
    }
    let backend = BACKENDS[backend_index(&fwd, chosen.unwrap())];
    let datagram = UdpPacket::new_checked(&out[..]).unwrap();
    assert_eq!(datagram.dst_port(), 5300, "the backend port");
    assert!(datagram.verify_checksum_v4(CLIENT, backend));

    let i = backend_index(&fwd, chosen.unwrap());
    let mut back = Vec::new();
    for packet in udp_fragments(backend, 5300, CLIENT, 5353) {
        let mut frame = eth(IF_MAC, BACKEND_MACS[i], EtherType::IPV4, &packet);
        assert!(matches!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::Transmit { backend: None, .. }
        ));
        back.extend_from_slice(
            Ipv4Packet::new_checked(&frame[ETH_LEN..])
                .unwrap()
                .payload(),
        );
    }
    let answer = UdpPacket::new_checked(&back[..]).unwrap();
    assert_eq!(answer.src_port(), 53, "the frontend port");
    assert!(answer.verify_checksum_v4(FRONTEND, CLIENT));
}

/// Under `cfg`'s state, a datagram's first fragment decided: the state, the worker, the
/// first's backend, and the second fragment's frame.
fn first_fragment_decided(cfg: &Config) -> (Forwarding, WorkerState, BackendId, Vec<u8>) {
    let fwd = build(cfg, &[]);
    let (mut st, _) = worker();
    let fragments = udp_fragments(CLIENT, 5353, FRONTEND, 53);
    let first = &mut eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &fragments[0]);
    let b = to_backend(first, &mut st, &fwd);
    let later = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &fragments[1]);
    (fwd, st, b, later)
}

/// The later fragments go as the flows do: not to a backend that went down since the first.
#[test]
fn later_fragments_are_not_sent_to_a_backend_that_went_down_since_the_first() {
    let cfg = ha_ports();
    let (fwd, mut st, b, mut later) = first_fragment_decided(&cfg);
    let down = build(&cfg, &[BACKENDS[backend_index(&fwd, b)]]);
    assert_eq!(
        process(&mut later, LAN, &mut st, &down, NOW),
        Action::Drop(DropReason::Fragment)
    );
}

/// `cfg` with its rule following a TCP probe: a new state of its pool, whose backends take
/// new ids (the old ones retired) where a reload makes this change.
pub(super) fn probed(cfg: &Config) -> Config {
    let mut next = cfg.clone();
    let lb = &mut next.load_balancer[0];
    lb.probe = vec![crate::config::Probe {
        name: "ssh".into(),
        protocol: crate::config::ProbeProtocol::Tcp,
        port: 22,
        path: None,
        interval_ms: 1000,
        unhealthy_threshold: 2,
        healthy_threshold: 2,
    }];
    lb.rule[0].probe = Some("ssh".into());
    next
}

/// The later fragments go as the flows do: to the same backend where a reload gave its rule
/// another probe (its id retired for one in the pool's new state). They were dropped.
#[test]
fn later_fragments_follow_their_backend_across_a_reload_that_changes_the_probe() {
    let cfg = ha_ports();
    let (fwd, mut st, b, mut later) = first_fragment_decided(&cfg);
    let reloaded = rebuild(&probed(&cfg), &fwd);
    assert!(
        reloaded.backends[b as usize].retired,
        "the old id is retired"
    );
    let Action::Transmit {
        backend: Some(now), ..
    } = process(&mut later, LAN, &mut st, &reloaded, NOW)
    else {
        panic!("dropped")
    };
    assert_ne!(now, b);
    assert_eq!(
        reloaded.backends[now as usize].address,
        fwd.backends[b as usize].address
    );
    assert_eq!(ip(&later).dst(), BACKENDS[backend_index(&fwd, b)]);
}

/// A flood of first fragments whose later ones never come fills the fragment table; the
/// oldest datagrams then make room, so that a real datagram after the flood is still
/// followed whole, and the flood's oldest datagrams are what is dropped (counted).
#[test]
fn a_full_fragment_table_makes_room_by_its_oldest_datagrams_and_counts_them() {
    let fwd = build(&config("all", 0, 0, true), &[]);
    let (mut st, _) = worker();
    let extra = 5;
    let flood = (0..(FRAGMENT_CAPACITY + extra) as u32).map(|i| Ipv4Addr::from(0x0a01_0000 + i));
    let fragments_of = |src| udp_fragments(src, 5353, FRONTEND, 53);
    for src in flood.clone() {
        let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &fragments_of(src)[0]);
        assert!(matches!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::Transmit { .. }
        ));
    }
    assert_eq!(
        st.fragments.len(),
        FRAGMENT_CAPACITY,
        "never past its capacity"
    );
    assert_eq!(st.fragments.evicted, extra as u64);
    // A real datagram after the flood: every fragment follows its first.
    let real = fragments_of(CLIENT);
    let mut sent = Vec::new();
    for f in &real {
        let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, f);
        match process(&mut frame, LAN, &mut st, &fwd, NOW + 1) {
            Action::Transmit { backend, .. } => sent.push(backend),
            other => panic!("a fragment of the real datagram: {other:?}"),
        }
    }
    assert!(sent.iter().all(|b| *b == sent[0] && b.is_some()));
    assert_eq!(st.fragments.evicted, extra as u64 + 1);
    // The flood's first datagrams made the room; the newest flood datagram is still followed.
    for (src, followed) in [
        (flood.clone().next().unwrap(), false),
        (flood.clone().next_back().unwrap(), true),
    ] {
        let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &fragments_of(src)[1]);
        let action = process(&mut frame, LAN, &mut st, &fwd, NOW + 1);
        assert_eq!(
            action == Action::Drop(DropReason::Fragment),
            !followed,
            "{src}: {action:?}"
        );
    }
}

/// Every fragment of a backend's fragmented reply leaves with the frontend's address; a later
/// fragment of it from elsewhere than the backend's side (interface and MAC) gets nothing.
#[test]
fn a_fragmented_reply_gets_the_frontend_address_on_every_fragment() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let b = to_backend(
        &mut udp_frame(CLIENT_MAC, CLIENT, 5353, FRONTEND, 53),
        &mut st,
        &fwd,
    );
    let i = backend_index(&fwd, b);
    for (k, packet) in udp_fragments(BACKENDS[i], 53, CLIENT, 5353)
        .iter()
        .enumerate()
    {
        if k > 0 {
            // The same later fragment from another host (not the backend's MAC): no reply.
            let spoofed = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, packet);
            let mut frame = spoofed.clone();
            assert_eq!(
                process(&mut frame, LAN, &mut st, &fwd, NOW),
                Action::Drop(DropReason::Fragment)
            );
            assert_eq!(frame, spoofed, "left as it came");
        }
        let mut frame = eth(IF_MAC, BACKEND_MACS[i], EtherType::IPV4, packet);
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::Transmit {
                interface: LAN,
                backend: None
            }
        );
        let ip = Ipv4Packet::new_checked(&frame[ETH_LEN..]).unwrap();
        assert_eq!((ip.src(), ip.dst()), (FRONTEND, CLIENT));
        assert!(ip.verify_checksum());
        assert_eq!(macs(&frame).0, CLIENT_MAC);
    }
}

#[test]
fn unknown_ethertype_is_unsupported() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = eth(IF_MAC, CLIENT_MAC, 0x88b5, &[0xab; 46]);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Unsupported)
    );
}

#[test]
fn unknown_ingress_interface_is_dropped_not_a_panic() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = syn(40_000, 443);
    assert!(matches!(
        process(&mut frame, 7, &mut st, &fwd, NOW),
        Action::Drop(_)
    ));
}
