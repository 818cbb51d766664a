//! The slow path: one packet's fate, decided and applied in place over its bytes, for every
//! kind of frame (ARP and neighbour discovery, pings, the appliance's own addresses, ICMP
//! errors, fragments, NAT replies, transit, IP options, IPv6; VLAN-tagged frames dropped).
//! The burst [`pipeline`](super::pipeline) sends here whatever its fast path does not take.
//!
//! It works on a plain byte slice so that it is tested without DPDK; it allocates nothing and
//! never panics on any input.

use super::action::Action;
use super::ctx::{to_kernel, Ctx};
use super::datagrams::{fragment_key, Fragment};
use super::exception::KernelShare;
use super::fragments::{later_fragment, remember_fragment};
use super::icmp_error::{icmp_error, icmp_error_to_client};
use super::nat::{deliver, reply_to_client};
use super::responders::{
    arp, echo_reply, is_echo_request, kept_from_the_twin, neighbour_solicitation,
};
use super::state::WorkerState;
use crate::lb::decision::{decide, reply_frontend, Answer, Decided, Flow, Memory, Via};
use crate::lb::flow::FlowKey;
use crate::lb::forwarding::{Addressee, Forwarding, FrontendId, InterfaceId};
use crate::lb::verdict::DropReason;
use crate::wire::{
    is_broadcast_or_multicast, is_unicast_link_local, parse_headers, EtherType, EthernetFrame,
    Headers, IcmpType, IpProtocol, Ipv4Packet, MacAddr, TcpFlags,
};

/// Decides and rewrites one frame received on interface `ingress`.
pub fn process(
    frame: &mut [u8],
    ingress: InterfaceId,
    st: &mut WorkerState,
    fwd: &Forwarding,
    now_ms: u64,
) -> Action {
    let mut cx = Ctx { fwd, st, now_ms };
    match classify(frame, ingress, &mut cx) {
        Ok(a) => a,
        Err(reason) => Action::Drop(reason),
    }
}

fn classify(frame: &mut [u8], ingress: InterfaceId, cx: &mut Ctx) -> Result<Action, DropReason> {
    let fwd = cx.fwd;
    let our_mac = fwd
        .interfaces
        .get(ingress as usize)
        .ok_or(DropReason::Unsupported)?
        .mac;
    let (dst_mac, src_mac, ethertype, l3, tagged) = {
        let eth = EthernetFrame::new_checked(&*frame)?;
        let tagged = eth.vlan_tags() > 0;
        (
            eth.dst(),
            eth.src(),
            eth.ethertype(),
            eth.header_len(),
            tagged,
        )
    };
    // Our own transmissions, looped back by some PMDs (AF_PACKET), and other hosts' traffic:
    // ours are the interface's MAC and the frontends' (answered in ARP for them).
    let for_us =
        dst_mac == our_mac || dst_mac.is_multicast() || fwd.frontend_by_mac(dst_mac).is_some();
    if src_mac == our_mac || !for_us {
        return Err(DropReason::NotForUs);
    }
    // No frame comes from a group address (IEEE 802): an answer to one would flood its
    // segment, one for each such frame.
    if src_mac.is_multicast() {
        return Err(DropReason::Malformed);
    }
    // Interfaces are untagged: a tagged frame belongs to a segment the appliance is not on,
    // and forwarding it would carry it into another (VLAN hopping).
    if tagged {
        return Err(DropReason::Vlan);
    }
    match ethertype {
        EtherType::ARP => arp(frame, l3, ingress, our_mac, cx),
        EtherType::IPV4 | EtherType::IPV6 => ip(frame, ingress, src_mac, dst_mac, cx),
        _ => Err(DropReason::Unsupported),
    }
}

