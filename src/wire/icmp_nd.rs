//! Neighbour discovery in ICMPv6 messages (RFC 4861): what a solicitation or an
//! advertisement says, and a solicitation turned into its answer.

use std::net::Ipv6Addr;

use super::{field, Error, Icmpv6Packet, Icmpv6Type};
use crate::wire::MacAddr;

/// Neighbour-discovery option types and advertisement flags (RFC 4861 §4.4, §4.6.1).
pub const NDP_OPT_SOURCE_LLADDR: u8 = 1;
pub const NDP_OPT_TARGET_LLADDR: u8 = 2;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// The address a neighbour solicitation asks about; `None` for other types or when the
    /// message is too short to hold one.
    pub fn ns_target(&self) -> Option<Ipv6Addr> {
        let data = self.buffer.as_ref();
        if self.msg_type() != Icmpv6Type::NEIGHBOR_SOLICIT || data.len() < field::NS_TARGET.end {
            return None;
        }
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&data[field::NS_TARGET]);
        Some(Ipv6Addr::from(octets))
    }

    /// The target and its link-layer address an advertisement carries: its first target
    /// link-layer address option of an Ethernet address, wherever it stands among the
    /// options (RFC 4861 §4.6: in any order). `None` without one, or where an option has
    /// length 0 or runs past the message (such a message is discarded, §7.1.2).
    pub fn na_target_mac(&self) -> Option<(Ipv6Addr, MacAddr)> {
        let data = self.buffer.as_ref();
        if data.len() < 24 || data[field::TYPE] != Icmpv6Type::NEIGHBOR_ADVERT {
            return None;
        }
        let (mut at, mut found) = (24, None);
        while at < data.len() {
            let len = usize::from(*data.get(at + 1)?) * 8;
            if len == 0 || at + len > data.len() {
                return None;
            }
            if found.is_none() && data[at] == NDP_OPT_TARGET_LLADDR && len == 8 {
                found = Some(MacAddr::from_bytes(&data[at + 2..at + 8]));
            }
            at += len;
        }
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&data[8..24]);
        Some((Ipv6Addr::from(octets), found?))
    }

    /// Whether a neighbour solicitation or advertisement has an option of type `option`, of
    /// whatever length, among the options read up to the first of length 0 or running past
    /// the message.
    pub fn nd_has_option(&self, option: u8) -> bool {
        let data = self.buffer.as_ref();
        let mut at = 24;
        while let Some(&len) = data.get(at + 1) {
            let len = usize::from(len) * 8;
            if len == 0 || at + len > data.len() {
                return false;
            }
            if data[at] == option {
                return true;
            }
            at += len;
        }
        false
    }

    /// Whether an advertisement answers a solicitation (its Solicited flag, RFC 4861 §4.4).
    pub fn na_solicited(&self) -> bool {
        let data = self.buffer.as_ref();
        data.len() >= 8
            && data[field::TYPE] == Icmpv6Type::NEIGHBOR_ADVERT
            && data[4] & NA_SOLICITED != 0
    }

    /// The sender's link-layer address a solicitation carries, if any: its first source
    /// link-layer address option of an Ethernet address, wherever it stands among the
    /// options (RFC 4861 §4.6: in any order). `Malformed` where an option has length 0 or
    /// runs past the message (such a message is discarded, §7.1.1).
    pub fn ns_source_mac(&self) -> Result<Option<MacAddr>, Error> {
        let data = self.buffer.as_ref();
        if data.len() < 24 || data[field::TYPE] != Icmpv6Type::NEIGHBOR_SOLICIT {
            return Ok(None);
        }
        let (mut at, mut found) = (24, None);
        while at < data.len() {
            let len = usize::from(*data.get(at + 1).ok_or(Error::Malformed)?) * 8;
            if len == 0 || at + len > data.len() {
                return Err(Error::Malformed);
            }
            if found.is_none() && data[at] == NDP_OPT_SOURCE_LLADDR && len == 8 {
                found = Some(MacAddr::from_bytes(&data[at + 2..at + 8]));
            }
            at += len;
        }
        Ok(found)
    }

    /// The Ethernet addresses in a neighbour solicitation's or advertisement's link-layer
    /// address options of type `option` (source, 1; target, 2), in order; the options are read
    /// up to the first one of length 0 or running past the message.
    pub fn nd_link_layer_macs(&self, option: u8) -> impl Iterator<Item = MacAddr> + '_ {
        let data = self.buffer.as_ref();
        let neighbour = matches!(
            data.first().copied(),
            Some(Icmpv6Type::NEIGHBOR_SOLICIT | Icmpv6Type::NEIGHBOR_ADVERT)
        );
        let mut at = if neighbour { 24 } else { data.len() };
        std::iter::from_fn(move || loop {
            let len = usize::from(*data.get(at + 1)?) * 8;
            let opt = data.get(at..at + len).filter(|_| len > 0)?;
            at += len;
            if opt[0] == option && len == 8 {
                return Some(MacAddr::from_bytes(&opt[2..8]));
            }
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Turns a neighbour solicitation into the advertisement answering it (RFC 4861 §4.4),
    /// in the solicitation's own bytes: the solicited flag where `solicited` (not in a
    /// defence of the address against duplicate-address detection, §7.2.4), the override
    /// flag, the same target, and a
    /// target link-layer address option holding `mac`, in 32 bytes, where the solicitation
    /// has options (8 bytes or more) to write it over; where it has none (a unicast
    /// solicitation may leave its sender's address out, §4.3), 24 bytes without the option
    /// and so without the override flag (§7.2.4). Returns the advertisement's length. The
    /// checksum is the caller's to fill once the IPv6 addresses are set. `Unsupported`
    /// (nothing written) for any other message.
    pub fn make_neighbour_advert_in_place(
        &mut self,
        mac: MacAddr,
        solicited: bool,
    ) -> Result<usize, Error> {
        let solicited = if solicited { NA_SOLICITED } else { 0 };
        let data = self.buffer.as_mut();
        // type, code, checksum, reserved (4), target (16), then options of 8-byte units.
        if data.len() < 24 || data[field::TYPE] != Icmpv6Type::NEIGHBOR_SOLICIT {
            return Err(Error::Unsupported);
        }
        data[field::TYPE] = Icmpv6Type::NEIGHBOR_ADVERT;
        data[field::CODE] = 0;
        if data.len() < 32 {
            data[4..8].copy_from_slice(&[solicited, 0, 0, 0]);
            return Ok(24);
        }
        data[4..8].copy_from_slice(&[solicited | NA_OVERRIDE, 0, 0, 0]);
        data[24] = NDP_OPT_TARGET_LLADDR;
        data[25] = 1;
        data[26..32].copy_from_slice(mac.as_bytes());
        Ok(32)
    }
}
