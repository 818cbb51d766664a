//! Rewrites towards a backend or back to a client: destination NAT (address and, for a
//! port-translating rule, port), the reverse rewrite of a backend's reply, and the MAC header.
//! Every checksum is kept right incrementally.

use std::net::IpAddr;

use super::action::Action;
use super::ctx::Ctx;
use super::neighbours::next_hop_mac;
use crate::lb::decision::Decided;
use crate::lb::forwarding::{BackendId, BackendState, Forwarding, ReverseNat, Route};
use crate::lb::verdict::DropReason;
use crate::wire::{
    dnat_ipv4_fast, rewrite_ipv4_dst, rewrite_ipv4_src, rewrite_ipv6_behind, rewrite_port,
    EthernetFrame, Headers, Ipv4Flow, MacAddr,
};

pub(super) use crate::wire::Side;

/// A backend and the route to it (`no_neighbour` without one).
#[inline]
fn link(fwd: &Forwarding, backend: BackendId) -> Result<(&BackendState, Route), DropReason> {
    let be = fwd
        .backends
        .get(backend as usize)
        .ok_or(DropReason::NoHealthyBackend)?;
    let route = be.route.ok_or(DropReason::NoNeighbour)?;
    Ok((be, route))
}

/// Where a packet rewritten for `backend` goes while the backend's MAC is not known (a
/// backend a reload added, resolved within milliseconds): held for it, as a reply is for its
/// client's next hop, rather than dropped (a new connection's SYN would wait for its
/// retransmission, a second later). Behind VXLAN it is the tunnel's next hop that is
/// missing: `no_neighbour`.
pub(super) fn unresolved(fwd: &Forwarding, backend: BackendId) -> Result<Action, DropReason> {
    match fwd.backends.get(backend as usize) {
        Some(be) if be.route.is_some() && be.vxlan.is_none() => {
            Ok(Action::HoldForBackend { backend })
        }
        _ => Err(DropReason::NoNeighbour),
    }
}

/// Sends a decided packet to its backend: destination NAT when the decision says so (the
/// backend's address, and port for a port-translating rule), then the backend's MAC.
#[inline]
pub(super) fn deliver(
    frame: &mut [u8],
    h: &Headers,
    d: &Decided,
    fwd: &Forwarding,
) -> Result<Action, DropReason> {
    deliver_to(frame, h, d.backend, d.nat.then_some(d.port), fwd)
}

/// [`deliver`] of a decision's parts: to `backend`, with destination NAT (and port, when
/// given) where `nat` is given.
fn deliver_to(
    frame: &mut [u8],
    h: &Headers,
    backend: BackendId,
    nat: Option<Option<u16>>,
    fwd: &Forwarding,
) -> Result<Action, DropReason> {
    let (be, route) = link(fwd, backend)?;
    if let Some(port) = nat {
        set_address(frame, h, Side::Dst, be.address)?;
        if let Some(port) = port {
            set_port(frame, h, Side::Dst, port)?;
        }
    }
    let Some(mac) = be.mac else {
        return unresolved(fwd, backend);
    };
    set_macs(frame, mac, fwd.interfaces[route.interface as usize].mac)?;
    Ok(Action::Transmit {
        interface: route.interface,
        backend: Some(backend),
    })
}

/// [`deliver`] for a packet of the fast path (plain IPv4 TCP or UDP at fixed offsets), with
/// the same rewrites and so the same bytes, without re-reading its headers; where the packet
/// goes written to `action`.
#[inline]
pub(super) fn deliver_v4(
    frame: &mut [u8],
    packet: &Ipv4Flow,
    d: Decided,
    fwd: &Forwarding,
    action: &mut Action,
) {
    // Each way out writes its action itself rather than returning it: returned (or through a
    // `Result`), the compiler built every packet's action on the stack and copied it over.
    let Some(link) = fwd.link(d.backend) else {
        return *action = Action::Drop(DropReason::NoHealthyBackend);
    };
    let Some(out) = link.egress else {
        return *action =
            deliver_unresolved(frame, packet, d.backend, d.nat.then_some(d.port), fwd);
    };
    if d.nat {
        let Some(address) = link.v4 else {
            return *action = deliver_across_families(frame, packet, d.backend, d.port, fwd);
        };
        if let Err(reason) = dnat_ipv4_fast(frame, packet, address, d.port) {
            return *action = Action::Drop(reason.into());
        }
    }
    // The fast path's frames hold a whole Ethernet header: the MACs go straight in.
    let Some(header) = frame.get_mut(..12) else {
        return *action = Action::Drop(DropReason::Truncated);
    };
    header.copy_from_slice(&out.macs);
    *action = Action::Transmit {
        interface: out.interface,
        backend: Some(d.backend),
    };
}

