//! ICMP errors about a flow, a public load balancer on shared backends, transit.

use super::*;

// ---------------------------------------------------------------------------------------
// ICMP errors about a flow; a public load balancer on the same backends

/// An ICMPv4 error frame to `to_mac`, `(kind, code, its second word)` from `from` (at
/// `from_mac`) to `to`, quoting `quoted`, its checksum filled.
fn icmp4_error(
    (to_mac, from_mac): (MacAddr, MacAddr),
    (from, to): (Ipv4Addr, Ipv4Addr),
    (kind, code, word): (u8, u8, [u8; 4]),
    quoted: &[u8],
) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&word);
    m.extend_from_slice(quoted);
    let csum = internet_checksum(&m);
    m[2..4].copy_from_slice(&csum.to_be_bytes());
    eth(
        to_mac,
        from_mac,
        EtherType::IPV4,
        &ipv4(from, to, IpProtocol::ICMP, &m),
    )
}

/// "Fragmentation needed" (next-hop MTU 1400): what an ICMPv4 error's kind, code and word are.
const FRAG_NEEDED: (u8, u8, [u8; 4]) = (IcmpType::DEST_UNREACHABLE, 4, [0, 0, 0x05, 0x78]);

/// An ICMP "fragmentation needed" from `router` to the frontend about a segment the frontend
/// sent to the client (frontend:443 → client:`sport`), quoting its IP header and 8 bytes.
pub(super) fn frag_needed(router_mac: MacAddr, router: Ipv4Addr, sport: u16) -> Vec<u8> {
    let original = ipv4(
        FRONTEND,
        CLIENT,
        IpProtocol::TCP,
        &tcp(FRONTEND, CLIENT, 443, sport, TcpFlags::ACK, &[0; 1400]),
    );
    let ends = (IF_MAC, router_mac);
    icmp4_error(ends, (router, FRONTEND), FRAG_NEEDED, &original[..28])
}

#[test]
fn icmp_error_about_a_flow_goes_to_the_flows_backend() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let router = Ipv4Addr::new(10, 0, 1, 1);
    let router_mac = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    // A flow whose backend is not the one the error's own three-tuple hashes to.
    let icmp_key = FlowKey::three_tuple(IpProtocol::ICMP, router.into(), FRONTEND.into());
    let by_three_tuple = lookup(&fwd, &icmp_key, None).unwrap().backend;
    let sport = (40_000..41_000)
        .find(|&p| lookup(&fwd, &flow_key(&syn(p, 443)), None).unwrap().backend != by_three_tuple)
        .unwrap();
    let owner = to_backend(&mut syn(sport, 443), &mut st, &fwd);

    let mut error = frag_needed(router_mac, router, sport);
    let got = process(&mut error, LAN, &mut st, &fwd, NOW);

    assert_eq!(
        got,
        Action::Transmit {
            interface: LAN,
            backend: Some(owner)
        }
    );
    // NAT: the backend gets the error about the packet as it sent it.
    let i = backend_index(&fwd, owner);
    assert_eq!(macs(&error), (BACKEND_MACS[i], IF_MAC));
    let ip = Ipv4Packet::new_checked(&error[ETH_LEN..]).unwrap();
    assert_eq!((ip.src(), ip.dst()), (router, BACKENDS[i]));
    assert!(ip.verify_checksum());
    let icmp = ip.payload();
    assert_eq!(internet_checksum(icmp), 0, "ICMP checksum refilled");
    // The quote is cut short: it is read through the quoted view.
    let q = crate::wire::QuotedIpv4::new_checked(icmp).unwrap();
    assert_eq!(
        (q.src(), q.dst(), q.ports()),
        (BACKENDS[i], CLIENT, (443, sport))
    );
    assert_eq!(
        internet_checksum(&icmp[8..28]),
        0,
        "quoted IP header checksum kept right"
    );
}

