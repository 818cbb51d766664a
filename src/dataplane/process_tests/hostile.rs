//! Packets no honest sender makes (DESIGN §6, trust): martian sources, TTL or hop limit 0 and
//! impossible TCP flags are dropped under their own reasons, before any state is made, on
//! the burst pipeline's fast path as on the slow path.

use super::icmp_and_ipv6::{
    icmp6_frame, ipv6_config, solicitation, tcp6_frame, CLIENT6, FRONTEND6,
};
use super::*;
use crate::dataplane::pipeline::process_burst;

/// The action for `frame` alone through the slow path and through the burst pipeline (they
/// must agree), with the worker state each left behind.
fn both_paths(frame: &[u8], fwd: &Forwarding) -> (Action, WorkerState, WorkerState) {
    let (mut slow, _) = worker();
    let mut copy = frame.to_vec();
    let one = process(&mut copy, LAN, &mut slow, fwd, NOW);
    let (mut fast, _) = worker();
    let mut burst = vec![frame.to_vec()];
    let mut actions = [Action::Drop(DropReason::Unsupported); 1];
    process_burst(
        &mut burst,
        LAN,
        &mut fast,
        fwd,
        NOW,
        &mut actions,
        &mut spill(),
    );
    assert_eq!(actions[0], one, "burst pipeline and slow path disagree");
    (one, slow, fast)
}

fn assert_dropped(frame: &[u8], fwd: &Forwarding, reason: DropReason) {
    let (action, slow, fast) = both_paths(frame, fwd);
    assert_eq!(action, Action::Drop(reason));
    assert!(
        slow.flows.is_empty() && fast.flows.is_empty(),
        "no flow state"
    );
}

#[test]
fn martian_ipv4_sources_are_dropped_to_the_frontend_and_to_the_appliance() {
    let fwd = build(&ha_ports(), &[]);
    let martians = [
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(224, 0, 0, 5),
        Ipv4Addr::new(239, 1, 2, 3),
        Ipv4Addr::new(240, 0, 0, 1),
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::new(127, 9, 9, 9),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(0, 1, 2, 3),
        OWN,
        OWN_1,
        FRONTEND,
        // The interface's subnets' broadcast addresses (directed broadcasts).
        Ipv4Addr::new(10, 0, 0, 255),
        Ipv4Addr::new(10, 0, 1, 255),
    ];
    for src in martians {
        for dst in [FRONTEND, OWN] {
            let tcp = tcp_frame(CLIENT_MAC, src, 40_000, dst, 443, TcpFlags::SYN);
            assert_dropped(&tcp, &fwd, DropReason::MartianSource);
            let udp = udp_frame(CLIENT_MAC, src, 40_000, dst, 53);
            assert_dropped(&udp, &fwd, DropReason::MartianSource);
        }
    }
    // Nor is a ping from a directed broadcast answered.
    let ping = icmp_echo_request(b"hi");
    let broadcast = Ipv4Addr::new(10, 0, 1, 255);
    let ping = eth(
        IF_MAC,
        CLIENT_MAC,
        EtherType::IPV4,
        &ipv4(broadcast, FRONTEND, IpProtocol::ICMP, &ping),
    );
    assert_dropped(&ping, &fwd, DropReason::MartianSource);
    // The neighbours of the martian ranges are ordinary clients.
    for src in [
        Ipv4Addr::new(10, 0, 1, 254),
        Ipv4Addr::new(1, 0, 0, 1),
        Ipv4Addr::new(126, 255, 255, 254),
        Ipv4Addr::new(223, 255, 255, 254),
    ] {
        let (action, _, _) = both_paths(&udp_frame(CLIENT_MAC, src, 40_000, FRONTEND, 53), &fwd);
        assert!(
            matches!(action, Action::Transmit { .. }),
            "{src}: {action:?}"
        );
    }
}

#[test]
fn martian_ipv6_sources_are_dropped() {
    let fwd = build(&ipv6_config(), &[]);
    let own6: Ipv6Addr = "fd00::2".parse().unwrap();
    for src in [
        Ipv6Addr::UNSPECIFIED,
        Ipv6Addr::LOCALHOST,
        "ff02::1".parse().unwrap(),
        own6,
        FRONTEND6,
        // IPv4-mapped (RFC 6890: never on the wire; a dual-stack socket reads it as IPv4's
        // 127.0.0.1, or as a backend's address).
        "::ffff:127.0.0.1".parse().unwrap(),
        "::ffff:10.0.0.11".parse().unwrap(),
    ] {
        let frame = tcp6_frame(CLIENT_MAC, src, 40_000, FRONTEND6, 443, TcpFlags::SYN);
        assert_dropped(&frame, &fwd, DropReason::MartianSource);
    }
    let (action, _, _) = both_paths(
        &tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, TcpFlags::SYN),
        &fwd,
    );
    assert!(matches!(action, Action::Transmit { .. }), "{action:?}");
}