fn ip(
    frame: &mut [u8],
    ingress: InterfaceId,
    src_mac: MacAddr,
    dst_mac: MacAddr,
    cx: &mut Ctx,
) -> Result<Action, DropReason> {
    let fwd = cx.fwd;
    let h = parse_headers(frame)?;
    if h.ethertype == EtherType::IPV4 && !ipv4_header_sums_right(frame, &h) {
        return Err(DropReason::IpChecksum);
    }
    // Packets no honest sender makes: dropped before anything is decided or learnt from them
    // (a solicitation too, RFC 4861 §7.1.1: from the unspecified address or a unicast one).
    if fwd.is_martian_source(h.src) && !unaddressed_to_a_group(&h) {
        return Err(DropReason::MartianSource);
    }
    // ICMPv6 in IPv6 only: IPv4 may carry protocol 58 too, as any other, to a backend.
    if h.proto == IpProtocol::ICMPV6 && h.ethertype == EtherType::IPV6 {
        if let Some(action) = neighbour_solicitation(frame, &h, ingress, src_mac, cx)? {
            return Ok(action);
        }
    }
    if hop_limit(frame, &h) == Some(0) {
        return Err(DropReason::Ttl);
    }
    // The kernel twin gets what is for the appliance's own addresses and neighbour discovery;
    // other group traffic (IGMP/MLD reports, DHCP, mDNS…) is for other hosts.
    let addressee = fwd.addressee(h.dst);
    let group = dst_mac.is_multicast() || is_broadcast_or_multicast(h.dst);
    // A link-local destination behind the interface's own MAC is the twin's own link-local
    // address (its neighbour discovery answers come back to it); never forwarded anyway.
    let to_interface = fwd
        .interfaces
        .get(ingress as usize)
        .is_some_and(|i| i.mac == dst_mac);
    let twin_link_local = to_interface && is_unicast_link_local(h.dst);
    // Another interface's own address is none of this one's (strong host): its twin would
    // take it, and reach that address's services from the wrong segment.
    if matches!(addressee, Some(Addressee::Own(i)) if i != ingress) {
        return Err(DropReason::NotForUs);
    }
    if matches!(addressee, Some(Addressee::Own(_)))
        || (group && (is_neighbour_discovery(frame, &h) || is_listener_query(frame, &h)))
        || twin_link_local
    {
        kept_from_the_twin(frame, &h, fwd)?;
        let share = if fwd.from_backend_side(h.src, ingress, src_mac) {
            KernelShare::Backends
        } else if only_from_the_segment(frame, &h) {
            KernelShare::Neighbours
        } else {
            KernelShare::Others
        };
        return to_kernel(ingress, share, cx);
    }
    if group {
        return Err(DropReason::NotForUs);
    }
    // Nowhere to forward to: a transit packet or a backend's reply would carry it on.
    if fwd.is_martian_destination(h.dst) {
        return Err(DropReason::MartianDestination);
    }
    // Neighbour discovery belongs to its link, which its hop limit of 255 proves to the
    // receiver (RFC 4861): what was not answered or handed to the twin above is never
    // carried to a backend's link, where it would pass for that link's own.
    if is_neighbour_discovery(frame, &h) || is_ipv4_router_message(frame, &h) {
        return Err(DropReason::Unsupported);
    }
    // Nor is anything from an IPv6 link-local source (RFC 4291 §2.5.6; IPv4's are martian).
    if is_unicast_link_local(h.src) {
        return Err(DropReason::MartianSource);
    }
    // Fragments: the first (it has the ports) is decided like any packet and its decision
    // kept; the later ones follow it.
    let mut first_fragment = None;
    if h.fragment {
        let (ident, offset) = h.fragment_id(frame)?;
        let key = fragment_key(&h, ident);
        if offset != 0 {
            // A TCP fragment 8 bytes in can only overlap its first, and rewrite the flags
            // checked there (RFC 1858 §3.2; RFC 8200 forbids overlaps): no honest sender's.
            if h.proto == IpProtocol::TCP && offset == 8 {
                return Err(DropReason::Fragment);
            }
            let from_backend = fwd.from_backend_side(h.src, ingress, src_mac);
            return later_fragment(frame, &h, &key, from_backend, cx);
        }
        first_fragment = Some(key);
    }
    // Later fragments (above) carry no TCP header; a first one too short for it has no flags.
    if h.proto == IpProtocol::TCP && TcpFlags::invalid(h.tcp_flags) {
        return Err(DropReason::TcpFlags);
    }
    if h.proto == IpProtocol::ICMP || h.proto == IpProtocol::ICMPV6 {
        if let Some(action) = icmp_error(frame, &h, dst_mac, cx)? {
            return Ok(action);
        }
    }
    if let Some(Addressee::Frontend(fe)) = addressee {
        if is_echo_request(frame, &h) {
            // A ping in fragments would need reassembly to answer whole: not answered at all.
            if h.fragment {
                return Err(DropReason::Unsupported);
            }
            return echo_reply(frame, &h, ingress);
        }
        let flow = Flow::new(FlowKey::of(&h), h.tcp_flags, cx.st.flows.secret);
        return to_backend(frame, &h, fe, Via::Frontend, &flow, first_fragment, cx);
    }
    // A backend's reply under NAT, from the backend side (a packet elsewhere claiming a
    // backend's address is no reply): where the rules alone are ambiguous, the frontend of
    // the flow the worker holds on that backend; else the rules' own reverse mapping. An ICMP
    // error about a NAT flow's packet, from the backend or a router on its way.
    let backend_side = fwd.from_backend_side(h.src, ingress, src_mac);
    if h.proto == IpProtocol::ICMP || h.proto == IpProtocol::ICMPV6 {
        let sender = (ingress, src_mac, backend_side);
        if let Some(action) = icmp_error_to_client(frame, &h, sender, cx)? {
            return Ok(action);
        }
    }
    if backend_side {
        let answer = if h.proto == IpProtocol::TCP {
            Answer::Other
        } else {
            Answer::Datagram
        };
        let known = reply_frontend(fwd, &mut cx.st.flows, &FlowKey::of(&h), cx.now_ms, answer);
        if let Some(rn) = known.or_else(|| fwd.reverse_nat(h.src, h.proto, h.src_port)) {
            let action = reply_to_client(frame, &h, rn, rn.frontend_port, cx)?;
            // The later fragments follow a first one that went out (or waits to).
            if let Some(key) = first_fragment {
                remember_fragment(cx, key, Fragment::Reply(rn));
            }
            return Ok(action);
        }
    }
    // Transit: routed to a frontend as next hop (the NVA case; the frame carries that
    // frontend's MAC), balanced by its HA-ports rule.
    if let Some(fe) = fwd.frontend_by_mac(dst_mac) {
        let flow = Flow::new(FlowKey::of(&h), h.tcp_flags, cx.st.flows.secret);
        return to_backend(frame, &h, fe, Via::Transit, &flow, first_fragment, cx);
    }
    // Perhaps a neighbour from a new MAC (a backend's NAT replies after its NIC changed,
    // which the backend side above knows by the old one): the control thread asks again.
    let now = cx.now_ms;
    cx.st.neighbours.hint(fwd, ingress, (h.src, src_mac), now);
    Err(DropReason::NoFrontend)
}

