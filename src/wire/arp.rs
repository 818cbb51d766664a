//! ARP (RFC 826) for IPv4 over Ethernet, the only kind the load balancer answers. Owns the ARP
//! message; the Ethernet header around it is the caller's.

use std::net::Ipv4Addr;

use super::{get_u16, get_u32, put_u16, Error, EtherType, Field, MacAddr};

/// ARP operation codes. A namespace of `u16` constants for [`ArpPacket::operation`].
#[derive(Debug)]
pub enum ArpOperation {}

impl ArpOperation {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

mod field {
    use super::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
    pub const LEN: usize = 28;
}

const HTYPE_ETHERNET: u16 = 1;

/// A view of an Ethernet/IPv4 ARP message over a byte buffer (trailing padding is ignored).
///
/// No-panic contract: once [`ArpPacket::new_checked`] has accepted a buffer, no getter or
/// setter panics.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Checks the length (`Truncated`) and that the message maps IPv4 to Ethernet addresses
    /// (`Unsupported` otherwise).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let data = buffer.as_ref();
        if data.len() < field::LEN {
            return Err(Error::Truncated);
        }
        if get_u16(&data[field::HTYPE]) != HTYPE_ETHERNET
            || get_u16(&data[field::PTYPE]) != EtherType::IPV4
            || data[field::HLEN] != 6
            || data[field::PLEN] != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(ArpPacket { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// [`ArpOperation::REQUEST`], [`ArpOperation::REPLY`], or another code to ignore.
    pub fn operation(&self) -> u16 {
        get_u16(&self.buffer.as_ref()[field::OPER])
    }

    pub fn sender_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SHA])
    }

    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_u32(&self.buffer.as_ref()[field::SPA]))
    }

    pub fn target_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::THA])
    }

    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_u32(&self.buffer.as_ref()[field::TPA]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    pub fn set_operation(&mut self, op: u16) {
        put_u16(&mut self.buffer.as_mut()[field::OPER], op);
    }

    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(mac.as_bytes());
    }

    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&ip.octets());
    }

    pub fn set_target_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(mac.as_bytes());
    }

    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&ip.octets());
    }

    /// Turns a request for `target_ip` into our reply: the requester becomes the target and
    /// we (`our_mac`, the requested address) the sender. The caller checks that the request
    /// is for an address we own, and rewrites the Ethernet header (destination: the
    /// requester; source: `our_mac`).
    pub fn make_reply_in_place(&mut self, our_mac: MacAddr) {
        let (requester_mac, requester_ip) = (self.sender_mac(), self.sender_ip());
        let asked = self.target_ip();
        self.set_operation(ArpOperation::REPLY);
        self.set_sender_mac(our_mac);
        self.set_sender_ip(asked);
        self.set_target_mac(requester_mac);
        self.set_target_ip(requester_ip);
    }
}

/// An Ethernet/IPv4 ARP message to write ([`emit`](Self::emit)) or read
/// ([`parse`](Self::parse)).
///
/// ```
/// use std::net::Ipv4Addr;
/// use haports::wire::{ArpOperation, ArpPacket, ArpRepr, MacAddr};
///
/// let request = ArpRepr {
///     operation: ArpOperation::REQUEST,
///     sender_mac: MacAddr([2, 0, 0, 0, 0, 1]),
///     sender_ip: Ipv4Addr::new(10, 0, 0, 2),
///     target_mac: MacAddr::ZERO,
///     target_ip: Ipv4Addr::new(10, 0, 0, 11),
/// };
/// let mut buf = [0u8; ArpRepr::LEN];
/// request.emit(&mut buf)?;
/// assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..])?), request);
/// # Ok::<(), haports::wire::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Bytes [`emit`](Self::emit) writes.
    pub const LEN: usize = field::LEN;

    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> ArpRepr {
        ArpRepr {
            operation: packet.operation(),
            sender_mac: packet.sender_mac(),
            sender_ip: packet.sender_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        }
    }

    /// Writes the message at the start of `buf` (`Truncated` when it is shorter).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let b = buf.get_mut(..Self::LEN).ok_or(Error::Truncated)?;
        put_u16(&mut b[field::HTYPE], HTYPE_ETHERNET);
        put_u16(&mut b[field::PTYPE], EtherType::IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        let mut packet = ArpPacket::new_checked(b)?;
        packet.set_operation(self.operation);
        packet.set_sender_mac(self.sender_mac);
        packet.set_sender_ip(self.sender_ip);
        packet.set_target_mac(self.target_mac);
        packet.set_target_ip(self.target_ip);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASKER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xaa]);
    const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xbb]);

    fn request() -> Vec<u8> {
        let mut b = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
        b.extend_from_slice(&ASKER_MAC.0);
        b.extend_from_slice(&[192, 0, 2, 1]);
        b.extend_from_slice(&[0; 6]);
        b.extend_from_slice(&[192, 0, 2, 10]);
        b
    }

    #[test]
    fn reads_a_request() {
        let bytes = request();
        let arp = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(arp.operation(), ArpOperation::REQUEST);
        assert_eq!(arp.sender_mac(), ASKER_MAC);
        assert_eq!(arp.sender_ip(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(arp.target_mac(), MacAddr::ZERO);
        assert_eq!(arp.target_ip(), Ipv4Addr::new(192, 0, 2, 10));
    }

    #[test]
    fn reply_in_place_swaps_and_answers() {
        let mut bytes = request();
        bytes.extend_from_slice(&[0; 18]); // Ethernet padding stays untouched
        let mut arp = ArpPacket::new_checked(&mut bytes[..]).unwrap();
        arp.make_reply_in_place(OUR_MAC);
        assert_eq!(arp.operation(), ArpOperation::REPLY);
        assert_eq!(arp.sender_mac(), OUR_MAC);
        assert_eq!(arp.sender_ip(), Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(arp.target_mac(), ASKER_MAC);
        assert_eq!(arp.target_ip(), Ipv4Addr::new(192, 0, 2, 1));
        assert!(bytes[28..].iter().all(|&b| b == 0));
    }

    #[test]
    fn short_message_is_truncated() {
        let bytes = request();
        assert_eq!(
            ArpPacket::new_checked(&bytes[..27]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn other_address_kinds_are_unsupported() {
        for (at, value) in [(1, 6), (2, 0x86), (4, 8), (5, 16)] {
            let mut bytes = request();
            bytes[at] = value;
            assert_eq!(
                ArpPacket::new_checked(&bytes[..]).unwrap_err(),
                Error::Unsupported
            );
        }
    }
}