/// `frame` with its TTL (IPv4, header checksum kept right) or hop limit (IPv6) set.
fn with_hop_limit(mut frame: Vec<u8>, limit: u8) -> Vec<u8> {
    if frame[12..14] == [0x86, 0xdd] {
        frame[ETH_LEN + 7] = limit;
    } else {
        frame[ETH_LEN + 8] = limit;
        frame[ETH_LEN + 10..ETH_LEN + 12].fill(0);
        let sum = internet_checksum(&frame[ETH_LEN..ETH_LEN + 20]);
        frame[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&sum.to_be_bytes());
    }
    frame
}

#[test]
fn ttl_or_hop_limit_zero_is_dropped_as_ttl_and_one_still_goes() {
    let fwd = build(&ha_ports(), &[]);
    for dst in [FRONTEND, OWN] {
        let frame = with_hop_limit(udp_frame(CLIENT_MAC, CLIENT, 40_000, dst, 53), 0);
        assert_dropped(&frame, &fwd, DropReason::Ttl);
    }
    let one = with_hop_limit(syn(40_000, 443), 1);
    let (action, _, _) = both_paths(&one, &fwd);
    assert!(matches!(action, Action::Transmit { .. }), "{action:?}");

    let fwd6 = build(&ipv6_config(), &[]);
    let frame = with_hop_limit(
        tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, TcpFlags::SYN),
        0,
    );
    assert_dropped(&frame, &fwd6, DropReason::Ttl);
}

#[test]
fn impossible_tcp_flags_are_dropped_before_a_flow_is_made() {
    let fwd = build(&ha_ports(), &[]);
    let fwd6 = build(&ipv6_config(), &[]);
    let impossible = [
        TcpFlags::SYN | TcpFlags::FIN,
        TcpFlags::SYN | TcpFlags::RST,
        TcpFlags::SYN | TcpFlags::FIN | TcpFlags::ACK,
        TcpFlags::SYN | TcpFlags::RST | TcpFlags::ACK,
        0,
        TcpFlags::ECE | TcpFlags::CWR,
    ];
    for flags in impossible {
        let frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, flags);
        assert_dropped(&frame, &fwd, DropReason::TcpFlags);
        let frame = tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, flags);
        assert_dropped(&frame, &fwd6, DropReason::TcpFlags);
    }
    // What stacks do send still goes, ECN bits included.
    for flags in [
        TcpFlags::SYN,
        TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR,
        TcpFlags::SYN | TcpFlags::ACK,
        TcpFlags::RST,
        TcpFlags::FIN | TcpFlags::ACK,
        TcpFlags::PSH | TcpFlags::ACK | TcpFlags::URG,
    ] {
        let frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, flags);
        let (action, _, _) = both_paths(&frame, &fwd);
        assert!(
            matches!(action, Action::Transmit { .. }),
            "{flags:#x}: {action:?}"
        );
    }
}

#[test]
fn a_backends_reply_with_impossible_flags_is_not_rewritten() {
    let cfg = config("all", 0, 0, false);
    let fwd = build(&cfg, &[]);
    let mut frame = tcp_frame(
        BACKEND_MACS[0],
        BACKENDS[0],
        443,
        CLIENT,
        40_000,
        TcpFlags::SYN | TcpFlags::FIN,
    );
    let before = frame.clone();
    let (mut st, _) = worker();
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::TcpFlags)
    );
    assert_eq!(frame, before, "nothing rewritten");
}

