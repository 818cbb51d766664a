//! ARP, destination NAT and its reverse, port translation, floating IP (DSR).

use super::*;

// ---------------------------------------------------------------------------------------
// ARP

#[test]
fn arp_request_for_frontend_is_answered_with_the_frontends_own_mac() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = arp_request(CLIENT_MAC, CLIENT, FRONTEND);

    let action = process(&mut frame, LAN, &mut st, &fwd, NOW);

    assert_eq!(
        action,
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    let fe_mac = frontend_mac(IpAddr::V4(FRONTEND));
    assert_ne!(fe_mac, IF_MAC);
    let e = EthernetFrame::new_checked(&frame[..]).unwrap();
    assert_eq!(
        (e.dst(), e.src(), e.ethertype()),
        (CLIENT_MAC, fe_mac, EtherType::ARP)
    );
    let a = ArpPacket::new_checked(e.payload()).unwrap();
    assert_eq!(a.operation(), ArpOperation::REPLY);
    assert_eq!((a.sender_mac(), a.sender_ip()), (fe_mac, FRONTEND));
    assert_eq!((a.target_mac(), a.target_ip()), (CLIENT_MAC, CLIENT));
}

/// An ARP request whose sender hardware address is a group or zero address (from a unicast
/// Ethernet source) gets no answer, which would go to that address: flooding the segment.
#[test]
fn arp_request_from_a_group_or_zero_sender_address_is_malformed() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    for sender in [
        MacAddr::BROADCAST,
        MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
        MacAddr::ZERO,
    ] {
        for target in [FRONTEND, OWN] {
            let mut frame = arp_request(CLIENT_MAC, CLIENT, target);
            frame[ETH_LEN + 8..ETH_LEN + 14].copy_from_slice(&sender.0);
            assert_eq!(&frame[6..12], &CLIENT_MAC.0, "a unicast Ethernet source");
            assert_eq!(
                process(&mut frame, LAN, &mut st, &fwd, NOW),
                Action::Drop(DropReason::Malformed),
                "{sender:?} asking for {target}"
            );
        }
    }
}

#[test]
fn arp_request_for_own_address_goes_to_the_kernel_twin() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    for own in [OWN, OWN_1] {
        let mut frame = arp_request(CLIENT_MAC, CLIENT, own);
        let before = frame.clone();
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::ToKernel { interface: LAN }
        );
        assert_eq!(
            frame, before,
            "the kernel answers; the frame goes to it unchanged"
        );
    }
}

#[test]
fn arp_request_for_another_address_is_not_for_us() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = arp_request(CLIENT_MAC, CLIENT, Ipv4Addr::new(10, 0, 0, 77));
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NotForUs)
    );
}

