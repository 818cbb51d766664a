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
fn arp_sender_is_learnt_and_reported() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, reports) = worker();
    let mut frame = arp_request(CLIENT_MAC, CLIENT, FRONTEND);
    process(&mut frame, LAN, &mut st, &fwd, NOW);

    assert_eq!(drain(&reports), vec![(IpAddr::V4(CLIENT), CLIENT_MAC)]);
    assert_eq!(
        st.gleaned.lookup(&fwd, IpAddr::V4(CLIENT)),
        Some(CLIENT_MAC)
    );

    // Asking for our own address teaches the same; a second time reports nothing new.
    let other_mac = MacAddr([0x02, 0, 0, 0, 0, 0xc2]);
    let other = Ipv4Addr::new(10, 0, 0, 50);
    let mut frame = arp_request(other_mac, other, OWN);
    process(&mut frame, LAN, &mut st, &fwd, NOW);
    let mut frame = arp_request(other_mac, other, OWN);
    process(&mut frame, LAN, &mut st, &fwd, NOW);
    assert_eq!(drain(&reports), vec![(IpAddr::V4(other), other_mac)]);
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

    assert_eq!(fwd.lookup(&key, None).unwrap().backend, b);
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
        vec![(IpAddr::V4(CLIENT), CLIENT_MAC)],
        "the client's MAC is learnt from the SYN"
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

    assert_eq!(fwd.lookup(&key, None).unwrap().backend, b);
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

    to_backend(&mut frame, &mut st, &fwd);

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
fn reply_to_a_client_whose_mac_is_unknown_is_dropped_no_neighbour() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut reply = tcp_frame(
        BACKEND_MACS[0],
        BACKENDS[0],
        443,
        CLIENT,
        40_000,
        TcpFlags::ACK,
    );
    assert_eq!(
        process(&mut reply, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoNeighbour)
    );
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

    assert_eq!(fwd.lookup(&key, None).unwrap().backend, b);
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

        assert_eq!(fwd.lookup(&key, None).unwrap().backend, b);
        let i = backend_index(&fwd, b);
        assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));
        assert_eq!(
            frame[12..],
            before[12..],
            "ethertype, IP header and payload unchanged"
        );
    }
}