#[test]
fn group_traffic_other_than_neighbour_discovery_and_listener_queries_stays_away_from_the_kernel() {
    let fwd = build(&ipv6_config(), &[]);
    let group: Ipv6Addr = "ff02::16".parse().unwrap();
    // An MLDv2 report (type 143) with no records, from :: as hosts send it during DAD.
    let mut frame = icmp6_frame(
        MacAddr([0x33, 0x33, 0, 0, 0, 0x16]),
        Ipv6Addr::UNSPECIFIED,
        group,
        vec![143, 0, 0, 0, 0, 0, 0, 0],
    );
    let (mut st, _) = worker();
    // Not martian (hosts without an address send these), but for other hosts.
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NotForUs)
    );
    // Neighbour discovery for the appliance's own address, to its solicited-node group,
    // goes to the kernel.
    let mut ns = solicitation("fd00::2".parse().unwrap());
    assert_eq!(
        process(&mut ns, LAN, &mut st, &fwd, NOW),
        Action::ToKernel { interface: LAN }
    );
    // So does a multicast listener query (MLDv2, general, behind a hop-by-hop header with
    // the router alert, RFC 3810 §5): the kernel reports its groups, and the frontends'.
    let (router, all_nodes): (Ipv6Addr, Ipv6Addr) =
        ("fe80::1".parse().unwrap(), "ff02::1".parse().unwrap());
    let mut query = vec![130, 0, 0, 0, 0x27, 0x10, 0, 0];
    query.extend_from_slice(&[0; 16]);
    query.extend_from_slice(&[2, 125, 0, 0]);
    let sum = tcp_udp_checksum_v6(router, all_nodes, IpProtocol::ICMPV6, &query);
    query[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut packet = vec![0x60, 0, 0, 0];
    packet.extend_from_slice(&((8 + query.len()) as u16).to_be_bytes());
    packet.extend_from_slice(&[IpProtocol::IPV6_HOP_BY_HOP, 1]);
    packet.extend_from_slice(&router.octets());
    packet.extend_from_slice(&all_nodes.octets());
    packet.extend_from_slice(&[IpProtocol::ICMPV6, 0, 5, 2, 0, 0, 1, 0]);
    packet.extend_from_slice(&query);
    let mut frame = eth(
        MacAddr([0x33, 0x33, 0, 0, 0, 1]),
        CLIENT_MAC,
        EtherType::IPV6,
        &packet,
    );
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::ToKernel { interface: LAN }
    );
    // An IGMPv3 report (type 0x22, no records) from 0.0.0.0 to 224.0.0.22.
    let fwd = build(&ha_ports(), &[]);
    let mut report = vec![0x22, 0, 0, 0, 0, 0, 0, 0];
    let sum = internet_checksum(&report);
    report[2..4].copy_from_slice(&sum.to_be_bytes());
    let group = Ipv4Addr::new(224, 0, 0, 22);
    let packet = ipv4(Ipv4Addr::UNSPECIFIED, group, 2, &report);
    let mut frame = eth(
        MacAddr([0x01, 0, 0x5e, 0, 0, 0x16]),
        CLIENT_MAC,
        EtherType::IPV4,
        &packet,
    );
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NotForUs)
    );
    // A DHCP discover: from 0.0.0.0 to the limited broadcast, in a broadcast frame.
    let mut discover = udp_frame(
        CLIENT_MAC,
        Ipv4Addr::UNSPECIFIED,
        68,
        Ipv4Addr::BROADCAST,
        67,
    );
    discover[..6].copy_from_slice(&MacAddr::BROADCAST.0);
    assert_eq!(
        process(&mut discover, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NotForUs)
    );
}

#[test]
fn a_reply_claiming_a_nat_backends_address_from_elsewhere_is_not_rewritten() {
    let fwd = build(&config("all", 0, 0, false), &[]);
    let (mut st, _) = worker();
    let b = to_backend(&mut syn(40_000, 443), &mut st, &fwd);
    let i = backend_index(&fwd, b);
    let reply = |src_mac| {
        let flags = TcpFlags::SYN | TcpFlags::ACK;
        tcp_frame(src_mac, BACKENDS[i], 443, CLIENT, 40_000, flags)
    };
    // From the client's MAC, or another backend's: not the backend's reply, so not made to
    // come from the frontend (nor forwarded at all: it is for no frontend).
    for src_mac in [CLIENT_MAC, BACKEND_MACS[(i + 1) % 3], OTHER_HOST_MAC] {
        let mut frame = reply(src_mac);
        let before = frame.clone();
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::Drop(DropReason::NoFrontend),
            "from {src_mac}"
        );
        assert_eq!(frame, before, "nothing rewritten");
    }
    // The backend's own reply is.
    let mut frame = reply(BACKEND_MACS[i]);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(endpoints(&frame).0, (FRONTEND, 443));
    assert_checksums(&frame);
}

#[test]
fn a_bad_ipv4_header_checksum_is_dropped_on_both_paths() {
    let fwd = build(&ha_ports(), &[]);
    for good in [
        syn(40_000, 443),
        udp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 53),
        udp_frame(CLIENT_MAC, CLIENT, 40_000, OWN, 53),
    ] {
        let mut bad = good.clone();
        bad[ETH_LEN + 10] ^= 0x40;
        assert_dropped(&bad, &fwd, DropReason::IpChecksum);
        let (action, _, _) = both_paths(&good, &fwd);
        assert!(!matches!(action, Action::Drop(_)), "{action:?}");
    }
    // A wrong address under a right checksum field is just as bad.
    let mut spoofed = syn(40_000, 443);
    spoofed[ETH_LEN + 15] ^= 1;
    assert_dropped(&spoofed, &fwd, DropReason::IpChecksum);
}