/// [`deliver_v4`] to a backend whose MAC is not known yet: the general path, which holds the
/// packet for it ([`unresolved`]). Out of line, as [`deliver_across_families`] is.
#[cold]
#[inline(never)]
fn deliver_unresolved(
    frame: &mut [u8],
    packet: &Ipv4Flow,
    backend: BackendId,
    nat: Option<Option<u16>>,
    fwd: &Forwarding,
) -> Action {
    deliver_to(frame, &packet.headers(), backend, nat, fwd).unwrap_or_else(Action::Drop)
}

/// [`deliver_v4`] to a backend of the other family, which `check` refuses for NAT rules (`NAT
/// keeps the address family`): a fallback that never runs with a checked config, where the
/// general path says what happens. Out of line and taking only the decision's parts it
/// needs, in registers, so that the fast path does not keep its decision in memory for this
/// call's sake (with a reference, every packet's decision was stored to the stack: 11
/// stores; with the decision by value, 7).
#[cold]
#[inline(never)]
fn deliver_across_families(
    frame: &mut [u8],
    packet: &Ipv4Flow,
    backend: BackendId,
    port: Option<u16>,
    fwd: &Forwarding,
) -> Action {
    deliver_to(frame, &packet.headers(), backend, Some(port), fwd).unwrap_or_else(Action::Drop)
}

/// A backend's reply under NAT: the frontend's address (and `port`) restored, out towards
/// the client.
pub(super) fn reply_to_client(
    frame: &mut [u8],
    h: &Headers,
    rn: ReverseNat,
    port: Option<u16>,
    cx: &mut Ctx,
) -> Result<Action, DropReason> {
    set_address(frame, h, Side::Src, rn.frontend)?;
    if let Some(p) = port {
        set_port(frame, h, Side::Src, p)?;
    }
    to_client(frame, h, cx)
}

/// A packet for a client (`h.dst`) out towards it: its next hop's MAC, or held for it.
pub(super) fn to_client(frame: &mut [u8], h: &Headers, cx: &mut Ctx) -> Result<Action, DropReason> {
    let (interface, mac) = next_hop_mac(cx.fwd, &mut cx.st.neighbours, h.dst, cx.now_ms)?;
    let Some(mac) = mac else {
        return Ok(Action::Hold { interface });
    };
    let src = cx.fwd.interfaces[interface as usize].mac;
    set_macs(frame, mac, src)?;
    Ok(Action::Transmit {
        interface,
        backend: None,
    })
}

/// NAT's address rewrite with every checksum kept right: IPv4 (header and transport),
/// IPv6 (transport), and IPv6 fragments, whose transport checksum only the first carries.
pub(super) fn set_address(
    frame: &mut [u8],
    h: &Headers,
    side: Side,
    addr: IpAddr,
) -> Result<(), DropReason> {
    let l3 = usize::from(h.l3_offset);
    match (addr, side) {
        (IpAddr::V4(a), Side::Dst) => rewrite_ipv4_dst(&mut frame[l3..], a)?,
        (IpAddr::V4(a), Side::Src) => rewrite_ipv4_src(&mut frame[l3..], a)?,
        (IpAddr::V6(a), side) => {
            // The transport header is behind any extension headers, and only in an
            // unfragmented packet or a first fragment (parse_headers checked it is all there).
            let first = !h.fragment || h.fragment_id(frame)?.1 == 0;
            let l4 = usize::from(h.l4_offset) - l3;
            rewrite_ipv6_behind(&mut frame[l3..], a, side, first.then_some((h.proto, l4)))?;
        }
    }
    Ok(())
}

/// Port translation: rewrites a TCP or UDP port, updating the checksum incrementally (a
/// first fragment's too, whose header alone is there to read).
pub(super) fn set_port(
    frame: &mut [u8],
    h: &Headers,
    side: Side,
    port: u16,
) -> Result<(), DropReason> {
    let l4 = frame
        .get_mut(usize::from(h.l4_offset)..)
        .ok_or(DropReason::Truncated)?;
    Ok(rewrite_port(l4, h.proto, side, port)?)
}

#[inline]
pub(super) fn set_macs(frame: &mut [u8], dst: MacAddr, src: MacAddr) -> Result<(), DropReason> {
    let mut eth = EthernetFrame::new_checked(frame)?;
    eth.set_dst(dst);
    eth.set_src(src);
    Ok(())
}
