//! What the appliance answers itself: ARP and IPv6 neighbour solicitations for its frontends
//! (with each frontend's own MAC), and pings to them. Every answer is built in place in the
//! received frame and leaves by the interface it came in on. Nothing is learnt here: what
//! may answer the appliance's own solicitations, and what merely claims an address, is
//! reported to the control thread, which alone keeps the neighbour cache.

use std::net::{IpAddr, Ipv6Addr};

use super::action::Action;
use super::ctx::{to_kernel, Ctx};
use super::exception::KernelShare;
use crate::lb::forwarding::{Forwarding, InterfaceId};
use crate::lb::verdict::DropReason;
use crate::wire::{
    solicited_node, ArpOperation, ArpPacket, EtherType, EthernetFrame, Headers, IcmpPacket,
    IcmpType, Icmpv6Packet, Icmpv6Type, IpProtocol, Ipv4Packet, Ipv6Packet, MacAddr,
    NDP_OPT_SOURCE_LLADDR, NDP_OPT_TARGET_LLADDR,
};

/// ARP: answer for frontends, hand the interface's own addresses to the kernel, report what
/// was heard: a reply to an own address, sent to this interface by the host it names, as a
/// possible answer; any other sender as a hint.
pub(super) fn arp(
    frame: &mut [u8],
    l3: usize,
    ingress: InterfaceId,
    our_mac: MacAddr,
    cx: &mut Ctx,
) -> Result<Action, DropReason> {
    let fwd = cx.fwd;
    let (sender_ip, sender_mac, target) = {
        let arp = ArpPacket::new_checked(frame.get(l3..).ok_or(DropReason::Truncated)?)?;
        (
            IpAddr::V4(arp.sender_ip()),
            arp.sender_mac(),
            IpAddr::V4(arp.target_ip()),
        )
    };
    let frontend = fwd.frontend(target);
    // Only this interface's own addresses: the twin, left to itself, would answer for any of
    // the appliance's (Linux's weak-host default), placing another segment's address here.
    let for_us = fwd.own_address(target) == Some(ingress);
    if frontend.is_none() && !for_us {
        // Not for the appliance, but perhaps news of a neighbour: a gratuitous ARP (its own
        // address as target), or a request to another host, from another MAC than known.
        let (now, neighbours) = (cx.now_ms, &mut cx.st.neighbours);
        neighbours.hint(fwd, ingress, (sender_ip, sender_mac), now);
        return Err(DropReason::NotForUs);
    }
    // A sender's hardware address is its own, unicast: an answer to a group or zero address
    // would flood the segment, and no neighbour may be learnt from one.
    if !sender_mac.is_unicast() {
        return Err(DropReason::Malformed);
    }
    let unicast_to_us = frame.get(0..6) == Some(our_mac.as_bytes().as_slice());
    let sent_by_sender = frame.get(6..12) == Some(sender_mac.as_bytes().as_slice());
    let is_reply = ArpPacket::new_checked(&frame[l3..])?.operation() == ArpOperation::REPLY;
    if for_us && is_reply && unicast_to_us && sent_by_sender && sender_ip != target {
        let now = cx.now_ms;
        cx.st
            .neighbours
            .answer(fwd, ingress, (sender_ip, sender_mac), now);
    } else {
        let now = cx.now_ms;
        cx.st
            .neighbours
            .hint(fwd, ingress, (sender_ip, sender_mac), now);
    }
    if for_us {
        // Linux learns a sender from any ARP packet for its address: not one that places
        // an address the appliance verified at another MAC (the hint above has it checked).
        if contradicts_a_neighbour(fwd, sender_ip, sender_mac) {
            return Err(DropReason::NeighbourConflict);
        }
        // Probe answers' budget only for a frame the backend sent, by its own MAC: anyone may
        // write a backend's addresses into an ARP packet.
        let from_backend = sent_by_sender && fwd.from_backend_side(sender_ip, ingress, sender_mac);
        let share = if from_backend {
            KernelShare::Backends
        } else {
            KernelShare::Neighbours
        };
        return to_kernel(ingress, share, cx);
    }
    let mut arp = ArpPacket::new_checked(&mut frame[l3..])?;
    if arp.operation() != ArpOperation::REQUEST {
        return Err(DropReason::Unsupported);
    }
    // Answered with the frontend's own MAC: frames routed through it will say so.
    let mac = frontend.map_or(our_mac, |fe| fwd.frontends[fe as usize].mac);
    arp.make_reply_in_place(mac);
    let mut eth = EthernetFrame::new_checked(&mut *frame)?;
    eth.set_dst(sender_mac);
    eth.set_src(mac);
    Ok(Action::Transmit {
        interface: ingress,
        backend: None,
    })
}

