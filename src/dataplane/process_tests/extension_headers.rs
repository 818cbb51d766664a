//! IPv6 extension headers where the slow path reads behind them: ICMPv6 errors quoting a
//! packet that carries them, later fragments whose fragmentable part starts with one,
//! neighbour solicitations behind one; and ICMP errors quoting a later fragment.

use super::hostile::{dest_options as options, with_extension_headers as with_chain};
use super::icmp_and_ipv6::{icmp6_frame, ipv6_config, tcp6_frame, v6_fragment, CLIENT6, FRONTEND6};
use super::*;

fn address6(fwd: &Forwarding, b: BackendId) -> Ipv6Addr {
    match fwd.backends[b as usize].address {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => panic!("an IPv6 backend, not {a}"),
    }
}

/// The TCP segment an ICMPv6 `message` quotes behind the quoted IPv6 header and one
/// 8-byte extension header; its checksum is right for `src` → `dst`.
fn assert_quoted_segment(message: &[u8], src: Ipv6Addr, dst: Ipv6Addr) {
    let seg = &message[8 + 40 + 8..];
    assert_eq!(
        tcp_udp_checksum_v6(src, dst, IpProtocol::TCP, seg),
        u16::from_be_bytes([seg[16], seg[17]]),
        "the quoted segment's checksum, behind its extension header"
    );
}

#[test]
fn packet_too_big_about_a_flow_with_extension_headers_goes_to_its_flows_backend() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let router: Ipv6Addr = "fd00:1::1".parse().unwrap();
    let dest_options = options(IpProtocol::TCP);
    for sport in 40_000..40_020 {
        let plain = tcp6_frame(CLIENT_MAC, CLIENT6, sport, FRONTEND6, 443, TcpFlags::SYN);
        let mut syn = with_chain(&plain, IpProtocol::IPV6_DEST_OPTIONS, &dest_options);
        let owner = to_backend(&mut syn, &mut st, &fwd);
        let backend = address6(&fwd, owner);
        // What the backend sent, NATed back: from the frontend, with the same header.
        let sent = tcp6_frame(IF_MAC, FRONTEND6, 443, CLIENT6, sport, TcpFlags::ACK);
        let sent = with_chain(&sent, IpProtocol::IPV6_DEST_OPTIONS, &dest_options);
        let mut m = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
        m.extend_from_slice(&sent[ETH_LEN..]);
        let mut error = icmp6_frame(IF_MAC, router, FRONTEND6, m);
        assert_eq!(
            process(&mut error, LAN, &mut st, &fwd, NOW),
            Action::Transmit {
                interface: LAN,
                backend: Some(owner)
            },
            "source port {sport}"
        );
        // About the packet as the backend sent it, every checksum right.
        let ip = Ipv6Packet::new_checked(&error[ETH_LEN..]).unwrap();
        assert_eq!((ip.src(), ip.dst()), (router, backend));
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(router, backend), "ICMPv6 checksum");
        let q = crate::wire::QuotedIpv6::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (q.src(), q.dst(), q.ports()),
            (backend, CLIENT6, (443, sport))
        );
        assert_quoted_segment(ip.payload(), backend, CLIENT6);
    }
}

#[test]
fn a_backend_s_icmpv6_error_about_a_segment_with_extension_headers_reaches_the_client() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let dest_options = options(IpProtocol::TCP);
    let plain = tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, TcpFlags::SYN);
    let mut syn = with_chain(&plain, IpProtocol::IPV6_DEST_OPTIONS, &dest_options);
    let owner = to_backend(&mut syn, &mut st, &fwd);
    let backend = address6(&fwd, owner);
    // The segment as the backend got it, quoted in its "port unreachable" to the client.
    let got = tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, backend, 443, TcpFlags::SYN);
    let got = with_chain(&got, IpProtocol::IPV6_DEST_OPTIONS, &dest_options);
    let mut m = vec![1, 4, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&got[ETH_LEN..]);
    let mut error = icmp6_frame(IF_MAC, backend, CLIENT6, m);
    error[6..12].copy_from_slice(&fwd.backends[owner as usize].mac.unwrap().0);
    assert_eq!(
        process(&mut error, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    let ip = Ipv6Packet::new_checked(&error[ETH_LEN..]).unwrap();
    assert_eq!((ip.src(), ip.dst()), (FRONTEND6, CLIENT6));
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum(FRONTEND6, CLIENT6), "ICMPv6 checksum");
    let q = crate::wire::QuotedIpv6::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (q.src(), q.dst(), q.ports()),
        (CLIENT6, FRONTEND6, (40_000, 443))
    );
    assert_quoted_segment(ip.payload(), CLIENT6, FRONTEND6);
}