#[test]
fn arp_is_never_learnt_only_a_unicast_reply_to_an_own_address_may_answer() {
    // The client and the first backend are resolved neighbours.
    let known =
        [(CLIENT, CLIENT_MAC), (BACKENDS[0], BACKEND_MACS[0])].map(|(a, m)| (IpAddr::V4(a), m));
    let fwd = build_knowing(&ha_ports(), &[], &known);
    let (mut st, reports) = worker();
    let hint = |addr: Ipv4Addr, mac| Report::Hint {
        interface: LAN,
        addr: IpAddr::V4(addr),
        mac,
    };
    // Someone asking for a frontend or for the appliance: nothing learnt, and nothing
    // reported while it says what is known (or names no known neighbour).
    let mut frame = arp_request(CLIENT_MAC, CLIENT, FRONTEND);
    process(&mut frame, LAN, &mut st, &fwd, NOW);
    let mut frame = arp_request(OTHER_HOST_MAC, Ipv4Addr::new(10, 0, 0, 77), OWN);
    process(&mut frame, LAN, &mut st, &fwd, NOW);
    assert_eq!(drain(&reports), vec![]);
    // A known neighbour from another MAC: a hint, once however often it says so lately.
    for at in [NOW, NOW + 1, NOW + 50] {
        let mut frame = arp_request(OTHER_HOST_MAC, CLIENT, OWN);
        process(&mut frame, LAN, &mut st, &fwd, at);
    }
    assert_eq!(drain(&reports), vec![hint(CLIENT, OTHER_HOST_MAC)]);

    // A reply to the appliance's own address, sent to its MAC by the host it names: what
    // may answer a solicitation, where the control thread asks for the address (it takes it
    // only if it asked); before, reported only as news of a known neighbour, which this is.
    let backend_mac = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    // Not the twin's until the control thread has verified it: it places a verified
    // neighbour elsewhere.
    let mut frame = arp_frame(IF_MAC, ArpOperation::REPLY, backend_mac, BACKENDS[0], OWN);
    assert_eq!(
        process(&mut frame.clone(), LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NeighbourConflict)
    );
    let answer = Report::Answer {
        interface: LAN,
        addr: IpAddr::V4(BACKENDS[0]),
        mac: backend_mac,
    };
    assert_eq!(drain(&reports), vec![answer]);
    st.neighbours.asking.insert(IpAddr::V4(BACKENDS[0]));
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NeighbourConflict)
    );
    assert_eq!(
        drain(&reports),
        vec![Report::Answer {
            interface: LAN,
            addr: IpAddr::V4(BACKENDS[0]),
            mac: backend_mac
        }]
    );

    // Broadcast (gratuitous) replies, replies whose sender is not who sent the frame, and
    // announcements of the sender's own address are hints at most.
    let mut broadcast = arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::REPLY,
        backend_mac,
        BACKENDS[0],
        OWN,
    );
    let mut forged = arp_frame(IF_MAC, ArpOperation::REPLY, backend_mac, BACKENDS[0], OWN);
    forged[6..12].copy_from_slice(&CLIENT_MAC.0);
    // The backend announcing its own address from a new NIC: for no address of the
    // appliance's, dropped, and news of a known neighbour all the same.
    let mut gratuitous = arp_request(backend_mac, BACKENDS[0], BACKENDS[0]);
    let frames = [&mut broadcast, &mut forged, &mut gratuitous];
    for (frame, at) in frames
        .into_iter()
        .zip([NOW + 2_000, NOW + 4_000, NOW + 6_000])
    {
        process(frame, LAN, &mut st, &fwd, at);
    }
    assert_eq!(drain(&reports), vec![hint(BACKENDS[0], backend_mac); 3]);
    assert_eq!(
        process(&mut gratuitous, LAN, &mut st, &fwd, NOW + 6_500),
        Action::Drop(DropReason::NotForUs)
    );
    // Its data packets from the new MAC (a NAT reply, which the backend side knows by the
    // old one) too.
    let mut reply = tcp_frame(backend_mac, BACKENDS[0], 80, CLIENT, 40_000, TcpFlags::ACK);
    assert_eq!(
        process(&mut reply, LAN, &mut st, &fwd, NOW + 8_000),
        Action::Drop(DropReason::NoFrontend)
    );
    // (The second gratuitous ARP, within a second of the first, gave no hint.)
    assert_eq!(drain(&reports), vec![hint(BACKENDS[0], backend_mac)]);
}

#[test]
fn arp_reply_about_a_frontend_is_not_answered() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = arp_frame(IF_MAC, ArpOperation::REPLY, CLIENT_MAC, CLIENT, FRONTEND);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Unsupported)
    );
}

// ---------------------------------------------------------------------------------------
// Non-floating HA ports: destination NAT and the reverse

#[test]
fn ha_ports_tcp_syn_is_dnatted_to_the_maglev_backend() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = syn(40_000, 443);
    let key = flow_key(&frame);

    let b = to_backend(&mut frame, &mut st, &fwd);

    assert_eq!(lookup(&fwd, &key, None).unwrap().backend, b);
    let i = backend_index(&fwd, b);
    assert_eq!(endpoints(&frame), ((CLIENT, 40_000), (BACKENDS[i], 443)));
    assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));
    assert_eq!(ip(&frame).ttl(), 64);
    assert_checksums(&frame);
    assert_eq!(&ip(&frame).payload()[20..], b"hello");
}

