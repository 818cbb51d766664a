//! Backends behind VXLAN (RFC 7348): a packet decided for such a backend leaves as it would
//! on its segment (the inner frame: the original packet, unchanged, to the backend's VXLAN
//! device's MAC) inside outer Ethernet, IPv4 (DF set) and UDP headers to port 4789 of the
//! backend's address, through the next hop. The outer UDP source port comes from the flow's
//! symmetric hash, so routers spread flows (and both directions of a transit flow look
//! alike). A packet the interface's MTU cannot carry encapsulated is answered, like a router
//! would, with "fragmentation needed" (IPv4 with DF) or "packet too big" (IPv6), or, IPv4
//! without DF, split into fragments that fit ([`fragmenter`]); dropped (`too_big`) when it
//! cannot be split, or when the worker has sent [`ERRORS_PER_SECOND`] such errors already.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::action::Action;
use super::exception::TokenBucket;
use super::fragmenter::{self, Spill};
use super::packet_buffer::PacketBuffer;
use crate::dpdk::BURST;
use crate::lb::flow::FlowKey;
use crate::lb::forwarding::{BackendId, Forwarding, InterfaceId, VxlanLink};
use crate::lb::hash::symmetric_hash;
use crate::lb::verdict::DropReason;
use crate::wire::{
    parse_headers, EtherType, EthernetRepr, IcmpMessage, IcmpPacket, Icmpv6Packet, IpProtocol,
    Ipv4Repr, Ipv6Repr, MacAddr, UdpRepr,
};

const VXLAN_HEADER: usize = VxlanLink::HEADER;

/// The outer headers: Ethernet, IPv4, UDP, VXLAN.
pub const OVERHEAD: usize = VxlanLink::OVERHEAD;

/// What the outer IP packet may carry besides the inner frame.
const OUTER_IP_OVERHEAD: usize = OVERHEAD - EthernetRepr::LEN;

/// VXLAN's UDP port (IANA).
pub const PORT: u16 = 4789;

/// Outer UDP source ports are taken from this range (the dynamic ports, RFC 7348 §5).
const SOURCE_PORTS: u16 = 49152;

/// ICMP errors a worker sends at most a second, in bursts of a tenth of that (Linux's
/// `icmp_msgs_per_sec` is 1000 too): a flood of packets too big for a tunnel gets no more
/// answers than that, whatever source it claims (ICMPv6 errors must be limited, RFC 4443
/// §2.4(f)); the rest are dropped as `too_big`.
pub const ERRORS_PER_SECOND: u32 = 1000;

/// The budget of ICMP errors a packet too big for the tunnel draws on, and the time.
pub(super) type Errors<'a> = (&'a mut TokenBucket, u64);

/// Puts the frame in `p` (already addressed to the backend's VXLAN device) inside VXLAN to
/// backend `b` (whose link is `v`), out of `egress`; `from` is the interface it came in on
/// and the MAC that sent it (where an ICMP error about it goes back, `errors` permitting).
pub(super) fn encapsulate<P: PacketBuffer>(
    p: &mut P,
    (b, v): (BackendId, &VxlanLink),
    fwd: &Forwarding,
    (from, errors): ((InterfaceId, [u8; 6]), Errors),
    (egress, spill): (InterfaceId, &mut Spill<P>),
) -> Action {
    // Whether it fits is the packet's length, not the frame's: bytes behind the packet
    // (padding, or worse) are cut where it goes inside; where it does not, the slow path's
    // answer may need their room.
    let packet = frame_of_packet(p.bytes());
    if OUTER_IP_OVERHEAD + packet <= usize::from(v.mtu) {
        if packet < p.bytes().len() && !p.truncate(packet) {
            return Action::Drop(DropReason::Unsupported);
        }
        return wrap(p, (b, v), fwd.hash_seed, egress);
    }
    // IPv4 that may be fragmented is, as a router would fragment it, into fragments that
    // each fit the tunnel; the first stays here, the others go out after the burst.
    let max_ip = usize::from(v.mtu).saturating_sub(OVERHEAD);
    let first = spill.len();
    let Some(n) = fragmenter::split(p, max_ip, spill) else {
        return too_big(p, v, fwd, from, errors);
    };
    for i in first..first + n {
        if let Some((piece, action)) = spill.get_mut(i) {
            *action = wrap(piece, (b, v), fwd.hash_seed, egress);
        }
    }
    wrap(p, (b, v), fwd.hash_seed, egress)
}

