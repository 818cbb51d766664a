//! Address rewrites (NAT) that keep every checksum right. A transport checksum covers the IP
//! addresses through the pseudo-header, so changing an address means updating the IPv4 header
//! checksum *and* the TCP, UDP or ICMPv6 checksum, incrementally (RFC 1624). ICMPv4 has no
//! pseudo-header and needs nothing. Ports are rewritten by [`rewrite_port`] (given the
//! transport header) and [`dnat_ipv4_fast`] (given the whole frame), which update the
//! transport checksum incrementally too.
//!
//! The address rewrites take the bytes from the IP header on (`&mut frame[h.l3_offset..]`
//! given [`Headers`](super::Headers)); each function validates everything first and writes
//! only on success.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum::{self, checksum_offset};
use super::udp::nonzero;
use super::{get_u16, put_u16, Error, IpProtocol, Ipv4Flow, Ipv4Packet, Ipv6Packet};

/// Which address of a packet a rewrite sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Src,
    Dst,
}

/// Where the checksum of a transport header lies, for the protocols whose checksum covers
/// the pseudo-header and so changes with an address: TCP, UDP and ICMPv6, and DCCP and
/// UDP-Lite, which an HA-ports rule NATs as well (RFC 4340 §9, RFC 3828 §3).
fn pseudo_checksum_offset(proto: u8) -> Option<usize> {
    match proto {
        IpProtocol::DCCP | IpProtocol::UDP_LITE => Some(6),
        p => checksum_offset(p),
    }
}

/// Where the transport checksum is in `l4`, if `proto` has one covering the pseudo-header.
/// `Truncated` if the segment is too short to hold it.
fn transport_checksum_at(proto: u8, l4: &[u8]) -> Result<Option<usize>, Error> {
    match pseudo_checksum_offset(proto) {
        Some(at) if l4.len() < at + 2 => Err(Error::Truncated),
        found => Ok(found),
    }
}

/// Applies `update` to the transport checksum at `at`. A zero UDP checksum means "none" and
/// stays zero; an updated UDP checksum is never zero.
fn update_transport(l4: &mut [u8], proto: u8, at: usize, update: impl Fn(u16) -> u16) {
    let field = &mut l4[at..at + 2];
    let old = get_u16(field);
    let new = match proto {
        IpProtocol::UDP if old == 0 => return,
        IpProtocol::UDP => nonzero(update(old)),
        _ => update(old),
    };
    put_u16(field, new);
}

fn rewrite_ipv4(ip: &mut [u8], new: Ipv4Addr, side: Side) -> Result<(), Error> {
    let mut packet = Ipv4Packet::new_checked(ip)?;
    let proto = packet.protocol();
    // Only an unfragmented packet or a first fragment holds the transport header (ICMPv4's
    // checksum covers no pseudo-header).
    let at = match (packet.frag_offset(), proto) {
        (0, p) if p != IpProtocol::ICMPV6 => transport_checksum_at(proto, packet.payload())?,
        _ => None,
    };
    let old = match side {
        Side::Src => packet.src(),
        Side::Dst => packet.dst(),
    };
    match side {
        Side::Src => packet.set_src(new),
        Side::Dst => packet.set_dst(new),
    }
    if let Some(at) = at {
        update_transport(packet.payload_mut(), proto, at, |c| {
            checksum::update_ipv4_addr(c, old, new)
        });
    }
    Ok(())
}

/// Extension headers that may hide a transport header whose checksum we would not reach.
fn hides_transport(next_header: u8) -> bool {
    matches!(next_header, 0 | 43 | IpProtocol::IPV6_FRAGMENT | 60)
}

fn rewrite_ipv6(ip: &mut [u8], new: Ipv6Addr, side: Side) -> Result<(), Error> {
    let proto = Ipv6Packet::new_checked(&*ip)?.next_header();
    if hides_transport(proto) {
        return Err(Error::Unsupported);
    }
    rewrite_ipv6_behind(ip, new, side, Some((proto, 40)))
}

