//! UDP headers (RFC 768): ports, length and the checksum, with its two special values: zero
//! means "no checksum" (IPv4 only), so a computed zero is sent as 0xffff.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{get_u16, put_u16, Error, Field, IpProtocol};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const HEADER: usize = 8;
}

/// A view of a UDP datagram over a byte buffer, which may run on past the datagram; the length
/// field bounds [`UdpPacket::payload`] and the checksum.
///
/// No-panic contract: once [`UdpPacket::new_checked`] has accepted a buffer, no getter or
/// setter panics; the view offers no setter for the length.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Checks the header fits (`Truncated`), the length field covers the header (`Malformed`)
    /// and fits the buffer (`Truncated`). A first fragment fails the last check: its length
    /// field counts bytes in later fragments; read its ports from the raw header instead.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < field::HEADER {
            return Err(Error::Truncated);
        }
        let packet = UdpPacket { buffer };
        if packet.len() < field::HEADER {
            return Err(Error::Malformed);
        }
        if packet.len() > len {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    pub fn dst_port(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// The length field: header and payload.
    #[allow(clippy::len_without_is_empty)] // a datagram is never empty: it has its header
    pub fn len(&self) -> usize {
        usize::from(get_u16(&self.buffer.as_ref()[field::LENGTH]))
    }

    /// The checksum; zero means the sender sent none.
    pub fn checksum(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.len()]
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER..self.len()]
    }

    /// Whether the checksum is right over IPv4; a zero ("none") checksum passes.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let len = self.len() as u16; // came from a u16 field
        let pseudo = checksum::pseudo_header_v4(src, dst, IpProtocol::UDP, len);
        checksum::add(pseudo, checksum::ones_complement_sum(self.datagram())) == 0xffff
    }

    /// Whether the checksum is right over IPv6, where it is mandatory: zero fails.
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let len = self.len() as u32;
        let pseudo = checksum::pseudo_header_v6(src, dst, IpProtocol::UDP, len);
        checksum::add(pseudo, checksum::ones_complement_sum(self.datagram())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_checksum(&mut self, csum: u16) {
        put_u16(&mut self.buffer.as_mut()[field::CHECKSUM], csum);
    }

    /// Updates the checksum for a 16-bit word that changed, keeping "none" as none and never
    /// producing a zero that would read as "none".
    fn update_checksum(&mut self, old: u16, new: u16) {
        let csum = self.checksum();
        if csum != 0 {
            self.set_checksum(nonzero(checksum::update_u16(csum, old, new)));
        }
    }

    /// Sets the source port and updates the checksum incrementally (RFC 1624).
    pub fn set_src_port(&mut self, port: u16) {
        let old = self.src_port();
        put_u16(&mut self.buffer.as_mut()[field::SRC_PORT], port);
        self.update_checksum(old, port);
    }

    /// Sets the destination port and updates the checksum incrementally (RFC 1624).
    pub fn set_dst_port(&mut self, port: u16) {
        let old = self.dst_port();
        put_u16(&mut self.buffer.as_mut()[field::DST_PORT], port);
        self.update_checksum(old, port);
    }

    /// Recomputes the checksum from scratch for IPv4 (slow path, and building packets).
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let csum = checksum::tcp_udp_checksum_v4(src, dst, IpProtocol::UDP, self.datagram());
        self.set_checksum(csum);
    }

    /// Recomputes the checksum from scratch for IPv6.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let csum = checksum::tcp_udp_checksum_v6(src, dst, IpProtocol::UDP, self.datagram());
        self.set_checksum(csum);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.len();
        &mut self.buffer.as_mut()[field::HEADER..end]
    }
}

/// A UDP checksum as sent: a computed zero goes out as 0xffff (RFC 768).
pub(crate) fn nonzero(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

/// A UDP header to write ([`emit`](Self::emit)), with checksum 0 (none, which IPv4
/// allows; a caller that wants one fills it through [`UdpPacket`]).
///
/// ```
/// use haports::wire::{UdpPacket, UdpRepr};
///
/// let mut datagram = [0u8; 16];
/// UdpRepr { src_port: 49152, dst_port: 4789, payload_len: 8 }.emit(&mut datagram)?;
/// let view = UdpPacket::new_checked(&datagram[..])?;
/// assert_eq!((view.src_port(), view.dst_port(), view.payload().len()), (49152, 4789, 8));
/// # Ok::<(), haports::wire::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    /// Bytes after the header.
    pub payload_len: usize,
}

