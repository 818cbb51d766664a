//! Tests of the quoted-packet views.

use super::*;

fn quote(proto: u8, frag: u16, with_ports: bool) -> Vec<u8> {
    let mut m = vec![3, 4, 0, 0, 0, 0, 5, 0x78];
    let mut ip = vec![
        0x45, 0, 5, 0xdc, 0, 0, 0, 0, 63, proto, 0, 0, 10, 0, 0, 100, 10, 0, 1, 10,
    ];
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    m.extend_from_slice(&ip);
    if with_ports {
        m.extend_from_slice(&[0x01, 0xbb, 0x9c, 0x40, 0, 0, 0, 0]);
    }
    m
}

#[test]
fn names_the_quoted_flow() {
    let m = quote(IpProtocol::TCP, 0, true);
    let q = QuotedIpv4::new_checked(&m[..]).unwrap();
    assert_eq!(
        (q.protocol(), q.src(), q.dst()),
        (6, Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 1, 10))
    );
    assert_eq!(q.ports(), (443, 40000));
    assert_eq!(q.l4_offset(), 28);
}

#[test]
fn short_or_odd_quotes_are_refused() {
    assert_eq!(
        QuotedIpv4::new_checked(&quote(6, 0, false)[..]).unwrap_err(),
        Error::Truncated
    );
    assert_eq!(
        QuotedIpv4::new_checked(&[3u8, 4, 0, 0][..]).unwrap_err(),
        Error::Truncated
    );
    let mut v6 = quote(6, 0, true);
    v6[8] = 0x65;
    assert_eq!(
        QuotedIpv4::new_checked(&v6[..]).unwrap_err(),
        Error::Malformed
    );
    // A non-first fragment or another protocol has no ports, and needs none.
    let q = quote(6, 3, false);
    assert_eq!(QuotedIpv4::new_checked(&q[..]).unwrap().ports(), (0, 0));
    let q = quote(IpProtocol::ICMP, 0, false);
    assert_eq!(QuotedIpv4::new_checked(&q[..]).unwrap().ports(), (0, 0));
}

#[test]
fn rewriting_the_source_keeps_the_quoted_header_checksum_right() {
    let mut m = quote(IpProtocol::UDP, 0, true);
    let sum = crate::wire::checksum::internet_checksum(&m[8..28]);
    m[18..20].copy_from_slice(&sum.to_be_bytes());
    let mut q = QuotedIpv4::new_checked(&mut m[..]).unwrap();
    q.set_src(Ipv4Addr::new(10, 0, 0, 12), Some(8443));
    assert_eq!(crate::wire::checksum::internet_checksum(&m[8..28]), 0);
    let q = QuotedIpv4::new_checked(&m[..]).unwrap();
    assert_eq!((q.src(), q.ports().0), (Ipv4Addr::new(10, 0, 0, 12), 8443));
}

#[test]
fn an_ipv6_quote_names_its_flow_and_takes_a_new_source() {
    let mut m = vec![2, 0, 0, 0, 0, 0, 5, 0x00];
    let mut ip = vec![0x60, 0, 0, 0, 0, 20, IpProtocol::TCP, 64];
    ip.extend_from_slice(&"fd00::100".parse::<Ipv6Addr>().unwrap().octets());
    ip.extend_from_slice(&"fd00:1::10".parse::<Ipv6Addr>().unwrap().octets());
    m.extend_from_slice(&ip);
    m.extend_from_slice(&[
        0x01, 0xbb, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x10, 0, 0, 0x12, 0x34, 0, 0,
    ]);
    let q = QuotedIpv6::new_checked(&m[..]).unwrap();
    assert_eq!(
        (q.src(), q.ports()),
        ("fd00::100".parse().unwrap(), (443, 40000))
    );
    let mut q = QuotedIpv6::new_checked(&mut m[..]).unwrap();
    q.set_src("fd00::12".parse().unwrap(), None);
    let q = QuotedIpv6::new_checked(&m[..]).unwrap();
    assert_eq!(q.src(), "fd00::12".parse::<Ipv6Addr>().unwrap());
    assert_ne!(
        &m[48 + 16..48 + 18],
        &[0x12, 0x34],
        "the quoted TCP checksum follows"
    );
    assert_eq!(
        QuotedIpv6::new_checked(&m[..40]).unwrap_err(),
        Error::Truncated
    );
}

/// An ICMPv6 "packet too big" quoting `next` behind the IPv6 header, then `rest`.
fn quote6(next: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![2, 0, 0, 0, 0, 0, 5, 0x00];
    let mut ip = vec![0x60, 0, 0, 0, 0, rest.len() as u8, next, 64];
    ip.extend_from_slice(&"fd00::100".parse::<Ipv6Addr>().unwrap().octets());
    ip.extend_from_slice(&"fd00:1::10".parse::<Ipv6Addr>().unwrap().octets());
    m.extend_from_slice(&ip);
    m.extend_from_slice(rest);
    m
}

