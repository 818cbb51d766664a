//! Property tests for the whole `wire` module: the no-panic contract on arbitrary and mutated
//! bytes, set/get round trips, and incremental checksum updates against full recomputes.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::checksum::{self, tcp_udp_checksum_v4};
use super::testutil::{eth, ipv4, ipv6, tcp, udp};
use super::*;

/// Runs every view over `bytes`; whatever `new_checked` accepts, every getter and setter must
/// work without panicking.
fn exercise_every_view(bytes: &[u8]) {
    let mut buf = bytes.to_vec();
    let (v4, v6) = (Ipv4Addr::new(10, 0, 0, 1), Ipv6Addr::LOCALHOST);
    if let Ok(mut f) = EthernetFrame::new_checked(&mut buf[..]) {
        let _ = (
            f.dst(),
            f.src(),
            f.ethertype(),
            f.vlan_id(),
            f.header_len(),
            f.payload().len(),
        );
        f.set_dst(f.src());
        f.set_src(MacAddr::BROADCAST);
        f.payload_mut().iter_mut().for_each(|b| *b = !*b);
    }
    let mut buf = bytes.to_vec();
    if let Ok(mut a) = ArpPacket::new_checked(&mut buf[..]) {
        let _ = (
            a.operation(),
            a.sender_mac(),
            a.sender_ip(),
            a.target_mac(),
            a.target_ip(),
        );
        a.make_reply_in_place(MacAddr::BROADCAST);
    }
    let mut buf = bytes.to_vec();
    if let Ok(mut ip) = Ipv4Packet::new_checked(&mut buf[..]) {
        let _ = (
            ip.version(),
            ip.header_len(),
            ip.total_len(),
            ip.ident(),
            ip.dont_fragment(),
        );
        let _ = (
            ip.more_fragments(),
            ip.frag_offset(),
            ip.is_fragment(),
            ip.ttl(),
            ip.protocol(),
        );
        let _ = (
            ip.checksum(),
            ip.src(),
            ip.dst(),
            ip.verify_checksum(),
            ip.payload().len(),
        );
        ip.set_ttl(1);
        ip.set_src(v4);
        ip.set_dst(v4);
        ip.swap_src_dst();
        ip.fill_checksum();
        ip.payload_mut().fill(0);
    }
    let mut buf = bytes.to_vec();
    if let Ok(mut ip) = Ipv6Packet::new_checked(&mut buf[..]) {
        let _ = (
            ip.version(),
            ip.payload_len(),
            ip.next_header(),
            ip.hop_limit(),
            ip.src(),
        );
        let _ = (ip.dst(), ip.payload().len());
        ip.set_hop_limit(1);
        ip.swap_src_dst();
        ip.payload_mut().fill(0);
    }
    let mut buf = bytes.to_vec();
    if let Ok(mut t) = TcpPacket::new_checked(&mut buf[..]) {
        let _ = (
            t.src_port(),
            t.dst_port(),
            t.seq_number(),
            t.ack_number(),
            t.header_len(),
        );
        let _ = (
            t.flags(),
            t.fin(),
            t.syn(),
            t.rst(),
            t.ack(),
            t.window(),
            t.checksum(),
        );
        let _ = (
            t.payload().len(),
            t.verify_checksum_v4(v4, v4),
            t.verify_checksum_v6(v6, v6),
        );
        t.set_src_port(1);
        t.set_dst_port(2);
        t.fill_checksum_v4(v4, v4);
        t.fill_checksum_v6(v6, v6);
        t.payload_mut().fill(0);
    }
    let mut buf = bytes.to_vec();
    if let Ok(mut u) = UdpPacket::new_checked(&mut buf[..]) {
        let _ = (
            u.src_port(),
            u.dst_port(),
            u.len(),
            u.checksum(),
            u.payload().len(),
        );
        let _ = (u.verify_checksum_v4(v4, v4), u.verify_checksum_v6(v6, v6));
        u.set_src_port(1);
        u.set_dst_port(2);
        u.fill_checksum_v4(v4, v4);
        u.fill_checksum_v6(v6, v6);
        u.payload_mut().fill(0);
    }
    let mut buf = bytes.to_vec();
    if let Ok(mut i) = IcmpPacket::new_checked(&mut buf[..]) {
        let _ = (
            i.msg_type(),
            i.code(),
            i.checksum(),
            i.echo_ident(),
            i.echo_seq_no(),
        );
        let _ = (i.payload().len(), i.verify_checksum());
        i.make_echo_reply_in_place();
        i.fill_checksum();
    }
    let mut buf = bytes.to_vec();
    if let Ok(mut i) = Icmpv6Packet::new_checked(&mut buf[..]) {
        let _ = (
            i.msg_type(),
            i.code(),
            i.checksum(),
            i.echo_ident(),
            i.echo_seq_no(),
        );
        let _ = (i.ns_target(), i.payload().len(), i.verify_checksum(v6, v6));
        i.make_echo_reply_in_place();
        i.fill_checksum(v6, v6);
    }
    let _ = rewrite_ipv4_dst(&mut bytes.to_vec(), v4);
    let _ = rewrite_ipv6_src(&mut bytes.to_vec(), v6);
    if let Ok(h) = parse_headers(bytes) {
        assert!(usize::from(h.l3_offset) <= bytes.len() && h.l3_offset <= h.l4_offset);
        let _ = rewrite_ipv4_src(&mut bytes.to_vec()[usize::from(h.l3_offset)..], v4);
        let _ = rewrite_ipv6_dst(&mut bytes.to_vec()[usize::from(h.l3_offset)..], v6);
    }
}