/// How much of frame `f` its IP packet takes, by the IP header's length (the whole frame
/// where that says more, or the frame is no IP): a packet that fits the tunnel in a frame
/// with bytes behind it was answered as too big.
fn frame_of_packet(f: &[u8]) -> usize {
    const L3: usize = EthernetRepr::LEN;
    let word = |at: usize| {
        f.get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let packet = match f.get(12..14) {
        Some([0x08, 0x00]) => word(L3 + 2).filter(|&total| total >= Ipv4Repr::LEN),
        Some([0x86, 0xdd]) => word(L3 + 4).map(|payload| 40 + payload),
        _ => None,
    };
    packet.map_or(f.len(), |len| (L3 + len).min(f.len()))
}

/// Puts the frame in `p`, which fits, inside VXLAN to backend `b` (whose link is `v`), out
/// of `egress`.
fn wrap<P: PacketBuffer>(
    p: &mut P,
    (b, v): (BackendId, &VxlanLink),
    seed: u64,
    egress: InterfaceId,
) -> Action {
    let inner = p.bytes().len();
    // The outer IP packet: IPv4, UDP and VXLAN headers, then the inner frame.
    let outer_ip = OUTER_IP_OVERHEAD + inner;
    let source_port = source_port(p.bytes(), seed);
    if !p.prepend(OVERHEAD) {
        return Action::Drop(DropReason::Unsupported);
    }
    let (l2, rest) = p.bytes().split_at_mut(EthernetRepr::LEN);
    let (ip, rest) = rest.split_at_mut(Ipv4Repr::LEN);
    let (udp, rest) = rest.split_at_mut(UdpRepr::LEN);
    let (dst_mac, src_mac) = v.macs.split_at(6);
    let written = EthernetRepr {
        dst: MacAddr::from_bytes(dst_mac),
        src: MacAddr::from_bytes(src_mac),
        ethertype: EtherType::IPV4,
    }
    .emit(l2)
    .and(
        Ipv4Repr {
            src: Ipv4Addr::from(v.src),
            dst: Ipv4Addr::from(v.dst),
            protocol: IpProtocol::UDP,
            ttl: 64,
            payload_len: outer_ip - Ipv4Repr::LEN,
            // DF: `encapsulate`'s MTU check keeps the outer packet within the interface, and a
            // fragmentable datagram would need identifications that are not repeated (RFC
            // 6864 §4.1), where this header's is always 0. A router short of MTU on the way
            // then answers with an error, rather than with fragments that the receiving VTEP
            // may discard (RFC 7348 §4.3).
            dont_fragment: true,
        }
        .emit(ip),
    )
    // No UDP checksum: RFC 7348 §5 says it SHOULD be zero over IPv4.
    .and(
        UdpRepr {
            src_port: source_port,
            dst_port: PORT,
            payload_len: VXLAN_HEADER + inner,
        }
        .emit(udp),
    );
    if written.is_err() || rest.len() < VXLAN_HEADER {
        return Action::Drop(DropReason::Unsupported);
    }
    rest[..4].copy_from_slice(&[0x08, 0, 0, 0]);
    rest[4..VXLAN_HEADER].copy_from_slice(&(v.vni << 8).to_be_bytes());
    Action::Transmit {
        interface: egress,
        backend: Some(b),
    }
}

/// The source MAC of each packet of a burst (where an ICMP error about it goes back), taken
/// before the burst is rewritten.
#[inline(never)]
pub(super) fn senders<P: PacketBuffer>(packets: &mut [P]) -> [[u8; 6]; BURST] {
    let mut out = [[0; 6]; BURST];
    for (o, p) in out.iter_mut().zip(packets) {
        if let Some(mac) = p.bytes().get(6..12).and_then(|m| m.try_into().ok()) {
            *o = mac;
        }
    }
    out
}

/// The flow's symmetric hash folded into the dynamic port range, for the underlay's ECMP to
/// spread tunnels by (RFC 7348 §5). A fragment's ports are left out, the first fragment's
/// too, as Linux's flow dissector leaves them out: later fragments carry none, and every
/// fragment of a datagram then takes the same path, in the order they left. So is an IPv6
/// fragment's transport: a later fragment names only the first header of the fragmentable
/// part (destination options, say), where the first names the transport behind it.
fn source_port(frame: &[u8], seed: u64) -> u16 {
    let hash = parse_headers(frame).map_or(0, |h| {
        let mut key = FlowKey::of(&h);
        if h.fragment {
            (key.src_port, key.dst_port) = (0, 0);
            if h.dst.is_ipv6() {
                key.proto = IpProtocol::IPV6_FRAGMENT;
            }
        }
        symmetric_hash(&key, seed)
    });
    SOURCE_PORTS | (hash as u16 & 0x3fff)
}

/// Whether an ICMP error may be sent about the IP packet in `frame`: not about an ICMP
/// error (RFC 1122 §3.2.2, RFC 4443 §2.4 (e)), behind whatever extension headers, nor about
/// an IPv4 fragment other than the first (RFC 1812 §4.3.2.7). An IPv6 one's is answered:
/// RFC 4443 makes no exception of fragments, and its sender learns the path's MTU from no
/// one else. A packet that does not parse is answered, as before this rule.
fn answerable(frame: &[u8]) -> bool {
    let Ok(h) = parse_headers(frame) else {
        return true;
    };
    let later = h.dst.is_ipv4()
        && h.fragment
        && h.fragment_id(frame).map_or(true, |(_, offset)| offset != 0);
    let kind = frame.get(usize::from(h.l4_offset)).copied();
    let error = match (h.dst, h.proto) {
        // Destination unreachable, source quench, redirect, time exceeded, parameter
        // problem: the ICMPv4 errors.
        (IpAddr::V4(_), IpProtocol::ICMP) => matches!(kind, Some(3 | 4 | 5 | 11 | 12)),
        // ICMPv6 types below 128 are errors.
        (IpAddr::V6(_), IpProtocol::ICMPV6) => kind.is_some_and(|t| t < 128),
        _ => false,
    };
    !later && !error
}

/// A frame too big for the tunnel, turned in place into the ICMP error about it, back to
/// its sender (`from`: the interface and MAC it came from); a drop when it may be
/// fragmented, no error can be made, or the worker's budget of errors is spent.
fn too_big<P: PacketBuffer>(
    p: &mut P,
    v: &VxlanLink,
    fwd: &Forwarding,
    (ingress, sender_mac): (InterfaceId, [u8; 6]),
    (budget, now_ms): Errors,
) -> Action {
    // What the inner IP packet may be: the outer MTU less every header around it.
    let mtu = usize::from(v.mtu).saturating_sub(OVERHEAD);
    let Some(interface) = fwd.interfaces.get(ingress as usize) else {
        return Action::Drop(DropReason::TooBig);
    };
    let f = p.bytes();
    let version = f.get(14).map_or(0, |b| b >> 4);
    // From the own address on the sender's subnet, else the first of its family (each
    // branch below checks that the frame holds what it reads and writes); in IPv6 from the
    // frontend the packet was for.
    let sender = match version {
        4 => f
            .get(26..30)
            .and_then(|a| <[u8; 4]>::try_from(a).ok())
            .map(IpAddr::from),
        6 => f
            .get(22..38)
            .and_then(|a| <[u8; 16]>::try_from(a).ok())
            .map(IpAddr::from),
        _ => None,
    };
    // An IPv6 error comes from the address the packet was sent to where the appliance owns
    // it (RFC 4443 §2.2(a)): a frontend (behind VXLAN, DSR keeps it the destination), which
    // the sender and its filters know, where an interface's address (ULA, say) they may not.
    let frontend = match version {
        6 => f
            .get(38..54)
            .and_then(|a| <[u8; 16]>::try_from(a).ok())
            .map(IpAddr::from)
            .filter(|d| fwd.frontend(*d).is_some()),
        _ => None,
    };
    let own = frontend.or_else(|| {
        sender.and_then(|to| {
            let family = || {
                interface
                    .addresses
                    .iter()
                    .filter(move |n| n.addr().is_ipv4() == to.is_ipv4())
            };
            let on_link = family().find(|n| n.contains(&to));
            on_link.or_else(|| family().next()).map(|n| n.addr())
        })
    });
    if !answerable(f) {
        return Action::Drop(DropReason::TooBig);
    }
    let len = match (version, own) {
        (4, Some(IpAddr::V4(src))) if f.get(14 + 6).is_some_and(|b| b & 0x40 != 0) => {
            let message = IcmpMessage::FragmentationNeeded { mtu: mtu as u16 };
            let at = EthernetRepr::LEN + Ipv4Repr::LEN + message.len();
            // The answer is made in place, so the frame must hold its headers and, behind
            // them, the whole offending header, without which the error names no packet.
            let header_len = usize::from(f[14] & 0x0f) * 4;
            if header_len < Ipv4Repr::LEN || f.len() < at + header_len {
                return Action::Drop(DropReason::TooBig);
            }
            let dst: [u8; 4] = f[14 + 12..14 + 16].try_into().unwrap_or_default();
            // The offending header and the first 8 bytes of its payload (RFC 792).
            // Moved behind the new headers, within the frame.
            let quoted = (header_len + 8).min(f.len() - at);
            f.copy_within(14..14 + quoted, at);
            let (ip, icmp) = f[14..at + quoted].split_at_mut(Ipv4Repr::LEN);
            let ip_header = Ipv4Repr {
                src,
                dst: Ipv4Addr::from(dst),
                protocol: IpProtocol::ICMP,
                ttl: 64,
                payload_len: message.len() + quoted,
                dont_fragment: false,
            };
            if ip_header.emit(ip).and(message.emit(icmp)).is_err() {
                return Action::Drop(DropReason::TooBig);
            }
            if let Ok(mut view) = IcmpPacket::new_checked(icmp) {
                view.fill_checksum();
            }
            at + quoted
        }
        (6, Some(IpAddr::V6(src))) => {
            let message = IcmpMessage::PacketTooBig { mtu: mtu as u32 };
            let at = EthernetRepr::LEN + Ipv6Repr::LEN + message.len();
            // As for IPv4: the frame must hold the answer's headers and the whole offending
            // header behind them (a short frame through a tiny MTU may not).
            if f.len() < at + Ipv6Repr::LEN {
                return Action::Drop(DropReason::TooBig);
            }
            let dst: [u8; 16] = f[14 + 8..14 + 24].try_into().unwrap_or_default();
            let dst = Ipv6Addr::from(dst);
            // As much of the packet as fits in IPv6's minimum MTU (RFC 4443 §3.2), and,
            // moved behind the new headers, within the frame (a packet too big for a small
            // MTU may be shorter than 1280 bytes).
            let quoted = (1280 - Ipv6Repr::LEN - message.len()).min(f.len() - at);
            f.copy_within(14..14 + quoted, at);
            let (ip, icmp) = f[14..at + quoted].split_at_mut(Ipv6Repr::LEN);
            let ip_header = Ipv6Repr {
                src,
                dst,
                next_header: IpProtocol::ICMPV6,
                hop_limit: 64,
                payload_len: message.len() + quoted,
            };
            if ip_header.emit(ip).and(message.emit(icmp)).is_err() {
                return Action::Drop(DropReason::TooBig);
            }
            if let Ok(mut view) = Icmpv6Packet::new_checked(icmp) {
                view.fill_checksum(src, dst);
            }
            at + quoted
        }
        // IPv4 without DF (it would need fragmenting), or no own address to answer from.
        _ => return Action::Drop(DropReason::TooBig),
    };
    if !budget.take(now_ms, ERRORS_PER_SECOND) {
        return Action::Drop(DropReason::TooBig);
    }
    f[..6].copy_from_slice(&sender_mac);
    f[6..12].copy_from_slice(&interface.mac.0);
    if !p.truncate(len) {
        return Action::Drop(DropReason::TooBig);
    }
    Action::Transmit {
        interface: ingress,
        backend: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An untagged frame of an IPv4 packet (no options, DF) of `proto` at fragment `offset`
    /// (8-byte units), its payload `data`.
    fn v4(proto: u8, offset: u16, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0; 12];
        f.extend_from_slice(&EtherType::IPV4.to_be_bytes());
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&(20 + data.len() as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1]);
        f.extend_from_slice(&(0x4000 | offset).to_be_bytes());
        f.extend_from_slice(&[64, proto, 0, 0, 10, 1, 0, 5, 10, 2, 0, 9]);
        f.extend_from_slice(data);
        f
    }

    /// An untagged frame of an IPv6 packet whose first header is `next`, then `data`.
    fn v6(next: u8, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0; 12];
        f.extend_from_slice(&EtherType::IPV6.to_be_bytes());
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(data.len() as u16).to_be_bytes());
        f.extend_from_slice(&[next, 64]);
        f.extend_from_slice(&[0xfd; 32]);
        f.extend_from_slice(data);
        f
    }

    /// An IPv6 fragment header (identification 7) at `offset` bytes, then `data`.
    fn v6_fragment(offset: u16, next: u8, data: &[u8]) -> Vec<u8> {
        let mut h = vec![next, 0];
        h.extend_from_slice(&(offset | 1).to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 7]);
        h.extend_from_slice(data);
        v6(IpProtocol::IPV6_FRAGMENT, &h)
    }

    /// `v6_fragment(offset, next, 8 zero bytes)` with a hop-by-hop header (PadN) in front.
    fn behind_hop_by_hop(offset: u16, next: u8) -> Vec<u8> {
        let plain = v6_fragment(offset, next, &[0; 8]);
        let mut hop = vec![IpProtocol::IPV6_FRAGMENT, 0, 1, 4, 0, 0, 0, 0];
        hop.extend_from_slice(&plain[54..]);
        v6(0, &hop)
    }

    /// No ICMP error about an ICMP error or a later fragment; about anything else, one.
    #[test]
    fn no_error_is_answered_about_an_error_or_a_later_ipv4_fragment() {
        let (icmp, udp, icmp6) = (IpProtocol::ICMP, IpProtocol::UDP, IpProtocol::ICMPV6);
        for (what, frame, answered) in [
            ("an echo request", v4(icmp, 0, &[8, 0, 0, 0]), true),
            ("UDP", v4(udp, 0, &[0; 8]), true),
            ("unreachable", v4(icmp, 0, &[3, 1, 0, 0]), false),
            ("time exceeded", v4(icmp, 0, &[11, 0, 0, 0]), false),
            ("a later fragment", v4(udp, 185, &[0; 8]), false),
        ] {
            assert_eq!(answerable(&frame), answered, "IPv4 {what}");
        }
        for (what, frame, answered) in [
            ("an echo request", v6(icmp6, &[128, 0, 0, 0]), true),
            ("packet too big", v6(icmp6, &[2, 0, 0, 0]), false),
            ("a first fragment", v6_fragment(0, udp, &[0; 8]), true),
            (
                "an error's first fragment",
                v6_fragment(0, icmp6, &[1, 4, 0, 0]),
                false,
            ),
            // RFC 4443 has no exception for them, as RFC 1812 has for IPv4's.
            ("a later fragment", v6_fragment(1480, udp, &[0; 8]), true),
            (
                "a later fragment behind hop-by-hop options",
                behind_hop_by_hop(1480, udp),
                true,
            ),
            (
                "a first fragment behind hop-by-hop options",
                behind_hop_by_hop(0, udp),
                true,
            ),
        ] {
            assert_eq!(answerable(&frame), answered, "IPv6 {what}");
        }
    }
}
