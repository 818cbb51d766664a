//! The packet an ICMP error quotes: its IP header and at least the first 8 bytes of its
//! payload (RFC 792, RFC 1812 §4.3.2.3), or for ICMPv6 as much of it as fits (RFC 4443
//! §3), enough to name the flow the error is about.
//!
//! The quote is usually cut short, so its total length runs past the end: unlike
//! [`Ipv4Packet`](super::Ipv4Packet) these views check only that the headers and the ports
//! are present. Once `new_checked` passed, no getter panics.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::parse::walk_extension_headers;
use super::{get_u16, put_u16, Error, IpProtocol, Side};

/// ICMPv4 error types whose message quotes the offending packet.
pub fn is_icmpv4_error(msg_type: u8) -> bool {
    matches!(msg_type, 3 | 11 | 12)
}

/// ICMPv6 error types (RFC 4443 §3: unreachable, packet too big, time exceeded, parameter
/// problem), whose message quotes the offending packet.
pub fn is_icmpv6_error(msg_type: u8) -> bool {
    matches!(msg_type, 1..=4)
}

/// The quoted packet inside an ICMPv4 error: `buffer` is the ICMP message (from its type).
#[derive(Debug)]
pub struct QuotedIpv4<T: AsRef<[u8]>> {
    buffer: T,
    header_len: usize,
}

/// Where the quote starts in the ICMP message: after type, code, checksum and 4 bytes.
const QUOTE: usize = 8;

