//! Tests of `wire::parse`.
use super::*;
use crate::wire::testutil::{eth, ipv4, ipv6, tcp, udp};
use crate::wire::TcpFlags;
use std::net::Ipv6Addr;

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

#[test]
fn tcp_over_ipv4() {
    let seg = tcp(SRC, DST, 40000, 443, TcpFlags::SYN, &[]);
    let frame = eth(EtherType::IPV4, &ipv4(SRC, DST, IpProtocol::TCP, &seg));
    let h = parse_headers(&frame).unwrap();
    assert_eq!(
        (h.l3_offset, h.l4_offset, h.ethertype),
        (14, 34, EtherType::IPV4)
    );
    assert_eq!(
        (h.proto, h.src, h.dst),
        (IpProtocol::TCP, SRC.into(), DST.into())
    );
    assert_eq!(
        (h.src_port, h.dst_port, h.tcp_flags, h.fragment),
        (40000, 443, 2, false)
    );
}

#[test]
fn udp_over_ipv6_behind_a_vlan_tag() {
    let (src, dst) = (
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    );
    let dgram = udp(SRC, DST, 5353, 53, b"q");
    let mut frame = eth(EtherType::IPV6, &ipv6(src, dst, IpProtocol::UDP, &dgram));
    frame.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
    let h = parse_headers(&frame).unwrap();
    assert_eq!(
        (h.l3_offset, h.l4_offset, h.ethertype),
        (18, 58, EtherType::IPV6)
    );
    assert_eq!(
        (h.proto, h.src, h.dst),
        (IpProtocol::UDP, src.into(), dst.into())
    );
    assert_eq!((h.src_port, h.dst_port, h.tcp_flags), (5353, 53, 0));
}

/// A UDP checksum of 0 (none) is not an error: IPv6 allows it for tunnels (RFC 6935, 6936:
/// VXLAN, GUE, MPLS over UDP), and a middlebox forwards it, on the fast path too.
#[test]
fn an_ipv6_udp_checksum_of_zero_is_parsed_as_any() {
    let (src, dst) = (
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    );
    let mut dgram = udp(SRC, DST, 5353, 4789, b"q");
    dgram[6..8].copy_from_slice(&[0, 0]);
    let frame = eth(EtherType::IPV6, &ipv6(src, dst, IpProtocol::UDP, &dgram));
    let h = parse_headers(&frame).unwrap();
    assert_eq!((h.proto, h.dst_port), (IpProtocol::UDP, 4789));
    assert_eq!(parse_ipv6_fast(&frame), Some(h));
}

#[test]
fn fragments_carry_ports_only_in_the_first() {
    let dgram = udp(SRC, DST, 5353, 53, &[0; 40]);
    let mut packet = ipv4(SRC, DST, IpProtocol::UDP, &dgram[..24]);
    packet[6] = 0x20; // MF, offset 0: the UDP length (48) runs past this fragment
    let h = parse_headers(&eth(EtherType::IPV4, &packet)).unwrap();
    assert_eq!((h.fragment, h.src_port, h.dst_port), (true, 5353, 53));
    packet[6..8].copy_from_slice(&3u16.to_be_bytes()); // offset 24, last fragment
    packet[4..6].copy_from_slice(&0x1234u16.to_be_bytes()); // identification
    let frame = eth(EtherType::IPV4, &packet);
    let h = parse_headers(&frame).unwrap();
    assert_eq!(
        (h.fragment, h.src_port, h.dst_port, h.proto),
        (true, 0, 0, IpProtocol::UDP)
    );
    // Read as the header has it (neither the parse nor this checks its now stale checksum).
    assert_eq!(h.fragment_id(&frame), Ok((0x1234, 24)));
    assert_eq!(h.fragment_id(&frame[..20]), Err(Error::Truncated));
}

#[test]
fn icmp_and_ipv6_fragments_have_no_ports() {
    let frame = eth(
        EtherType::IPV4,
        &ipv4(SRC, DST, IpProtocol::ICMP, &[8, 0, 0, 0, 0, 1, 0, 1]),
    );
    let h = parse_headers(&frame).unwrap();
    assert_eq!(
        (h.proto, h.src_port, h.dst_port, h.fragment),
        (IpProtocol::ICMP, 0, 0, false)
    );
    // An IPv6 fragment names the transport behind its fragment header; a later one has
    // no ports, and a first one too short for its transport header is truncated.
    let (a, b) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
    let frame = eth(
        EtherType::IPV6,
        &ipv6(
            a,
            b,
            IpProtocol::IPV6_FRAGMENT,
            &[6, 0, 0, 8 | 1, 0, 0, 0, 9],
        ),
    );
    let h = parse_headers(&frame).unwrap();
    assert_eq!(
        (h.proto, h.src_port, h.fragment, usize::from(h.l4_offset)),
        (IpProtocol::TCP, 0, true, 14 + 40 + 8)
    );
    let frame = eth(
        EtherType::IPV6,
        &ipv6(a, b, IpProtocol::IPV6_FRAGMENT, &[6, 0, 0, 1, 0, 0, 0, 9]),
    );
    assert_eq!(parse_headers(&frame).unwrap_err(), Error::Truncated);
}