/// Sets an IPv6 address of the packet in `ip` whose transport header (`proto`) starts `l4`
/// bytes in, after its extension headers (as [`parse_headers`](super::parse_headers) walked
/// them), updating the TCP, UDP or ICMPv6 checksum there; `None`: no transport header in
/// this packet (a later fragment), only the address changes. Validates before it writes.
pub fn rewrite_ipv6_behind(
    ip: &mut [u8],
    new: Ipv6Addr,
    side: Side,
    transport: Option<(u8, usize)>,
) -> Result<(), Error> {
    // The packet ends where its payload length says: bytes after it (an Ethernet trailer)
    // are no part of its transport header.
    let end = 40 + Ipv6Packet::new_checked(&*ip)?.payload_len();
    let at = match transport {
        Some((proto, l4)) => {
            let segment = ip.get(l4..end).ok_or(Error::Truncated)?;
            transport_checksum_at(proto, segment)?.map(|at| (proto, l4, at))
        }
        None => None,
    };
    let mut packet = Ipv6Packet::new_checked(&mut *ip)?;
    let old = match side {
        Side::Src => packet.src(),
        Side::Dst => packet.dst(),
    };
    match side {
        Side::Src => packet.set_src(new),
        Side::Dst => packet.set_dst(new),
    }
    if let Some((proto, l4, at)) = at {
        update_transport(&mut ip[l4..end], proto, at, |c| {
            checksum::update_ipv6_addr(c, old, new)
        });
    }
    Ok(())
}

/// Sets a TCP or UDP port (`side`'s) in the transport header that starts `l4`, updating its
/// checksum incrementally; nothing for another protocol. Reads nothing beyond the header, so
/// that a first fragment's header (whose UDP length counts the whole datagram) is rewritten
/// as a whole packet's. `Truncated`, nothing written, if the header is not all there.
pub fn rewrite_port(l4: &mut [u8], proto: u8, side: Side, port: u16) -> Result<(), Error> {
    let at = match proto {
        IpProtocol::TCP | IpProtocol::UDP => transport_checksum_at(proto, l4)?,
        _ => None,
    };
    let Some(at) = at else {
        return Ok(());
    };
    let field = match side {
        Side::Src => 0..2,
        Side::Dst => 2..4,
    };
    let old = get_u16(&l4[field.clone()]);
    put_u16(&mut l4[field], port);
    update_transport(l4, proto, at, |c| checksum::update_u16(c, old, port));
    Ok(())
}

/// Sets the IPv4 source of the packet in `ip`, updating the header checksum and, for
/// transports whose checksum covers the pseudo-header (unfragmented, or the first fragment),
/// the transport checksum.
pub fn rewrite_ipv4_src(ip: &mut [u8], new: Ipv4Addr) -> Result<(), Error> {
    rewrite_ipv4(ip, new, Side::Src)
}

/// Sets the IPv4 destination; checksums as for [`rewrite_ipv4_src`].
pub fn rewrite_ipv4_dst(ip: &mut [u8], new: Ipv4Addr) -> Result<(), Error> {
    rewrite_ipv4(ip, new, Side::Dst)
}

/// [`rewrite_ipv4_dst`] (and, with `port`, the destination port as
/// [`TcpPacket`](super::TcpPacket)'s and [`UdpPacket`](super::UdpPacket)'s setters write it)
/// for a frame that [`parse_ipv4_fast`](super::parse_ipv4_fast) accepted as `packet`
/// (untagged, IPv4 header at 14 without options, unfragmented TCP or UDP): the same bytes,
/// from the old values `packet` already holds, one checksum delta for the address (both
/// checksums) and the port (the transport's), and without re-reading the headers.
/// `Unsupported` for another protocol and `Truncated` for a frame too short to be such a
/// packet, nothing written either way.
#[inline]
pub fn dnat_ipv4_fast(
    frame: &mut [u8],
    packet: &Ipv4Flow,
    new: u32,
    port: Option<u16>,
) -> Result<(), Error> {
    const L3: usize = Ipv4Flow::L3;
    const L4: usize = Ipv4Flow::L4;
    let at = match packet.proto() {
        IpProtocol::TCP => L4 + 16,
        IpProtocol::UDP => L4 + 6,
        _ => return Err(Error::Unsupported),
    };
    if frame.len() < at + 2 {
        return Err(Error::Truncated);
    }
    let address = checksum::word_delta(packet.dst() >> 16, new >> 16)
        + checksum::word_delta(packet.dst() & 0xffff, new & 0xffff);
    frame[L3 + 16..L3 + 20].copy_from_slice(&new.to_be_bytes());
    let ip = get_u16(&frame[L3 + 10..L3 + 12]);
    put_u16(
        &mut frame[L3 + 10..L3 + 12],
        checksum::apply_small_delta(ip, address),
    );
    let transport = match port {
        Some(port) => {
            put_u16(&mut frame[L4 + 2..L4 + 4], port);
            address + checksum::word_delta(u32::from(packet.dst_port()), u32::from(port))
        }
        None => address,
    };
    let old = get_u16(&frame[at..at + 2]);
    let csum = match packet.proto() {
        IpProtocol::UDP if old == 0 => return Ok(()),
        IpProtocol::UDP => nonzero(checksum::apply_small_delta(old, transport)),
        _ => checksum::apply_small_delta(old, transport),
    };
    put_u16(&mut frame[at..at + 2], csum);
    Ok(())
}