/// Frontend and transit traffic: the decision, then DSR (MAC only) or destination NAT.
/// Transit packets are never rewritten above layer 2 (TTL included).
pub(super) fn to_backend(
    frame: &mut [u8],
    h: &Headers,
    fe: FrontendId,
    via: Via,
    flow: &Flow,
    first_fragment: Option<FlowKey>,
    cx: &mut Ctx,
) -> Result<Action, DropReason> {
    let d = decide_flow(fe, via, flow, cx)?;
    let action = deliver(frame, h, &d, cx.fwd)?;
    // The later fragments follow a first one that went out.
    if let Some(key) = first_fragment {
        let what = Fragment::Forward {
            backend: d.backend,
            nat: d.nat,
        };
        remember_fragment(cx, key, what);
    }
    Ok(action)
}

/// The decision for a packet of `flow`, remembered in the worker's flow table; for a new
/// NAT flow, the next hop its replies will need is asked for.
/// The fast path and the slow path both come here, so they treat a flow alike.
#[inline(always)]
pub(super) fn decide_flow(
    fe: FrontendId,
    via: Via,
    flow: &Flow,
    cx: &mut Ctx,
) -> Result<Decided, DropReason> {
    let fwd = cx.fwd;
    let d = decide(
        fwd,
        &mut cx.st.flows,
        fe,
        via,
        flow,
        cx.now_ms,
        Memory::Record,
    )?;
    // Not for each packet of a flow the full table refused: those count as refused.
    if d.new && !cx.st.flows.refused_last {
        if let Some(c) = cx.st.new_flows.get(d.backend as usize) {
            c.add(1);
        }
    }
    // A new NAT flow's replies go back to its sender's next hop: asked for now, not learnt
    // from the packet, so that the answer is there before the first reply.
    if d.new && d.nat {
        if let Some(route) = fwd.route(flow.packet().src) {
            if fwd.neighbour(route.next_hop).is_none() {
                cx.st
                    .neighbours
                    .want(route.interface, route.next_hop, cx.now_ms);
            }
        }
    }
    Ok(d)
}