#[test]
fn a_later_ipv6_fragment_ends_the_walk_at_its_fragment_header() {
    // Its fragment header names destination options, the first header of the fragmentable
    // part; what follows in a later fragment is data, not that header.
    let (a, b) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
    let mut payload = vec![IpProtocol::IPV6_DEST_OPTIONS, 0, 0, 32, 0, 0, 0, 9];
    payload.extend_from_slice(&[0x5a; 24]);
    let frame = eth(
        EtherType::IPV6,
        &ipv6(a, b, IpProtocol::IPV6_FRAGMENT, &payload),
    );
    let h = parse_headers(&frame).unwrap();
    assert_eq!(
        (
            h.proto,
            h.fragment,
            h.fragment_header,
            h.l4_offset,
            h.src_port
        ),
        (IpProtocol::IPV6_DEST_OPTIONS, true, 14 + 40, 14 + 40 + 8, 0)
    );
    // Offset 32 bytes (4 units of 8, the M flag clear), identification 9.
    assert_eq!(h.fragment_id(&frame), Ok((9, 32)));
    assert_eq!(h.fragment_id(&frame[..14 + 40 + 4]), Err(Error::Truncated));
}

/// An extension header of kind `kind` leading to `next`, `units` × 8 bytes long.
fn extension(next: u8, units: u8) -> Vec<u8> {
    let mut h = vec![0u8; usize::from(units) * 8];
    h[0] = next;
    h[1] = units - 1;
    h
}