#[test]
fn ha_ports_tcp_reply_is_snatted_back_to_the_frontend_and_the_client_mac() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, reports) = worker();
    let mut frame = syn(40_000, 443);
    let i = backend_index(&fwd, to_backend(&mut frame, &mut st, &fwd));
    assert_eq!(
        drain(&reports),
        vec![],
        "the client is resolved: nothing to ask"
    );

    let mut reply = tcp_frame(
        BACKEND_MACS[i],
        BACKENDS[i],
        443,
        CLIENT,
        40_000,
        TcpFlags::SYN | TcpFlags::ACK,
    );
    let action = process(&mut reply, LAN, &mut st, &fwd, NOW);

    assert_eq!(
        action,
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(endpoints(&reply), ((FRONTEND, 443), (CLIENT, 40_000)));
    assert_eq!(macs(&reply), (CLIENT_MAC, IF_MAC));
    assert_checksums(&reply);
}

#[test]
fn ha_ports_udp_round_trip_rewrites_addresses_with_valid_checksums() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = udp_frame(CLIENT_MAC, CLIENT, 5353, FRONTEND, 53);
    let key = flow_key(&frame);

    let b = to_backend(&mut frame, &mut st, &fwd);

    assert_eq!(lookup(&fwd, &key, None).unwrap().backend, b);
    let i = backend_index(&fwd, b);
    assert_eq!(endpoints(&frame), ((CLIENT, 5353), (BACKENDS[i], 53)));
    assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));
    assert_checksums(&frame);

    let mut reply = udp_frame(BACKEND_MACS[i], BACKENDS[i], 53, CLIENT, 5353);
    assert_eq!(
        process(&mut reply, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(endpoints(&reply), ((FRONTEND, 53), (CLIENT, 5353)));
    assert_eq!(macs(&reply), (CLIENT_MAC, IF_MAC));
    assert_checksums(&reply);
}

#[test]
fn udp_without_checksum_keeps_none_after_nat() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut dgram = udp(CLIENT, FRONTEND, 5353, 53, b"datagram");
    dgram[6..8].copy_from_slice(&[0, 0]);
    let mut frame = eth(
        IF_MAC,
        CLIENT_MAC,
        EtherType::IPV4,
        &ipv4(CLIENT, FRONTEND, IpProtocol::UDP, &dgram),
    );

    let i = backend_index(&fwd, to_backend(&mut frame, &mut st, &fwd));

    assert_eq!(
        endpoints(&frame),
        ((CLIENT, 5353), (BACKENDS[i], 53)),
        "NATed"
    );
    assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));
    assert!(ip(&frame).verify_checksum());
    assert_eq!(
        UdpPacket::new_checked(ip(&frame).payload())
            .unwrap()
            .checksum(),
        0
    );
}

#[test]
fn dnat_keeps_checksums_valid_with_ip_options() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let seg = tcp(CLIENT, FRONTEND, 40_001, 22, TcpFlags::SYN, &[]);
    // One NOP and an end-of-options list, padded to 4 bytes.
    let packet = ipv4_with(CLIENT, FRONTEND, IpProtocol::TCP, DF, &[1, 0, 0, 0], &seg);
    let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &packet);

    let i = backend_index(&fwd, to_backend(&mut frame, &mut st, &fwd));

    assert_eq!(ip(&frame).header_len(), 24);
    assert_eq!(endpoints(&frame), ((CLIENT, 40_001), (BACKENDS[i], 22)));
    assert_checksums(&frame);
}

