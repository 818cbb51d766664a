//! What a kernel twin may send out of its port. The twin's kernel is the host's: a process
//! on the host may write any frame to it (a raw socket, a tunnel or container route through
//! it), and the host's routing may carry another interface's traffic onto it. What leaves
//! must be the appliance's own: from the interface's addresses (or, in IPv6, a link-local or
//! the unspecified address, which neighbour discovery and MLD use), and never a router's
//! message (a redirect, a router advertisement), which would speak for a segment the twin
//! does not route.

use std::net::IpAddr;

use crate::config::Interface;
use crate::lb::verdict::DropReason;
use crate::wire::{
    is_unicast_link_local, parse_headers, ArpPacket, EtherType, EthernetFrame, IcmpType,
    Icmpv6Type, IpProtocol,
};

/// Whether the twin's `frame` may leave by its interface: `MartianSource` for an IP packet
/// or ARP message whose source (sender) address is none of the appliance's interfaces' (the
/// host routes as a weak host: a reply from one interface's address may leave by another's
/// twin), `Unsupported` for ICMP redirects and router discovery (solicitations and
/// advertisements, ICMP's and ICMPv6's), which the twin's kernel (forwarding nothing,
/// learning no route) has no reason to send. Other frames (LLDP, …) go. An IP packet the
/// parser refuses (a routing header, a long chain of extension headers) is judged by its
/// source address alone.
pub(super) fn may_leave(frame: &[u8], interfaces: &[Interface]) -> Result<(), DropReason> {
    let is_own = |a: IpAddr| {
        interfaces
            .iter()
            .flat_map(|i| &i.address)
            .any(|n| n.addr() == a)
    };
    let from_own = |a: IpAddr| match a {
        IpAddr::V6(v6) => v6.is_unspecified() || is_unicast_link_local(a) || is_own(a),
        IpAddr::V4(_) => is_own(a),
    };
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Err(DropReason::Truncated);
    };
    let l3 = eth.header_len();
    match eth.ethertype() {
        EtherType::ARP => {
            let arp = ArpPacket::new_checked(&frame[l3..])?;
            // An ARP probe (RFC 5227) names no sender yet.
            let sender = arp.sender_ip();
            if sender.is_unspecified() || is_own(IpAddr::V4(sender)) {
                Ok(())
            } else {
                Err(DropReason::MartianSource)
            }
        }
        EtherType::IPV4 | EtherType::IPV6 => {
            let Ok(h) = parse_headers(frame) else {
                return match source(frame, l3, eth.ethertype()) {
                    Some(src) if from_own(src) => Ok(()),
                    Some(_) => Err(DropReason::MartianSource),
                    None => Err(DropReason::Truncated),
                };
            };
            if !from_own(h.src) {
                return Err(DropReason::MartianSource);
            }
            let first = !h.fragment || h.fragment_id(frame).is_ok_and(|(_, at)| at == 0);
            let kind = frame.get(usize::from(h.l4_offset)).copied();
            let router_message = first
                && match (h.proto, kind) {
                    (IpProtocol::ICMP, Some(t)) => {
                        h.ethertype == EtherType::IPV4
                            && matches!(
                                t,
                                IcmpType::REDIRECT
                                    | IcmpType::ROUTER_ADVERT
                                    | IcmpType::ROUTER_SOLICIT
                            )
                    }
                    (IpProtocol::ICMPV6, Some(t)) => {
                        matches!(
                            t,
                            Icmpv6Type::ROUTER_SOLICIT
                                | Icmpv6Type::ROUTER_ADVERT
                                | Icmpv6Type::REDIRECT
                        )
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

/// The source address at its fixed offset in the IP header at `l3`.
fn source(frame: &[u8], l3: usize, ethertype: u16) -> Option<IpAddr> {
    if ethertype == EtherType::IPV4 {
        let b: [u8; 4] = frame.get(l3 + 12..l3 + 16)?.try_into().ok()?;
        Some(IpAddr::from(b))
    } else {
        let b: [u8; 16] = frame.get(l3 + 8..l3 + 24)?.try_into().ok()?;
        Some(IpAddr::from(b))
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

    /// Two interfaces: lan (10.0.0.2, fd00::2) and wan (192.0.2.2).
    fn own() -> Vec<Interface> {
        let cfg = crate::config::Config::from_toml(crate::config::testdata::MINIMAL, "t").unwrap();
        let mut lan = cfg.interface[0].clone();
        lan.address = vec![
            "10.0.0.2/24".parse().unwrap(),
            "fd00::2/64".parse().unwrap(),
        ];
        let mut wan = lan.clone();
        (wan.name, wan.address) = ("wan".into(), vec!["192.0.2.2/24".parse().unwrap()]);
        vec![lan, wan]
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
        assert_eq!(
            may_leave(&from("192.0.2.2"), &own),
            Ok(()),
            "another interface's own (the host routes as a weak host)"
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
        let icmp4 = |t: u8| {
            let (src, dst) = ("10.0.0.2".parse().unwrap(), "10.0.0.11".parse().unwrap());
            eth(
                EtherType::IPV4,
                &ipv4(src, dst, IpProtocol::ICMP, &[t, 0, 0, 0, 0, 0, 0, 0]),
            )
        };
        for t in [5, 9, 10] {
            assert_eq!(
                may_leave(&icmp4(t), &own),
                Err(DropReason::Unsupported),
                "type {t}"
            );
        }
        assert_eq!(may_leave(&icmp4(8), &own), Ok(()), "an echo request");
        // A routing header the parser refuses: judged by its source.
        let routed = |src: &str| {
            let all_nodes = "ff02::1".parse().unwrap();
            let header = [IpProtocol::UDP, 2, 0, 1, 0, 0, 0, 0];
            let mut rh = header.to_vec();
            rh.extend_from_slice(&[0; 16]);
            eth(
                EtherType::IPV6,
                &ipv6(src.parse().unwrap(), all_nodes, 43, &rh),
            )
        };
        assert!(parse_headers(&routed("fd00::2")).is_err());
        assert_eq!(may_leave(&routed("fd00::2"), &own), Ok(()));
        assert_eq!(
            may_leave(&routed("fd00::9"), &own),
            Err(DropReason::MartianSource)
        );
        for t in [133, 134, 137] {
            assert_eq!(
                may_leave(&icmp6("fe80::1", t), &own),
                Err(DropReason::Unsupported),
                "type {t}"
            );
        }
    }
}