/// With four workers the rate is not divided: a flow, which lands on one of them, may take
/// all of it (a worker's quarter would hold a BGP session or a copy to the appliance's own
/// address to 250 packets a second), and a worker sharing the budget then gets none of it.
/// (That the appliance gives its workers one budget: the e2e test with five workers.)
#[test]
fn the_kernel_rate_is_over_all_workers_whichever_takes_it() {
    let mut cfg = ha_ports();
    cfg.dataplane.workers = 4;
    cfg.dataplane.kernel_pps = 1000;
    let fwd = build(&cfg, &[]);
    let (mut first, _) = worker();
    let (mut second, _) = worker();
    second.kernel = first.kernel.clone();
    let request = icmp_echo_request(b"flood");
    let frame = eth(
        IF_MAC,
        CLIENT_MAC,
        EtherType::IPV4,
        &ipv4(CLIENT, OWN, IpProtocol::ICMP, &request),
    );
    let to_kernel = |st: &mut WorkerState, n| {
        (0..n)
            .filter(|_| {
                let mut f = frame.clone();
                matches!(process(&mut f, LAN, st, &fwd, NOW), Action::ToKernel { .. })
            })
            .count()
    };
    assert_eq!(
        to_kernel(&mut first, 1000),
        100,
        "the whole burst of 1000 pps"
    );
    assert_eq!(to_kernel(&mut second, 1000), 0, "spent by the first worker");
}

#[test]
fn the_kernel_twin_gets_its_rate_and_probe_answers_a_budget_of_their_own() {
    let mut cfg = ha_ports();
    cfg.dataplane.kernel_pps = 1000;
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    let ping = |st: &mut WorkerState, now| {
        let request = icmp_echo_request(b"flood");
        let mut frame = eth(
            IF_MAC,
            CLIENT_MAC,
            EtherType::IPV4,
            &ipv4(CLIENT, OWN, IpProtocol::ICMP, &request),
        );
        process(&mut frame, LAN, st, &fwd, now)
    };
    // A flood at the appliance's own address: a tenth of a second's worth goes through,
    // the rest is counted over the limit.
    let actions: Vec<Action> = (0..1000).map(|_| ping(&mut st, NOW)).collect();
    let passed = actions
        .iter()
        .filter(|a| matches!(a, Action::ToKernel { .. }))
        .count();
    assert_eq!(passed, 100, "the burst of 1000 pps");
    assert!(actions[100..]
        .iter()
        .all(|a| *a == Action::Drop(DropReason::KernelLimit)));
    // A health probe's answer from a backend still reaches the kernel.
    let mut answer = probe_answer();
    assert_eq!(
        process(&mut answer, LAN, &mut st, &fwd, NOW),
        Action::ToKernel { interface: LAN }
    );
    // So does a neighbour's ARP request for the own address (BGP's next hop): a flood
    // routed to the address cannot starve its resolution.
    let mut request = arp_request(CLIENT_MAC, CLIENT, OWN);
    assert_eq!(
        process(&mut request, LAN, &mut st, &fwd, NOW),
        Action::ToKernel { interface: LAN }
    );
    // A millisecond later, one more ping's worth.
    assert_eq!(ping(&mut st, NOW + 1), Action::ToKernel { interface: LAN });
    assert_eq!(
        ping(&mut st, NOW + 1),
        Action::Drop(DropReason::KernelLimit)
    );
}

/// Neighbour discovery for an own address has the neighbours' budget where only a host on
/// the segment can have sent it (hop limit 255): a flood of anything else, solicitations
/// with a lower hop limit (a router forwarded them) among them, does not spend it.
#[test]
fn neighbour_discovery_from_the_segment_has_a_budget_of_its_own() {
    let mut cfg = ipv6_config();
    cfg.dataplane.kernel_pps = 1000;
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    let own: Ipv6Addr = "fd00::2".parse().unwrap();
    let mut routed = solicitation(own);
    routed[ETH_LEN + 7] = 64;
    let passed = (0..1000)
        .filter(|_| {
            let action = process(&mut routed.clone(), LAN, &mut st, &fwd, NOW);
            matches!(action, Action::ToKernel { .. })
        })
        .count();
    assert_eq!(passed, 100, "the others' burst of 1000 pps");
    let mut ns = solicitation(own);
    assert_eq!(
        process(&mut ns, LAN, &mut st, &fwd, NOW),
        Action::ToKernel { interface: LAN }
    );
}

#[test]
fn vlan_tagged_frames_are_dropped_whatever_the_tag() {
    let fwd = build(&ha_ports(), &[]);
    for tag in [[0x81, 0x00, 0x00, 0x0a], [0x88, 0xa8, 0x0f, 0xff]] {
        for mut frame in [
            syn(40_000, 443),
            udp_frame(CLIENT_MAC, CLIENT, 40_000, OWN, 53),
            arp_request(CLIENT_MAC, CLIENT, OWN),
        ] {
            frame.splice(12..12, tag);
            assert_dropped(&frame, &fwd, DropReason::Vlan);
        }
    }
}