/// A valid frame of one of the kinds the data plane sees, to mutate.
fn valid_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let (s4, d4) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 7));
    let (s6, d6) = (
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    );
    match kind % 5 {
        0 => eth(
            EtherType::IPV4,
            &ipv4(s4, d4, IpProtocol::TCP, &tcp(s4, d4, 1, 80, 2, payload)),
        ),
        1 => eth(
            EtherType::IPV4,
            &ipv4(s4, d4, IpProtocol::UDP, &udp(s4, d4, 1, 53, payload)),
        ),
        2 => eth(
            EtherType::IPV6,
            &ipv6(s6, d6, IpProtocol::TCP, &tcp(s4, d4, 1, 80, 2, payload)),
        ),
        3 => {
            let mut msg = vec![8, 0, 0, 0, 0, 1, 0, 1];
            msg.extend_from_slice(payload);
            eth(EtherType::IPV4, &ipv4(s4, d4, IpProtocol::ICMP, &msg))
        }
        _ => {
            let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
            arp.extend_from_slice(&[
                2, 0, 0, 0, 0, 1, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 192, 0, 2, 7,
            ]);
            eth(EtherType::ARP, &arp)
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        exercise_every_view(&bytes);
        // Also as the payload of an Ethernet frame of each kind and behind a VLAN tag.
        for ethertype in [EtherType::IPV4, EtherType::IPV6, EtherType::ARP] {
            let frame = eth(ethertype, &bytes);
            exercise_every_view(&frame);
            exercise_every_view(&frame[14..]);
        }
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        kind in any::<u8>(),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut frame = valid_frame(kind, &payload);
        prop_assert!(parse_headers(&frame).is_ok());
        for (at, value) in edits {
            let at = at % frame.len();
            frame[at] = value;
        }
        exercise_every_view(&frame);
        exercise_every_view(&frame[14..]);
        exercise_every_view(&frame[34.min(frame.len())..]);
        let cut = cut % (frame.len() + 1);
        exercise_every_view(&frame[..cut]);
    }

    /// The fast path accepts every plain IPv4 and IPv6 TCP or UDP frame (padded or not);
    /// and whatever it accepts, mutated or cut too, the slow path parses to the same summary.
    #[test]
    fn fast_parse_agrees_with_parse_headers(
        kind in 0u8..5,
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in any::<usize>(),
        pad in 0usize..8,
    ) {
        let mut frame = valid_frame(kind, &payload);
        frame.extend(std::iter::repeat(0).take(pad));
        let untouched = parse_ipv4_fast(&frame);
        if frame[12..14] == [0x08, 0x00] && matches!(frame[23], IpProtocol::TCP | IpProtocol::UDP)
            && frame[14] == 0x45 && frame[20] & 0x3f == 0 && frame[21] == 0 {
            prop_assert!(untouched.is_some(), "a plain frame took the slow path");
        }
        if frame[12..14] == [0x86, 0xdd] && matches!(frame[20], IpProtocol::TCP | IpProtocol::UDP) {
            prop_assert!(parse_ipv6_fast(&frame).is_some(), "a plain IPv6 frame took the slow path");
        }
        for (at, value) in edits {
            let at = at % frame.len();
            frame[at] = value;
        }
        let cut = cut % (frame.len() + 1);
        for bytes in [&frame[..], &frame[..cut]] {
            if let Some(fast) = parse_ipv4_fast(bytes) {
                prop_assert_eq!(Ok(fast.headers()), parse_headers(bytes));
            }
            if let Some(fast) = parse_ipv6_fast(bytes) {
                prop_assert_eq!(Ok(fast), parse_headers(bytes));
            }
        }
    }

    /// The fast path's NAT rewrite writes exactly the bytes the general one does: the
    /// address, then (a port-translating rule) the port through the header's own setter.
    #[test]
    fn fast_dnat_writes_what_the_general_rewrite_writes(
        kind in 0u8..2,
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        backend in any::<u32>(),
        port in proptest::option::of(any::<u16>()),
        zero_udp_checksum in any::<bool>(),
    ) {
        let mut frame = valid_frame(kind, &payload);
        if kind == 1 && zero_udp_checksum {
            frame[40..42].copy_from_slice(&[0, 0]);
        }
        let fast = parse_ipv4_fast(&frame).expect("a plain frame");
        let mut general = frame.clone();
        rewrite_ipv4_dst(&mut general[14..], Ipv4Addr::from(backend)).unwrap();
        if let Some(port) = port {
            match fast.proto() {
                IpProtocol::TCP => TcpPacket::new_checked(&mut general[34..]).unwrap().set_dst_port(port),
                _ => UdpPacket::new_checked(&mut general[34..]).unwrap().set_dst_port(port),
            }
        }
        dnat_ipv4_fast(&mut frame, &fast, backend, port).unwrap();
        prop_assert_eq!(frame, general);
    }

    #[test]
    fn parse_reads_back_what_was_built(
        src in any::<u32>(), dst in any::<u32>(), sport in any::<u16>(), dport in any::<u16>(),
        flags in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        let seg = tcp(src, dst, sport, dport, flags, &payload);
        let h = parse_headers(&eth(EtherType::IPV4, &ipv4(src, dst, IpProtocol::TCP, &seg))).unwrap();
        prop_assert_eq!((h.src, h.dst), (src.into(), dst.into()));
        prop_assert_eq!((h.src_port, h.dst_port, h.tcp_flags), (sport, dport, flags));
        let dgram = udp(src, dst, sport, dport, &payload);
        let h = parse_headers(&eth(EtherType::IPV4, &ipv4(src, dst, IpProtocol::UDP, &dgram))).unwrap();
        prop_assert_eq!((h.proto, h.src_port, h.dst_port, h.fragment), (IpProtocol::UDP, sport, dport, false));
    }

    #[test]
    fn incremental_update_equals_recompute(
        data in proptest::collection::vec(any::<u8>(), 2..64), word in any::<prop::sample::Index>(),
        new in any::<u16>(),
    ) {
        let mut data = data;
        let at = word.index(data.len() / 2) * 2;
        let mut with_csum = data.clone();
        with_csum.extend_from_slice(&checksum::internet_checksum(&data).to_be_bytes());
        let old = u16::from_be_bytes([data[at], data[at + 1]]);
        data[at..at + 2].copy_from_slice(&new.to_be_bytes());
        let before = checksum::internet_checksum(&with_csum[..with_csum.len() - 2]);
        prop_assert_eq!(checksum::update_u16(before, old, new), checksum::internet_checksum(&data));
    }

    #[test]
    fn nat_rewrites_match_full_recompute(
        client in any::<u32>(), vip in any::<u32>(), backend in any::<u32>(),
        sport in any::<u16>(), dport in any::<u16>(), backend_port in any::<u16>(), udp_kind in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let (client, vip, backend) = (Ipv4Addr::from(client), Ipv4Addr::from(vip), Ipv4Addr::from(backend));
        let (proto, l4) = if udp_kind {
            (IpProtocol::UDP, udp(client, vip, sport, dport, &payload))
        } else {
            (IpProtocol::TCP, tcp(client, vip, sport, dport, 0x10, &payload))
        };
        let mut frame = eth(EtherType::IPV4, &ipv4(client, vip, proto, &l4));
        let h = parse_headers(&frame).unwrap();
        rewrite_ipv4_dst(&mut frame[usize::from(h.l3_offset)..], backend).unwrap();
        let l4 = &mut frame[usize::from(h.l4_offset)..];
        if udp_kind {
            UdpPacket::new_checked(l4).unwrap().set_dst_port(backend_port);
        } else {
            TcpPacket::new_checked(l4).unwrap().set_dst_port(backend_port);
        }
        let ip = Ipv4Packet::new_checked(&frame[usize::from(h.l3_offset)..]).unwrap();
        prop_assert_eq!(ip.dst(), backend);
        prop_assert!(ip.verify_checksum());
        let seg = ip.payload();
        let stored = u16::from_be_bytes(if udp_kind { [seg[6], seg[7]] } else { [seg[16], seg[17]] });
        prop_assert_eq!(stored, tcp_udp_checksum_v4(client, backend, proto, seg));
    }

    #[test]
    fn setters_round_trip(mac in any::<[u8; 6]>(), a in any::<u32>(), b in any::<u32>(), port in any::<u16>(), ttl in any::<u8>()) {
        let mut frame = valid_frame(0, b"data");
        let mut f = EthernetFrame::new_checked(&mut frame[..]).unwrap();
        f.set_src(MacAddr(mac));
        f.set_dst(MacAddr(mac));
        prop_assert_eq!((f.src(), f.dst()), (MacAddr(mac), MacAddr(mac)));
        let mut ip = Ipv4Packet::new_checked(f.payload_mut()).unwrap();
        ip.set_src(Ipv4Addr::from(a));
        ip.set_dst(Ipv4Addr::from(b));
        ip.set_ttl(ttl);
        prop_assert_eq!((ip.src(), ip.dst(), ip.ttl()), (Ipv4Addr::from(a), Ipv4Addr::from(b), ttl));
        prop_assert!(ip.verify_checksum());
        let mut t = TcpPacket::new_checked(ip.payload_mut()).unwrap();
        t.set_src_port(port);
        t.set_dst_port(port.wrapping_add(1));
        prop_assert_eq!((t.src_port(), t.dst_port()), (port, port.wrapping_add(1)));
        let mut arp = valid_frame(4, &[]);
        let mut p = ArpPacket::new_checked(&mut arp[14..]).unwrap();
        p.set_sender_mac(MacAddr(mac));
        p.set_target_ip(Ipv4Addr::from(a));
        p.set_operation(ArpOperation::REPLY);
        prop_assert_eq!((p.sender_mac(), p.target_ip(), p.operation()), (MacAddr(mac), Ipv4Addr::from(a), 2));
    }
}
