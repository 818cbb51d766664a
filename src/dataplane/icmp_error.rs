//! ICMP errors about a flow (unreachable, fragmentation needed / packet too big, time
//! exceeded) go where the flow goes (DESIGN §6): to the backend owning the flow its quoted
//! packet belongs to, decided by the same [`decide`] as the flow's own packets (reading the
//! flow table, changing nothing), not wherever the error's own three-tuple would hash.

use std::net::IpAddr;

use super::action::Action;
use super::ctx::Ctx;
use super::nat::{reply_to_client, set_macs, to_client, unresolved};
use crate::lb::decision::{decide, reply_frontend, Answer, Flow, Memory, Via};
use crate::lb::flow::FlowKey;
use crate::lb::forwarding::InterfaceId;
use crate::lb::verdict::DropReason;
use crate::wire::{
    is_icmpv4_error, is_icmpv6_error, rewrite_ipv4_dst, Headers, IcmpPacket, Icmpv6Packet,
    IpProtocol, Ipv4Packet, Ipv6Packet, MacAddr, QuotedIpv4, QuotedIpv6,
};

/// What an ICMP error quotes: the flow its packet belongs to, read behind any IPv6
/// extension headers; where the message ends in the frame; and whether the packet is a
/// fragment after the first, whose flow has ports the quote lacks (its `flow` has none).
struct Quote {
    flow: FlowKey,
    end: usize,
    later_fragment: bool,
}

/// The packet an ICMP error (v4 or v6) quotes; `None`: not an ICMP error.
fn quoted_flow(frame: &[u8], h: &Headers) -> Result<Option<Quote>, DropReason> {
    let (l3, l4) = (usize::from(h.l3_offset), usize::from(h.l4_offset));
    Ok(Some(match (h.dst, h.proto) {
        (IpAddr::V4(_), IpProtocol::ICMP) => {
            let end = l3 + Ipv4Packet::new_checked(&frame[l3..])?.total_len();
            let message = frame.get(l4..end).ok_or(DropReason::Truncated)?;
            let icmp = IcmpPacket::new_checked(message)?;
            if !is_icmpv4_error(icmp.msg_type()) {
                return Ok(None);
            }
            // In fragments: its checksum covers the whole message, which this lacks.
            if h.fragment {
                return Err(DropReason::Unsupported);
            }
            // Under NAT the message is rewritten and its checksum filled anew, which would
            // make a corrupt or forged one whole: checked first, in every mode alike.
            if !icmp.verify_checksum() {
                return Err(DropReason::Malformed);
            }
            let q = QuotedIpv4::new_checked(message)?;
            let (src_port, dst_port) = q.ports();
            let flow = FlowKey {
                proto: q.protocol(),
                src: IpAddr::V4(q.src()),
                dst: IpAddr::V4(q.dst()),
                src_port,
                dst_port,
            };
            let later_fragment = q.is_later_fragment();
            Quote {
                flow,
                end,
                later_fragment,
            }
        }
        (IpAddr::V6(_), IpProtocol::ICMPV6) => {
            let end = l3 + 40 + Ipv6Packet::new_checked(&frame[l3..])?.payload_len();
            let message = frame.get(l4..end).ok_or(DropReason::Truncated)?;
            let icmp = Icmpv6Packet::new_checked(message)?;
            if !is_icmpv6_error(icmp.msg_type()) {
                return Ok(None);
            }
            if h.fragment {
                return Err(DropReason::Unsupported);
            }
            let (IpAddr::V6(src), IpAddr::V6(dst)) = (h.src, h.dst) else {
                return Err(DropReason::Malformed);
            };
            if !icmp.verify_checksum(src, dst) {
                return Err(DropReason::Malformed);
            }
            let q = QuotedIpv6::new_checked(message)?;
            let (src_port, dst_port) = q.ports();
            let flow = FlowKey {
                proto: q.protocol(),
                src: IpAddr::V6(q.src()),
                dst: IpAddr::V6(q.dst()),
                src_port,
                dst_port,
            };
            let later_fragment = q.is_later_fragment();
            Quote {
                flow,
                end,
                later_fragment,
            }
        }
        _ => return Ok(None),
    }))
}

