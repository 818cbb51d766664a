//! IPv6 fixed headers (RFC 8200 section 3). Extension headers are not walked: the view exposes
//! the first next-header value and treats everything after the fixed header as payload.

use std::net::Ipv6Addr;

use super::{get_u16, put_u16, Error, Field};

mod field {
    use super::Field;
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
    pub const HEADER: usize = 40;
}

fn addr(bytes: &[u8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&bytes[..16]);
    Ipv6Addr::from(octets)
}

/// A view of an IPv6 packet over a byte buffer, which may run on past the packet (link
/// padding); [`Ipv6Packet::payload`] stops at the payload length.
///
/// No-panic contract: once [`Ipv6Packet::new_checked`] has accepted a buffer, no getter or
/// setter panics; the view offers no setter for the payload length.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Checks the fixed header fits (`Truncated`), the version (`Malformed` unless 6) and that
    /// the payload length fits the buffer (`Truncated`). A jumbogram's zero payload length
    /// reads as an empty payload.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < field::HEADER {
            return Err(Error::Truncated);
        }
        let packet = Ipv6Packet { buffer };
        if packet.version() != 6 {
            return Err(Error::Malformed);
        }
        if field::HEADER + packet.payload_len() > len {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// Length of the fixed header: always 40.
    pub fn header_len(&self) -> usize {
        field::HEADER
    }

    pub fn payload_len(&self) -> usize {
        usize::from(get_u16(&self.buffer.as_ref()[field::PAYLOAD_LEN]))
    }

    /// The first next-header value: a transport protocol or an extension header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC])
    }

    pub fn dst(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST])
    }

    /// The bytes after the fixed header, up to the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER..field::HEADER + self.payload_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Shortens the payload to `len` bytes (never lengthens it: the bytes past it stay in
    /// the buffer, a trailer after the packet).
    pub fn shorten_payload(&mut self, len: usize) {
        let len = len.min(self.payload_len()) as u16;
        put_u16(&mut self.buffer.as_mut()[field::PAYLOAD_LEN], len);
    }

    /// Sets the first next-header value, as when the extension headers are taken out.
    pub fn set_next_header(&mut self, next: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = next;
    }

    pub fn set_hop_limit(&mut self, hops: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hops;
    }

    /// Sets the source address. IPv6 has no header checksum, but the transport checksum
    /// covers the address: see [`rewrite_ipv6_src`](super::rewrite_ipv6_src).
    pub fn set_src(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address; see [`rewrite_ipv6_dst`](super::rewrite_ipv6_dst).
    pub fn set_dst(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
    }

    /// Exchanges source and destination, as for a reply; pseudo-header sums are unchanged.
    pub fn swap_src_dst(&mut self) {
        let (src, dst) = (self.src(), self.dst());
        self.set_src(dst);
        self.set_dst(src);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = field::HEADER + self.payload_len();
        &mut self.buffer.as_mut()[field::HEADER..end]
    }
}

/// An IPv6 header to write ([`emit`](Self::emit)): traffic class and flow label 0.
///
/// ```
/// use haports::wire::{IpProtocol, Ipv6Packet, Ipv6Repr};
///
/// let mut packet = [0u8; 48];
/// let repr = Ipv6Repr {
///     src: "fd00::2".parse().unwrap(),
///     dst: "fd00::11".parse().unwrap(),
///     next_header: IpProtocol::ICMPV6,
///     hop_limit: 255,
///     payload_len: 8,
/// };
/// repr.emit(&mut packet)?;
/// let view = Ipv6Packet::new_checked(&packet[..])?;
/// assert_eq!((view.src(), view.dst(), view.hop_limit()), (repr.src, repr.dst, 255));
/// assert_eq!((view.next_header(), view.payload_len()), (IpProtocol::ICMPV6, 8));
/// # Ok::<(), haports::wire::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
    /// Bytes after the header.
    pub payload_len: usize,
}

impl Ipv6Repr {
    /// Bytes [`emit`](Self::emit) writes.
    pub const LEN: usize = field::HEADER;

    /// Writes the header at the start of `buf` (`Truncated` when it is shorter, `Malformed`
    /// when the payload would exceed 65535 bytes).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let len = u16::try_from(self.payload_len).map_err(|_| Error::Malformed)?;
        let b = buf.get_mut(..Self::LEN).ok_or(Error::Truncated)?;
        b[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        b[field::PAYLOAD_LEN].copy_from_slice(&len.to_be_bytes());
        b[field::NEXT_HEADER] = self.next_header;
        b[field::HOP_LIMIT] = self.hop_limit;
        b[field::SRC].copy_from_slice(&self.src.octets());
        b[field::DST].copy_from_slice(&self.dst.octets());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::ipv6;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99);

    #[test]
    fn reads_every_field() {
        let mut bytes = ipv6(SRC, DST, 17, &[7; 10]);
        bytes.extend_from_slice(&[0; 4]); // padding beyond the payload length
        let ip = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (ip.version(), ip.header_len(), ip.payload_len()),
            (6, 40, 10)
        );
        assert_eq!(
            (ip.src(), ip.dst(), ip.next_header(), ip.hop_limit()),
            (SRC, DST, 17, 64)
        );
        assert_eq!(ip.payload(), &[7; 10]);
    }

    #[test]
    fn each_bad_length_has_its_error() {
        let good = ipv6(SRC, DST, 6, &[0; 8]);
        assert_eq!(
            Ipv6Packet::new_checked(&good[..39]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv6Packet::new_checked(&good[..47]).unwrap_err(),
            Error::Truncated
        );
        let mut b = good.clone();
        b[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn setters_round_trip() {
        let mut bytes = ipv6(SRC, DST, 58, &[0; 8]);
        let mut ip = Ipv6Packet::new_checked(&mut bytes[..]).unwrap();
        ip.set_hop_limit(255);
        ip.swap_src_dst();
        ip.payload_mut()[7] = 1;
        assert_eq!(
            (ip.src(), ip.dst(), ip.hop_limit(), ip.payload()[7]),
            (DST, SRC, 255, 1)
        );
        ip.set_src(SRC);
        ip.set_dst(DST);
        assert_eq!((ip.src(), ip.dst()), (SRC, DST));
        assert_eq!(ip.into_inner().len(), 48);
    }
}