impl<T: AsRef<[u8]>> QuotedIpv4<T> {
    /// Needs a whole IPv4 header and, for TCP and UDP, the two ports after it.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let b = buffer.as_ref();
        let ip = b.get(QUOTE..).ok_or(Error::Truncated)?;
        let first = *ip.first().ok_or(Error::Truncated)?;
        if first >> 4 != 4 {
            return Err(Error::Malformed);
        }
        let header_len = usize::from(first & 0x0f) * 4;
        if header_len < 20 {
            return Err(Error::Malformed);
        }
        if ip.len() < header_len {
            return Err(Error::Truncated);
        }
        let q = QuotedIpv4 { buffer, header_len };
        if q.has_ports() && q.ip().len() < header_len + 4 {
            return Err(Error::Truncated);
        }
        Ok(q)
    }

    fn ip(&self) -> &[u8] {
        &self.buffer.as_ref()[QUOTE..]
    }

    pub fn protocol(&self) -> u8 {
        self.ip()[9]
    }

    pub fn src(&self) -> Ipv4Addr {
        let b = self.ip();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }

    pub fn dst(&self) -> Ipv4Addr {
        let b = self.ip();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }

    /// Whether the quoted packet is a fragment after the first: no transport header, so no
    /// ports, whatever its protocol.
    pub fn is_later_fragment(&self) -> bool {
        get_u16(&self.ip()[6..8]) & 0x1fff != 0
    }

    /// Whether the quote carries TCP or UDP ports (not a later fragment).
    pub fn has_ports(&self) -> bool {
        matches!(self.protocol(), IpProtocol::TCP | IpProtocol::UDP) && !self.is_later_fragment()
    }

    /// (source, destination) ports, zero without ports.
    pub fn ports(&self) -> (u16, u16) {
        if !self.has_ports() {
            return (0, 0);
        }
        let l4 = &self.ip()[self.header_len..];
        (get_u16(&l4[0..2]), get_u16(&l4[2..4]))
    }

    /// Offset of the quoted IP header in the ICMP message.
    pub fn ip_offset(&self) -> usize {
        QUOTE
    }

    /// Offset of the quoted transport header in the ICMP message.
    pub fn l4_offset(&self) -> usize {
        QUOTE + self.header_len
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> QuotedIpv4<T> {
    /// Rewrites the quoted source address (and port, for TCP/UDP), keeping the quoted IP
    /// header checksum and, where the quote holds it, the quoted transport checksum right.
    /// The ICMP checksum around it is the caller's to refill.
    pub fn set_src(&mut self, addr: Ipv4Addr, port: Option<u16>) {
        self.set(Side::Src, addr, port);
    }

    /// [`QuotedIpv4::set_src`] for the destination.
    pub fn set_dst(&mut self, addr: Ipv4Addr, port: Option<u16>) {
        self.set(Side::Dst, addr, port);
    }

    fn set(&mut self, side: Side, addr: Ipv4Addr, port: Option<u16>) {
        let (header_len, has_ports, proto) = (self.header_len, self.has_ports(), self.protocol());
        let (old, at_addr, at_port) = match side {
            Side::Src => (self.src(), 12, 0),
            Side::Dst => (self.dst(), 16, 2),
        };
        let ip = &mut self.buffer.as_mut()[QUOTE..];
        ip[at_addr..at_addr + 4].copy_from_slice(&addr.octets());
        let csum = super::checksum::update_ipv4_addr(get_u16(&ip[10..12]), old, addr);
        put_u16(&mut ip[10..12], csum);
        if !has_ports {
            return;
        }
        let l4 = &mut ip[header_len..];
        let old_port = get_u16(&l4[at_port..at_port + 2]);
        let new_port = port.unwrap_or(old_port);
        put_u16(&mut l4[at_port..at_port + 2], new_port);
        // The transport checksum covers the rewritten address (in the pseudo-header) and port.
        let at = match proto {
            IpProtocol::UDP => 6,
            _ => 16,
        };
        if let Some(field) = l4.get(at..at + 2) {
            let c = get_u16(field);
            if proto == IpProtocol::UDP && c == 0 {
                return; // no checksum
            }
            let c = super::checksum::update_ipv4_addr(c, old, addr);
            let c = super::checksum::update_u16(c, old_port, new_port);
            put_u16(&mut l4[at..at + 2], sent_as(proto, c));
        }
    }
}

/// An updated transport checksum as the packet would carry it: UDP sends a computed 0 as
/// 0xffff, since 0 there means "no checksum" (RFC 768), as the packet's own rewrite does.
fn sent_as(proto: u8, csum: u16) -> u16 {
    match proto {
        IpProtocol::UDP => super::udp::nonzero(csum),
        _ => csum,
    }
}

/// The quoted packet inside an ICMPv6 error: `buffer` is the ICMPv6 message. Its extension
/// headers are walked as [`parse_headers`](super::parse_headers) walks a packet's, to the
/// transport header (a later fragment's stops at its fragment header). Once `new_checked`
/// passed, no getter panics.
#[derive(Debug)]
pub struct QuotedIpv6<T: AsRef<[u8]>> {
    buffer: T,
    /// The transport protocol; in a later fragment, its fragment header's next header.
    protocol: u8,
    /// Where the transport header (a later fragment's data) starts in the quoted packet.
    l4: usize,
    later_fragment: bool,
}

const V6_HEADER: usize = 40;

impl<T: AsRef<[u8]>> QuotedIpv6<T> {
    /// Needs a whole IPv6 header, its extension headers and, for TCP and UDP, the two ports
    /// after them; refuses an extension header chain as `parse_headers` does.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let ip = buffer.as_ref().get(QUOTE..).ok_or(Error::Truncated)?;
        let header = ip.get(..V6_HEADER).ok_or(Error::Truncated)?;
        if header[0] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        let walked = walk_extension_headers(header[6], &ip[V6_HEADER..])?;
        let (l4, quoted_len) = (V6_HEADER + walked.skipped, ip.len());
        let q = QuotedIpv6 {
            buffer,
            protocol: walked.proto,
            l4,
            later_fragment: walked.fragment.is_some_and(|(_, offset)| offset != 0),
        };
        if q.has_ports() && quoted_len < l4 + 4 {
            return Err(Error::Truncated);
        }
        Ok(q)
    }

    fn ip(&self) -> &[u8] {
        &self.buffer.as_ref()[QUOTE..]
    }

    /// The transport protocol behind the extension headers (in a later fragment, its
    /// fragment header's next header).
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    pub fn src(&self) -> Ipv6Addr {
        let mut o = [0u8; 16];
        o.copy_from_slice(&self.ip()[8..24]);
        Ipv6Addr::from(o)
    }

    pub fn dst(&self) -> Ipv6Addr {
        let mut o = [0u8; 16];
        o.copy_from_slice(&self.ip()[24..40]);
        Ipv6Addr::from(o)
    }

    /// Whether the quoted packet is a fragment after the first: no transport header, so no
    /// ports, whatever its protocol.
    pub fn is_later_fragment(&self) -> bool {
        self.later_fragment
    }

    /// Whether the quote carries TCP or UDP ports (not a later fragment).
    pub fn has_ports(&self) -> bool {
        matches!(self.protocol, IpProtocol::TCP | IpProtocol::UDP) && !self.later_fragment
    }

    /// (source, destination) ports, zero without ports.
    pub fn ports(&self) -> (u16, u16) {
        if !self.has_ports() {
            return (0, 0);
        }
        let l4 = &self.ip()[self.l4..];
        (get_u16(&l4[0..2]), get_u16(&l4[2..4]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> QuotedIpv6<T> {
    /// Rewrites the quoted source address (and port, for TCP/UDP), keeping the quoted
    /// transport checksum right where the quote holds it. The ICMPv6 checksum around it is
    /// the caller's to refill.
    pub fn set_src(&mut self, addr: Ipv6Addr, port: Option<u16>) {
        self.set(Side::Src, addr, port);
    }

    /// [`QuotedIpv6::set_src`] for the destination.
    pub fn set_dst(&mut self, addr: Ipv6Addr, port: Option<u16>) {
        self.set(Side::Dst, addr, port);
    }

    fn set(&mut self, side: Side, addr: Ipv6Addr, port: Option<u16>) {
        let (has_ports, proto, at_l4) = (self.has_ports(), self.protocol, self.l4);
        let (old, at_addr, at_port) = match side {
            Side::Src => (self.src(), 8, 0),
            Side::Dst => (self.dst(), 24, 2),
        };
        let ip = &mut self.buffer.as_mut()[QUOTE..];
        ip[at_addr..at_addr + 16].copy_from_slice(&addr.octets());
        if !has_ports {
            return;
        }
        let l4 = &mut ip[at_l4..];
        let old_port = get_u16(&l4[at_port..at_port + 2]);
        let new_port = port.unwrap_or(old_port);
        put_u16(&mut l4[at_port..at_port + 2], new_port);
        let at = if proto == IpProtocol::UDP { 6 } else { 16 };
        if let Some(field) = l4.get(at..at + 2) {
            let c = get_u16(field);
            if proto == IpProtocol::UDP && c == 0 {
                return; // no checksum (a tunnel's, RFC 6935)
            }
            let c = super::checksum::update_ipv6_addr(c, old, addr);
            let c = super::checksum::update_u16(c, old_port, new_port);
            put_u16(&mut l4[at..at + 2], sent_as(proto, c));
        }
    }
}

#[cfg(test)]
#[path = "quoted_tests.rs"]
mod tests;
