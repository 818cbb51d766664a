//! The frames the control thread asks its neighbours with: ARP requests and neighbour
//! solicitations, to the segment (broadcast, the solicited-node group) or, to verify a
//! neighbour it knows, to the neighbour's own MAC (RFC 4861 §7.3.3, RFC 1122 §2.3.2.1).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::lb::forwarding::{Forwarding, InterfaceId};
use crate::wire::{
    solicited_node, ArpOperation, ArpRepr, EtherType, EthernetRepr, IcmpMessage, Icmpv6Packet,
    IpProtocol, Ipv6Repr, MacAddr,
};

/// An ARP request (IPv4) or neighbour solicitation (IPv6) for `addr` out of `ifc`, from the
/// interface's own address on its subnet: to the segment, or to `at`, the MAC the neighbour
/// was known at (a unicast probe, which a switch delivers whatever it thinks of multicast).
pub(super) fn solicitation(
    fwd: &Forwarding,
    ifc: InterfaceId,
    addr: IpAddr,
    at: Option<MacAddr>,
) -> Option<Vec<u8>> {
    let interface = fwd.interfaces.get(ifc as usize)?;
    match addr {
        IpAddr::V4(target) => own_v4_on_link(&interface.addresses, target).map(|src| {
            let mut frame = arp_request(interface.mac, src, target);
            if let Some(mac) = at {
                frame[..6].copy_from_slice(&mac.0);
            }
            frame.to_vec()
        }),
        IpAddr::V6(target) => own_v6_on_link(&interface.addresses, target)
            .map(|src| solicitation_to(interface.mac, src, target, at)),
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
#[cfg(test)]
pub(super) fn neighbour_solicitation(mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    solicitation_to(mac, src, target, None)
}

/// [`neighbour_solicitation`], or, to `at`, unicast to `target` at that MAC.
pub(super) fn solicitation_to(
    mac: MacAddr,
    src: Ipv6Addr,
    target: Ipv6Addr,
    at: Option<MacAddr>,
) -> Vec<u8> {
    let group = solicited_node(target);
    let t = group.octets();
    let (dst, dst_mac) = match at {
        Some(at) => (target, at),
        None => (group, MacAddr([0x33, 0x33, 0xff, t[13], t[14], t[15]])),
    };
    let message = IcmpMessage::NeighborSolicit {
        target,
        source_mac: mac,
    };
    let ip = Ipv6Repr {
        src,
        dst,
        next_header: IpProtocol::ICMPV6,
        hop_limit: 255,
        payload_len: message.len(),
    };
    let eth = EthernetRepr {
        dst: dst_mac,
        src: mac,
        ethertype: EtherType::IPV6,
    };
    let mut frame = vec![0u8; EthernetRepr::LEN + Ipv6Repr::LEN + message.len()];
    let (l2, rest) = frame.split_at_mut(EthernetRepr::LEN);
    let (l3, l4) = rest.split_at_mut(Ipv6Repr::LEN);
    // The buffers are sized for them: these cannot fail.
    let written = eth.emit(l2).and(ip.emit(l3)).and(message.emit(l4));
    debug_assert!(written.is_ok());
    if let Ok(mut icmp) = Icmpv6Packet::new_checked(l4) {
        icmp.fill_checksum(src, dst);
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
pub(super) fn arp_request(mac: MacAddr, src: Ipv4Addr, target: Ipv4Addr) -> [u8; 42] {
    let mut frame = [0u8; EthernetRepr::LEN + ArpRepr::LEN];
    let (l2, arp) = frame.split_at_mut(EthernetRepr::LEN);
    let eth = EthernetRepr {
        dst: MacAddr::BROADCAST,
        src: mac,
        ethertype: EtherType::ARP,
    };
    let request = ArpRepr {
        operation: ArpOperation::REQUEST,
        sender_mac: mac,
        sender_ip: src,
        target_mac: MacAddr::ZERO,
        target_ip: target,
    };
    // The buffer is sized for them: these cannot fail.
    let written = eth.emit(l2).and(request.emit(arp));
    debug_assert!(written.is_ok());
    frame
}