/// Sets the IPv6 source, updating the TCP, UDP or ICMPv6 checksum. `Unsupported` (nothing
/// written) when an extension header (hop-by-hop, routing, fragment, destination options)
/// comes first, as the transport checksum behind it would go stale.
pub fn rewrite_ipv6_src(ip: &mut [u8], new: Ipv6Addr) -> Result<(), Error> {
    rewrite_ipv6(ip, new, Side::Src)
}

/// Sets the IPv6 destination; checksums and errors as for [`rewrite_ipv6_src`].
pub fn rewrite_ipv6_dst(ip: &mut [u8], new: Ipv6Addr) -> Result<(), Error> {
    rewrite_ipv6(ip, new, Side::Dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{ipv4, ipv6, tcp, udp};
    use crate::wire::{Icmpv6Packet, TcpPacket, UdpPacket};

    const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const BACKEND: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 42);

    #[test]
    fn dnat_of_tcp_keeps_both_checksums_right() {
        let mut packet = ipv4(
            CLIENT,
            VIP,
            IpProtocol::TCP,
            &tcp(CLIENT, VIP, 40000, 80, 2, b"x"),
        );
        rewrite_ipv4_dst(&mut packet, BACKEND).unwrap();
        let ip = Ipv4Packet::new_checked(&packet[..]).unwrap();
        assert_eq!(ip.dst(), BACKEND);
        assert!(ip.verify_checksum());
        assert!(TcpPacket::new_checked(ip.payload())
            .unwrap()
            .verify_checksum_v4(CLIENT, BACKEND));
    }

    #[test]
    fn snat_of_udp_keeps_both_checksums_right_and_none_stays_none() {
        let mut packet = ipv4(
            BACKEND,
            CLIENT,
            IpProtocol::UDP,
            &udp(BACKEND, CLIENT, 53, 5353, b"a"),
        );
        rewrite_ipv4_src(&mut packet, VIP).unwrap();
        let ip = Ipv4Packet::new_checked(&packet[..]).unwrap();
        assert!(ip.verify_checksum());
        let u = UdpPacket::new_checked(ip.payload()).unwrap();
        assert!(u.checksum() != 0 && u.verify_checksum_v4(VIP, CLIENT));
        packet[26..28].copy_from_slice(&[0, 0]);
        rewrite_ipv4_src(&mut packet, BACKEND).unwrap();
        assert_eq!(&packet[26..28], &[0, 0]);
    }

    /// DCCP and UDP-Lite checksums cover the pseudo-header too: an HA-ports NAT keeps them
    /// right (a 16-byte segment, its checksum at 6, summed over pseudo-header and segment).
    #[test]
    fn dnat_of_dccp_and_udp_lite_keeps_their_checksums_right() {
        let sum = |src: Ipv4Addr, dst: Ipv4Addr, proto: u8, segment: &[u8]| {
            let pseudo = checksum::pseudo_header_v4(src, dst, proto, segment.len() as u16);
            checksum::add(pseudo, checksum::ones_complement_sum(segment))
        };
        for proto in [IpProtocol::DCCP, IpProtocol::UDP_LITE] {
            let mut segment = [0x11u8; 16];
            segment[6..8].copy_from_slice(&[0, 0]);
            let csum = !sum(CLIENT, VIP, proto, &segment);
            segment[6..8].copy_from_slice(&csum.to_be_bytes());
            assert_eq!(
                sum(CLIENT, VIP, proto, &segment),
                0xffff,
                "sums right before"
            );
            let mut packet = ipv4(CLIENT, VIP, proto, &segment);
            rewrite_ipv4_dst(&mut packet, BACKEND).unwrap();
            let ip = Ipv4Packet::new_checked(&packet[..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(
                sum(CLIENT, BACKEND, proto, ip.payload()),
                0xffff,
                "proto {proto}"
            );
        }
    }

    /// A first fragment's UDP length counts the whole datagram: its port is rewritten from the
    /// header alone, the checksum following (it covers the whole datagram, which the delta
    /// keeps right).
    #[test]
    fn a_port_is_rewritten_in_a_first_fragment_s_header() {
        let datagram = udp(CLIENT, VIP, 5353, 53, &[0x5a; 40]);
        let mut first = datagram[..24].to_vec();
        rewrite_port(&mut first, IpProtocol::UDP, Side::Dst, 5300).unwrap();
        let mut whole = first.clone();
        whole.extend_from_slice(&datagram[24..]);
        let u = UdpPacket::new_checked(&whole[..]).unwrap();
        assert_eq!(u.dst_port(), 5300);
        assert!(u.verify_checksum_v4(CLIENT, VIP));
        assert_eq!(
            rewrite_port(&mut first[..6], IpProtocol::UDP, Side::Dst, 1),
            Err(Error::Truncated),
            "the checksum not there"
        );
    }

    #[test]
    fn non_first_fragment_only_changes_the_ip_header() {
        let mut packet = ipv4(CLIENT, VIP, IpProtocol::TCP, &[0xab; 8]);
        packet[6..8].copy_from_slice(&1u16.to_be_bytes());
        Ipv4Packet::new_checked(&mut packet[..])
            .unwrap()
            .fill_checksum();
        rewrite_ipv4_dst(&mut packet, BACKEND).unwrap();
        assert!(Ipv4Packet::new_checked(&packet[..])
            .unwrap()
            .verify_checksum());
        assert_eq!(&packet[20..], &[0xab; 8]);
    }

    #[test]
    fn a_transport_too_short_for_its_checksum_is_left_untouched() {
        let mut packet = ipv4(CLIENT, VIP, IpProtocol::TCP, &[0; 17]);
        let before = packet.clone();
        assert_eq!(
            rewrite_ipv4_dst(&mut packet, BACKEND),
            Err(Error::Truncated)
        );
        assert_eq!(packet, before);
    }

    #[test]
    fn ipv6_rewrites_fix_tcp_udp_and_icmpv6() {
        let a = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let b = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        let c = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3);
        let mut seg = tcp(CLIENT, VIP, 1, 2, 0, b"t");
        TcpPacket::new_checked(&mut seg[..])
            .unwrap()
            .fill_checksum_v6(a, b);
        let mut packet = ipv6(a, b, IpProtocol::TCP, &seg);
        rewrite_ipv6_dst(&mut packet, c).unwrap();
        let ip = Ipv6Packet::new_checked(&packet[..]).unwrap();
        assert!(TcpPacket::new_checked(ip.payload())
            .unwrap()
            .verify_checksum_v6(a, c));

        let mut msg = vec![128, 0, 0, 0, 0, 1, 0, 1];
        Icmpv6Packet::new_checked(&mut msg[..])
            .unwrap()
            .fill_checksum(a, b);
        let mut packet = ipv6(a, b, IpProtocol::ICMPV6, &msg);
        rewrite_ipv6_src(&mut packet, c).unwrap();
        let ip = Ipv6Packet::new_checked(&packet[..]).unwrap();
        assert!(Icmpv6Packet::new_checked(ip.payload())
            .unwrap()
            .verify_checksum(c, b));

        let mut packet = ipv6(a, b, IpProtocol::IPV6_FRAGMENT, &[6, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(rewrite_ipv6_dst(&mut packet, c), Err(Error::Unsupported));
    }

    /// A segment too short for its checksum field is `Truncated` whatever follows the IPv6
    /// payload (an Ethernet trailer is no part of it), and nothing is written.
    #[test]
    fn ipv6_rewrite_reads_no_checksum_past_the_payload() {
        let (a, b): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        // DCCP (33), its checksum at offset 6: a payload of 4 bytes, then a 20-byte trailer.
        let mut frame = ipv6(a, b, 33, &[1, 2, 3, 4]);
        frame.extend_from_slice(&[0xee; 20]);
        let before = frame.clone();
        let rewrite = rewrite_ipv6_behind(
            &mut frame,
            "2001:db8::9".parse().unwrap(),
            Side::Dst,
            Some((33, 40)),
        );
        assert_eq!(rewrite, Err(Error::Truncated));
        assert_eq!(frame, before);
    }
}