/// `frame` (an untagged IPv6 TCP frame) with `chain` inserted between its IPv6 header and
/// its TCP header: the IPv6 next header points into the chain, whose last header must name
/// TCP; the payload length grows to match.
pub(super) fn with_extension_headers(frame: &[u8], first: u8, chain: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    let l4 = ETH_LEN + 40;
    f.splice(l4..l4, chain.iter().copied());
    let len = u16::from_be_bytes([f[ETH_LEN + 4], f[ETH_LEN + 5]]) + chain.len() as u16;
    f[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&len.to_be_bytes());
    f[ETH_LEN + 6] = first;
    f
}

/// Destination options of 8 bytes (a PadN option) naming `next`.
pub(super) fn dest_options(next: u8) -> [u8; 8] {
    [next, 0, 1, 4, 0, 0, 0, 0]
}

#[test]
fn ipv6_extension_headers_are_walked_so_the_flow_is_the_same_and_nat_keeps_checksums() {
    let fwd = build(&ipv6_config(), &[]);
    let plain = tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, TcpFlags::SYN);
    let (mut st, _) = worker();
    let expected = to_backend(&mut plain.clone(), &mut st, &fwd);
    // Hop-by-hop options, then destination options, then TCP (each 8 bytes, PadN).
    let mut chain = dest_options(IpProtocol::IPV6_DEST_OPTIONS).to_vec();
    chain.extend_from_slice(&dest_options(IpProtocol::TCP));
    let frame = with_extension_headers(&plain, IpProtocol::IPV6_HOP_BY_HOP, &chain);

    let (mut st, _) = worker();
    let mut nat = frame.clone();
    assert_eq!(
        to_backend(&mut nat, &mut st, &fwd),
        expected,
        "the same flow, the same backend"
    );
    let IpAddr::V6(backend) = fwd.backends[expected as usize].address else {
        panic!("an IPv6 backend")
    };
    let ip = Ipv6Packet::new_checked(&nat[ETH_LEN..]).unwrap();
    assert_eq!(ip.dst(), backend);
    let segment = TcpPacket::new_checked(&ip.payload()[16..]).unwrap();
    assert!(
        segment.verify_checksum_v6(CLIENT6, backend),
        "the TCP checksum behind the extension headers follows NAT"
    );
    // The same action on both paths (the fast path leaves extension headers to the slow one).
    let (action, _, _) = both_paths(&frame, &fwd);
    assert!(matches!(action, Action::Transmit { .. }), "{action:?}");
}

#[test]
fn ipv6_extension_header_chains_longer_than_the_bound_are_a_counted_drop() {
    let fwd = build(&ipv6_config(), &[]);
    let plain = tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, TcpFlags::SYN);
    let n = crate::wire::MAX_EXTENSION_HEADERS + 1;
    let mut chain = Vec::new();
    for i in 0..n {
        let next = if i + 1 == n {
            IpProtocol::TCP
        } else {
            IpProtocol::IPV6_DEST_OPTIONS
        };
        chain.extend_from_slice(&dest_options(next));
    }
    let frame = with_extension_headers(&plain, IpProtocol::IPV6_DEST_OPTIONS, &chain);
    assert_dropped(&frame, &fwd, DropReason::ExtensionHeaders);
}

/// A solicitation with a further option (a nonce, RFC 3971) is answered with the
/// advertisement alone, its checksum over what its length says; one from the unspecified
/// address (duplicate-address detection) naming a sender's MAC, or from a group MAC, is not
/// answered.
#[test]
fn solicitations_with_more_options_or_from_nowhere() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let plain = solicitation(FRONTEND6);
    let ip = Ipv6Packet::new_checked(&plain[ETH_LEN..]).unwrap();
    let (group, mut m) = (ip.dst(), ip.payload().to_vec());
    m[2..4].copy_from_slice(&[0, 0]);
    m.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]);
    let mut nonce = icmp6_frame(
        plain[..6].try_into().map(MacAddr).unwrap(),
        CLIENT6,
        group,
        m,
    );
    nonce.extend_from_slice(&[0xee; 4]); // a trailer after the packet
    assert!(matches!(
        process(&mut nonce, LAN, &mut st, &fwd, NOW),
        Action::Transmit { .. }
    ));
    let ip = Ipv6Packet::new_checked(&nonce[ETH_LEN..]).unwrap();
    assert_eq!(ip.payload_len(), 32, "the advertisement alone");
    let na = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(na.msg_type(), Icmpv6Type::NEIGHBOR_ADVERT);
    assert!(na.verify_checksum(FRONTEND6, CLIENT6));

    let mut dad = solicitation(FRONTEND6);
    let ip = Ipv6Packet::new_checked(&dad[ETH_LEN..]).unwrap();
    let (group, mut m) = (ip.dst(), ip.payload().to_vec());
    m[2..4].copy_from_slice(&[0, 0]);
    let to = dad[..6].try_into().map(MacAddr).unwrap();
    dad = icmp6_frame(to, Ipv6Addr::UNSPECIFIED, group, m);
    assert_eq!(
        process(&mut dad, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Malformed)
    );
    let mut from_a_group = solicitation(FRONTEND6);
    from_a_group[6] |= 1;
    assert!(!matches!(
        process(&mut from_a_group, LAN, &mut st, &fwd, NOW),
        Action::Transmit { .. }
    ));
}