/// IPv6 neighbour discovery for a frontend (ARP's counterpart): a solicitation for a
/// frontend address is answered with an advertisement of the frontend's own MAC, out of the
/// interface it came in on, to the MAC it came from (a unicast solicitation may name no
/// link-layer address of its sender; a multicast one must). Advertisements and solicitations
/// are reported (RFC 4861 §7.1.2: only with hop limit 255 and a valid checksum): a solicited
/// advertisement to an own address as a possible answer, anything else as a hint. `None`:
/// not a solicitation for a frontend (the appliance's own addresses are the kernel twin's to
/// answer).
///
/// Neighbour discovery in fragments is dropped as `Unsupported`, neither answered, reported
/// nor handed on (RFC 6980 §5): no honest sender fragments it, and fragments are how a
/// forged message hides from inspection on the segment (RA-Guard, ND snooping).
pub(super) fn neighbour_solicitation(
    frame: &mut [u8],
    h: &Headers,
    ingress: InterfaceId,
    src_mac: MacAddr,
    cx: &mut Ctx,
) -> Result<Option<Action>, DropReason> {
    if fragmented_neighbour_discovery(frame, h)? {
        return Err(DropReason::Unsupported);
    }
    // Any other fragment holds no neighbour discovery: a later one's data, whatever it looks
    // like (read as a message, a forged advertisement in it would pass switches' ND guards,
    // which let later fragments by, and be learnt).
    if h.fragment {
        return Ok(None);
    }
    let fwd = cx.fwd;
    let (l3, l4) = (usize::from(h.l3_offset), usize::from(h.l4_offset));
    // The message up to the IPv6 payload's end (anything after it is the frame's trailer).
    let end = l3 + 40 + Ipv6Packet::new_checked(&frame[l3..])?.payload_len();
    let (target, sender_mac, names_a_sender) = {
        let Some(Ok(icmp)) = frame.get(l4..end).map(Icmpv6Packet::new_checked) else {
            return Ok(None);
        };
        let (IpAddr::V6(src), IpAddr::V6(dst)) = (h.src, h.dst) else {
            return Ok(None);
        };
        let valid =
            frame.get(l3 + 7) == Some(&255) && icmp.code() == 0 && icmp.verify_checksum(src, dst);
        if let Some((target, mac)) = icmp.na_target_mac().filter(|_| valid) {
            // Another host answering for a frontend (configured with its address by mistake,
            // or a spoofer): counted, neither learnt nor handed to the twin. (The appliance's
            // own defence, looped back by some PMDs, names the frontend's MAC.)
            let frontend = fwd.frontend(IpAddr::V6(target));
            if frontend.is_some_and(|fe| fwd.frontends[fe as usize].mac != mac) {
                return Err(DropReason::NeighbourConflict);
            }
            // Then the kernel's too, when it is for an own address.
            let to_us = fwd.own_address(h.dst) == Some(ingress);
            let (now, neighbours) = (cx.now_ms, &mut cx.st.neighbours);
            if to_us && icmp.na_solicited() {
                neighbours.answer(fwd, ingress, (IpAddr::V6(target), mac), now);
            } else {
                neighbours.hint(fwd, ingress, (IpAddr::V6(target), mac), now);
            }
            return Ok(None);
        }
        if !valid {
            return Ok(None);
        }
        let Some(target) = icmp.ns_target() else {
            return Ok(None);
        };
        // Whatever its target (a frontend, an own address, another host), a solicitation
        // names its sender's MAC: news where it contradicts a verified neighbour (then asked
        // again), in any of its source options, as the twin's guard reads them; none from
        // options malformed.
        let sender_mac = icmp.ns_source_mac();
        if !src.is_unspecified() && sender_mac.is_ok() {
            let now = cx.now_ms;
            for mac in icmp.nd_link_layer_macs(NDP_OPT_SOURCE_LLADDR) {
                cx.st.neighbours.hint(fwd, ingress, (h.src, mac), now);
            }
        }
        let names_a_sender = icmp.nd_has_option(NDP_OPT_SOURCE_LLADDR);
        (target, sender_mac, names_a_sender)
    };
    let IpAddr::V6(asker) = h.src else {
        return Ok(None);
    };
    let Some(fe) = fwd.frontend(IpAddr::V6(target)) else {
        return Ok(None);
    };
    // Options of length 0, or running past the message: discarded (RFC 4861 §7.1.1).
    let sender_mac = sender_mac?;
    // A group source address at layer 2 is no sender to answer.
    if src_mac.is_multicast() {
        return Err(DropReason::Malformed);
    }
    // Duplicate-address detection (from ::) of a frontend's address: another host about to
    // take it. The appliance owns it and defends it (RFC 4862 §5.4.3): an advertisement to
    // all nodes, not solicited (RFC 4861 §7.2.4), which makes the other host give the address
    // up rather than answer for the frontend. Valid only to the target's solicited-node
    // group and without the sender's link-layer address (§7.1.1).
    let dad = asker.is_unspecified();
    if dad && (h.dst != IpAddr::V6(solicited_node(target)) || names_a_sender) {
        return Err(DropReason::Malformed);
    }
    // Each defence goes to every node on the segment (where a switch sends the probe to the
    // appliance alone): at a bounded rate, or forged probes would have it flood the segment.
    if dad && !cx.st.defences.take(cx.now_ms, DEFENCES_PER_SECOND) {
        return Err(DropReason::NeighbourConflict);
    }
    // A multicast solicitation must name its sender's link-layer address (RFC 4861 §4.3); a
    // unicast one, a neighbour checking that the frontend is still there, may leave it out,
    // and is answered to the MAC it came from.
    if !dad && sender_mac.is_none() && h.dst.is_multicast() {
        return Err(DropReason::Malformed);
    }
    let (asker, asker_mac) = if dad {
        (ALL_NODES, MacAddr([0x33, 0x33, 0, 0, 0, 1]))
    } else {
        (asker, src_mac)
    };
    let mac = fwd.frontends[fe as usize].mac;
    // The advertisement alone, right behind the IPv6 header: the solicitation's extension
    // headers were for it, not for the answer (an authentication header would be false on
    // it; one in a fragment never gets here). What the solicitation had beyond the
    // advertisement's 32 bytes (24 without options; its further options) is left behind it,
    // a trailer after the packet.
    let at = l3 + 40;
    let behind = l4.checked_sub(at).ok_or(DropReason::Malformed)?;
    let region = frame
        .get_mut(at..end.min(l4 + 32))
        .ok_or(DropReason::Truncated)?;
    let len = Icmpv6Packet::new_checked(&mut region[behind..])?
        .make_neighbour_advert_in_place(mac, !dad)?;
    region.copy_within(behind..behind + len, 0);
    let mut ip = Ipv6Packet::new_checked(&mut frame[l3..])?;
    ip.set_next_header(IpProtocol::ICMPV6);
    ip.set_src(target);
    ip.set_dst(asker);
    ip.set_hop_limit(255);
    ip.shorten_payload(len);
    Icmpv6Packet::new_checked(&mut frame[at..at + len])?.fill_checksum(target, asker);
    let mut eth = EthernetFrame::new_checked(&mut *frame)?;
    eth.set_dst(asker_mac);
    eth.set_src(mac);
    Ok(Some(Action::Transmit {
        interface: ingress,
        backend: None,
    }))
}