/// Steers an ICMP error about a flow of ours. Under NAT the backend gets it about the packet
/// as it sent it: outer destination and quoted source rewritten to the backend. `None`: not
/// an error about a flow of ours; the packet takes the ordinary path.
pub(super) fn icmp_error(
    frame: &mut [u8],
    h: &Headers,
    dst_mac: MacAddr,
    cx: &mut Ctx,
) -> Result<Option<Action>, DropReason> {
    let fwd = cx.fwd;
    let (l3, l4) = (usize::from(h.l3_offset), usize::from(h.l4_offset));
    let Some(Quote {
        flow: quoted,
        end,
        later_fragment,
    }) = quoted_flow(frame, h)?
    else {
        return Ok(None);
    };
    // An error is small enough never to be fragmented honestly (an IPv6 one fits 1280
    // bytes): one in fragments is `unsupported` (above, before its checksum is checked).
    // About a packet the frontend sent (a reply, NAT or DSR): the flow came in reversed.
    // Routed through a frontend (transit): the flow is the quoted packet's.
    let (fe, via, packet) = match (fwd.frontend(h.dst), fwd.frontend_by_mac(dst_mac)) {
        (Some(fe), _) if quoted.src == h.dst => (fe, Via::Frontend, quoted.reversed()),
        (None, Some(fe)) => (fe, Via::Transit, quoted),
        _ => return Ok(None),
    };
    // A later fragment's quote lacks the ports its flow is known by: decided without them,
    // it would go to a backend that may not own the flow, so it goes to none.
    if later_fragment {
        return Err(DropReason::Unsupported);
    }
    let flow = Flow::new(packet, 0, cx.st.flows.secret);
    let d = decide(
        fwd,
        &mut cx.st.flows,
        fe,
        via,
        &flow,
        cx.now_ms,
        Memory::Peek,
    )?;
    let be = &fwd.backends[d.backend as usize];
    let route = be.route.ok_or(DropReason::NoNeighbour)?;
    if d.nat {
        let port = d.port;
        match (be.address, h.src) {
            (IpAddr::V4(addr), _) => {
                rewrite_ipv4_dst(&mut frame[l3..], addr)?;
                QuotedIpv4::new_checked(&mut frame[l4..end])?.set_src(addr, port);
                IcmpPacket::new_checked(&mut frame[l4..end])?.fill_checksum();
            }
            (IpAddr::V6(addr), IpAddr::V6(sender)) => {
                Ipv6Packet::new_checked(&mut frame[l3..])?.set_dst(addr);
                QuotedIpv6::new_checked(&mut frame[l4..end])?.set_src(addr, port);
                // The ICMPv6 checksum covers the pseudo-header: refilled for the new destination.
                Icmpv6Packet::new_checked(&mut frame[l4..end])?.fill_checksum(sender, addr);
            }
            _ => return Err(DropReason::Unsupported),
        }
    }
    // Not known yet: held for it, as the flow's own packets are.
    let Some(mac) = be.mac else {
        return unresolved(fwd, d.backend).map(Some);
    };
    set_macs(frame, mac, fwd.interfaces[route.interface as usize].mac)?;
    Ok(Some(Action::Transmit {
        interface: route.interface,
        backend: Some(d.backend),
    }))
}

/// An ICMP error to a client about a packet of a NAT flow on its way to the backend: the
/// client gets it about the packet as the client sent it, the quoted destination (and port)
/// the frontend's, so that its stack finds the socket it is about. Sent by the backend (a
/// port unreachable, say: `backend_side`, the sender is a backend on its side), its outer
/// source is the frontend's too; sent by a router between the appliance and the backend (a
/// fragmentation needed, say: from the backend's side, the MAC the backend's traffic goes to
/// on its interface), the router's stays. Mapped back as the flow's replies are (by the
/// flow's own entry where the rules are ambiguous, else by the rules). `None`: not an ICMP
/// error about a NAT flow from the backend side.
pub(super) fn icmp_error_to_client(
    frame: &mut [u8],
    h: &Headers,
    (ingress, src_mac, backend_side): (InterfaceId, MacAddr, bool),
    cx: &mut Ctx,
) -> Result<Option<Action>, DropReason> {
    // A later fragment's quote has no ports: mapped back by the rules alone (an HA-ports
    // rule's mapping needs none), its quoted ports left as they are.
    let Some(Quote {
        flow: quoted, end, ..
    }) = quoted_flow(frame, h)?
    else {
        return Ok(None);
    };
    if h.fragment {
        return Err(DropReason::Unsupported);
    }
    // The quoted packet went from the client (this error's destination) to a backend: the
    // error's sender, or behind the router that sends it.
    let fwd = cx.fwd;
    let by_backend = quoted.dst == h.src && backend_side;
    let on_its_way = quoted.dst != h.src && fwd.from_backend_side(quoted.dst, ingress, src_mac);
    if quoted.src != h.dst || !(by_backend || on_its_way) {
        return Ok(None);
    }
    let reply = quoted.reversed();
    let known = reply_frontend(fwd, &mut cx.st.flows, &reply, cx.now_ms, Answer::Other);
    let Some(rn) = known.or_else(|| fwd.reverse_nat(reply.src, reply.proto, reply.src_port)) else {
        return Ok(None);
    };
    let (l4, port) = (usize::from(h.l4_offset), rn.frontend_port);
    match (rn.frontend, h.src, h.dst) {
        (IpAddr::V4(frontend), _, _) => {
            QuotedIpv4::new_checked(&mut frame[l4..end])?.set_dst(frontend, port);
            IcmpPacket::new_checked(&mut frame[l4..end])?.fill_checksum();
        }
        (IpAddr::V6(frontend), IpAddr::V6(sender), IpAddr::V6(client)) => {
            QuotedIpv6::new_checked(&mut frame[l4..end])?.set_dst(frontend, port);
            // For the sender's address still: the outer rewrite below updates it.
            Icmpv6Packet::new_checked(&mut frame[l4..end])?.fill_checksum(sender, client);
        }
        _ => return Err(DropReason::Unsupported),
    }
    if on_its_way {
        return to_client(frame, h, cx).map(Some);
    }
    // The outer source as any reply's (an ICMP message has no ports to restore).
    reply_to_client(frame, h, rn, None, cx).map(Some)
}
