//! The per-packet summary the data plane decides on: one call per frame, no allocation, no
//! copy. It validates lengths (each failure is a drop reason) but not checksums, which the NIC
//! checks or the slow path verifies.

use std::net::{IpAddr, Ipv4Addr};

use super::{get_u16, Error, EtherType, EthernetFrame, IpProtocol, Ipv4Packet, Ipv6Packet};
use super::{TcpPacket, UdpPacket};

/// What the data plane needs to know about a frame, with offsets to re-view its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    /// Where the IP (or ARP) header starts: after the Ethernet header and any VLAN tags.
    pub l3_offset: u16,
    /// Where the transport header starts (in a later fragment, which has none, where its
    /// data starts); equal to `l3_offset` for ARP.
    pub l4_offset: u16,
    /// The ethertype after VLAN tags: [`EtherType::IPV4`], [`EtherType::IPV6`] or
    /// [`EtherType::ARP`].
    pub ethertype: u16,
    /// The transport protocol ([`IpProtocol`]); for IPv6 the next header after the
    /// extension headers, or in a later fragment its fragment header's next header (the
    /// first header of the fragmentable part, RFC 8200 §4.5). Zero for ARP.
    pub proto: u8,
    /// IP source; unspecified (0.0.0.0) for ARP.
    pub src: IpAddr,
    /// IP destination; unspecified (0.0.0.0) for ARP.
    pub dst: IpAddr,
    /// TCP or UDP ports; zero for other protocols and for later fragments (IPv4 or IPv6),
    /// which carry no transport header.
    pub src_port: u16,
    pub dst_port: u16,
    /// Part of a fragmented datagram (the first fragment included).
    pub fragment: bool,
    /// TCP flag bits ([`TcpFlags`](super::TcpFlags)); zero for other protocols.
    pub tcp_flags: u8,
    /// Where an IPv6 packet's fragment header starts; 0 without one (and for IPv4).
    pub fragment_header: u16,
}

impl Headers {
    /// (identification, offset in bytes) of the fragment `frame` holds, as these headers
    /// describe it: IPv4's header fields, or IPv6's fragment header (found by
    /// [`parse_headers`], wherever it is in the chain).
    pub fn fragment_id(&self, frame: &[u8]) -> Result<(u32, usize), Error> {
        let l3 = usize::from(self.l3_offset);
        match self.dst {
            IpAddr::V4(_) => {
                let ip = Ipv4Packet::new_checked(frame.get(l3..).ok_or(Error::Truncated)?)?;
                Ok((u32::from(ip.ident()), ip.frag_offset()))
            }
            IpAddr::V6(_) => {
                let at = usize::from(self.fragment_header);
                let f = frame.get(at..at + 8).ok_or(Error::Truncated)?;
                let offset = usize::from(u16::from_be_bytes([f[2], f[3]]) & 0xfff8);
                Ok((u32::from_be_bytes([f[4], f[5], f[6], f[7]]), offset))
            }
        }
    }
}

/// IPv6 extension headers walked to the transport header (RFC 8200 §4.1 lists six kinds a
/// packet carries at most once or twice each); a packet with more is refused.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// The transport fields of [`Headers`].
struct Ports {
    src: u16,
    dst: u16,
    tcp_flags: u8,
}

const NO_PORTS: Ports = Ports {
    src: 0,
    dst: 0,
    tcp_flags: 0,
};