/// A backend's "port unreachable" about a NAT flow's datagram reaches the client about the
/// datagram as the client sent it (to the frontend, at the frontend's port), so that its
/// stack finds the socket: through an HA-ports rule and through a port-translating one.
#[test]
fn a_backend_s_icmp_error_about_a_nat_flow_reaches_the_client_about_what_it_sent() {
    for (cfg, backend_port) in [(ha_ports(), 53), (config("udp", 53, 5300, false), 5300)] {
        let fwd = build(&cfg, &[]);
        let (mut st, _) = worker();
        let b = to_backend(
            &mut udp_frame(CLIENT_MAC, CLIENT, 5353, FRONTEND, 53),
            &mut st,
            &fwd,
        );
        let i = backend_index(&fwd, b);
        // The datagram as the backend got it, quoted in its error back to the client.
        let got = ipv4(
            CLIENT,
            BACKENDS[i],
            IpProtocol::UDP,
            &udp(CLIENT, BACKENDS[i], 5353, backend_port, b"q"),
        );
        let mut frame = icmp4_error(
            (IF_MAC, BACKEND_MACS[i]),
            (BACKENDS[i], CLIENT),
            (IcmpType::DEST_UNREACHABLE, 3, [0; 4]),
            &got,
        );
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::Transmit {
                interface: LAN,
                backend: None
            }
        );
        assert_eq!(macs(&frame).0, CLIENT_MAC);
        let ip = Ipv4Packet::new_checked(&frame[ETH_LEN..]).unwrap();
        assert_eq!((ip.src(), ip.dst()), (FRONTEND, CLIENT));
        assert!(ip.verify_checksum());
        let icmp = ip.payload();
        assert_eq!(internet_checksum(icmp), 0, "ICMP checksum refilled");
        let q = crate::wire::QuotedIpv4::new_checked(icmp).unwrap();
        assert_eq!(
            (q.src(), q.dst(), q.ports()),
            (CLIENT, FRONTEND, (5353, 53)),
            "rule with backend port {backend_port}"
        );
        assert_eq!(internet_checksum(&icmp[8..28]), 0, "quoted IP header");
        let quoted = UdpPacket::new_checked(&icmp[28..]).unwrap();
        assert!(
            quoted.verify_checksum_v4(CLIENT, FRONTEND),
            "quoted UDP checksum"
        );
    }
}

/// A router between the appliance and a NAT flow's backend (one link narrower on the way)
/// answers the flow's packet with "fragmentation needed": the client gets it about the
/// packet as the client sent it (quoted to the frontend), from the router still, so that path
/// MTU discovery works through NAT to routed backends. The same error from another MAC on
/// the segment, or quoting a backend the router is not the way to, is no such error.
#[test]
fn a_router_s_icmp_error_about_a_nat_flow_to_a_routed_backend_reaches_the_client() {
    let router = Ipv4Addr::new(10, 0, 0, 1);
    let router_mac = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    let routed = Ipv4Addr::new(10, 9, 0, 13);
    let mut cfg = ha_ports();
    cfg.interface[0].routes.push(crate::config::Route {
        to: "10.9.0.0/16".parse().unwrap(),
        via: router.into(),
    });
    let pool = &mut cfg.load_balancer[0].backend_pool[0];
    (pool.backends[2].address, pool.backends[2].mac) = (routed.into(), None);
    let known = [(CLIENT.into(), CLIENT_MAC), (router.into(), router_mac)];
    let fwd = build_knowing(&cfg, &[], &known);
    let (mut st, _) = worker();
    // A flow of the routed backend's, and one of an on-link backend's.
    let to_routed = |p: &u16| {
        fwd.backends[lookup(&fwd, &flow_key(&syn(*p, 443)), None)
            .unwrap()
            .backend as usize]
            .address
            == IpAddr::V4(routed)
    };
    let sport = (40_000..41_000).find(to_routed).unwrap();
    let other = (40_000..41_000).find(|p| !to_routed(p)).unwrap();
    for p in [sport, other] {
        to_backend(&mut syn(p, 443), &mut st, &fwd);
    }
    // What the backend was sent, quoted in an error from `sender`.
    let error = |from_mac: MacAddr, to: Ipv4Addr, sport: u16| {
        let sent = ipv4(
            CLIENT,
            to,
            IpProtocol::TCP,
            &tcp(CLIENT, to, sport, 443, TcpFlags::ACK, &[0; 1400]),
        );
        icmp4_error(
            (IF_MAC, from_mac),
            (router, CLIENT),
            FRAG_NEEDED,
            &sent[..28],
        )
    };
    let mut frame = error(router_mac, routed, sport);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(macs(&frame), (CLIENT_MAC, IF_MAC));
    let ip = Ipv4Packet::new_checked(&frame[ETH_LEN..]).unwrap();
    assert_eq!(
        (ip.src(), ip.dst()),
        (router, CLIENT),
        "from the router still"
    );
    assert!(ip.verify_checksum());
    let icmp = ip.payload();
    assert_eq!(internet_checksum(icmp), 0, "ICMP checksum refilled");
    let q = crate::wire::QuotedIpv4::new_checked(icmp).unwrap();
    assert_eq!(
        (q.src(), q.dst(), q.ports()),
        (CLIENT, FRONTEND, (sport, 443))
    );
    assert_eq!(internet_checksum(&icmp[8..28]), 0, "quoted IP header");
    // Not from the routed backend's next hop; about an on-link backend's flow.
    let on_link = fwd.backends[lookup(&fwd, &flow_key(&syn(other, 443)), None)
        .unwrap()
        .backend as usize]
        .address;
    let IpAddr::V4(on_link) = on_link else {
        panic!("IPv4")
    };
    for mut frame in [
        error(OTHER_HOST_MAC, routed, sport),
        error(router_mac, on_link, other),
    ] {
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::Drop(DropReason::NoFrontend)
        );
    }
}

