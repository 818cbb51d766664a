//! IPv4 headers (RFC 791). Owns the IP header and its checksum; the transport checksum that
//! covers the addresses through the pseudo-header is `wire::rewrite`'s concern.

use std::net::Ipv4Addr;

use super::checksum;
use super::{get_u16, get_u32, put_u16, Error, Field};

mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    /// TTL and protocol share one 16-bit word of the checksum.
    pub const TTL_PROTOCOL: Field = 8..10;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
    pub const MIN_HEADER: usize = 20;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// Whether an IPv4 address (as a word) lies in 0/8, 127/8 or 224/3 (multicast, reserved and
/// broadcast): its first octet's bit in a table (the fast path's martian check took 15
/// instructions a packet as three comparisons, 11 so).
#[inline]
pub fn in_martian_octet(addr: u32) -> bool {
    let first = (addr >> 24) as usize;
    MARTIAN_FIRST_OCTETS[first / 64] >> (first % 64) & 1 != 0
}

/// Bit `o` set for each first octet `o` of [`in_martian_octet`].
const MARTIAN_FIRST_OCTETS: [u64; 4] = {
    let mut table = [0; 4];
    let mut o = 0;
    while o < 256 {
        if o == 0 || o == 127 || o >= 224 {
            table[o / 64] |= 1 << (o % 64);
        }
        o += 1;
    }
    table
};

/// A view of an IPv4 packet over a byte buffer, which may run on past the packet (Ethernet
/// pads short frames); [`Ipv4Packet::payload`] stops at the total length.
///
/// No-panic contract: once [`Ipv4Packet::new_checked`] has accepted a buffer, no getter or
/// setter panics; the view offers no setter for the header or total length.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Checks the version (`Malformed` unless 4), that the header length is at least 20
    /// (`Malformed`) and fits (`Truncated`), and that the total length covers the header
    /// (`Malformed`) and fits the buffer (`Truncated`). The checksum is not checked here.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < field::MIN_HEADER {
            return Err(Error::Truncated);
        }
        let packet = Ipv4Packet { buffer };
        if packet.version() != 4 || packet.header_len() < field::MIN_HEADER {
            return Err(Error::Malformed);
        }
        let (header, total) = (packet.header_len(), packet.total_len());
        if header > len {
            return Err(Error::Truncated);
        }
        if total < header {
            return Err(Error::Malformed);
        }
        if total > len {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The total length field: header and payload, excluding any link padding.
    pub fn total_len(&self) -> usize {
        usize::from(get_u16(&self.buffer.as_ref()[field::LENGTH]))
    }

    pub fn ident(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::IDENT])
    }

    fn flags_offset(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::FLG_OFF])
    }

    pub fn dont_fragment(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    pub fn more_fragments(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// The fragment offset in bytes (the field counts 8-byte units). Zero for an unfragmented
    /// packet and for the first fragment, the only one that carries the transport header.
    pub fn frag_offset(&self) -> usize {
        usize::from(self.flags_offset() & OFFSET_MASK) * 8
    }

    /// True for any fragment, the first included.
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.frag_offset() != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The IP protocol number of the payload; see [`IpProtocol`](super::IpProtocol).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_u32(&self.buffer.as_ref()[field::SRC]))
    }

    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_u32(&self.buffer.as_ref()[field::DST]))
    }

    /// Whether the header checksum is right (the header, options included, sums to all ones).
    pub fn verify_checksum(&self) -> bool {
        checksum::internet_checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// The bytes after the header, up to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    pub fn set_checksum(&mut self, csum: u16) {
        put_u16(&mut self.buffer.as_mut()[field::CHECKSUM], csum);
    }

    /// Recomputes the header checksum from scratch (slow path, and building packets).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let csum = checksum::internet_checksum(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(csum);
    }

    /// Sets the TTL and updates the header checksum incrementally.
    pub fn set_ttl(&mut self, ttl: u8) {
        let old = get_u16(&self.buffer.as_ref()[field::TTL_PROTOCOL]);
        self.buffer.as_mut()[field::TTL] = ttl;
        let new = get_u16(&self.buffer.as_ref()[field::TTL_PROTOCOL]);
        self.set_checksum(checksum::update_u16(self.checksum(), old, new));
    }

    /// Sets the source address and updates the header checksum incrementally (RFC 1624). The
    /// transport checksum is left alone: see [`rewrite_ipv4_src`](super::rewrite_ipv4_src).
    pub fn set_src(&mut self, addr: Ipv4Addr) {
        let old = self.src();
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
        self.set_checksum(checksum::update_ipv4_addr(self.checksum(), old, addr));
    }

    /// Sets the destination address and updates the header checksum incrementally. The
    /// transport checksum is left alone: see [`rewrite_ipv4_dst`](super::rewrite_ipv4_dst).
    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        let old = self.dst();
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
        self.set_checksum(checksum::update_ipv4_addr(self.checksum(), old, addr));
    }

    /// Exchanges source and destination, as for a reply. The header checksum stays right: the
    /// sum of the words does not depend on their order.
    pub fn swap_src_dst(&mut self) {
        let (src, dst) = (self.src(), self.dst());
        let data = self.buffer.as_mut();
        data[field::SRC].copy_from_slice(&dst.octets());
        data[field::DST].copy_from_slice(&src.octets());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (header, total) = (self.header_len(), self.total_len());
        &mut self.buffer.as_mut()[header..total]
    }
}