#[test]
fn a_new_flow_from_an_unresolved_client_asks_for_it_and_its_replies_wait_for_the_answer() {
    let unresolved = build_knowing(&ha_ports(), &[], &[]);
    let (mut st, reports) = worker();
    let i = backend_index(
        &unresolved,
        to_backend(&mut syn(40_000, 443), &mut st, &unresolved),
    );
    let want = Report::Want {
        interface: LAN,
        addr: IpAddr::V4(CLIENT),
    };
    assert_eq!(drain(&reports), vec![want], "asked for before any reply");

    // The reply finds no MAC: held, and asked for again (after the worker's pause).
    let reply = || {
        tcp_frame(
            BACKEND_MACS[i],
            BACKENDS[i],
            443,
            CLIENT,
            40_000,
            TcpFlags::ACK,
        )
    };
    let mut first = reply();
    assert_eq!(
        process(&mut first, LAN, &mut st, &unresolved, NOW),
        Action::Hold { interface: LAN }
    );
    assert_eq!(
        drain(&reports),
        vec![],
        "the same want is not repeated at once"
    );
    let mut second = reply();
    let later = NOW + 1_000;
    assert_eq!(
        process(&mut second, LAN, &mut st, &unresolved, later),
        Action::Hold { interface: LAN }
    );
    assert_eq!(drain(&reports), vec![want]);

    let mut held = Held::new();
    held.hold(first, Wait::NextHop(LAN), NOW).unwrap();
    held.hold(second, Wait::NextHop(LAN), later).unwrap();
    let mut out = Vec::new();
    held.release(&unresolved, NOW + 10, |f, a| out.push((f, a)));
    assert!(out.is_empty(), "nothing is released before the answer");
    assert_eq!(held.len(), 2);

    // Published (a new generation): both leave, to the client's MAC, NATed back.
    let mut resolved = build(&ha_ports(), &[]);
    resolved.generation = unresolved.generation + 1;
    held.release(&resolved, NOW + 20, |f, a| out.push((f, a)));
    assert_eq!(out.len(), 2);
    for (frame, action) in &out {
        assert_eq!(
            *action,
            Action::Transmit {
                interface: LAN,
                backend: None
            }
        );
        assert_eq!(macs(frame), (CLIENT_MAC, IF_MAC));
        assert_eq!(endpoints(frame), ((FRONTEND, 443), (CLIENT, 40_000)));
        assert_checksums(frame);
    }
    assert!(held.is_empty());
}

#[test]
fn held_packets_are_dropped_no_neighbour_when_no_answer_comes_and_the_hold_is_bounded() {
    let unresolved = build_knowing(&ha_ports(), &[], &[]);
    let (mut st, _) = worker();
    let mut held = Held::new();
    let i = backend_index(
        &unresolved,
        to_backend(&mut syn(40_000, 443), &mut st, &unresolved),
    );
    let reply = || {
        tcp_frame(
            BACKEND_MACS[i],
            BACKENDS[i],
            443,
            CLIENT,
            40_000,
            TcpFlags::ACK,
        )
    };
    for _ in 0..HOLD_CAPACITY {
        assert_eq!(held.hold(reply(), Wait::NextHop(LAN), NOW), Ok(()));
    }
    assert!(
        held.hold(reply(), Wait::NextHop(LAN), NOW).is_err(),
        "full: given back"
    );

    let mut out = Vec::new();
    held.release(&unresolved, NOW + HOLD_MS - 1, |_, a| out.push(a));
    assert!(out.is_empty());
    held.release(&unresolved, NOW + HOLD_MS, |_, a| out.push(a));
    assert_eq!(out.len(), HOLD_CAPACITY);
    assert!(out
        .iter()
        .all(|a| *a == Action::Drop(DropReason::NoNeighbour)));
    assert!(held.is_empty());
}

/// The HA-ports config without the backends' MACs, built before the control thread resolved
/// them and after (a later generation).
fn backends_resolved_later(down: &[Ipv4Addr]) -> (Forwarding, Forwarding) {
    let unresolved = backends_state(&[], false, 1);
    (unresolved, backends_state(down, true, 2))
}