/// [`a_router_s_icmp_error_about_a_nat_flow_to_a_routed_backend_reaches_the_client`] over
/// IPv6: a "packet too big", its ICMPv6 checksum refilled for the router's source.
#[test]
fn a_router_s_packet_too_big_about_a_nat_flow_to_a_routed_backend_reaches_the_client() {
    use super::icmp_and_ipv6::{icmp6_frame, ipv6_config, tcp6_frame, CLIENT6, FRONTEND6};
    let router: Ipv6Addr = "fd00::1".parse().unwrap();
    let router_mac = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    let routed: Ipv6Addr = "fd09::13".parse().unwrap();
    let mut cfg = ipv6_config();
    cfg.interface[0].routes.push(crate::config::Route {
        to: "fd09::/48".parse().unwrap(),
        via: router.into(),
    });
    let pool = &mut cfg.load_balancer[0].backend_pool[0];
    (pool.backends[2].address, pool.backends[2].mac) = (routed.into(), None);
    let known = [(CLIENT6.into(), CLIENT_MAC), (router.into(), router_mac)];
    let fwd = build_knowing(&cfg, &[], &known);
    let (mut st, _) = worker();
    let syn = |p| tcp6_frame(CLIENT_MAC, CLIENT6, p, FRONTEND6, 443, TcpFlags::SYN);
    let sport = (40_000..41_000)
        .find(|&p| {
            let key = FlowKey {
                proto: IpProtocol::TCP,
                src: CLIENT6.into(),
                dst: FRONTEND6.into(),
                src_port: p,
                dst_port: 443,
            };
            let b = lookup(&fwd, &key, None).unwrap().backend;
            fwd.backends[b as usize].address == IpAddr::V6(routed)
        })
        .unwrap();
    to_backend(&mut syn(sport), &mut st, &fwd);
    let sent = tcp6_frame(CLIENT_MAC, CLIENT6, sport, routed, 443, TcpFlags::ACK);
    let mut m = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
    m.extend_from_slice(&sent[ETH_LEN..]);
    let mut error = icmp6_frame(IF_MAC, router, CLIENT6, m);
    error[6..12].copy_from_slice(&router_mac.0);
    assert_eq!(
        process(&mut error, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(macs(&error), (CLIENT_MAC, IF_MAC));
    let ip = Ipv6Packet::new_checked(&error[ETH_LEN..]).unwrap();
    assert_eq!(
        (ip.src(), ip.dst()),
        (router, CLIENT6),
        "from the router still"
    );
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum(router, CLIENT6), "ICMPv6 checksum");
    let q = crate::wire::QuotedIpv6::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (q.src(), q.dst(), q.ports()),
        (CLIENT6, FRONTEND6, (sport, 443))
    );
}

/// [`a_backend_s_icmp_error_about_a_nat_flow_reaches_the_client_about_what_it_sent`] over
/// IPv6, whose ICMPv6 checksum covers the pseudo-header.
#[test]
fn a_backend_s_icmpv6_error_about_a_nat_flow_reaches_the_client_about_what_it_sent() {
    use super::icmp_and_ipv6::{icmp6_frame, ipv6_config, tcp6_frame, CLIENT6, FRONTEND6};
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let mut syn = tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, TcpFlags::SYN);
    let owner = to_backend(&mut syn, &mut st, &fwd);
    let backend_mac = fwd.backends[owner as usize].mac.unwrap();
    let IpAddr::V6(backend) = fwd.backends[owner as usize].address else {
        panic!("an IPv6 backend")
    };
    // The segment as the backend got it, quoted in its "port unreachable" to the client.
    let got = tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, backend, 443, TcpFlags::SYN);
    let mut m = vec![1, 4, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&got[ETH_LEN..]);
    let mut error = icmp6_frame(IF_MAC, backend, CLIENT6, m);
    error[6..12].copy_from_slice(&backend_mac.0);
    assert_eq!(
        process(&mut error, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(macs(&error).0, CLIENT_MAC);
    let ip = Ipv6Packet::new_checked(&error[ETH_LEN..]).unwrap();
    assert_eq!((ip.src(), ip.dst()), (FRONTEND6, CLIENT6));
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum(FRONTEND6, CLIENT6), "ICMPv6 checksum");
    let q = crate::wire::QuotedIpv6::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (q.src(), q.dst(), q.ports()),
        (CLIENT6, FRONTEND6, (40_000, 443))
    );
    let seg = &ip.payload()[8 + 40..];
    assert_eq!(
        tcp_udp_checksum_v6(CLIENT6, FRONTEND6, IpProtocol::TCP, seg),
        u16::from_be_bytes([seg[16], seg[17]]),
        "the quoted segment's checksum, for its new destination"
    );
}

