//! Neighbour resolution for next hops (backends, gateways, clients): the control thread
//! solicits unresolved ones with ARP requests sent on its own TX queue; the workers glean
//! the answers (and the senders of traffic) and report them; the control thread folds the
//! reports into the next published forwarding state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use hashbrown::HashMap;

use crate::lb::forwarding::{Forwarding, InterfaceId};
use crate::wire::{
    ArpOperation, ArpPacket, EtherType, EthernetFrame, Icmpv6Packet, Icmpv6Type, IpProtocol,
    MacAddr,
};

/// How often an unresolved neighbour is asked again.
const RETRY: Duration = Duration::from_millis(500);

/// Neighbours known to the control thread, and when each unresolved one was last asked.
#[derive(Debug, Default)]
pub struct Neighbours {
    pub known: HashMap<IpAddr, MacAddr>,
    asked: HashMap<IpAddr, Instant>,
}

impl Neighbours {
    /// Records a report; true when it changed what is known.
    pub fn learn(&mut self, addr: IpAddr, mac: MacAddr) -> bool {
        if !mac.is_unicast() {
            return false;
        }
        self.asked.remove(&addr);
        self.known.insert(addr, mac) != Some(mac)
    }

    /// ARP requests (IPv4) and neighbour solicitations (IPv6) due for unresolved next
    /// hops: (interface, frame).
    pub fn solicitations(&mut self, fwd: &Forwarding, now: Instant) -> Vec<(InterfaceId, Vec<u8>)> {
        let mut out = Vec::new();
        for (ifc, addr) in fwd.unresolved() {
            if self.known.contains_key(&addr) {
                continue;
            }
            if self
                .asked
                .get(&addr)
                .is_some_and(|t| now.duration_since(*t) < RETRY)
            {
                continue;
            }
            let Some(interface) = fwd.interfaces.get(ifc as usize) else {
                continue;
            };
            let frame = match addr {
                IpAddr::V4(target) => own_v4_on_link(&interface.addresses, target)
                    .map(|src| arp_request(interface.mac, src, target).to_vec()),
                IpAddr::V6(target) => own_v6_on_link(&interface.addresses, target)
                    .map(|src| neighbour_solicitation(interface.mac, src, target)),
            };
            if let Some(frame) = frame {
                self.asked.insert(addr, now);
                out.push((ifc, frame));
            }
        }
        out
    }
}

/// The interface's own IPv6 address on the target's subnet.
fn own_v6_on_link(addresses: &[ipnet::IpNet], target: Ipv6Addr) -> Option<Ipv6Addr> {
    addresses.iter().find_map(|n| match n {
        ipnet::IpNet::V6(n) if n.contains(&target) => Some(n.addr()),
        _ => None,
    })
}

/// A neighbour solicitation (RFC 4861 §4.3) from `mac`/`src` for `target`, sent to the
/// target's solicited-node multicast group, with the source link-layer address option.
fn neighbour_solicitation(mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let mut message = vec![Icmpv6Type::NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    message.extend_from_slice(&t);
    message.extend_from_slice(&[1, 1]);
    message.extend_from_slice(mac.as_bytes());
    let mut frame = vec![0u8; 14 + 40 + message.len()];
    frame[0..6].copy_from_slice(&[0x33, 0x33, 0xff, t[13], t[14], t[15]]);
    frame[6..12].copy_from_slice(mac.as_bytes());
    frame[12..14].copy_from_slice(&EtherType::IPV6.to_be_bytes());
    let ip = &mut frame[14..54];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&(message.len() as u16).to_be_bytes());
    ip[6] = IpProtocol::ICMPV6;
    ip[7] = 255;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&group.octets());
    frame[54..].copy_from_slice(&message);
    if let Ok(mut icmp) = Icmpv6Packet::new_checked(&mut frame[54..]) {
        icmp.fill_checksum(src, group);
    }
    frame
}

/// The interface's own IPv4 address on the target's subnet (else its first IPv4 address).
fn own_v4_on_link(addresses: &[ipnet::IpNet], target: Ipv4Addr) -> Option<Ipv4Addr> {
    let v4 = addresses.iter().filter_map(|n| match n {
        ipnet::IpNet::V4(n) => Some(*n),
        _ => None,
    });
    let all: Vec<_> = v4.collect();
    all.iter()
        .find(|n| n.contains(&target))
        .or(all.first())
        .map(|n| n.addr())
}

/// A broadcast ARP request from `mac`/`src` asking for `target`.
fn arp_request(mac: MacAddr, src: Ipv4Addr, target: Ipv4Addr) -> [u8; 42] {
    let mut frame = [0u8; 42];
    frame[12..14].copy_from_slice(&EtherType::ARP.to_be_bytes());
    // Hardware Ethernet (1), protocol IPv4, lengths 6 and 4: the fixed part of the header.
    frame[14..20].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
    if let Ok(mut eth) = EthernetFrame::new_checked(&mut frame[..]) {
        eth.set_dst(MacAddr::BROADCAST);
        eth.set_src(mac);
    }
    if let Ok(mut arp) = ArpPacket::new_checked(&mut frame[14..]) {
        arp.set_operation(ArpOperation::REQUEST);
        arp.set_sender_mac(mac);
        arp.set_sender_ip(src);
        arp.set_target_mac(MacAddr::ZERO);
        arp.set_target_ip(target);
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbour_solicitation_parses_back_with_a_valid_checksum() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let (src, target): (Ipv6Addr, Ipv6Addr) =
            ("fd00::2".parse().unwrap(), "fd00::11".parse().unwrap());
        let f = neighbour_solicitation(mac, src, target);
        let h = crate::wire::parse_headers(&f).unwrap();
        assert_eq!(h.dst, "ff02::1:ff00:11".parse::<IpAddr>().unwrap());
        let icmp = Icmpv6Packet::new_checked(&f[54..]).unwrap();
        assert_eq!(icmp.ns_target(), Some(target));
        assert_eq!(icmp.ns_source_mac(), Some(mac));
        assert!(icmp.verify_checksum(src, "ff02::1:ff00:11".parse().unwrap()));
        assert!(EthernetFrame::new_checked(&f[..])
            .unwrap()
            .dst()
            .is_multicast());
    }

    #[test]
    fn arp_request_parses_back() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let f = arp_request(mac, Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 11));
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.dst(), MacAddr::BROADCAST);
        assert_eq!(eth.ethertype(), EtherType::ARP);
        let arp = ArpPacket::new_checked(&f[14..]).unwrap();
        assert_eq!(arp.operation(), ArpOperation::REQUEST);
        assert_eq!(arp.sender_mac(), mac);
        assert_eq!(arp.target_ip(), Ipv4Addr::new(10, 0, 0, 11));
    }
}
