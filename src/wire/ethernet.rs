//! Ethernet II frames, with up to two 802.1Q / 802.1ad VLAN tags between the source address
//! and the ethertype. Owns only the link header; what follows is the payload.

use super::{get_u16, Error, Field, MacAddr};

/// Ethertypes the load balancer handles (IEEE "EtherType" registry). A namespace of `u16`
/// constants, so they compare directly with [`EthernetFrame::ethertype`] and
/// [`Headers::ethertype`](super::Headers).
#[derive(Debug)]
pub enum EtherType {}

impl EtherType {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const IPV6: u16 = 0x86dd;
    /// An 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// An 802.1ad service VLAN tag (the outer tag of Q-in-Q).
    pub const QINQ: u16 = 0x88a8;

    fn is_vlan_tag(ethertype: u16) -> bool {
        ethertype == Self::VLAN || ethertype == Self::QINQ
    }
}

mod field {
    use super::Field;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    /// The ethertype of an untagged frame, or the outer tag's TPID.
    pub const TYPE: Field = 12..14;
    /// The outer tag's control information (PCP, DEI, VLAN id).
    pub const OUTER_TCI: Field = 14..16;
    /// The ethertype after one tag, or the inner tag's TPID.
    pub const TYPE_AFTER_ONE: Field = 16..18;
    pub const HEADER_UNTAGGED: usize = 14;
    pub const TAG_LEN: usize = 4;
}

/// A view of an Ethernet frame over a byte buffer.
///
/// No-panic contract: once [`EthernetFrame::new_checked`] has accepted a buffer, no getter or
/// setter panics; the view offers no setter that changes the header's length.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Checks that the buffer holds the whole link header, tags included.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let data = buffer.as_ref();
        if data.len() < field::HEADER_UNTAGGED {
            return Err(Error::Truncated);
        }
        let frame = EthernetFrame { buffer };
        if frame.buffer.as_ref().len() < frame.header_len() {
            return Err(Error::Truncated);
        }
        Ok(frame)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// How many VLAN tags precede the ethertype: 0, 1 or 2. A third tag is not unwrapped; it
    /// shows as an [`EtherType::VLAN`] or [`EtherType::QINQ`] ethertype.
    pub fn vlan_tags(&self) -> usize {
        let data = self.buffer.as_ref();
        if !EtherType::is_vlan_tag(get_u16(&data[field::TYPE])) {
            0
        } else if data.len() < field::TYPE_AFTER_ONE.end
            || !EtherType::is_vlan_tag(get_u16(&data[field::TYPE_AFTER_ONE]))
        {
            1
        } else {
            2
        }
    }

    /// Length of the link header: 14 untagged, 18 with one tag, 22 with two.
    pub fn header_len(&self) -> usize {
        field::HEADER_UNTAGGED + self.vlan_tags() * field::TAG_LEN
    }

    pub fn dst(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::DST])
    }

    pub fn src(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SRC])
    }

    /// The ethertype of the payload, after any VLAN tags.
    pub fn ethertype(&self) -> u16 {
        let at = self.header_len() - 2;
        get_u16(&self.buffer.as_ref()[at..at + 2])
    }

    /// The outer tag's 12-bit VLAN id, if the frame is tagged.
    pub fn vlan_id(&self) -> Option<u16> {
        if self.vlan_tags() == 0 {
            return None;
        }
        Some(get_u16(&self.buffer.as_ref()[field::OUTER_TCI]) & 0x0fff)
    }

    /// Everything after the link header (an IP packet may be followed by Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len();
        &self.buffer.as_ref()[hl..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(mac.as_bytes());
    }

    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(mac.as_bytes());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