/// From the unspecified address to a multicast group or the broadcast address: how a host
/// without an address yet (or with a tentative one) reports its groups (IGMP, RFC 3376; MLD
/// behind a hop-by-hop header, RFC 3590), probes for duplicates (RFC 4862) and asks for an
/// address (DHCP, RFC 2131). Not martian: such packets are for other hosts (`not_for_us`),
/// duplicate-address probes go to the kernel twin.
fn unaddressed_to_a_group(h: &Headers) -> bool {
    h.src.is_unspecified() && is_broadcast_or_multicast(h.dst)
}

/// Whether the IPv4 header (options included) of the packet whose headers are `h` sums right.
fn ipv4_header_sums_right(frame: &[u8], h: &Headers) -> bool {
    Ipv4Packet::new_checked(&frame[usize::from(h.l3_offset)..]).is_ok_and(|ip| ip.verify_checksum())
}

/// The TTL (IPv4) or hop limit (IPv6) of the packet whose headers are `h`.
fn hop_limit(frame: &[u8], h: &Headers) -> Option<u8> {
    let at = usize::from(h.l3_offset);
    match h.ethertype {
        EtherType::IPV4 => frame.get(at + 8).copied(),
        _ => frame.get(at + 7).copied(),
    }
}

/// ICMPv6 router and neighbour solicitations and advertisements, and redirects (types 133
/// to 137, RFC 4861), right behind the IPv6 header. Only a fragment at offset 0 holds the
/// message's type: a later one starts with data, whatever its first byte.
fn is_neighbour_discovery(frame: &[u8], h: &Headers) -> bool {
    let first = !h.fragment || h.fragment_id(frame).is_ok_and(|(_, offset)| offset == 0);
    h.proto == IpProtocol::ICMPV6
        && h.ethertype == EtherType::IPV6
        && first
        && frame
            .get(usize::from(h.l4_offset))
            .is_some_and(|t| (133..=137).contains(t))
}

/// Whether an IPv6 packet is a multicast listener query (ICMPv6 type 130, RFC 3810 §5.1):
/// the kernel twin answers it with reports of its groups, the solicited-node groups of the
/// interface's own addresses and of its frontends (which the control thread joins on it), so
/// that a switch snooping MLD goes on forwarding their solicitations to the appliance.
/// Reports of other hosts (131, 132, 143) are theirs.
fn is_listener_query(frame: &[u8], h: &Headers) -> bool {
    h.proto == IpProtocol::ICMPV6
        && h.ethertype == EtherType::IPV6
        && !h.fragment
        && frame.get(usize::from(h.l4_offset)) == Some(&130)
}

/// Neighbour discovery with hop limit 255 (RFC 4861 §7.1) or a listener query with hop
/// limit 1 from a link-local address (RFC 3810 §5.1.14): what no router forwards, so only a
/// host on the segment sends it ([`KernelShare::Neighbours`]).
fn only_from_the_segment(frame: &[u8], h: &Headers) -> bool {
    let hops = hop_limit(frame, h);
    (is_neighbour_discovery(frame, h) && hops == Some(255))
        || (is_listener_query(frame, h) && hops == Some(1) && is_unicast_link_local(h.src))
}

/// Whether an IPv4 packet is ICMP's redirect or router discovery (RFC 1256), which, like
/// IPv6's neighbour discovery, speaks for its own link alone: forwarded to a backend, a
/// redirect would move the backend's route to a client onto whatever gateway it names.
fn is_ipv4_router_message(frame: &[u8], h: &Headers) -> bool {
    let first = !h.fragment || h.fragment_id(frame).is_ok_and(|(_, offset)| offset == 0);
    h.proto == IpProtocol::ICMP
        && h.ethertype == EtherType::IPV4
        && first
        && frame.get(usize::from(h.l4_offset)).is_some_and(|&t| {
            matches!(
                t,
                IcmpType::REDIRECT | IcmpType::ROUTER_ADVERT | IcmpType::ROUTER_SOLICIT
            )
        })
}
