//! ICMP for IPv4 (RFC 792) and IPv6 (RFC 4443): enough to answer echo requests and to
//! recognise neighbour solicitations (RFC 4861). Each view's message is its whole buffer, so
//! give it exactly the IP payload: the checksum covers all of it.

use std::net::Ipv6Addr;

use super::checksum;
use super::{get_u16, put_u16, Error, Field, IpProtocol};

/// ICMPv4 message types. A namespace of `u8` constants for [`IcmpPacket::msg_type`].
#[derive(Debug)]
pub enum IcmpType {}

impl IcmpType {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    /// Router discovery (RFC 1256).
    pub const ROUTER_ADVERT: u8 = 9;
    pub const ROUTER_SOLICIT: u8 = 10;
    pub const TIME_EXCEEDED: u8 = 11;
}

/// ICMPv6 message types. A namespace of `u8` constants for [`Icmpv6Packet::msg_type`].
#[derive(Debug)]
pub enum Icmpv6Type {}

impl Icmpv6Type {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
}

/// The layout both versions share: a type/code word, the checksum, and a 4-byte field that
/// echo messages split into identifier and sequence number.
mod field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const TYPE_CODE: Field = 0..2;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ: Field = 6..8;
    /// Every ICMP message has at least these 8 bytes.
    pub const HEADER: usize = 8;
    /// The target address of a neighbour solicitation.
    pub const NS_TARGET: Field = 8..24;
}

fn check_len(data: &[u8]) -> Result<(), Error> {
    if data.len() < field::HEADER {
        return Err(Error::Truncated);
    }
    Ok(())
}

/// Rewrites the type/code word to `(msg_type, 0)`, updating the checksum incrementally.
fn set_type_code(data: &mut [u8], msg_type: u8) {
    let old = get_u16(&data[field::TYPE_CODE]);
    let new = u16::from(msg_type) << 8;
    put_u16(&mut data[field::TYPE_CODE], new);
    let csum = checksum::update_u16(get_u16(&data[field::CHECKSUM]), old, new);
    put_u16(&mut data[field::CHECKSUM], csum);
}

/// A view of an ICMPv4 message over a byte buffer.
///
/// No-panic contract: once [`IcmpPacket::new_checked`] has accepted a buffer (8 bytes at
/// least, else `Truncated`), no getter or setter panics.
#[derive(Debug, Clone)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        check_len(buffer.as_ref())?;
        Ok(IcmpPacket { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The identifier of an echo request or reply (meaningless for other types).
    pub fn echo_ident(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    /// The sequence number of an echo request or reply.
    pub fn echo_seq_no(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::ECHO_SEQ])
    }

    /// The bytes after the 8-byte header (echo data, or the offending packet's headers).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER..]
    }

    /// Whether the whole message sums to all ones.
    pub fn verify_checksum(&self) -> bool {
        checksum::internet_checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    pub fn set_checksum(&mut self, csum: u16) {
        put_u16(&mut self.buffer.as_mut()[field::CHECKSUM], csum);
    }

    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let csum = checksum::internet_checksum(self.buffer.as_ref());
        self.set_checksum(csum);
    }

    /// Turns an echo request (type 8) into its reply (type 0, code 0), updating the checksum
    /// incrementally; identifier, sequence and data stay. The caller checks the type, swaps
    /// the IP addresses ([`Ipv4Packet::swap_src_dst`](super::Ipv4Packet::swap_src_dst) keeps
    /// the IP checksum) and the Ethernet addresses.
    pub fn make_echo_reply_in_place(&mut self) {
        set_type_code(self.buffer.as_mut(), IcmpType::ECHO_REPLY);
    }
}

/// A view of an ICMPv6 message over a byte buffer.
///
/// No-panic contract: once [`Icmpv6Packet::new_checked`] has accepted a buffer (8 bytes at
/// least, else `Truncated`), no getter or setter panics.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        check_len(buffer.as_ref())?;
        Ok(Icmpv6Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    pub fn echo_ident(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    pub fn echo_seq_no(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::ECHO_SEQ])
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER..]
    }

    /// Whether the checksum is right for a message carried from `src` to `dst`; unlike
    /// ICMPv4 it covers the IPv6 pseudo-header.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let len = data.len().min(u32::MAX as usize) as u32;
        let pseudo = checksum::pseudo_header_v6(src, dst, IpProtocol::ICMPV6, len);
        checksum::add(pseudo, checksum::ones_complement_sum(data)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    pub fn set_checksum(&mut self, csum: u16) {
        put_u16(&mut self.buffer.as_mut()[field::CHECKSUM], csum);
    }

    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let data = self.buffer.as_ref();
        let csum = checksum::tcp_udp_checksum_v6(src, dst, IpProtocol::ICMPV6, data);
        self.set_checksum(csum);
    }

    /// Turns an echo request (128) into its reply (129, code 0), updating the checksum
    /// incrementally. Swapping the IPv6 addresses leaves the pseudo-header sum unchanged.
    pub fn make_echo_reply_in_place(&mut self) {
        set_type_code(self.buffer.as_mut(), Icmpv6Type::ECHO_REPLY);
    }
}

#[path = "icmp_nd.rs"]
mod nd;
pub use nd::{NDP_OPT_SOURCE_LLADDR, NDP_OPT_TARGET_LLADDR};