/// The HA-ports config without the backends' MACs, `down` down, the backends resolved or
/// not, as published in `generation`.
fn backends_state(down: &[Ipv4Addr], resolved: bool, generation: u64) -> Forwarding {
    let mut cfg = ha_ports();
    for b in &mut cfg.load_balancer[0].backend_pool[0].backends {
        b.mac = None;
    }
    let client = (IpAddr::V4(CLIENT), CLIENT_MAC);
    let backends = BACKENDS.iter().zip(BACKEND_MACS);
    let known: Vec<(IpAddr, MacAddr)> = backends
        .map(|(&a, m)| (IpAddr::V4(a), m))
        .filter(|_| resolved)
        .chain([client])
        .collect();
    let mut fwd = build_knowing(&cfg, down, &known);
    fwd.generation = generation;
    fwd
}

/// Packets held for backends leave in the order they came, whatever slots they took (a slot
/// freed early is taken by a later packet); for backends they take half of the room at most,
/// so that the replies of others still find some; one whose backend went down meanwhile is
/// dropped, not sent to it.
#[test]
fn packets_held_for_backends_leave_in_order_take_half_the_room_and_not_to_a_down_backend() {
    let unresolved = backends_state(&[], false, 1);
    let (mut st, _) = worker();
    // A flow to each backend (the SYN of each, held), by source port.
    let mut to = [None, None, None];
    for sport in 40_000..40_100 {
        let mut frame = syn(sport, 443);
        if let Action::HoldForBackend { backend } =
            process(&mut frame, LAN, &mut st, &unresolved, NOW)
        {
            let i = backend_index(&unresolved, backend);
            to[i].get_or_insert((backend, sport, frame));
        }
    }
    let [Some(a), Some(b), Some(c)] = to else {
        panic!("a flow to each backend: {to:?}")
    };
    let mut held = Held::new();
    let mut out = Vec::new();
    // b (backend 1) into slot 0, a (backend 0) into slot 1; b's backend goes down, still
    // unresolved: b is dropped, a waits; then c (backend 2) takes slot 0.
    held.hold(b.2.clone(), Wait::Backend(b.0), NOW).unwrap();
    held.hold(a.2.clone(), Wait::Backend(a.0), NOW + 1).unwrap();
    held.release(
        &backends_state(&[BACKENDS[1]], false, 2),
        NOW + 2,
        |f, a| out.push((f, a)),
    );
    assert_eq!(out.len(), 1);
    assert_eq!(endpoints(&out[0].0).0 .1, b.1);
    assert_eq!(out[0].1, Action::Drop(DropReason::NoHealthyBackend));
    out.clear();
    held.hold(c.2.clone(), Wait::Backend(c.0), NOW + 3).unwrap();
    held.release(&backends_state(&[], true, 3), NOW + 4, |f, a| {
        out.push((f, a))
    });
    let sports: Vec<u16> = out.iter().map(|(f, _)| endpoints(f).0 .1).collect();
    assert_eq!(sports, vec![a.1, c.1], "in the order they came");
    assert!(matches!(out[0].1, Action::Transmit { backend: Some(x), .. } if x == a.0));
    assert!(matches!(out[1].1, Action::Transmit { backend: Some(x), .. } if x == c.0));

    // Half the room for backends; the rest still takes replies.
    for _ in 0..HOLD_CAPACITY / 2 {
        assert_eq!(held.hold(a.2.clone(), Wait::Backend(a.0), NOW), Ok(()));
    }
    assert!(held.hold(a.2.clone(), Wait::Backend(a.0), NOW).is_err());
    assert_eq!(held.hold(a.2.clone(), Wait::NextHop(LAN), NOW), Ok(()));
}

