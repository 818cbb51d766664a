//! The packet an ICMPv4 error quotes: its IP header and at least the first 8 bytes of its
//! payload (RFC 792, RFC 1812 §4.3.2.3), enough to name the flow the error is about.
//!
//! The quote is usually cut short, so its total length runs past the end: unlike
//! [`Ipv4Packet`](super::Ipv4Packet) this view checks only that the header and the ports
//! are present. Once `new_checked` passed, no getter panics.

use std::net::{Ipv4Addr, Ipv6Addr};

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

    /// Whether the quote carries TCP or UDP ports (a first fragment of TCP or UDP).
    pub fn has_ports(&self) -> bool {
        let b = self.ip();
        let offset = get_u16(&b[6..8]) & 0x1fff;
        matches!(self.protocol(), IpProtocol::TCP | IpProtocol::UDP) && offset == 0
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
        // The transport checksum covers the pseudo-header's source address and the port.
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
            put_u16(&mut l4[at..at + 2], c);
        }
    }
}

/// The quoted packet inside an ICMPv6 error: `buffer` is the ICMPv6 message. Extension
/// headers are not walked: a quote whose next header is not TCP or UDP has no ports. Once
/// `new_checked` passed, no getter panics.
#[derive(Debug)]
pub struct QuotedIpv6<T: AsRef<[u8]>> {
    buffer: T,
}

const V6_HEADER: usize = 40;

impl<T: AsRef<[u8]>> QuotedIpv6<T> {
    /// Needs a whole IPv6 header and, for TCP and UDP, the two ports after it.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let b = buffer.as_ref();
        let ip = b.get(QUOTE..QUOTE + V6_HEADER).ok_or(Error::Truncated)?;
        if ip[0] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        let q = QuotedIpv6 { buffer };
        if q.has_ports() && q.buffer.as_ref().len() < QUOTE + V6_HEADER + 4 {
            return Err(Error::Truncated);
        }
        Ok(q)
    }

    fn ip(&self) -> &[u8] {
        &self.buffer.as_ref()[QUOTE..]
    }

    pub fn next_header(&self) -> u8 {
        self.ip()[6]
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

    pub fn has_ports(&self) -> bool {
        matches!(self.next_header(), IpProtocol::TCP | IpProtocol::UDP)
    }

    /// (source, destination) ports, zero without ports.
    pub fn ports(&self) -> (u16, u16) {
        if !self.has_ports() {
            return (0, 0);
        }
        let l4 = &self.ip()[V6_HEADER..];
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
        let (has_ports, proto) = (self.has_ports(), self.next_header());
        let (old, at_addr, at_port) = match side {
            Side::Src => (self.src(), 8, 0),
            Side::Dst => (self.dst(), 24, 2),
        };
        let ip = &mut self.buffer.as_mut()[QUOTE..];
        ip[at_addr..at_addr + 16].copy_from_slice(&addr.octets());
        if !has_ports {
            return;
        }
        let l4 = &mut ip[V6_HEADER..];
        let old_port = get_u16(&l4[at_port..at_port + 2]);
        let new_port = port.unwrap_or(old_port);
        put_u16(&mut l4[at_port..at_port + 2], new_port);
        let at = if proto == IpProtocol::UDP { 6 } else { 16 };
        if let Some(field) = l4.get(at..at + 2) {
            let c = super::checksum::update_ipv6_addr(get_u16(field), old, addr);
            let c = super::checksum::update_u16(c, old_port, new_port);
            put_u16(&mut l4[at..at + 2], c);
        }
    }
}

#[cfg(test)]
mod tests {
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
                let _ = (q.next_header(), q.src(), q.dst(), q.ports());
                q.set_src(Ipv6Addr::LOCALHOST, Some(5));
            }
        }
    }
}