/// Summarises an Ethernet frame for the forwarding decision.
///
/// Errors: `Truncated`/`Malformed` from the Ethernet, IP, TCP or UDP checks (a TCP first
/// fragment too short to hold the TCP header is `Truncated`, see RFC 1858); `Unsupported`
/// for an ethertype other than IPv4, IPv6 or ARP. ARP is not parsed here: re-view it at
/// `l3_offset` with [`ArpPacket`](super::ArpPacket). Never panics, whatever the bytes.
pub fn parse_headers(frame: &[u8]) -> Result<Headers, Error> {
    let eth = EthernetFrame::new_checked(frame)?;
    let l3 = eth.header_len();
    let ethertype = eth.ethertype();
    let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let mut headers = Headers {
        l3_offset: l3 as u16, // at most 22
        l4_offset: l3 as u16,
        ethertype,
        proto: 0,
        src: unspecified,
        dst: unspecified,
        src_port: 0,
        dst_port: 0,
        fragment: false,
        tcp_flags: 0,
        fragment_header: 0,
    };
    let ports = match ethertype {
        EtherType::IPV4 => {
            let ip = Ipv4Packet::new_checked(eth.payload())?;
            headers.l4_offset += ip.header_len() as u16; // at most 60
            headers.proto = ip.protocol();
            headers.src = ip.src().into();
            headers.dst = ip.dst().into();
            headers.fragment = ip.is_fragment();
            if ip.frag_offset() == 0 {
                transport(headers.proto, ip.payload(), headers.fragment)?
            } else {
                NO_PORTS
            }
        }
        EtherType::IPV6 => {
            let ip = Ipv6Packet::new_checked(eth.payload())?;
            headers.src = ip.src().into();
            headers.dst = ip.dst().into();
            let walked = walk_extension_headers(ip.next_header(), ip.payload())?;
            let l4 = usize::from(headers.l4_offset) + ip.header_len();
            headers.l4_offset = (l4 + walked.skipped) as u16; // at most 22 + 40 + 8 × 2048
            headers.proto = walked.proto;
            let transport_header = &ip.payload()[walked.skipped..];
            match walked.fragment {
                Some((at, offset)) => {
                    headers.fragment = true;
                    headers.fragment_header = (l4 + at) as u16;
                    if offset == 0 {
                        transport(headers.proto, transport_header, true)?
                    } else {
                        NO_PORTS
                    }
                }
                None => transport(headers.proto, transport_header, false)?,
            }
        }
        EtherType::ARP => NO_PORTS,
        _ => return Err(Error::Unsupported),
    };
    headers.src_port = ports.src;
    headers.dst_port = ports.dst;
    headers.tcp_flags = ports.tcp_flags;
    Ok(headers)
}

/// A plain IPv4 TCP or UDP packet as the fast path sees it ([`parse_ipv4_fast`]): untagged,
/// IP header at [`Ipv4Flow::L3`] without options, transport header at [`Ipv4Flow::L4`].
///
/// Two machine words, each written whole: copied, it moves as two words that the loads after
/// it can be forwarded from. (Fields of 8 and 16 bits written one by one and read back as a
/// word stall the load until the stores retire, a dozen cycles; seen in the fast-path parse
/// bench.)
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Ipv4Flow {
    /// Source address (high half) and destination address.
    addrs: u64,
    /// Source port (bits 48 to 63), destination port (32 to 47), protocol (8 to 15) and TCP
    /// flags (0 to 7; 0 for UDP).
    rest: u64,
}

impl std::fmt::Debug for Ipv4Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ipv4Flow")
            .field("src", &Ipv4Addr::from(self.src()))
            .field("dst", &Ipv4Addr::from(self.dst()))
            .field("src_port", &self.src_port())
            .field("dst_port", &self.dst_port())
            .field("proto", &self.proto())
            .field("tcp_flags", &self.tcp_flags())
            .finish()
    }
}

impl Ipv4Flow {
    pub const L3: usize = 14;
    pub const L4: usize = Self::L3 + 20;

    #[inline]
    pub const fn new(
        src: u32,
        dst: u32,
        src_port: u16,
        dst_port: u16,
        proto: u8,
        tcp_flags: u8,
    ) -> Ipv4Flow {
        let ports = (src_port as u32) << 16 | dst_port as u32;
        Ipv4Flow {
            addrs: (src as u64) << 32 | dst as u64,
            rest: (ports as u64) << 32 | (proto as u64) << 8 | tcp_flags as u64,
        }
    }

    #[inline]
    pub fn src(&self) -> u32 {
        (self.addrs >> 32) as u32
    }

    #[inline]
    pub fn dst(&self) -> u32 {
        self.addrs as u32
    }

    /// Both addresses, the source in the high half.
    #[inline]
    pub fn addrs(&self) -> u64 {
        self.addrs
    }

    /// Both ports, the source port in the high half.
    #[inline]
    pub fn ports(&self) -> u32 {
        (self.rest >> 32) as u32
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        (self.rest >> 48) as u16
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        (self.rest >> 32) as u16
    }

    #[inline]
    pub fn proto(&self) -> u8 {
        (self.rest >> 8) as u8
    }

    /// TCP flag bits; 0 for UDP.
    #[inline]
    pub fn tcp_flags(&self) -> u8 {
        self.rest as u8
    }

    /// What [`parse_headers`] says of the same frame.
    #[inline]
    pub fn headers(&self) -> Headers {
        Headers {
            l3_offset: Self::L3 as u16,
            l4_offset: Self::L4 as u16,
            ethertype: EtherType::IPV4,
            proto: self.proto(),
            src: IpAddr::V4(Ipv4Addr::from(self.src())),
            dst: IpAddr::V4(Ipv4Addr::from(self.dst())),
            src_port: self.src_port(),
            dst_port: self.dst_port(),
            fragment: false,
            tcp_flags: self.tcp_flags(),
            fragment_header: 0,
        }
    }
}