/// Whether `h` is an IPv6 packet with a fragment header whose ICMPv6 message is neighbour
/// discovery (types 133 to 137, RFC 4861). Only a fragment at offset 0 holds the message's
/// type; a later one starts with data, whatever its first byte.
fn fragmented_neighbour_discovery(frame: &[u8], h: &Headers) -> Result<bool, DropReason> {
    if !h.fragment || h.proto != IpProtocol::ICMPV6 || !matches!(h.dst, IpAddr::V6(_)) {
        return Ok(false);
    }
    let (_, offset) = h.fragment_id(frame)?;
    Ok(offset == 0
        && frame
            .get(usize::from(h.l4_offset))
            .is_some_and(|t| (133..=137).contains(t)))
}

/// What of a packet for the kernel twin the twin must not take: router solicitations and
/// advertisements and redirects, ICMPv4's too (its routes are the config's, and it routes
/// for no one: an advertisement would give it a default route, a redirect another gateway
/// to a backend); and a neighbour solicitation or advertisement that places an address the
/// appliance verified at another MAC (Linux learns from either: its probes would go there).
pub(super) fn kept_from_the_twin(
    frame: &[u8],
    h: &Headers,
    fwd: &Forwarding,
) -> Result<(), DropReason> {
    let l4 = usize::from(h.l4_offset);
    // A later fragment starts with data, whatever its first byte.
    if h.fragment && h.fragment_id(frame).map_or(true, |(_, offset)| offset != 0) {
        return Ok(());
    }
    match (h.src, h.proto) {
        (IpAddr::V4(_), IpProtocol::ICMP)
            if frame.get(l4).is_some_and(|&t| {
                matches!(
                    t,
                    IcmpType::REDIRECT | IcmpType::ROUTER_ADVERT | IcmpType::ROUTER_SOLICIT
                )
            }) =>
        {
            Err(DropReason::Unsupported)
        }
        (IpAddr::V6(src), IpProtocol::ICMPV6) => {
            let l3 = usize::from(h.l3_offset);
            let end = l3 + 40 + Ipv6Packet::new_checked(&frame[l3..])?.payload_len();
            let Some(Ok(icmp)) = frame.get(l4..end).map(Icmpv6Packet::new_checked) else {
                return Ok(());
            };
            let (addr, option) = match icmp.msg_type() {
                Icmpv6Type::ROUTER_SOLICIT | Icmpv6Type::ROUTER_ADVERT | Icmpv6Type::REDIRECT => {
                    return Err(DropReason::Unsupported)
                }
                Icmpv6Type::NEIGHBOR_SOLICIT => (src, NDP_OPT_SOURCE_LLADDR),
                Icmpv6Type::NEIGHBOR_ADVERT => match icmp.payload().get(..16) {
                    Some(target) => (
                        <[u8; 16]>::try_from(target).map_or(src, Into::into),
                        NDP_OPT_TARGET_LLADDR,
                    ),
                    None => return Ok(()),
                },
                _ => return Ok(()),
            };
            let mut claims = icmp.nd_link_layer_macs(option);
            if claims.any(|mac| contradicts_a_neighbour(fwd, IpAddr::V6(addr), mac)) {
                return Err(DropReason::NeighbourConflict);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether `addr` is a neighbour the appliance verified, or a backend whose `mac` the config
/// gives, at another MAC than `mac`.
fn contradicts_a_neighbour(fwd: &Forwarding, addr: IpAddr, mac: MacAddr) -> bool {
    fwd.known_mac(addr).is_some_and(|known| known != mac)
}

/// Whether the packet is a ping: an ICMP echo request in IPv4, an ICMPv6 one in IPv6 (the
/// other version's protocol number is a protocol like any other, balanced).
pub(super) fn is_echo_request(frame: &[u8], h: &Headers) -> bool {
    let Some(msg) = frame.get(usize::from(h.l4_offset)..) else {
        return false;
    };
    match (h.proto, h.ethertype) {
        (IpProtocol::ICMP, EtherType::IPV4) => IcmpPacket::new_checked(msg)
            .is_ok_and(|m| m.msg_type() == IcmpType::ECHO_REQUEST && m.code() == 0),
        (IpProtocol::ICMPV6, EtherType::IPV6) => Icmpv6Packet::new_checked(msg)
            .is_ok_and(|m| m.msg_type() == Icmpv6Type::ECHO_REQUEST && m.code() == 0),
        _ => false,
    }
}

/// Answers a ping to a frontend in place, out of the interface it came in on.
pub(super) fn echo_reply(
    frame: &mut [u8],
    h: &Headers,
    ingress: InterfaceId,
) -> Result<Action, DropReason> {
    let l3 = usize::from(h.l3_offset);
    let l4 = usize::from(h.l4_offset);
    if h.proto == IpProtocol::ICMP {
        IcmpPacket::new_checked(&mut frame[l4..])?.make_echo_reply_in_place();
        let mut ip = Ipv4Packet::new_checked(&mut frame[l3..])?;
        ip.swap_src_dst();
        ip.set_ttl(64);
        ip.fill_checksum();
    } else {
        // Swapping the addresses leaves the ICMPv6 pseudo-header sum unchanged.
        Icmpv6Packet::new_checked(&mut frame[l4..])?.make_echo_reply_in_place();
        let mut ip = Ipv6Packet::new_checked(&mut frame[l3..])?;
        ip.swap_src_dst();
        ip.set_hop_limit(64);
    }
    let mut eth = EthernetFrame::new_checked(&mut *frame)?;
    let (src, dst) = (eth.src(), eth.dst());
    eth.set_dst(src);
    eth.set_src(dst);
    Ok(Action::Transmit {
        interface: ingress,
        backend: None,
    })
}

/// The defences against duplicate-address detection a worker sends a second, at most (a
/// host probes once or a few times, a second apart; bursts of 32).
pub const DEFENCES_PER_SECOND: u32 = 10;

/// All nodes on the link (RFC 4291 §2.7.1), where a defence against duplicate-address
/// detection goes.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