/// A packet held for its backend's MAC across a reload that gives the rule another probe
/// (a new state of the pool: the backends' ids retired for new ones) leaves for the same
/// backend once its MAC is known, as the flow's later packets go. It was dropped.
#[test]
fn a_packet_held_across_a_reload_that_changes_the_probe_leaves_for_its_backend() {
    let unresolved = backends_state(&[], false, 1);
    let (mut st, _) = worker();
    let mut frame = syn(40_000, 443);
    let Action::HoldForBackend { backend } = process(&mut frame, LAN, &mut st, &unresolved, NOW)
    else {
        panic!("not held")
    };
    let mut held = Held::new();
    held.hold(frame, Wait::Backend(backend), NOW).unwrap();
    let mut cfg = super::flows_and_drops::probed(&ha_ports());
    for b in &mut cfg.load_balancer[0].backend_pool[0].backends {
        b.mac = None;
    }
    let known: Vec<(IpAddr, MacAddr)> = (BACKENDS.iter().zip(BACKEND_MACS))
        .map(|(&a, m)| (IpAddr::V4(a), m))
        .chain([(IpAddr::V4(CLIENT), CLIENT_MAC)])
        .collect();
    let obs = observed(&[], &known);
    let reloaded = Forwarding::build(&cfg, &obs, 2, Some(&unresolved));
    assert!(reloaded.backends[backend as usize].retired);
    let mut out = Vec::new();
    held.release(&reloaded, NOW + 10, |f, a| out.push((f, a)));
    let [(
        frame,
        Action::Transmit {
            backend: Some(now), ..
        },
    )] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    let i = backend_index(&unresolved, backend);
    assert_eq!(
        reloaded.backends[*now as usize].address,
        IpAddr::V4(BACKENDS[i])
    );
    assert_eq!(macs(frame), (BACKEND_MACS[i], IF_MAC));
}

/// An ICMP error about a flow whose backend's MAC is not known yet waits for it as the flow's
/// packets do, already rewritten for the backend (NAT); it was dropped (`no_neighbour`).
#[test]
fn an_icmp_error_for_an_unresolved_backend_waits_for_its_mac() {
    let unresolved = backends_state(&[], false, 1);
    let (mut st, _) = worker();
    let owner = match process(&mut syn(40_000, 443), LAN, &mut st, &unresolved, NOW) {
        Action::HoldForBackend { backend } => backend,
        other => panic!("{other:?}"),
    };
    let router = Ipv4Addr::new(10, 0, 1, 1);
    let router_mac = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    let mut error = super::errors_and_transit::frag_needed(router_mac, router, 40_000);
    assert_eq!(
        process(&mut error, LAN, &mut st, &unresolved, NOW),
        Action::HoldForBackend { backend: owner }
    );
    let i = backend_index(&unresolved, owner);
    let ip = Ipv4Packet::new_checked(&error[ETH_LEN..]).unwrap();
    assert_eq!((ip.src(), ip.dst()), (router, BACKENDS[i]));
    assert!(ip.verify_checksum());
}

/// A new flow to a backend whose MAC is not known yet (one a reload added, without `mac` in
/// the config, which the control thread is resolving) waits for it, NATed already, and
/// leaves to its MAC once that is published: through the burst pipeline's fast path and
/// through the slow path. Dropped instead, a new connection's SYN waited for its
/// retransmission, a second later (the end-to-end reload test lost one so).
#[test]
fn a_new_flow_to_an_unresolved_backend_waits_for_its_mac() {
    let (unresolved, resolved) = backends_resolved_later(&[]);
    let (mut st, _) = worker();

    let mut burst = vec![syn(40_000, 443)];
    let mut actions = [Action::Drop(DropReason::Unsupported); crate::dpdk::BURST];
    let pipeline = crate::dataplane::pipeline::process_burst;
    pipeline(
        &mut burst,
        LAN,
        &mut st,
        &unresolved,
        NOW,
        &mut actions,
        &mut spill(),
    );
    let mut slow = syn(40_001, 443);
    let slow_action = process(&mut slow, LAN, &mut st, &unresolved, NOW);
    let mut held = Held::new();
    for (frame, action) in [(burst.remove(0), actions[0]), (slow, slow_action)] {
        let Action::HoldForBackend { backend } = action else {
            panic!("{action:?}")
        };
        held.hold(frame, Wait::Backend(backend), NOW).unwrap();
    }
    let mut out = Vec::new();
    held.release(&unresolved, NOW + 10, |f, a| out.push((f, a)));
    assert!(out.is_empty(), "nothing leaves before the MAC is known");

    held.release(&resolved, NOW + 20, |f, a| out.push((f, a)));
    assert_eq!(out.len(), 2);
    for ((frame, action), sport) in out.iter().zip([40_000, 40_001]) {
        let Action::Transmit {
            interface: LAN,
            backend: Some(b),
        } = *action
        else {
            panic!("{action:?}")
        };
        let i = backend_index(&resolved, b);
        assert_eq!(macs(frame), (BACKEND_MACS[i], IF_MAC));
        assert_eq!(endpoints(frame), ((CLIENT, sport), (BACKENDS[i], 443)));
        assert_checksums(frame);
    }
    assert!(held.is_empty());
}