/// Neighbour discovery unicast to a frontend (a router advertisement, an overriding neighbour
/// advertisement, a redirect) is never carried to a backend's link with its hop limit of
/// 255, where the backend would take it for its own link's.
#[test]
fn neighbour_discovery_to_a_frontend_is_never_forwarded() {
    let fwd = build(&ipv6_config(), &[]);
    let attacker: Ipv6Addr = "fe80::bad".parse().unwrap();
    // From a global source too, which no martian-source check would catch.
    for (msg_type, sender) in [
        (134u8, attacker),
        (136, attacker),
        (137, attacker),
        (134, CLIENT6),
        (136, CLIENT6),
        (137, CLIENT6),
    ] {
        let mut m = vec![msg_type, 0, 0, 0, 64, 0, 0x07, 0x08];
        m.extend_from_slice(&[0; 24]);
        if msg_type == 136 {
            m[4] = 0x20;
        }
        let (mut st, _) = worker();
        let mut frame = icmp6_frame(IF_MAC, sender, FRONTEND6, m);
        let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
        assert_eq!(
            action,
            Action::Drop(DropReason::Unsupported),
            "type {msg_type} from {sender}"
        );
    }
}

/// ICMPv4 redirects and router discovery speak for their own link, as IPv6's neighbour
/// discovery does: never balanced to a backend, to the frontend or through it (transit).
#[test]
fn ipv4_redirects_and_router_discovery_are_never_forwarded() {
    let fwd = build(&ha_ports(), &[]);
    // From the backends' gateway, naming another: a backend taking it would send its
    // replies to that client through whoever the redirect names.
    let mut redirect = vec![5, 1, 0, 0, 10, 0, 0, 66];
    redirect.extend_from_slice(&ipv4(BACKENDS[0], CLIENT, IpProtocol::TCP, &[0; 8]));
    let advert = vec![9, 0, 0, 0, 1, 2, 0, 30, 10, 0, 0, 66, 0, 0, 0, 0];
    let solicit = vec![10, 0, 0, 0, 0, 0, 0, 0];
    let elsewhere = Ipv4Addr::new(10, 0, 1, 99);
    let fe_mac = frontend_mac(IpAddr::V4(FRONTEND));
    for mut message in [redirect, advert, solicit] {
        let sum = internet_checksum(&message);
        message[2..4].copy_from_slice(&sum.to_be_bytes());
        for (dst_mac, dst) in [(IF_MAC, FRONTEND), (fe_mac, FRONTEND), (fe_mac, elsewhere)] {
            let packet = ipv4(Ipv4Addr::new(10, 0, 0, 1), dst, IpProtocol::ICMP, &message);
            let mut frame = eth(dst_mac, CLIENT_MAC, EtherType::IPV4, &packet);
            let (mut st, _) = worker();
            let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
            let kind = message[0];
            assert_eq!(
                action,
                Action::Drop(DropReason::Unsupported),
                "ICMP {kind} to {dst} at {dst_mac}"
            );
        }
    }
    // Other ICMP to the frontend still goes (a timestamp request, say).
    let mut timestamp = vec![13, 0, 0, 0, 0, 1, 0, 1];
    timestamp.extend_from_slice(&[0; 12]);
    let sum = internet_checksum(&timestamp);
    timestamp[2..4].copy_from_slice(&sum.to_be_bytes());
    let packet = ipv4(CLIENT, FRONTEND, IpProtocol::ICMP, &timestamp);
    let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &packet);
    let (mut st, _) = worker();
    assert_to_a_backend(process(&mut frame, LAN, &mut st, &fwd, NOW));
}

/// Nothing from a link-local source is forwarded (no router carries it off its link), on
/// either path: IPv4's 169.254/16 is a martian source, IPv6's fe80::/10 too once it is past
/// what the kernel twin takes.
#[test]
fn link_local_sources_are_not_forwarded() {
    let v4 = build(&ha_ports(), &[]);
    let from = Ipv4Addr::new(169, 254, 7, 7);
    let frame = tcp_frame(CLIENT_MAC, from, 40_000, FRONTEND, 443, TcpFlags::SYN);
    assert_dropped(&frame, &v4, DropReason::MartianSource);
    let v6 = build(&ipv6_config(), &[]);
    let from: Ipv6Addr = "fe80::7".parse().unwrap();
    let frame = tcp6_frame(CLIENT_MAC, from, 40_000, FRONTEND6, 443, TcpFlags::SYN);
    assert_dropped(&frame, &v6, DropReason::MartianSource);
}