#[test]
fn icmp_errors_under_dsr_and_transit_reach_the_flows_backend_unchanged_but_for_layer_2() {
    let router = Ipv4Addr::new(10, 0, 1, 1);
    let router_mac = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    // DSR: the backend answered from the frontend address; the error comes back to it.
    let fwd = build(&config("all", 0, 0, true), &[]);
    let (mut st, _) = worker();
    for sport in 40_000..40_020 {
        let owner = to_backend(&mut syn(sport, 443), &mut st, &fwd);
        let mut error = frag_needed(router_mac, router, sport);
        let before = error.clone();
        assert_eq!(to_backend(&mut error, &mut st, &fwd), owner);
        assert_eq!(error[ETH_LEN..], before[ETH_LEN..]);
    }
    // Transit: an error about a flow routed through the frontend, itself routed through it.
    let fwd = build(&config("all", 0, 0, true), &[]);
    let (mut st, _) = worker();
    let (a, b) = (Ipv4Addr::new(10, 1, 0, 10), Ipv4Addr::new(10, 2, 0, 10));
    for sport in 40_000..40_020 {
        let mut there = tcp_frame(CLIENT_MAC, a, sport, b, 22, TcpFlags::SYN);
        there[0..6].copy_from_slice(&frontend_mac(IpAddr::V4(FRONTEND)).0);
        let nva = to_backend(&mut there, &mut st, &fwd);
        let original = ipv4(
            a,
            b,
            IpProtocol::TCP,
            &tcp(a, b, sport, 22, TcpFlags::SYN, &[]),
        );
        let mut error = icmp4_error(
            (frontend_mac(IpAddr::V4(FRONTEND)), router_mac),
            (Ipv4Addr::new(10, 2, 0, 1), a),
            (IcmpType::TIME_EXCEEDED, 0, [0; 4]),
            &original[..28],
        );
        assert_eq!(
            to_backend(&mut error, &mut st, &fwd),
            nva,
            "the error meets the flow's NVA"
        );
    }
}

/// Seed rule 3 allows a public load balancer on the backends of a non-floating HA-ports rule.
pub(super) fn internal_and_public_on_the_same_backends() -> Config {
    super::replies::shared_backends(false, "tcp", 80, 80)
}

#[test]
fn ha_ports_reply_keeps_its_frontend_when_a_public_rule_shares_the_backends() {
    let cfg = internal_and_public_on_the_same_backends();
    assert_eq!(crate::config::validate(&cfg), vec![]);
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    let i = backend_index(&fwd, to_backend(&mut syn(40_000, 80), &mut st, &fwd));

    let mut reply = tcp_frame(
        BACKEND_MACS[i],
        BACKENDS[i],
        80,
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

    assert_eq!(
        endpoints(&reply),
        ((FRONTEND, 80), (CLIENT, 40_000)),
        "the client talks to 10.0.0.100"
    );
}

// ---------------------------------------------------------------------------------------
// Transit (routed through a frontend as next hop)

/// A TCP frame routed through the frontend: addressed to its MAC, the IP destination elsewhere.
fn transit_frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut f = tcp_frame(CLIENT_MAC, src, sport, dst, dport, TcpFlags::SYN);
    f[0..6].copy_from_slice(&frontend_mac(IpAddr::V4(FRONTEND)).0);
    f
}