/// The fast path's parse: an untagged IPv4 TCP or UDP packet without IP options, not a
/// fragment, whose lengths check out; at fixed offsets, with one length check up front.
/// `None` for anything else, which [`parse_headers`] (the slow path) handles. For every frame
/// it accepts, [`Ipv4Flow::headers`] is exactly what [`parse_headers`] returns (a property
/// test holds it to that). Never panics, whatever the bytes.
#[inline]
pub fn parse_ipv4_fast(frame: &[u8]) -> Option<Ipv4Flow> {
    const L3: usize = Ipv4Flow::L3;
    const L4: usize = Ipv4Flow::L4;
    // Ethernet, a 20-byte IPv4 header and the 8 bytes every transport header here starts with.
    let fixed: &[u8; L4 + 8] = frame.get(..L4 + 8)?.try_into().ok()?;
    // EtherType, version and header length, total length: one word, as it lies in memory.
    let word = u64::from_le_bytes(fixed[12..20].try_into().ok()?);
    if word & 0xff_ffff != 0x45_0008 {
        return None;
    }
    // Neither more fragments nor an offset (DF and the reserved bit may be set): the low six
    // bits of the first octet and all of the second.
    if u16::from_le_bytes([fixed[L3 + 6], fixed[L3 + 7]]) & 0xff3f != 0 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([fixed[L3 + 2], fixed[L3 + 3]]));
    // The IPv4 header's 20 bytes, all inside the frame.
    if total < 20 || L3 + total > frame.len() {
        return None;
    }
    let l4_len = total - 20;
    let proto = fixed[L3 + 9];
    let tcp_flags = match proto {
        IpProtocol::TCP => {
            let header = usize::from(frame.get(L4 + 12)? >> 4) * 4;
            if header < 20 || header > l4_len {
                return None;
            }
            frame[L4 + 13]
        }
        IpProtocol::UDP => {
            let len = usize::from(get_u16(&fixed[L4 + 4..L4 + 6]));
            if len < 8 || len > l4_len {
                return None;
            }
            0
        }
        _ => return None,
    };
    // Addresses and ports as read, one big-endian word each.
    let addrs = u64::from_be_bytes(fixed[L3 + 12..L3 + 20].try_into().ok()?);
    let ports = u32::from_be_bytes(fixed[L4..L4 + 4].try_into().ok()?);
    Some(Ipv4Flow {
        addrs,
        rest: u64::from(ports) << 32 | u64::from(proto) << 8 | u64::from(tcp_flags),
    })
}

/// The fast path's parse of IPv6: an untagged IPv6 packet whose first next header is TCP or
/// UDP (no extension headers), with lengths that check out. `None` for anything else. For
/// every frame it accepts it returns exactly what [`parse_headers`] returns (a property test
/// holds it to that). Never panics, whatever the bytes.
#[inline]
pub fn parse_ipv6_fast(frame: &[u8]) -> Option<Headers> {
    const L3: usize = 14;
    const L4: usize = L3 + 40;
    let fixed: &[u8; L4 + 8] = frame.get(..L4 + 8)?.try_into().ok()?;
    if fixed[12..14] != [0x86, 0xdd] || fixed[L3] >> 4 != 6 {
        return None;
    }
    let payload = usize::from(get_u16(&fixed[L3 + 4..L3 + 6]));
    let l4 = frame.get(L4..L4 + payload)?;
    let proto = fixed[L3 + 6];
    let tcp_flags = match proto {
        IpProtocol::TCP => {
            let header = usize::from(l4.get(12)? >> 4) * 4;
            if header < 20 || header > l4.len() {
                return None;
            }
            l4[13]
        }
        IpProtocol::UDP => {
            let len = usize::from(get_u16(l4.get(4..6)?));
            if len < 8 || len > l4.len() {
                return None;
            }
            0
        }
        _ => return None,
    };
    let address = |at: usize| -> Option<IpAddr> {
        let octets: [u8; 16] = fixed[at..at + 16].try_into().ok()?;
        Some(IpAddr::V6(octets.into()))
    };
    Some(Headers {
        l3_offset: L3 as u16,
        l4_offset: L4 as u16,
        ethertype: EtherType::IPV6,
        proto,
        src: address(L3 + 8)?,
        dst: address(L3 + 24)?,
        src_port: get_u16(&l4[0..2]),
        dst_port: get_u16(&l4[2..4]),
        fragment: false,
        tcp_flags,
        fragment_header: 0,
    })
}