/// An IPv4 header without options to write ([`emit`](Self::emit)): version 4, IHL 5,
/// identification 0, the header checksum filled.
///
/// ```
/// use std::net::Ipv4Addr;
/// use haports::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};
///
/// let mut packet = [0u8; 28];
/// let repr = Ipv4Repr {
///     src: Ipv4Addr::new(10, 0, 0, 2),
///     dst: Ipv4Addr::new(10, 0, 0, 11),
///     protocol: IpProtocol::UDP,
///     ttl: 64,
///     payload_len: 8,
///     dont_fragment: true,
/// };
/// repr.emit(&mut packet)?;
/// let view = Ipv4Packet::new_checked(&packet[..])?;
/// assert_eq!((view.src(), view.dst(), view.ttl()), (repr.src, repr.dst, 64));
/// assert!(view.verify_checksum() && view.dont_fragment());
/// assert_eq!(view.payload().len(), 8);
/// # Ok::<(), haports::wire::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    /// Bytes after the header.
    pub payload_len: usize,
    pub dont_fragment: bool,
}

impl Ipv4Repr {
    /// Bytes [`emit`](Self::emit) writes.
    pub const LEN: usize = field::MIN_HEADER;

    /// Writes the header at the start of `buf` (`Truncated` when it is shorter, `Malformed`
    /// when the packet would exceed 65535 bytes).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let total = u16::try_from(Self::LEN + self.payload_len).map_err(|_| Error::Malformed)?;
        let b = buf.get_mut(..Self::LEN).ok_or(Error::Truncated)?;
        b.fill(0);
        b[field::VER_IHL] = 0x45;
        put_u16(&mut b[field::LENGTH], total);
        put_u16(
            &mut b[field::FLG_OFF],
            if self.dont_fragment { FLAG_DF } else { 0 },
        );
        b[field::TTL] = self.ttl;
        b[field::PROTOCOL] = self.protocol;
        b[field::SRC].copy_from_slice(&self.src.octets());
        b[field::DST].copy_from_slice(&self.dst.octets());
        let sum = checksum::internet_checksum(b);
        put_u16(&mut b[field::CHECKSUM], sum);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::ipv4;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    #[test]
    fn reads_every_field() {
        let mut bytes = ipv4(SRC, DST, 6, &[1, 2, 3, 4]);
        bytes.extend_from_slice(&[0; 6]); // Ethernet padding
        let ip = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!((ip.version(), ip.header_len(), ip.total_len()), (4, 20, 24));
        assert_eq!(
            (ip.src(), ip.dst(), ip.protocol(), ip.ttl()),
            (SRC, DST, 6, 64)
        );
        assert_eq!(ip.ident(), 0x1234);
        assert!(ip.dont_fragment() && !ip.is_fragment());
        assert!(ip.verify_checksum());
        assert_eq!(ip.payload(), &[1, 2, 3, 4]);
    }

    #[test]
    fn known_header_checksum() {
        // A widely quoted example header (Wikipedia, "IPv4 header checksum"): 0xb861.
        let mut bytes = vec![0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0xb8, 0x61];
        bytes.extend_from_slice(&[0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7]);
        bytes.resize(0x73, 0);
        let mut ip = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        assert!(ip.verify_checksum());
        ip.set_checksum(0);
        ip.fill_checksum();
        assert_eq!(ip.checksum(), 0xb861);
    }

    #[test]
    fn fragments_are_recognised() {
        let mut bytes = ipv4(SRC, DST, 17, &[0; 16]);
        bytes[6..8].copy_from_slice(&0x2000u16.to_be_bytes());
        let ip = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert!(ip.is_fragment() && ip.more_fragments() && ip.frag_offset() == 0);
        bytes[6..8].copy_from_slice(&0x00b9u16.to_be_bytes());
        let ip = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert!(ip.is_fragment() && !ip.more_fragments());
        assert_eq!(ip.frag_offset(), 185 * 8);
    }

    #[test]
    fn each_bad_length_has_its_error() {
        let good = ipv4(SRC, DST, 6, &[0; 8]);
        let check = |bytes: &[u8]| Ipv4Packet::new_checked(bytes).err();
        assert_eq!(check(&good[..19]), Some(Error::Truncated));
        let mut b = good.clone();
        b[0] = 0x65; // version 6
        assert_eq!(check(&b), Some(Error::Malformed));
        b[0] = 0x44; // IHL 4
        assert_eq!(check(&b), Some(Error::Malformed));
        b[0] = 0x47; // IHL 7 = 28 bytes, but the total is 28 and the buffer 28: fits
        assert_eq!(check(&b), None);
        b[0] = 0x48; // 32-byte header in a 28-byte buffer
        assert_eq!(check(&b), Some(Error::Truncated));
        let mut b = good.clone();
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(check(&b), Some(Error::Malformed));
        b[2..4].copy_from_slice(&29u16.to_be_bytes());
        assert_eq!(check(&b), Some(Error::Truncated));
    }

    #[test]
    fn setters_keep_the_checksum_right() {
        let mut bytes = ipv4(SRC, DST, 6, &[0; 8]);
        let mut ip = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        ip.set_dst(Ipv4Addr::new(10, 1, 2, 3));
        ip.set_src(Ipv4Addr::new(10, 9, 8, 7));
        ip.set_ttl(3);
        assert!(ip.verify_checksum());
        let csum = ip.checksum();
        ip.fill_checksum();
        assert_eq!(ip.checksum(), csum);
        ip.swap_src_dst();
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.src(), ip.dst(), ip.ttl()),
            (Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::new(10, 9, 8, 7), 3)
        );
        ip.payload_mut()[0] = 0xee;
        assert_eq!(ip.into_inner()[20], 0xee);
    }
}