#[test]
fn ipv6_extension_headers_are_walked_to_the_transport_header() {
    let (a, b) = (
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    );
    let seg = tcp(SRC, DST, 40000, 443, TcpFlags::SYN, &[]);
    let plain = parse_headers(&eth(EtherType::IPV6, &ipv6(a, b, IpProtocol::TCP, &seg))).unwrap();
    // Hop-by-hop (8 bytes), destination options (16), routing with no segments left
    // (8), then TCP: the same flow, its transport header 32 bytes further.
    let mut chain = extension(IpProtocol::IPV6_DEST_OPTIONS, 1);
    chain.extend(extension(IpProtocol::IPV6_ROUTING, 2));
    chain.extend(extension(IpProtocol::TCP, 1));
    chain.extend_from_slice(&seg);
    let frame = eth(
        EtherType::IPV6,
        &ipv6(a, b, IpProtocol::IPV6_HOP_BY_HOP, &chain),
    );
    let h = parse_headers(&frame).unwrap();
    assert_eq!(h.l4_offset, plain.l4_offset + 32);
    assert_eq!(
        (h.proto, h.src_port, h.dst_port, h.tcp_flags, h.fragment),
        (
            plain.proto,
            plain.src_port,
            plain.dst_port,
            plain.tcp_flags,
            false
        )
    );

    // Authentication header ((len + 2) × 4 bytes), then a first fragment: ports, and
    // where the fragment header is.
    let mut chain = vec![IpProtocol::IPV6_FRAGMENT, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    chain.extend_from_slice(&[IpProtocol::TCP, 0, 0, 1, 0, 0, 0, 9]);
    chain.extend_from_slice(&seg);
    let frame = eth(EtherType::IPV6, &ipv6(a, b, IpProtocol::IPV6_AUTH, &chain));
    let h = parse_headers(&frame).unwrap();
    assert_eq!((h.fragment, h.fragment_header), (true, 14 + 40 + 12));
    assert_eq!(
        (h.proto, h.src_port, h.dst_port),
        (IpProtocol::TCP, 40000, 443)
    );
}

#[test]
fn ipv6_extension_header_chains_beyond_the_bound_or_broken_are_refused() {
    let (a, b) = (
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    );
    let seg = tcp(SRC, DST, 40000, 443, TcpFlags::SYN, &[]);
    let chain_of = |n: usize| {
        let mut chain = Vec::new();
        for i in 0..n {
            let next = if i + 1 == n {
                IpProtocol::TCP
            } else {
                IpProtocol::IPV6_DEST_OPTIONS
            };
            chain.extend(extension(next, 1));
        }
        chain.extend_from_slice(&seg);
        eth(
            EtherType::IPV6,
            &ipv6(a, b, IpProtocol::IPV6_DEST_OPTIONS, &chain),
        )
    };
    assert_eq!(
        parse_headers(&chain_of(MAX_EXTENSION_HEADERS))
            .unwrap()
            .proto,
        IpProtocol::TCP
    );
    assert_eq!(
        parse_headers(&chain_of(MAX_EXTENSION_HEADERS + 1)).unwrap_err(),
        Error::ExtensionHeaders
    );
    // The bound's headers, then a later fragment's header: one too many all the same.
    let mut chain = Vec::new();
    for _ in 1..MAX_EXTENSION_HEADERS {
        chain.extend(extension(IpProtocol::IPV6_DEST_OPTIONS, 1));
    }
    chain.extend(extension(IpProtocol::IPV6_FRAGMENT, 1));
    chain.extend_from_slice(&[IpProtocol::TCP, 0, 0, 0x10, 0, 0, 0, 9]);
    chain.extend_from_slice(&seg);
    let frame = eth(
        EtherType::IPV6,
        &ipv6(a, b, IpProtocol::IPV6_DEST_OPTIONS, &chain),
    );
    assert_eq!(parse_headers(&frame).unwrap_err(), Error::ExtensionHeaders);

    let mut routing = extension(IpProtocol::TCP, 1);
    routing[3] = 1; // a segment left: not at its destination yet
    routing.extend_from_slice(&seg);
    let frame = eth(
        EtherType::IPV6,
        &ipv6(a, b, IpProtocol::IPV6_ROUTING, &routing),
    );
    assert_eq!(parse_headers(&frame).unwrap_err(), Error::Unsupported);

    let mut late_hop_by_hop = extension(IpProtocol::IPV6_HOP_BY_HOP, 1);
    late_hop_by_hop.extend(extension(IpProtocol::TCP, 1));
    late_hop_by_hop.extend_from_slice(&seg);
    let frame = eth(
        EtherType::IPV6,
        &ipv6(a, b, IpProtocol::IPV6_DEST_OPTIONS, &late_hop_by_hop),
    );
    assert_eq!(parse_headers(&frame).unwrap_err(), Error::Malformed);

    // A header whose length runs past the packet.
    let mut long = extension(IpProtocol::TCP, 1);
    long[1] = 200;
    let frame = eth(
        EtherType::IPV6,
        &ipv6(a, b, IpProtocol::IPV6_DEST_OPTIONS, &long),
    );
    assert_eq!(parse_headers(&frame).unwrap_err(), Error::Truncated);
}

#[test]
fn arp_is_left_to_the_arp_view() {
    let h = parse_headers(&eth(EtherType::ARP, &[0; 28])).unwrap();
    assert_eq!(
        (h.ethertype, h.proto, h.l3_offset, h.l4_offset),
        (EtherType::ARP, 0, 14, 14)
    );
    assert_eq!(h.src, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
}

#[test]
fn each_failure_has_its_reason() {
    assert_eq!(parse_headers(&[0; 10]), Err(Error::Truncated));
    assert_eq!(
        parse_headers(&eth(0x88cc, &[0; 46])),
        Err(Error::Unsupported)
    );
    let mut packet = ipv4(SRC, DST, IpProtocol::TCP, &[0; 20]);
    assert_eq!(
        parse_headers(&eth(EtherType::IPV4, &packet)),
        Err(Error::Malformed)
    ); // data offset 0
    packet[0] = 0x44;
    assert_eq!(
        parse_headers(&eth(EtherType::IPV4, &packet)),
        Err(Error::Malformed)
    ); // IHL 4
    packet[0] = 0x46; // options leave 16 bytes: no room for TCP
    assert_eq!(
        parse_headers(&eth(EtherType::IPV4, &packet)),
        Err(Error::Truncated)
    );
    let packet = ipv4(SRC, DST, IpProtocol::TCP, &[0; 12]);
    assert_eq!(
        parse_headers(&eth(EtherType::IPV4, &packet)),
        Err(Error::Truncated)
    );
    let packet = ipv4(SRC, DST, IpProtocol::UDP, &[0, 1, 0, 2, 0, 4, 0, 0]);
    assert_eq!(
        parse_headers(&eth(EtherType::IPV4, &packet)),
        Err(Error::Malformed)
    );
}