/// Where an IPv6 packet's extension headers end.
pub(super) struct Walked {
    /// The protocol behind them; in a later fragment, its fragment header's next header.
    pub proto: u8,
    /// Their bytes.
    pub skipped: usize,
    /// Where the fragment header is (from the end of the IPv6 header) and the fragment's
    /// offset, if there is one.
    pub fragment: Option<(usize, u16)>,
}

/// Walks IPv6 extension headers (RFC 8200 §4) from `next`, the IPv6 header's next header,
/// over `payload`: hop-by-hop options (first only), destination options, routing (already
/// at its final destination: segments left 0), fragment, authentication. A later fragment
/// ends the walk at its fragment header: what follows is the middle of the fragmentable
/// part, not a header. Errors: `Truncated` when one runs past the payload, `Malformed` for
/// hop-by-hop options anywhere but first, `Unsupported` for a routing header with segments
/// left (the packet is not for this hop's destination yet), `ExtensionHeaders` beyond
/// [`MAX_EXTENSION_HEADERS`]. Also walks the packet an ICMPv6 error quotes.
pub(super) fn walk_extension_headers(mut next: u8, payload: &[u8]) -> Result<Walked, Error> {
    let mut at = 0;
    let mut fragment = None;
    for n in 0..=MAX_EXTENSION_HEADERS {
        let extension = matches!(
            next,
            IpProtocol::IPV6_HOP_BY_HOP
                | IpProtocol::IPV6_DEST_OPTIONS
                | IpProtocol::IPV6_ROUTING
                | IpProtocol::IPV6_FRAGMENT
                | IpProtocol::IPV6_AUTH
        );
        // One header more than the bound, whatever it is (a later fragment's header too).
        if n == MAX_EXTENSION_HEADERS && extension {
            return Err(Error::ExtensionHeaders);
        }
        let len = match next {
            IpProtocol::IPV6_HOP_BY_HOP if n > 0 => return Err(Error::Malformed),
            IpProtocol::IPV6_HOP_BY_HOP | IpProtocol::IPV6_DEST_OPTIONS => {
                (usize::from(*payload.get(at + 1).ok_or(Error::Truncated)?) + 1) * 8
            }
            IpProtocol::IPV6_ROUTING => {
                let h = payload.get(at..at + 4).ok_or(Error::Truncated)?;
                if h[3] != 0 {
                    return Err(Error::Unsupported);
                }
                (usize::from(h[1]) + 1) * 8
            }
            IpProtocol::IPV6_FRAGMENT => {
                // Next header, reserved, offset and M flag, identification.
                let h = payload.get(at..at + 8).ok_or(Error::Truncated)?;
                let offset = get_u16(&h[2..4]) & 0xfff8;
                fragment = Some((at, offset));
                if offset != 0 {
                    return Ok(Walked {
                        proto: h[0],
                        skipped: at + 8,
                        fragment,
                    });
                }
                8
            }
            IpProtocol::IPV6_AUTH => {
                (usize::from(*payload.get(at + 1).ok_or(Error::Truncated)?) + 2) * 4
            }
            proto => {
                return Ok(Walked {
                    proto,
                    skipped: at,
                    fragment,
                })
            }
        };
        next = payload[at];
        at += len;
        if at > payload.len() {
            return Err(Error::Truncated);
        }
    }
    // Not reached: header MAX_EXTENSION_HEADERS + 1 returned above, whatever it was.
    Err(Error::ExtensionHeaders)
}

/// Reads the ports (and TCP flags) of a transport header that `l4` starts with.
/// `first_fragment` relaxes the UDP check: the length field then counts later fragments too.
fn transport(proto: u8, l4: &[u8], first_fragment: bool) -> Result<Ports, Error> {
    match proto {
        IpProtocol::TCP => {
            let tcp = TcpPacket::new_checked(l4)?;
            Ok(Ports {
                src: tcp.src_port(),
                dst: tcp.dst_port(),
                tcp_flags: tcp.flags(),
            })
        }
        IpProtocol::UDP if first_fragment => {
            // The ports lead the 8-byte header; UdpPacket would reject the length field.
            if l4.len() < 8 {
                return Err(Error::Truncated);
            }
            Ok(Ports {
                src: get_u16(&l4[0..2]),
                dst: get_u16(&l4[2..4]),
                tcp_flags: 0,
            })
        }
        IpProtocol::UDP => {
            let udp = UdpPacket::new_checked(l4)?;
            Ok(Ports {
                src: udp.src_port(),
                dst: udp.dst_port(),
                tcp_flags: 0,
            })
        }
        _ => Ok(NO_PORTS),
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