/// A frame from a group MAC address (none is sent from one) gets no answer, which would
/// flood the segment, nor a flow: ARP for a frontend, a ping, a TCP segment.
#[test]
fn frames_from_a_group_mac_are_dropped() {
    let fwd = build(&ha_ports(), &[]);
    for group in [MacAddr::BROADCAST, MacAddr([0x01, 0, 0x5e, 0, 0, 1])] {
        let mut arp = arp_request(group, CLIENT, FRONTEND);
        arp[6..12].copy_from_slice(&group.0);
        let ping = eth(
            IF_MAC,
            group,
            EtherType::IPV4,
            &ipv4(CLIENT, FRONTEND, IpProtocol::ICMP, &icmp_echo_request(b"x")),
        );
        let segment = tcp_frame(group, CLIENT, 40_000, FRONTEND, 443, TcpFlags::SYN);
        for frame in [arp, ping, segment] {
            assert_dropped(&frame, &fwd, DropReason::Malformed);
        }
    }
}

/// An ICMP error whose checksum is wrong is dropped, not rewritten under NAT with a checksum
/// filled anew (which would make a corrupt or forged message whole for the backend).
#[test]
fn an_icmp_error_with_a_wrong_checksum_is_dropped() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    to_backend(&mut syn(40_000, 443), &mut st, &fwd);
    let router = Ipv4Addr::new(10, 0, 1, 1);
    let router_mac = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    let whole = super::errors_and_transit::frag_needed(router_mac, router, 40_000);
    let mut sent = whole.clone();
    assert!(matches!(
        process(&mut sent, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            backend: Some(_),
            ..
        }
    ));
    let mut corrupt = whole;
    corrupt[14 + 20 + 6] ^= 0x40; // the MTU
    assert_eq!(
        process(&mut corrupt, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Malformed)
    );
}