/// An untagged Ethernet II header to write ([`emit`](Self::emit)), as smoltcp's `Repr`s.
///
/// ```
/// use haports::wire::{EtherType, EthernetFrame, EthernetRepr, MacAddr};
///
/// let mut frame = [0u8; 60];
/// let src = MacAddr([2, 0, 0, 0, 0, 1]);
/// EthernetRepr { dst: MacAddr::BROADCAST, src, ethertype: EtherType::ARP }.emit(&mut frame)?;
/// let view = EthernetFrame::new_checked(&frame[..])?;
/// assert_eq!((view.dst(), view.src()), (MacAddr::BROADCAST, src));
/// assert_eq!((view.ethertype(), view.header_len()), (EtherType::ARP, 14));
/// # Ok::<(), haports::wire::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Bytes [`emit`](Self::emit) writes.
    pub const LEN: usize = field::HEADER_UNTAGGED;

    /// Writes the header at the start of `buf` (`Truncated` when it is shorter).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let b = buf.get_mut(..Self::LEN).ok_or(Error::Truncated)?;
        b[field::DST].copy_from_slice(self.dst.as_bytes());
        b[field::SRC].copy_from_slice(self.src.as_bytes());
        b[field::TYPE].copy_from_slice(&self.ethertype.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const SRC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

    fn frame(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = [DST.0, SRC.0].concat();
        for &(tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn untagged_frame_reads_addresses_type_and_payload() {
        let bytes = frame(&[], EtherType::IPV4, &[1, 2, 3]);
        let f = EthernetFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!((f.dst(), f.src()), (DST, SRC));
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!((f.header_len(), f.vlan_id()), (14, None));
        assert_eq!(f.payload(), &[1, 2, 3]);
    }

    #[test]
    fn one_tag_is_unwrapped() {
        let bytes = frame(&[(EtherType::VLAN, 0x2064)], EtherType::ARP, &[9]);
        let f = EthernetFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (f.ethertype(), f.header_len(), f.vlan_id()),
            (EtherType::ARP, 18, Some(100))
        );
        assert_eq!(f.payload(), &[9]);
    }

    #[test]
    fn two_tags_report_the_outer_vlan() {
        let tags = [(EtherType::QINQ, 0x0007), (EtherType::VLAN, 0x0fff)];
        let bytes = frame(&tags, EtherType::IPV6, &[]);
        let f = EthernetFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (f.ethertype(), f.header_len(), f.vlan_id()),
            (EtherType::IPV6, 22, Some(7))
        );
        assert!(f.payload().is_empty());
    }

    #[test]
    fn a_third_tag_is_left_as_the_ethertype() {
        let tags = [
            (EtherType::QINQ, 1),
            (EtherType::VLAN, 2),
            (EtherType::VLAN, 3),
        ];
        let bytes = frame(&tags, EtherType::IPV4, &[]);
        let f = EthernetFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!((f.ethertype(), f.header_len()), (EtherType::VLAN, 22));
    }

    #[test]
    fn short_headers_are_truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]).unwrap_err(),
            Error::Truncated
        );
        let tagged = frame(&[(EtherType::VLAN, 1)], EtherType::IPV4, &[]);
        for len in 14..18 {
            let err = EthernetFrame::new_checked(&tagged[..len]).unwrap_err();
            assert_eq!(err, Error::Truncated, "len {len}");
        }
        let double = frame(
            &[(EtherType::QINQ, 1), (EtherType::VLAN, 2)],
            EtherType::IPV4,
            &[],
        );
        for len in 18..22 {
            let err = EthernetFrame::new_checked(&double[..len]).unwrap_err();
            assert_eq!(err, Error::Truncated, "len {len}");
        }
    }

    #[test]
    fn setters_round_trip() {
        let mut bytes = frame(&[(EtherType::VLAN, 5)], EtherType::IPV4, &[0; 4]);
        let mut f = EthernetFrame::new_checked(&mut bytes[..]).unwrap();
        f.set_dst(SRC);
        f.set_src(DST);
        f.payload_mut()[0] = 0xaa;
        assert_eq!((f.dst(), f.src(), f.payload()[0]), (SRC, DST, 0xaa));
        assert_eq!(f.into_inner()[18], 0xaa);
    }
}
