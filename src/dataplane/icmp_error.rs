//! ICMP errors about a flow (unreachable, fragmentation needed / packet too big, time
//! exceeded) go where the flow goes (DESIGN §6): to the backend owning the flow its quoted
//! packet belongs to, decided by the same [`decide`] as the flow's own packets (reading the
//! flow table, changing nothing), not wherever the error's own three-tuple would hash.

use std::net::IpAddr;

use super::nat::set_macs;
use super::slow::Ctx;
use super::state::Action;
use crate::lb::decision::{decide, Flow, Memory, Via};
use crate::lb::flow::FlowKey;
use crate::lb::verdict::DropReason;
use crate::wire::{
    is_icmpv4_error, is_icmpv6_error, rewrite_ipv4_dst, Headers, IcmpPacket, Icmpv6Packet,
    Ipv4Packet, Ipv6Packet, MacAddr, QuotedIpv4, QuotedIpv6,
};

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
    let (quoted, end) = match h.dst {
        IpAddr::V4(_) => {
            let end = l3 + Ipv4Packet::new_checked(&frame[l3..])?.total_len();
            let message = frame.get(l4..end).ok_or(DropReason::Truncated)?;
            if !is_icmpv4_error(IcmpPacket::new_checked(message)?.msg_type()) {
                return Ok(None);
            }
            let q = QuotedIpv4::new_checked(message)?;
            let (src_port, dst_port) = q.ports();
            let key = FlowKey {
                proto: q.protocol(),
                src: IpAddr::V4(q.src()),
                dst: IpAddr::V4(q.dst()),
                src_port,
                dst_port,
            };
            (key, end)
        }
        IpAddr::V6(_) => {
            let end = l3 + 40 + Ipv6Packet::new_checked(&frame[l3..])?.payload_len();
            let message = frame.get(l4..end).ok_or(DropReason::Truncated)?;
            if !is_icmpv6_error(Icmpv6Packet::new_checked(message)?.msg_type()) {
                return Ok(None);
            }
            let q = QuotedIpv6::new_checked(message)?;
            let (src_port, dst_port) = q.ports();
            let key = FlowKey {
                proto: q.next_header(),
                src: IpAddr::V6(q.src()),
                dst: IpAddr::V6(q.dst()),
                src_port,
                dst_port,
            };
            (key, end)
        }
    };
    // About a packet the frontend sent (a reply, NAT or DSR): the flow came in reversed.
    // Routed through a frontend (transit): the flow is the quoted packet's.
    let (fe, via, packet) = match (fwd.frontend(h.dst), fwd.frontend_by_mac(dst_mac)) {
        (Some(fe), _) if quoted.src == h.dst => (fe, Via::Frontend, quoted.reversed()),
        (None, Some(fe)) => (fe, Via::Transit, quoted),
        _ => return Ok(None),
    };
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
    let mac = be.mac.ok_or(DropReason::NoNeighbour)?;
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
    set_macs(frame, mac, fwd.interfaces[route.interface as usize].mac)?;
    Ok(Some(Action::Transmit {
        interface: route.interface,
        backend: Some(d.backend),
    }))
}