// ---------------------------------------------------------------------------------------
// Port translation

#[test]
fn port_rule_translates_the_destination_port_and_restores_it_on_reply() {
    let fwd = build(&config("tcp", 80, 8080, false), &[]);
    let (mut st, _) = worker();
    let mut frame = syn(40_000, 80);
    let key = flow_key(&frame);

    let b = to_backend(&mut frame, &mut st, &fwd);

    assert_eq!(lookup(&fwd, &key, None).unwrap().backend, b);
    let i = backend_index(&fwd, b);
    assert_eq!(endpoints(&frame), ((CLIENT, 40_000), (BACKENDS[i], 8080)));
    assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));
    assert_checksums(&frame);

    let mut reply = tcp_frame(
        BACKEND_MACS[i],
        BACKENDS[i],
        8080,
        CLIENT,
        40_000,
        TcpFlags::SYN | TcpFlags::ACK,
    );
    assert_eq!(
        process(&mut reply, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(endpoints(&reply), ((FRONTEND, 80), (CLIENT, 40_000)));
    assert_eq!(macs(&reply), (CLIENT_MAC, IF_MAC));
    assert_checksums(&reply);
}

#[test]
fn udp_port_rule_translates_both_ways() {
    let fwd = build(&config("udp", 53, 5300, false), &[]);
    let (mut st, _) = worker();
    let mut frame = udp_frame(CLIENT_MAC, CLIENT, 6000, FRONTEND, 53);
    let i = backend_index(&fwd, to_backend(&mut frame, &mut st, &fwd));
    assert_eq!(endpoints(&frame), ((CLIENT, 6000), (BACKENDS[i], 5300)));
    assert_checksums(&frame);

    let mut reply = udp_frame(BACKEND_MACS[i], BACKENDS[i], 5300, CLIENT, 6000);
    assert_eq!(
        process(&mut reply, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(endpoints(&reply), ((FRONTEND, 53), (CLIENT, 6000)));
    assert_checksums(&reply);
}

#[test]
fn port_rule_drops_other_ports_and_protocols_no_rule() {
    let fwd = build(&config("tcp", 80, 80, false), &[]);
    let (mut st, _) = worker();
    let mut other_port = syn(40_000, 81);
    assert_eq!(
        process(&mut other_port, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoRule)
    );
    let mut udp = udp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 80);
    assert_eq!(
        process(&mut udp, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoRule)
    );
    assert!(st.flows.is_empty());
}

// ---------------------------------------------------------------------------------------
// Floating IP (DSR)

#[test]
fn floating_rule_changes_only_the_ethernet_header() {
    let fwd = build(&config("all", 0, 0, true), &[]);
    let (mut st, _) = worker();
    for mut frame in [
        syn(40_000, 443),
        udp_frame(CLIENT_MAC, CLIENT, 5353, FRONTEND, 53),
    ] {
        let before = frame.clone();
        let key = flow_key(&frame);

        let b = to_backend(&mut frame, &mut st, &fwd);

        assert_eq!(lookup(&fwd, &key, None).unwrap().backend, b);
        let i = backend_index(&fwd, b);
        assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));
        assert_eq!(
            frame[12..],
            before[12..],
            "ethertype, IP header and payload unchanged"
        );
    }
}