impl UdpRepr {
    /// Bytes [`emit`](Self::emit) writes.
    pub const LEN: usize = field::HEADER;

    /// Writes the header at the start of `buf` (`Truncated` when it is shorter, `Malformed`
    /// when the datagram would exceed 65535 bytes).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let len = u16::try_from(Self::LEN + self.payload_len).map_err(|_| Error::Malformed)?;
        let b = buf.get_mut(..Self::LEN).ok_or(Error::Truncated)?;
        put_u16(&mut b[field::SRC_PORT], self.src_port);
        put_u16(&mut b[field::DST_PORT], self.dst_port);
        put_u16(&mut b[field::LENGTH], len);
        put_u16(&mut b[field::CHECKSUM], 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::udp;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    #[test]
    fn reads_every_field_and_ignores_padding() {
        let mut bytes = udp(SRC, DST, 5353, 53, b"query");
        bytes.extend_from_slice(&[0; 3]);
        let u = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), u.len()), (5353, 53, 13));
        assert_eq!(u.payload(), b"query");
        assert!(u.verify_checksum_v4(SRC, DST));
        assert!(!u.verify_checksum_v4(DST, DST));
    }

    #[test]
    fn each_bad_length_has_its_error() {
        let good = udp(SRC, DST, 1, 2, &[0; 4]);
        assert_eq!(
            UdpPacket::new_checked(&good[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            UdpPacket::new_checked(&good[..11]).unwrap_err(),
            Error::Truncated
        );
        let mut b = good.clone();
        b[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn port_setters_keep_the_checksum_right() {
        let mut bytes = udp(SRC, DST, 5353, 53, b"query");
        let mut u = UdpPacket::new_checked(&mut bytes[..]).unwrap();
        u.set_dst_port(5300);
        u.set_src_port(1);
        assert_eq!((u.src_port(), u.dst_port()), (1, 5300));
        assert!(u.verify_checksum_v4(SRC, DST));
        let incremental = u.checksum();
        u.fill_checksum_v4(SRC, DST);
        assert_eq!(u.checksum(), incremental);
        u.payload_mut()[0] = b'Q';
        assert_eq!(u.payload(), b"Query");
    }

    #[test]
    fn no_checksum_stays_no_checksum() {
        let mut bytes = udp(SRC, DST, 5353, 53, b"query");
        let mut u = UdpPacket::new_checked(&mut bytes[..]).unwrap();
        u.set_checksum(0);
        u.set_dst_port(1);
        assert_eq!(u.checksum(), 0);
        assert!(u.verify_checksum_v4(SRC, DST));
        assert!(!u.verify_checksum_v6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn an_update_to_zero_is_sent_as_all_ones() {
        // Choose the new port so that the true checksum becomes zero.
        let mut bytes = udp(SRC, DST, 5353, 53, b"q");
        let mut u = UdpPacket::new_checked(&mut bytes[..]).unwrap();
        let port = checksum::add(u.checksum(), u.dst_port());
        u.set_dst_port(port);
        assert_eq!(u.checksum(), 0xffff);
        assert!(u.verify_checksum_v4(SRC, DST));
        u.fill_checksum_v4(SRC, DST);
        assert_eq!(u.checksum(), 0xffff);
    }

    #[test]
    fn v6_checksum_round_trips() {
        let (src, dst) = (
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        );
        let mut bytes = udp(SRC, DST, 1, 2, b"abc");
        let mut u = UdpPacket::new_checked(&mut bytes[..]).unwrap();
        u.fill_checksum_v6(src, dst);
        assert!(u.verify_checksum_v6(src, dst));
        assert!(!u.verify_checksum_v6(dst, dst));
    }
}
