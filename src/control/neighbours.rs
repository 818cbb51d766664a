//! Neighbour resolution for next hops (backends, gateways, clients): the control thread
//! solicits unresolved ones with ARP requests sent on its own TX queue; the workers glean
//! the answers (and the senders of traffic) and report them; the control thread folds the
//! reports into the next published forwarding state.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use hashbrown::HashMap;

use crate::lb::forwarding::{Forwarding, InterfaceId};
use crate::wire::{ArpOperation, ArpPacket, EtherType, EthernetFrame, MacAddr};

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

    /// ARP requests due for unresolved IPv4 next hops: (interface, frame).
    pub fn solicitations(
        &mut self,
        fwd: &Forwarding,
        now: Instant,
    ) -> Vec<(InterfaceId, [u8; 42])> {
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
            let IpAddr::V4(target) = addr else { continue };
            let Some(interface) = fwd.interfaces.get(ifc as usize) else {
                continue;
            };
            let Some(src) = own_v4_on_link(&interface.addresses, target) else {
                continue;
            };
            self.asked.insert(addr, now);
            out.push((ifc, arp_request(interface.mac, src, target)));
        }
        out
    }
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