/// A 48-byte UDP datagram from `src` to `dst` in two fragments whose fragmentable part starts
/// with destination options naming UDP: the first fragment holds 32 bytes of it, the second
/// the other 24. Both fragment headers name the destination options (RFC 8200 §4.5).
pub(super) fn udp6_fragments_behind_options(
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
) -> [Vec<u8>; 2] {
    let mut dgram = Vec::new();
    dgram.extend_from_slice(&sport.to_be_bytes());
    dgram.extend_from_slice(&dport.to_be_bytes());
    dgram.extend_from_slice(&48u16.to_be_bytes());
    dgram.extend_from_slice(&[0, 0]);
    dgram.extend_from_slice(&[0x5a; 40]);
    let csum = tcp_udp_checksum_v6(src, dst, IpProtocol::UDP, &dgram);
    dgram[6..8].copy_from_slice(&csum.to_be_bytes());
    let mut fragmentable = options(IpProtocol::UDP).to_vec();
    fragmentable.extend_from_slice(&dgram);
    [(0u16, true, 0..32), (32, false, 32..56)].map(|(offset, more, range)| {
        let next = IpProtocol::IPV6_DEST_OPTIONS;
        v6_fragment(src, dst, next, (offset, more), &fragmentable[range])
    })
}

#[test]
fn a_later_v6_fragment_behind_destination_options_follows_its_first() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let (src, dst, sport, dport) = (CLIENT6, FRONTEND6, 5353u16, 53u16);
    let frames = udp6_fragments_behind_options(src, sport, dst, dport);
    let mut chosen = None;
    let mut reassembled = Vec::new();
    let mut backend = Ipv6Addr::UNSPECIFIED;
    for (i, mut frame) in frames.into_iter().enumerate() {
        let b = to_backend(&mut frame, &mut st, &fwd);
        assert_eq!(
            *chosen.get_or_insert(b),
            b,
            "fragment {i} follows the first"
        );
        backend = address6(&fwd, b);
        let ip = Ipv6Packet::new_checked(&frame[ETH_LEN..]).unwrap();
        assert_eq!(ip.dst(), backend, "fragment {i} NATed like the first");
        reassembled.extend_from_slice(&ip.payload()[8..]);
    }
    // Put back together, behind its options, the datagram's checksum is right for the backend.
    let dgram = &reassembled[8..];
    assert_eq!(
        tcp_udp_checksum_v6(src, backend, IpProtocol::UDP, dgram),
        u16::from_be_bytes([dgram[6], dgram[7]])
    );
}

#[test]
fn a_solicitation_behind_hop_by_hop_options_gets_an_advert_without_them() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&FRONTEND6.octets());
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&CLIENT_MAC.0);
    let plain = icmp6_frame(IF_MAC, CLIENT6, FRONTEND6, m);
    let hop_by_hop = options(IpProtocol::ICMPV6);
    let mut frame = with_chain(&plain, IpProtocol::IPV6_HOP_BY_HOP, &hop_by_hop);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    let ip = Ipv6Packet::new_checked(&frame[ETH_LEN..]).unwrap();
    assert_eq!(
        (ip.src(), ip.dst(), ip.next_header(), ip.payload_len()),
        (FRONTEND6, CLIENT6, IpProtocol::ICMPV6, 32),
        "the advertisement alone, right behind the IPv6 header"
    );
    let advert = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(advert.msg_type(), Icmpv6Type::NEIGHBOR_ADVERT);
    assert!(
        advert.verify_checksum(FRONTEND6, CLIENT6),
        "ICMPv6 checksum"
    );
    let mac = frontend_mac(IpAddr::V6(FRONTEND6));
    assert_eq!(ip.payload()[24..32], [&[2, 1][..], &mac.0[..]].concat());
}

/// An error about a later fragment quotes no ports, and a flow of TCP or UDP is known by
/// its ports: rather than to a backend that may not own the flow, it is not sent on.
#[test]
fn icmp_errors_quoting_a_later_fragment_are_dropped_not_sent_to_a_guessed_backend() {
    // IPv4: time exceeded about the second fragment (offset 1480) of a UDP datagram.
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    to_backend(
        &mut udp_frame(CLIENT_MAC, CLIENT, 5353, FRONTEND, 53),
        &mut st,
        &fwd,
    );
    let router = Ipv4Addr::new(10, 0, 1, 1);
    let later = ipv4_with(FRONTEND, CLIENT, IpProtocol::UDP, 185, &[], &[0x5a; 8]);
    let mut m = vec![IcmpType::TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&later);
    let csum = internet_checksum(&m);
    m[2..4].copy_from_slice(&csum.to_be_bytes());
    let packet = ipv4(router, FRONTEND, IpProtocol::ICMP, &m);
    let mut error = eth(IF_MAC, OTHER_HOST_MAC, EtherType::IPV4, &packet);
    assert_eq!(
        process(&mut error, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Unsupported)
    );

    // IPv6: packet too big about the second fragment (offset 1232) of a TCP segment.
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let mut syn = tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, TcpFlags::SYN);
    to_backend(&mut syn, &mut st, &fwd);
    let mut quoted = vec![0x60, 0, 0, 0, 0, 16, IpProtocol::IPV6_FRAGMENT, 64];
    quoted.extend_from_slice(&FRONTEND6.octets());
    quoted.extend_from_slice(&CLIENT6.octets());
    quoted.extend_from_slice(&[IpProtocol::TCP, 0, 0x04, 0xd0, 0, 0, 0, 7]);
    quoted.extend_from_slice(&[0x5a; 8]);
    let mut m = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
    m.extend_from_slice(&quoted);
    let router: Ipv6Addr = "fd00:1::1".parse().unwrap();
    let mut error = icmp6_frame(IF_MAC, router, FRONTEND6, m);
    assert_eq!(
        process(&mut error, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Unsupported)
    );
}
