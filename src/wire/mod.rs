//! Zero-copy packet views and builders, in the manner of smoltcp's `wire` module.
//!
//! Each protocol has a `Packet<T: AsRef<[u8]>>` view whose `new_checked` validates lengths
//! once; after that no getter can panic. Setters exist where `T: AsMut<[u8]>`. Errors are a
//! small `Copy` enum so a failed parse feeds a per-reason drop counter directly. This module
//! never imports `dpdk`: it works on any byte slice.
#![forbid(unsafe_code)]

mod arp;
pub mod checksum;
mod ethernet;
mod icmp;
mod ipv4;
mod ipv6;
mod mac;
mod parse;
mod quoted;
mod rewrite;
mod tcp;
mod udp;

#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod testutil;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EtherType, EthernetFrame, EthernetRepr};
pub use icmp::{
    IcmpMessage, IcmpPacket, IcmpType, Icmpv6Packet, Icmpv6Type, NDP_OPT_SOURCE_LLADDR,
    NDP_OPT_TARGET_LLADDR,
};
pub use ipv4::{in_martian_octet, Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use mac::{MacAddr, MacParseError};
pub use parse::{
    parse_headers, parse_ipv4_fast, parse_ipv6_fast, Headers, Ipv4Flow, MAX_EXTENSION_HEADERS,
};
pub use quoted::{is_icmpv4_error, is_icmpv6_error, QuotedIpv4, QuotedIpv6};
pub use rewrite::{
    dnat_ipv4_fast, rewrite_ipv4_dst, rewrite_ipv4_src, rewrite_ipv6_behind, rewrite_ipv6_dst,
    rewrite_ipv6_src, rewrite_port, Side,
};
pub use tcp::{TcpFlags, TcpPacket};
pub use udp::{UdpPacket, UdpRepr};

/// Why bytes are not a packet we can handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// Shorter than its headers say.
    #[error("packet truncated: shorter than its headers say")]
    Truncated,
    /// Lengths or fields inconsistent (bad IHL, bad total length, …).
    #[error("packet malformed: inconsistent lengths or fields")]
    Malformed,
    /// Well-formed but a protocol or option we do not handle.
    #[error("packet unsupported: a protocol or option we do not handle")]
    Unsupported,
    /// More IPv6 extension headers than are walked to find the transport header.
    #[error("packet has more IPv6 extension headers than are walked")]
    ExtensionHeaders,
}

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers") the data plane looks at.
/// A namespace of `u8` constants, so they compare directly with a header's protocol field.
#[derive(Debug)]
pub enum IpProtocol {}

impl IpProtocol {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const DCCP: u8 = 33;
    pub const UDP_LITE: u8 = 136;
    pub const IPV6_HOP_BY_HOP: u8 = 0;
    pub const IPV6_ROUTING: u8 = 43;
    pub const IPV6_FRAGMENT: u8 = 44;
    pub const IPV6_AUTH: u8 = 51;
    pub const IPV6_DEST_OPTIONS: u8 = 60;
    pub const ICMPV6: u8 = 58;
}

/// A header field: a constant byte range inside a header, as in smoltcp's `field` modules.
type Field = core::ops::Range<usize>;

/// Reads a big-endian `u16` from the first two bytes of `b` (callers pass a `Field` slice).
fn get_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Reads a big-endian `u32` from the first four bytes of `b`.
fn get_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn put_u16(b: &mut [u8], v: u16) {
    b[..2].copy_from_slice(&v.to_be_bytes());
}

/// An IPv6 unicast link-local address (fe80::/10).
pub fn is_unicast_link_local(addr: std::net::IpAddr) -> bool {
    matches!(addr, std::net::IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

/// A group address: IPv4's limited broadcast or multicast, IPv6's multicast.
pub fn is_broadcast_or_multicast(addr: std::net::IpAddr) -> bool {
    match addr {
        std::net::IpAddr::V4(a) => a.is_broadcast() || a.is_multicast(),
        std::net::IpAddr::V6(a) => a.is_multicast(),
    }
}

/// The solicited-node multicast group of `target` (RFC 4291 §2.7.1), where neighbour
/// solicitations for it go: ff02::1:ff and the address's low 24 bits.
pub fn solicited_node(target: std::net::Ipv6Addr) -> std::net::Ipv6Addr {
    let t = target.octets();
    let low = u16::from_be_bytes([t[14], t[15]]);
    std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(t[13]), low)
}
