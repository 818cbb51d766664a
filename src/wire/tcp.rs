//! TCP headers (RFC 9293 section 3.1): ports, flags and the checksum. Owns the segment; the
//! pseudo-header it is checksummed with comes from the IP layer.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{get_u16, get_u32, put_u16, Error, Field, IpProtocol};

/// TCP flag bits, as in the 13th byte of the header and [`Headers::tcp_flags`](super::Headers).
#[derive(Debug)]
pub enum TcpFlags {}

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    /// A combination no TCP stack sends, used to probe or evade: SYN with FIN or RST, or none
    /// of FIN, SYN, RST, PSH, ACK and URG (a "null" segment).
    pub fn invalid(flags: u8) -> bool {
        let f = flags & 0x3f;
        f == 0 || (f & TcpFlags::SYN != 0 && f & (TcpFlags::FIN | TcpFlags::RST) != 0)
    }
}

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const MIN_HEADER: usize = 20;
}

/// A view of a TCP segment over a byte buffer. TCP has no length field: the segment is the
/// whole buffer, so give it exactly the IP payload when checksums matter.
///
/// No-panic contract: once [`TcpPacket::new_checked`] has accepted a buffer, no getter or
/// setter panics; the view offers no setter for the data offset.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Checks the fixed header fits (`Truncated`), the data offset is at least 5 words
    /// (`Malformed`) and the header with its options fits (`Truncated`).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < field::MIN_HEADER {
            return Err(Error::Truncated);
        }
        let packet = TcpPacket { buffer };
        if packet.header_len() < field::MIN_HEADER {
            return Err(Error::Malformed);
        }
        if packet.header_len() > len {
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

    pub fn seq_number(&self) -> u32 {
        get_u32(&self.buffer.as_ref()[field::SEQ])
    }

    pub fn ack_number(&self) -> u32 {
        get_u32(&self.buffer.as_ref()[field::ACK])
    }

    /// Header length in bytes (data offset × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The eight flag bits; test them with [`TcpFlags`] or the helpers below.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    pub fn fin(&self) -> bool {
        self.flags() & TcpFlags::FIN != 0
    }

    pub fn syn(&self) -> bool {
        self.flags() & TcpFlags::SYN != 0
    }

    pub fn rst(&self) -> bool {
        self.flags() & TcpFlags::RST != 0
    }

    pub fn ack(&self) -> bool {
        self.flags() & TcpFlags::ACK != 0
    }

    pub fn window(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::WINDOW])
    }

    pub fn checksum(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Whether the checksum is right for a segment carried from `src` to `dst` over IPv4.
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let data = self.buffer.as_ref();
        let len = data.len().min(usize::from(u16::MAX)) as u16;
        let pseudo = checksum::pseudo_header_v4(src, dst, IpProtocol::TCP, len);
        checksum::add(pseudo, checksum::ones_complement_sum(data)) == 0xffff
    }

    /// Whether the checksum is right for a segment carried from `src` to `dst` over IPv6.
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let len = data.len().min(u32::MAX as usize) as u32;
        let pseudo = checksum::pseudo_header_v6(src, dst, IpProtocol::TCP, len);
        checksum::add(pseudo, checksum::ones_complement_sum(data)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    pub fn set_checksum(&mut self, csum: u16) {
        put_u16(&mut self.buffer.as_mut()[field::CHECKSUM], csum);
    }

    /// Sets the source port and updates the checksum incrementally (RFC 1624).
    pub fn set_src_port(&mut self, port: u16) {
        let old = self.src_port();
        put_u16(&mut self.buffer.as_mut()[field::SRC_PORT], port);
        self.set_checksum(checksum::update_u16(self.checksum(), old, port));
    }

    /// Sets the destination port and updates the checksum incrementally (RFC 1624).
    pub fn set_dst_port(&mut self, port: u16) {
        let old = self.dst_port();
        put_u16(&mut self.buffer.as_mut()[field::DST_PORT], port);
        self.set_checksum(checksum::update_u16(self.checksum(), old, port));
    }

    /// Recomputes the checksum from scratch for IPv4 (slow path, and building packets).
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let csum = checksum::tcp_udp_checksum_v4(src, dst, IpProtocol::TCP, self.buffer.as_ref());
        self.set_checksum(csum);
    }

    /// Recomputes the checksum from scratch for IPv6.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let csum = checksum::tcp_udp_checksum_v6(src, dst, IpProtocol::TCP, self.buffer.as_ref());
        self.set_checksum(csum);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header = self.header_len();
        &mut self.buffer.as_mut()[header..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::tcp;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    #[test]
    fn reads_every_field() {
        let bytes = tcp(SRC, DST, 40000, 80, TcpFlags::SYN | TcpFlags::ACK, b"hi");
        let t = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (t.src_port(), t.dst_port(), t.header_len()),
            (40000, 80, 20)
        );
        assert_eq!(
            (t.seq_number(), t.ack_number(), t.window()),
            (1000, 2000, 65535)
        );
        assert!(t.syn() && t.ack() && !t.fin() && !t.rst());
        assert_eq!(t.payload(), b"hi");
        assert!(t.verify_checksum_v4(SRC, DST));
        assert!(!t.verify_checksum_v4(SRC, Ipv4Addr::new(198, 51, 100, 8)));
    }

    #[test]
    fn options_are_skipped() {
        let mut bytes = tcp(SRC, DST, 1, 2, TcpFlags::SYN, &[2, 4, 5, 0xb4, 0xaa]);
        bytes[12] = 6 << 4;
        let t = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!((t.header_len(), t.payload()), (24, &[0xaa][..]));
    }

    #[test]
    fn each_bad_length_has_its_error() {
        let good = tcp(SRC, DST, 1, 2, 0, &[0; 4]);
        assert_eq!(
            TcpPacket::new_checked(&good[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut b = good.clone();
        b[12] = 4 << 4;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            Error::Malformed
        );
        b[12] = 6 << 4;
        assert!(TcpPacket::new_checked(&b[..]).is_ok());
        b[12] = 7 << 4;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn port_setters_keep_the_checksum_right() {
        let mut bytes = tcp(SRC, DST, 40000, 80, TcpFlags::ACK, b"payload");
        let mut t = TcpPacket::new_checked(&mut bytes[..]).unwrap();
        t.set_dst_port(8080);
        t.set_src_port(1);
        assert_eq!((t.src_port(), t.dst_port()), (1, 8080));
        assert!(t.verify_checksum_v4(SRC, DST));
        let incremental = t.checksum();
        t.fill_checksum_v4(SRC, DST);
        assert_eq!(t.checksum(), incremental);
        t.payload_mut()[0] = b'P';
        assert_eq!(&t.into_inner()[20..22], b"Pa");
    }

    #[test]
    fn v6_checksum_round_trips() {
        let (src, dst) = (
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        );
        let mut bytes = tcp(SRC, DST, 5, 6, TcpFlags::FIN, b"x");
        let mut t = TcpPacket::new_checked(&mut bytes[..]).unwrap();
        t.fill_checksum_v6(src, dst);
        assert!(t.verify_checksum_v6(src, dst));
        assert!(!t.verify_checksum_v6(dst, dst));
    }
}