/// The ICMP and ICMPv6 messages the appliance makes itself, to write
/// ([`emit`](Self::emit)) after the IP header. The checksum is left 0: the caller fills it
/// through [`IcmpPacket::fill_checksum`] or [`Icmpv6Packet::fill_checksum`] once anything
/// quoted follows.
///
/// ```
/// use haports::wire::{IcmpMessage, Icmpv6Packet, Icmpv6Type, MacAddr};
///
/// let (src, target) = ("fd00::2".parse().unwrap(), "fd00::11".parse().unwrap());
/// let ns = IcmpMessage::NeighborSolicit { target, source_mac: MacAddr([2, 0, 0, 0, 0, 1]) };
/// let mut message = [0u8; 32];
/// assert_eq!(ns.emit(&mut message)?, 32);
/// let mut view = Icmpv6Packet::new_checked(&mut message[..])?;
/// view.fill_checksum(src, "ff02::1:ff00:11".parse().unwrap());
/// assert_eq!(view.msg_type(), Icmpv6Type::NEIGHBOR_SOLICIT);
/// assert_eq!(view.ns_target(), Some(target));
/// # Ok::<(), haports::wire::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpMessage {
    /// ICMPv4 destination unreachable, fragmentation needed and DF set (RFC 1191), with
    /// the next hop's MTU; the offending header and 8 bytes follow.
    FragmentationNeeded { mtu: u16 },
    /// ICMPv6 packet too big (RFC 4443 §3.2); as much of the packet as fits follows.
    PacketTooBig { mtu: u32 },
    /// A neighbour solicitation (RFC 4861 §4.3) for `target`, with the source link-layer
    /// address option.
    NeighborSolicit {
        target: Ipv6Addr,
        source_mac: super::MacAddr,
    },
}

impl IcmpMessage {
    /// Bytes [`emit`](Self::emit) writes.
    pub fn len(&self) -> usize {
        match self {
            IcmpMessage::FragmentationNeeded { .. } | IcmpMessage::PacketTooBig { .. } => {
                field::HEADER
            }
            IcmpMessage::NeighborSolicit { .. } => field::NS_TARGET.end + 8,
        }
    }

    /// Writes the message at the start of `buf` (`Truncated` when it is shorter); how many
    /// bytes it wrote.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.len();
        let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
        b.fill(0);
        match *self {
            IcmpMessage::FragmentationNeeded { mtu } => {
                b[field::TYPE] = IcmpType::DEST_UNREACHABLE;
                b[field::CODE] = 4;
                put_u16(&mut b[field::ECHO_SEQ], mtu);
            }
            IcmpMessage::PacketTooBig { mtu } => {
                b[field::TYPE] = Icmpv6Type::PACKET_TOO_BIG;
                b[field::ECHO_IDENT.start..field::ECHO_SEQ.end].copy_from_slice(&mtu.to_be_bytes());
            }
            IcmpMessage::NeighborSolicit { target, source_mac } => {
                b[field::TYPE] = Icmpv6Type::NEIGHBOR_SOLICIT;
                b[field::NS_TARGET].copy_from_slice(&target.octets());
                let option = &mut b[field::NS_TARGET.end..];
                option[0] = NDP_OPT_SOURCE_LLADDR;
                option[1] = 1; // in units of 8 bytes
                option[2..8].copy_from_slice(source_mac.as_bytes());
            }
        }
        Ok(len)
    }

    /// Never empty: every message has at least its 8-byte header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(msg_type: u8, data: &[u8]) -> Vec<u8> {
        let mut b = vec![msg_type, 0, 0, 0, 0x12, 0x34, 0x00, 0x07];
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn echo_request_becomes_reply_with_a_right_checksum() {
        let mut bytes = echo(IcmpType::ECHO_REQUEST, b"abcdefg");
        let mut icmp = IcmpPacket::new_checked(&mut bytes[..]).unwrap();
        icmp.fill_checksum();
        assert!(icmp.verify_checksum());
        assert_eq!((icmp.msg_type(), icmp.code()), (IcmpType::ECHO_REQUEST, 0));
        assert_eq!((icmp.echo_ident(), icmp.echo_seq_no()), (0x1234, 7));
        icmp.make_echo_reply_in_place();
        assert_eq!(icmp.msg_type(), IcmpType::ECHO_REPLY);
        assert!(icmp.verify_checksum());
        let incremental = icmp.checksum();
        icmp.fill_checksum();
        assert_eq!(icmp.checksum(), incremental);
        assert_eq!(icmp.payload(), b"abcdefg");
    }

    #[test]
    fn short_messages_are_truncated() {
        let bytes = echo(IcmpType::ECHO_REQUEST, &[]);
        assert_eq!(
            IcmpPacket::new_checked(&bytes[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Icmpv6Packet::new_checked(&bytes[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn v6_echo_reply_keeps_the_checksum_right() {
        let (src, dst) = (
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        );
        let mut bytes = echo(Icmpv6Type::ECHO_REQUEST, b"ping");
        let mut icmp = Icmpv6Packet::new_checked(&mut bytes[..]).unwrap();
        icmp.fill_checksum(src, dst);
        assert!(icmp.verify_checksum(src, dst));
        icmp.make_echo_reply_in_place();
        assert_eq!(icmp.msg_type(), Icmpv6Type::ECHO_REPLY);
        assert!(icmp.verify_checksum(dst, src));
        assert_eq!(
            (icmp.echo_ident(), icmp.echo_seq_no(), icmp.payload()),
            (0x1234, 7, &b"ping"[..])
        );
    }

    #[test]
    fn neighbour_solicitation_names_its_target() {
        let target = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x42);
        let mut bytes = vec![Icmpv6Type::NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&target.octets());
        let ns = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(ns.ns_target(), Some(target));
        assert_eq!(
            Icmpv6Packet::new_checked(&bytes[..23]).unwrap().ns_target(),
            None
        );
        bytes[0] = Icmpv6Type::ECHO_REQUEST;
        assert_eq!(
            Icmpv6Packet::new_checked(&bytes[..]).unwrap().ns_target(),
            None
        );
    }
}