#[test]
fn transit_through_a_frontend_changes_only_the_mac_header_and_both_directions_meet() {
    for floating in [true, false] {
        let fwd = build(&config("all", 0, 0, floating), &[]);
        let (mut st, _) = worker();
        let (a, b) = (Ipv4Addr::new(10, 1, 0, 10), Ipv4Addr::new(10, 2, 0, 10));
        let mut there = transit_frame(a, 40_000, b, 22);
        let before = there.clone();
        let nva = to_backend(&mut there, &mut st, &fwd);
        assert_eq!(
            there[ETH_LEN..],
            before[ETH_LEN..],
            "IP and above untouched, TTL included"
        );
        assert_eq!(
            macs(&there),
            (BACKEND_MACS[backend_index(&fwd, nva)], IF_MAC)
        );
        let mut back = transit_frame(b, 22, a, 40_000);
        assert_eq!(
            to_backend(&mut back, &mut st, &fwd),
            nva,
            "the reply meets the same NVA"
        );
        assert_eq!(st.flows.len(), 1, "both directions share one flow entry");
        let key: crate::lb::flow::FlowKey = format!("tcp {a}:40000 {b}:22").parse().unwrap();
        assert_eq!(
            lookup(&fwd, &key, Some(0)).unwrap().backend,
            nva,
            "lookup --via agrees"
        );
    }
}

#[test]
fn a_foreign_destination_sent_to_the_interface_mac_is_not_transit() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut f = tcp_frame(
        CLIENT_MAC,
        CLIENT,
        40_000,
        Ipv4Addr::new(10, 2, 0, 10),
        22,
        TcpFlags::SYN,
    );
    assert_eq!(
        process(&mut f, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoFrontend)
    );
}

#[test]
fn transit_to_a_destination_nothing_may_be_forwarded_to_is_dropped() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let martians = [
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(0, 1, 2, 3),
        Ipv4Addr::new(240, 0, 0, 1),
        // The broadcast address of the interface's second subnet, 10.0.1.0/24.
        Ipv4Addr::new(10, 0, 1, 255),
    ];
    for dst in martians {
        let mut f = transit_frame(CLIENT, 40_000, dst, 22);
        assert_eq!(
            process(&mut f, LAN, &mut st, &fwd, NOW),
            Action::Drop(DropReason::MartianDestination),
            "{dst}"
        );
    }
    // An ordinary foreign destination through the same frontend is transit.
    let mut f = transit_frame(CLIENT, 40_000, Ipv4Addr::new(10, 2, 0, 10), 22);
    assert!(matches!(
        process(&mut f, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            backend: Some(_),
            ..
        }
    ));
}

#[test]
fn transit_through_a_frontend_without_an_ha_ports_rule_is_no_frontend() {
    let fwd = build(&config("tcp", 80, 8080, false), &[]);
    let (mut st, _) = worker();
    let dst = Ipv4Addr::new(10, 2, 0, 10);
    let mut f = transit_frame(CLIENT, 40_000, dst, 80);
    assert_eq!(
        process(&mut f, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoFrontend)
    );
    let key: crate::lb::flow::FlowKey = format!("tcp {CLIENT}:40000 {dst}:80").parse().unwrap();
    assert_eq!(
        lookup(&fwd, &key, Some(0)),
        Err(DropReason::NoFrontend),
        "lookup --via agrees"
    );
}

/// The first fragment of an ICMP error (no honest router fragments one; its checksum covers
/// the whole message) and of a ping to a frontend (it would need reassembly to answer whole)
/// are dropped, not half answered or steered with a checksum over half the message.
#[test]
fn fragmented_icmp_errors_and_pings_are_dropped() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let router = Ipv4Addr::new(10, 0, 1, 1);
    to_backend(&mut syn(40_000, 443), &mut st, &fwd);
    let whole = frag_needed(MacAddr([0x02, 0, 0, 0, 0, 0x99]), router, 40_000);
    // A real first fragment: only the first 16 bytes of the message, which its checksum
    // does not cover.
    let message = &whole[ETH_LEN + 20..ETH_LEN + 20 + 16];
    let first = |proto: u8, src: Ipv4Addr, src_mac: MacAddr, m: &[u8]| {
        eth(
            IF_MAC,
            src_mac,
            EtherType::IPV4,
            &ipv4_with(src, FRONTEND, proto, MF, &[], m),
        )
    };
    let mut error = first(
        IpProtocol::ICMP,
        router,
        MacAddr([0x02, 0, 0, 0, 0, 0x99]),
        message,
    );
    assert_eq!(
        process(&mut error, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Unsupported)
    );
    let mut ping = first(
        IpProtocol::ICMP,
        CLIENT,
        CLIENT_MAC,
        &icmp_echo_request(b"big"),
    );
    assert_eq!(
        process(&mut ping, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Unsupported)
    );
    // Whole, each is handled.
    let mut error = whole.clone();
    assert!(matches!(
        process(&mut error, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            backend: Some(_),
            ..
        }
    ));
}
