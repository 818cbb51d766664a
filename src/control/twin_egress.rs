//! What a kernel twin may send out of its port. The twin's kernel is the host's: a process
//! on the host may write any frame to it (a raw socket, a tunnel or container route through
//! it), and the host's routing may carry another interface's traffic onto it. What leaves
//! must be the appliance's own: from the interface's addresses (or, in IPv6, a link-local or
//! the unspecified address, which neighbour discovery and MLD use), and never a router's
//! message (a redirect, a router advertisement), which would speak for a segment the twin
//! does not route.

use ipnet::IpNet;
use std::net::IpAddr;

use crate::lb::verdict::DropReason;
use crate::wire::{
    is_unicast_link_local, parse_headers, ArpPacket, EtherType, EthernetFrame, IcmpType,
    Icmpv6Type, IpProtocol,
};

/// Whether the twin's `frame` may leave by the interface whose own addresses are `own`:
/// `MartianSource` for an IP packet or ARP message whose source (sender) address is none of
/// the interface's, `Unsupported` for ICMP redirects and IPv6 router advertisements, which
/// the twin's kernel (forwarding nothing) has no reason to send. Other frames (LLDP, …) go.
pub(super) fn may_leave(frame: &[u8], own: &[IpNet]) -> Result<(), DropReason> {
    let is_own = |a: IpAddr| own.iter().any(|n| n.addr() == a);
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Err(DropReason::Truncated);
    };
    match eth.ethertype() {
        EtherType::ARP => {
            let arp = ArpPacket::new_checked(&frame[eth.header_len()..])?;
            // An ARP probe (RFC 5227) names no sender yet.
            let sender = arp.sender_ip();
            if sender.is_unspecified() || is_own(IpAddr::V4(sender)) {
                Ok(())
            } else {
                Err(DropReason::MartianSource)
            }
        }
        EtherType::IPV4 | EtherType::IPV6 => {
            let h = parse_headers(frame)?;
            let from_own = is_own(h.src)
                || matches!(h.src, IpAddr::V6(a) if a.is_unspecified())
                || is_unicast_link_local(h.src);
            if !from_own {
                return Err(DropReason::MartianSource);
            }
            let first = !h.fragment || h.fragment_id(frame).is_ok_and(|(_, at)| at == 0);
            let kind = frame.get(usize::from(h.l4_offset)).copied();
            let router_message = first
                && match (h.proto, kind) {
                    (IpProtocol::ICMP, Some(t)) => {
                        h.ethertype == EtherType::IPV4 && t == IcmpType::REDIRECT
                    }
                    (IpProtocol::ICMPV6, Some(t)) => {
                        t == Icmpv6Type::ROUTER_ADVERT || t == Icmpv6Type::REDIRECT
                    }
                    _ => false,
                };
            if router_message {
                Err(DropReason::Unsupported)
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{eth, ipv4, ipv6, udp};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ipv4_udp_frame(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let datagram = udp(src, dst, 5000, 9999, b"x");
        eth(EtherType::IPV4, &ipv4(src, dst, IpProtocol::UDP, &datagram))
    }

    /// An ARP request from `sender` for `target`.
    fn arp_frame(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2];
        a.extend_from_slice(&sender.octets());
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&target.octets());
        eth(EtherType::ARP, &a)
    }

    /// An ICMPv6 message of type `t` from `src` to all nodes (its checksum is not read).
    fn ipv6_icmp_frame(src: Ipv6Addr, t: u8) -> Vec<u8> {
        let all_nodes = "ff02::1".parse().unwrap();
        let message = [t, 0, 0, 0, 0, 0, 0, 0];
        eth(
            EtherType::IPV6,
            &ipv6(src, all_nodes, IpProtocol::ICMPV6, &message),
        )
    }

    fn own() -> Vec<IpNet> {
        ["10.0.0.2/24", "fd00::2/64"]
            .map(|n| n.parse().unwrap())
            .to_vec()
    }

    #[test]
    fn only_the_interfaces_own_traffic_leaves() {
        let own = own();
        let from = |src: &str| ipv4_udp_frame(src.parse().unwrap(), "10.0.0.11".parse().unwrap());
        assert_eq!(may_leave(&from("10.0.0.2"), &own), Ok(()));
        assert_eq!(
            may_leave(&from("10.0.0.77"), &own),
            Err(DropReason::MartianSource),
            "a spoofed or forwarded source"
        );
        assert_eq!(
            may_leave(&from("192.168.1.5"), &own),
            Err(DropReason::MartianSource),
            "the host's other interface's"
        );
        let arp = |sender: &str| arp_frame(sender.parse().unwrap(), "10.0.0.11".parse().unwrap());
        assert_eq!(may_leave(&arp("10.0.0.2"), &own), Ok(()));
        assert_eq!(may_leave(&arp("0.0.0.0"), &own), Ok(()), "a probe");
        assert_eq!(
            may_leave(&arp("10.0.0.77"), &own),
            Err(DropReason::MartianSource)
        );
        let icmp6 = |src: &str, t: u8| ipv6_icmp_frame(src.parse().unwrap(), t);
        for src in ["fd00::2", "fe80::1", "::"] {
            assert_eq!(may_leave(&icmp6(src, 135), &own), Ok(()), "{src}");
        }
        assert_eq!(
            may_leave(&icmp6("fd00::9", 135), &own),
            Err(DropReason::MartianSource)
        );
        for t in [134, 137] {
            assert_eq!(
                may_leave(&icmp6("fe80::1", t), &own),
                Err(DropReason::Unsupported),
                "type {t}"
            );
        }
    }
}