#[test]
fn an_ipv6_quote_is_read_behind_its_extension_headers() {
    let (src, dst): (Ipv6Addr, Ipv6Addr) =
        ("fd00::100".parse().unwrap(), "fd00:1::10".parse().unwrap());
    let mut dgram = vec![0x01, 0xbb, 0x9c, 0x40, 0, 12, 0, 0, 1, 2, 3, 4];
    let sum = crate::wire::checksum::tcp_udp_checksum_v6(src, dst, IpProtocol::UDP, &dgram);
    dgram[6..8].copy_from_slice(&sum.to_be_bytes());
    // Hop-by-hop, then destination options, then the datagram.
    let mut rest = vec![IpProtocol::IPV6_DEST_OPTIONS, 0, 1, 4, 0, 0, 0, 0];
    rest.extend_from_slice(&[IpProtocol::UDP, 0, 1, 4, 0, 0, 0, 0]);
    rest.extend_from_slice(&dgram);
    let mut m = quote6(IpProtocol::IPV6_HOP_BY_HOP, &rest);
    let q = QuotedIpv6::new_checked(&m[..]).unwrap();
    assert_eq!((q.protocol(), q.ports()), (IpProtocol::UDP, (443, 40000)));
    let new_src: Ipv6Addr = "fd00::12".parse().unwrap();
    QuotedIpv6::new_checked(&mut m[..])
        .unwrap()
        .set_src(new_src, Some(8443));
    let dgram = &m[8 + 40 + 16..];
    assert_eq!(&dgram[..2], &8443u16.to_be_bytes());
    assert_eq!(
        crate::wire::checksum::tcp_udp_checksum_v6(new_src, dst, IpProtocol::UDP, dgram),
        u16::from_be_bytes([dgram[6], dgram[7]]),
        "the quoted UDP checksum follows, behind the extension headers"
    );
    // Cut inside the headers, or before the ports behind them.
    assert_eq!(
        QuotedIpv6::new_checked(&m[..60]).unwrap_err(),
        Error::Truncated
    );
    assert_eq!(
        QuotedIpv6::new_checked(&m[..66]).unwrap_err(),
        Error::Truncated
    );
}

#[test]
fn a_quoted_later_fragment_has_no_ports() {
    // IPv6: the fragment header (offset 8) names TCP; what follows is data.
    let m = quote6(
        IpProtocol::IPV6_FRAGMENT,
        &[IpProtocol::TCP, 0, 0, 8, 0, 0, 0, 7],
    );
    let q = QuotedIpv6::new_checked(&m[..]).unwrap();
    assert_eq!(
        (
            q.protocol(),
            q.is_later_fragment(),
            q.has_ports(),
            q.ports()
        ),
        (IpProtocol::TCP, true, false, (0, 0))
    );
    // A first fragment has its ports.
    let mut rest = vec![IpProtocol::TCP, 0, 0, 1, 0, 0, 0, 7];
    rest.extend_from_slice(&[0x01, 0xbb, 0x9c, 0x40]);
    let m = quote6(IpProtocol::IPV6_FRAGMENT, &rest);
    let q = QuotedIpv6::new_checked(&m[..]).unwrap();
    assert_eq!((q.is_later_fragment(), q.ports()), (false, (443, 40000)));
    // IPv4 alike.
    let q = quote(IpProtocol::UDP, 3, true);
    let q = QuotedIpv4::new_checked(&q[..]).unwrap();
    assert_eq!((q.is_later_fragment(), q.has_ports()), (true, false));
}

/// A port unreachable quoting the UDP datagram "q" from `src`:53 to `dst`:5353, its
/// checksum right (`with_checksum`) or zero (none).
fn quoted_udp_v4(src: Ipv4Addr, dst: Ipv4Addr, with_checksum: bool) -> Vec<u8> {
    let mut dgram = vec![0, 53, 0x14, 0xe9, 0, 9, 0, 0, b'q'];
    if with_checksum {
        let sum = crate::wire::checksum::tcp_udp_checksum_v4(src, dst, IpProtocol::UDP, &dgram);
        dgram[6..8].copy_from_slice(&sum.to_be_bytes());
    }
    let mut m = vec![3, 3, 0, 0, 0, 0, 0, 0];
    let mut ip = vec![0x45, 0, 0, 29, 0, 0, 0, 0, 64, IpProtocol::UDP, 0, 0];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let sum = crate::wire::checksum::internet_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    m.extend_from_slice(&ip);
    m.extend_from_slice(&dgram);
    m
}

