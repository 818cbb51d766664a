//! Backends behind VXLAN (RFC 7348): a packet decided for such a backend leaves as it would
//! on its segment (the inner frame: the original packet, unchanged, to the backend's VXLAN
//! device's MAC) inside outer Ethernet, IPv4 and UDP headers to port 4789 of the backend's
//! address, through the next hop. The outer UDP source port comes from the flow's symmetric
//! hash, so routers spread flows (and both directions of a transit flow look alike). A packet
//! the interface's MTU cannot carry encapsulated is answered, like a router would, with
//! "fragmentation needed" (IPv4 with DF) or "packet too big" (IPv6), or dropped (`too_big`)
//! when it may be fragmented (IPv4 without DF), which haports does not do.

use std::net::{IpAddr, Ipv6Addr};

use super::pipeline::PacketBuffer;
use super::slow::packet_key;
use super::state::Action;
use crate::lb::forwarding::{BackendId, Forwarding, InterfaceId, VxlanLink};
use crate::lb::hash::symmetric_hash;
use crate::lb::verdict::DropReason;
use crate::wire::checksum::{internet_checksum, tcp_udp_checksum_v6};
use crate::wire::{parse_headers, IpProtocol};

/// The outer headers: Ethernet, IPv4, UDP, VXLAN.
pub const OVERHEAD: usize = 14 + 20 + 8 + 8;

/// VXLAN's UDP port (IANA).
pub const PORT: u16 = 4789;

/// Outer UDP source ports are taken from this range (the dynamic ports, RFC 7348 §5).
const SOURCE_PORTS: u16 = 49152;

/// Puts the frame in `p` (already addressed to the backend's VXLAN device) inside VXLAN to
/// backend `b` (whose link is `v`), out of `egress`; `from` is the interface it came in on
/// and the MAC that sent it (where an ICMP error about it goes back).
pub(super) fn encapsulate<P: PacketBuffer>(
    p: &mut P,
    (b, v): (BackendId, &VxlanLink),
    fwd: &Forwarding,
    from: (InterfaceId, [u8; 6]),
    egress: InterfaceId,
) -> Action {
    let inner = p.bytes().len();
    // The outer IP packet: IPv4, UDP and VXLAN headers, then the inner frame.
    let outer_ip = 20 + 8 + 8 + inner;
    if outer_ip > usize::from(v.mtu) {
        return too_big(p, v, fwd, from);
    }
    let source_port = source_port(p.bytes(), fwd.hash_seed);
    if !p.prepend(OVERHEAD) {
        return Action::Drop(DropReason::Unsupported);
    }
    let f = p.bytes();
    f[..12].copy_from_slice(&v.macs);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip.fill(0);
    ip[0] = 0x45;
    ip[8] = 64;
    ip[9] = IpProtocol::UDP;
    ip[2..4].copy_from_slice(&(outer_ip as u16).to_be_bytes());
    ip[12..16].copy_from_slice(&v.src.to_be_bytes());
    ip[16..20].copy_from_slice(&v.dst.to_be_bytes());
    let sum = internet_checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&source_port.to_be_bytes());
    udp[2..4].copy_from_slice(&PORT.to_be_bytes());
    udp[4..6].copy_from_slice(&((8 + 8 + inner) as u16).to_be_bytes());
    // No UDP checksum: RFC 7348 §5 says it SHOULD be zero over IPv4.
    udp[6..8].copy_from_slice(&[0, 0]);
    let vxlan = &mut f[42..50];
    vxlan[..4].copy_from_slice(&[0x08, 0, 0, 0]);
    vxlan[4..].copy_from_slice(&(v.vni << 8).to_be_bytes());
    Action::Transmit {
        interface: egress,
        backend: Some(b),
    }
}

/// The flow's symmetric hash folded into the dynamic port range.
fn source_port(frame: &[u8], seed: u64) -> u16 {
    let hash = parse_headers(frame).map_or(0, |h| symmetric_hash(&packet_key(&h), seed));
    SOURCE_PORTS | (hash as u16 & 0x3fff)
}

/// A frame too big for the tunnel, turned in place into the ICMP error about it, back to
/// its sender (`from`: the interface and MAC it came from); a drop when it may be
/// fragmented or no error can be made.
fn too_big<P: PacketBuffer>(
    p: &mut P,
    v: &VxlanLink,
    fwd: &Forwarding,
    (ingress, sender_mac): (InterfaceId, [u8; 6]),
) -> Action {
    // What the inner IP packet may be: the outer MTU less every header around it.
    let mtu = usize::from(v.mtu).saturating_sub(OVERHEAD);
    let Some(interface) = fwd.interfaces.get(ingress as usize) else {
        return Action::Drop(DropReason::TooBig);
    };
    let f = p.bytes();
    if f.len() < 14 + 40 {
        return Action::Drop(DropReason::TooBig);
    }
    // From the own address on the sender's subnet, else the first of its family.
    let sender = match f[14] >> 4 {
        4 => <[u8; 4]>::try_from(&f[26..30]).ok().map(IpAddr::from),
        _ => <[u8; 16]>::try_from(&f[22..38]).ok().map(IpAddr::from),
    };
    let own = sender.and_then(|to| {
        let family = || {
            interface
                .addresses
                .iter()
                .filter(move |n| n.addr().is_ipv4() == to.is_ipv4())
        };
        let on_link = family().find(|n| n.contains(&to));
        on_link.or_else(|| family().next()).map(|n| n.addr())
    });
    let len = match (f[14] >> 4, own) {
        (4, Some(IpAddr::V4(src))) if f[14 + 6] & 0x40 != 0 => {
            let dst: [u8; 4] = f[14 + 12..14 + 16].try_into().unwrap_or_default();
            // The offending header and the first 8 bytes of its payload (RFC 792).
            let quoted = (usize::from(f[14] & 0x0f) * 4 + 8).min(f.len() - 14);
            f.copy_within(14..14 + quoted, 14 + 28);
            let ip = &mut f[14..34];
            ip.fill(0);
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((28 + quoted) as u16).to_be_bytes());
            ip[8] = 64;
            ip[9] = IpProtocol::ICMP;
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst);
            let sum = internet_checksum(ip);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            let icmp = &mut f[34..42 + quoted];
            icmp[..8].copy_from_slice(&[3, 4, 0, 0, 0, 0, 0, 0]);
            icmp[6..8].copy_from_slice(&(mtu as u16).to_be_bytes());
            let sum = internet_checksum(icmp);
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            42 + quoted
        }
        (6, Some(IpAddr::V6(src))) => {
            let dst: [u8; 16] = f[14 + 8..14 + 24].try_into().unwrap_or_default();
            let dst = Ipv6Addr::from(dst);
            // As much of the packet as fits in IPv6's minimum MTU (RFC 4443 §3.2).
            let quoted = (1280 - 48).min(f.len() - 14);
            f.copy_within(14..14 + quoted, 14 + 48);
            let ip = &mut f[14..54];
            ip.fill(0);
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&((8 + quoted) as u16).to_be_bytes());
            ip[6] = IpProtocol::ICMPV6;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&dst.octets());
            let icmp = &mut f[54..62 + quoted];
            icmp[..8].copy_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
            icmp[4..8].copy_from_slice(&(mtu as u32).to_be_bytes());
            let sum = tcp_udp_checksum_v6(src, dst, IpProtocol::ICMPV6, icmp);
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            62 + quoted
        }
        // IPv4 without DF (it would need fragmenting), or no own address to answer from.
        _ => return Action::Drop(DropReason::TooBig),
    };
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