/// IPv4 may carry protocol 58 (ICMPv6's number) like any other protocol: an HA-ports rule
/// balances it, on both paths, rather than reading it as neighbour discovery.
#[test]
fn ipv4_carrying_protocol_58_is_balanced_like_any_protocol() {
    let fwd = build(&ha_ports(), &[]);
    // 128: an ICMPv6 echo request's type, which is no ping in IPv4.
    for first in [135u8, 0, 128] {
        let payload = [first, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        let frame = eth(
            IF_MAC,
            CLIENT_MAC,
            EtherType::IPV4,
            &ipv4(CLIENT, FRONTEND, IpProtocol::ICMPV6, &payload),
        );
        let (action, _, _) = both_paths(&frame, &fwd);
        assert!(
            matches!(
                action,
                Action::Transmit {
                    backend: Some(_),
                    ..
                }
            ),
            "{first}: {action:?}"
        );
    }
}

/// The kernel twin learns neighbours from what it is handed (Linux takes a sender from any ARP
/// packet or neighbour message for its address): none that places an address the appliance
/// verified at another MAC, and no router advertisement or redirect, which would change its
/// routes (its probes would go elsewhere).
#[test]
fn the_kernel_twin_is_handed_no_false_neighbour_and_no_route() {
    const ATTACKER: MacAddr = MacAddr([0x02, 0xba, 0xd0, 0, 0, 0x66]);
    let (mut st, _) = worker();
    // ARP for the own address, naming the client (verified at CLIENT_MAC) as its sender.
    let fwd = build(&ha_ports(), &[]);
    for (mac, sender, expected) in [
        (
            ATTACKER,
            CLIENT,
            Action::Drop(DropReason::NeighbourConflict),
        ),
        (CLIENT_MAC, CLIENT, Action::ToKernel { interface: LAN }),
        // A backend whose `mac` the config gives: held there as firmly (the twin's probes
        // would go to whoever claimed it).
        (
            ATTACKER,
            BACKENDS[0],
            Action::Drop(DropReason::NeighbourConflict),
        ),
        (
            BACKEND_MACS[0],
            BACKENDS[0],
            Action::ToKernel { interface: LAN },
        ),
        // A sender the appliance has not verified: the twin may learn it.
        (
            ATTACKER,
            Ipv4Addr::new(10, 0, 0, 77),
            Action::ToKernel { interface: LAN },
        ),
    ] {
        for op in [ArpOperation::REQUEST, ArpOperation::REPLY] {
            let mut frame = arp_frame(IF_MAC, op, mac, sender, OWN);
            let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
            assert_eq!(action, expected, "ARP {op} {sender} at {mac}");
        }
    }
    // An ICMP redirect to the own address.
    let mut redirect = vec![5, 1, 0, 0, 10, 0, 0, 66];
    redirect.extend_from_slice(&ipv4(OWN, BACKENDS[0], IpProtocol::TCP, &[0; 8]));
    let sum = internet_checksum(&redirect);
    redirect[2..4].copy_from_slice(&sum.to_be_bytes());
    let packet = ipv4(Ipv4Addr::new(10, 0, 0, 1), OWN, IpProtocol::ICMP, &redirect);
    let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &packet);
    let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
    assert_eq!(action, Action::Drop(DropReason::Unsupported));
    // IPv4 router discovery (RFC 1256): an advertisement would give the twin a default
    // route; a solicitation asks it to be one. (To all hosts: group traffic for others.)
    let mut advert = vec![9, 0, 0, 0, 1, 2, 0, 30, 10, 0, 0, 66, 0, 0, 0, 0];
    let sum = internet_checksum(&advert);
    advert[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut solicit = vec![10, 0, 0, 0, 0, 0, 0, 0];
    let sum = internet_checksum(&solicit);
    solicit[2..4].copy_from_slice(&sum.to_be_bytes());
    let all_hosts = (Ipv4Addr::new(224, 0, 0, 1), MacAddr([1, 0, 0x5e, 0, 0, 1]));
    for ((to, mac), message, expected) in [
        ((OWN, IF_MAC), &advert, DropReason::Unsupported),
        ((OWN, IF_MAC), &solicit, DropReason::Unsupported),
        (all_hosts, &advert, DropReason::NotForUs),
    ] {
        let packet = ipv4(Ipv4Addr::new(10, 0, 0, 66), to, IpProtocol::ICMP, message);
        let mut frame = eth(mac, CLIENT_MAC, EtherType::IPV4, &packet);
        let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
        let kind = message[0];
        assert_eq!(action, Action::Drop(expected), "ICMP {kind} to {to}");
    }

    // IPv6: a solicitation for the own address, its source option the client's or not.
    let fwd = build(&ipv6_config(), &[]);
    let own: Ipv6Addr = "fd00::2".parse().unwrap();
    let ns = solicitation(own);
    let (group_mac, group) = (
        MacAddr(ns[..6].try_into().unwrap()),
        Ipv6Packet::new_checked(&ns[ETH_LEN..]).unwrap().dst(),
    );
    let message = |kind: u8, target: Ipv6Addr, options: &[u8]| {
        let mut m = vec![kind, 0, 0, 0, 0x20, 0, 0, 0];
        m.extend_from_slice(&target.octets());
        m.extend_from_slice(options);
        m
    };
    let option = |kind: u8, mac: MacAddr| [&[kind, 1][..], &mac.0].concat();
    let nonce = [14, 1, 1, 2, 3, 4, 5, 6];
    for (options, expected) in [
        (option(1, CLIENT_MAC), Action::ToKernel { interface: LAN }),
        (
            option(1, ATTACKER),
            Action::Drop(DropReason::NeighbourConflict),
        ),
        // Behind another option, as RFC 4861 allows.
        (
            [&nonce[..], &option(1, ATTACKER)].concat(),
            Action::Drop(DropReason::NeighbourConflict),
        ),
    ] {
        let mut frame = icmp6_frame(group_mac, CLIENT6, group, message(135, own, &options));
        let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
        assert_eq!(action, expected, "solicitation with options {options:?}");
    }
    // An advertisement to the own address (override flag set) placing the client elsewhere.
    for (mac, expected) in [
        (CLIENT_MAC, Action::ToKernel { interface: LAN }),
        (ATTACKER, Action::Drop(DropReason::NeighbourConflict)),
    ] {
        let m = message(136, CLIENT6, &option(2, mac));
        let mut frame = icmp6_frame(IF_MAC, CLIENT6, own, m);
        let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
        assert_eq!(action, expected, "advertisement for the client at {mac}");
    }
    // A router advertisement to all nodes, a router solicitation, a redirect to the own address.
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let router: Ipv6Addr = "fe80::1".parse().unwrap();
    let ra = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut frame = icmp6_frame(MacAddr([0x33, 0x33, 0, 0, 0, 1]), router, all_nodes, ra);
    let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
    assert_eq!(
        action,
        Action::Drop(DropReason::Unsupported),
        "router advertisement"
    );
    let all_routers: Ipv6Addr = "ff02::2".parse().unwrap();
    let rs = vec![133, 0, 0, 0, 0, 0, 0, 0];
    let mut frame = icmp6_frame(MacAddr([0x33, 0x33, 0, 0, 0, 2]), CLIENT6, all_routers, rs);
    let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
    assert_eq!(
        action,
        Action::Drop(DropReason::Unsupported),
        "router solicitation"
    );
    let mut redirect = message(137, CLIENT6, &[]);
    redirect.extend_from_slice(&CLIENT6.octets());
    let mut frame = icmp6_frame(IF_MAC, router, own, redirect);
    let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
    assert_eq!(action, Action::Drop(DropReason::Unsupported), "redirect");
}