/// The first port that, as the new source port of `dgram`, makes its computed UDP
/// checksum 0, which `checksum` ([`tcp_udp_checksum_v4`] or its IPv6 twin, over the new
/// pseudo-header) returns as 0xffff: a zero field would mean "no checksum".
///
/// [`tcp_udp_checksum_v4`]: crate::wire::checksum::tcp_udp_checksum_v4
fn port_summing_to_zero(dgram: &[u8], checksum: impl Fn(&[u8]) -> u16) -> u16 {
    let mut d = dgram.to_vec();
    (0..=u16::MAX)
        .find(|port| {
            d[..2].copy_from_slice(&port.to_be_bytes());
            checksum(&d) == 0xffff
        })
        .expect("one port in every 0xffff makes the sum all ones")
}

#[test]
fn a_quoted_udp_checksum_updated_to_zero_is_sent_as_all_ones() {
    let (frontend, client) = (Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 1, 10));
    let backend = Ipv4Addr::new(10, 0, 0, 11);
    let mut m = quoted_udp_v4(frontend, client, true);
    let port = port_summing_to_zero(&m[28..], |d| {
        crate::wire::checksum::tcp_udp_checksum_v4(backend, client, IpProtocol::UDP, d)
    });
    QuotedIpv4::new_checked(&mut m[..])
        .unwrap()
        .set_src(backend, Some(port));
    assert_eq!(&m[28..30], &port.to_be_bytes());
    assert_eq!(&m[34..36], &[0xff, 0xff], "0 would mean no checksum");
    let sum =
        crate::wire::checksum::tcp_udp_checksum_v4(backend, client, IpProtocol::UDP, &m[28..]);
    assert_eq!(&m[34..36], &sum.to_be_bytes(), "and the checksum is right");
    // A datagram sent without a checksum keeps none.
    let mut m = quoted_udp_v4(frontend, client, false);
    QuotedIpv4::new_checked(&mut m[..])
        .unwrap()
        .set_src(backend, Some(port));
    assert_eq!(&m[34..36], &[0, 0]);
}

#[test]
fn a_quoted_ipv6_udp_checksum_updated_to_zero_is_sent_as_all_ones() {
    let (src, dst): (Ipv6Addr, Ipv6Addr) =
        ("fd00::100".parse().unwrap(), "fd00:1::10".parse().unwrap());
    let backend: Ipv6Addr = "fd00::11".parse().unwrap();
    let mut dgram = vec![0, 53, 0x14, 0xe9, 0, 9, 0, 0, b'q'];
    let sum = crate::wire::checksum::tcp_udp_checksum_v6(src, dst, IpProtocol::UDP, &dgram);
    dgram[6..8].copy_from_slice(&sum.to_be_bytes());
    let port = port_summing_to_zero(&dgram, |d| {
        crate::wire::checksum::tcp_udp_checksum_v6(backend, dst, IpProtocol::UDP, d)
    });
    let mut m = quote6(IpProtocol::UDP, &dgram);
    QuotedIpv6::new_checked(&mut m[..])
        .unwrap()
        .set_src(backend, Some(port));
    assert_eq!(&m[48..50], &port.to_be_bytes());
    assert_eq!(&m[54..56], &[0xff, 0xff], "0 would mean no checksum");
    let sum = crate::wire::checksum::tcp_udp_checksum_v6(backend, dst, IpProtocol::UDP, &m[48..]);
    assert_eq!(&m[54..56], &sum.to_be_bytes(), "and the checksum is right");
    // A datagram sent without a checksum (a tunnel's, RFC 6935) keeps none.
    dgram[6..8].copy_from_slice(&[0, 0]);
    let mut m = quote6(IpProtocol::UDP, &dgram);
    QuotedIpv6::new_checked(&mut m[..])
        .unwrap()
        .set_src(backend, Some(port));
    assert_eq!(&m[54..56], &[0, 0]);
}

proptest::proptest! {
    #[test]
    fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)) {
        let mut b = bytes.clone();
        if let Ok(mut q) = QuotedIpv4::new_checked(&mut b[..]) {
            let _ = (q.protocol(), q.src(), q.dst(), q.ports(), q.l4_offset());
            q.set_src(Ipv4Addr::new(1, 2, 3, 4), Some(5));
        }
        let mut b = bytes.clone();
        if let Ok(mut q) = QuotedIpv6::new_checked(&mut b[..]) {
            let _ = (q.protocol(), q.src(), q.dst(), q.ports(), q.is_later_fragment());
            q.set_src(Ipv6Addr::LOCALHOST, Some(5));
        }
    }
}
