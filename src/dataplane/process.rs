//! One packet's fate, decided and applied in place over its bytes.
//!
//! `process` is the whole per-packet path of a worker: parse, classify (ARP, the
//! appliance's own addresses, frontends, replies of non-floating rules), consult the flow
//! table and Maglev, rewrite, and say where the packet goes. It works on a plain byte slice
//! so that it is tested without DPDK; it allocates nothing and never panics on any input.

use std::net::IpAddr;
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use hashbrown::HashMap;

use super::worker::Glean;
use crate::lb::flow::FlowKey;
use crate::lb::flow_table::FlowTable;
use crate::lb::forwarding::{
    Addressee, BackendId, Forwarding, InterfaceId, PoolId, ReverseNat, RuleState,
};
use crate::lb::hash::symmetric_hash;
use crate::lb::verdict::DropReason;
use crate::wire::{
    checksum, is_icmpv4_error, is_icmpv6_error, parse_headers, rewrite_ipv4_dst, rewrite_ipv4_src,
    rewrite_ipv6_dst, rewrite_ipv6_src, ArpOperation, ArpPacket, EtherType, EthernetFrame, Headers,
    IcmpPacket, IcmpType, Icmpv6Packet, Icmpv6Type, IpProtocol, Ipv4Packet, Ipv6Packet, MacAddr,
    QuotedIpv4, QuotedIpv6, TcpFlags, TcpPacket, UdpPacket,
};

/// Idle timeout of a TCP flow once a FIN or RST was seen.
const CLOSING_TIMEOUT_MS: u64 = 10_000;
/// Neighbours one worker remembers from traffic before the control thread publishes them.
const GLEAN_CAPACITY: usize = 16_384;

/// Where a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Out of an interface's port (to a backend when `backend` is set).
    Transmit {
        interface: InterfaceId,
        backend: Option<BackendId>,
    },
    /// To an interface's kernel twin.
    ToKernel {
        interface: InterfaceId,
    },
    Drop(DropReason),
}

/// A flow-table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEntry {
    /// A client's flow to a frontend: the backend it was given.
    Forward { pool: PoolId, backend: BackendId },
    /// The reply direction of a destination-NATed flow (keyed by the reply's own five-tuple):
    /// the frontend address and port to restore. Exact where the rules alone are ambiguous
    /// (an HA-ports rule and a public rule on the same backends and port); the stateless
    /// mapping of `Forwarding::reverse_nat` covers a reply this worker has no entry for.
    Reply(ReverseNat),
}

/// Neighbours this worker learnt from traffic, so replies find a client's MAC before the
/// control thread has published it. Bounded; never grows past its capacity.
#[derive(Debug)]
pub struct Gleaned {
    map: HashMap<IpAddr, MacAddr>,
    reports: Arc<ArrayQueue<Glean>>,
}

impl Gleaned {
    pub fn new(reports: Arc<ArrayQueue<Glean>>) -> Self {
        Gleaned {
            map: HashMap::with_capacity(GLEAN_CAPACITY),
            reports,
        }
    }

    /// The MAC of neighbour `addr`, from this worker's own observations or the published state.
    #[inline]
    pub fn lookup(&self, fwd: &Forwarding, addr: IpAddr) -> Option<MacAddr> {
        self.map.get(&addr).copied().or_else(|| fwd.neighbour(addr))
    }

    /// Notes that `addr` is at `mac`; reports news to the control thread.
    #[inline]
    fn learn(&mut self, fwd: &Forwarding, addr: IpAddr, mac: MacAddr) {
        if !mac.is_unicast()
            || fwd.neighbour(addr) == Some(mac)
            || self.map.get(&addr) == Some(&mac)
        {
            return;
        }
        if self.map.len() < GLEAN_CAPACITY || self.map.contains_key(&addr) {
            self.map.insert(addr, mac);
        }
        // A full queue only delays publication; the local entry already serves this worker.
        let _ = self.reports.push((addr, mac));
    }
}

/// A worker's own mutable state.
#[derive(Debug)]
pub struct WorkerState {
    pub flows: FlowTable<FlowEntry>,
    /// Where each fragmented datagram's first fragment went, so the later ones (which carry
    /// no ports) follow it. Keyed by [`fragment_key`].
    pub fragments: FlowTable<Fragment>,
    pub gleaned: Gleaned,
}

impl WorkerState {
    pub fn new(flow_capacity: usize, reports: Arc<ArrayQueue<Glean>>) -> Self {
        WorkerState {
            flows: FlowTable::with_capacity(flow_capacity),
            fragments: FlowTable::with_capacity(FRAGMENT_CAPACITY),
            gleaned: Gleaned::new(reports),
        }
    }
}

/// Datagrams in flight in fragments one worker follows at once.
const FRAGMENT_CAPACITY: usize = 16_384;
/// How long the later fragments of a datagram are expected after its first.
const FRAGMENT_TIMEOUT_MS: u64 = 5_000;

/// What a datagram's first fragment got, for its later fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// To a backend (destination rewritten to it when `nat`).
    Forward { backend: BackendId, nat: bool },
    /// A NATed reply: source rewritten to the frontend.
    Reply(ReverseNat),
}

/// A datagram's identity: addresses, protocol and IPv4 identification (in the port slot;
/// this key lives in its own table, never among flows).
fn fragment_key(h: &Headers, ident: u32) -> FlowKey {
    FlowKey {
        proto: h.proto,
        src: h.src,
        dst: h.dst,
        src_port: ident as u16,
        dst_port: (ident >> 16) as u16,
    }
}

/// (identification, offset in bytes) of a fragment, IPv4 or IPv6 (its fragment header).
fn fragment_id(frame: &[u8], h: &Headers) -> Result<(u32, usize), DropReason> {
    let l3 = usize::from(h.l3_offset);
    match h.dst {
        IpAddr::V4(_) => {
            let ip = Ipv4Packet::new_checked(&frame[l3..])?;
            Ok((u32::from(ip.ident()), ip.frag_offset()))
        }
        IpAddr::V6(_) => {
            // parse_headers checked the fragment header is there.
            let f = frame.get(l3 + 40..l3 + 48).ok_or(DropReason::Truncated)?;
            let offset = usize::from(u16::from_be_bytes([f[2], f[3]]) & 0xfff8);
            Ok((u32::from_be_bytes([f[4], f[5], f[6], f[7]]), offset))
        }
    }
}

/// Decides and rewrites one frame received on interface `ingress`.
#[inline]
pub fn process(
    frame: &mut [u8],
    ingress: InterfaceId,
    st: &mut WorkerState,
    fwd: &Forwarding,
    now_ms: u64,
) -> Action {
    match classify(frame, ingress, st, fwd, now_ms) {
        Ok(a) => a,
        Err(reason) => Action::Drop(reason),
    }
}

fn classify(
    frame: &mut [u8],
    ingress: InterfaceId,
    st: &mut WorkerState,
    fwd: &Forwarding,
    now_ms: u64,
) -> Result<Action, DropReason> {
    let our_mac = fwd
        .interfaces
        .get(ingress as usize)
        .ok_or(DropReason::Unsupported)?
        .mac;
    let (dst_mac, src_mac, ethertype, l3) = {
        let eth = EthernetFrame::new_checked(&*frame)?;
        (eth.dst(), eth.src(), eth.ethertype(), eth.header_len())
    };
    // Our own transmissions, looped back by some PMDs (AF_PACKET), and other hosts' traffic:
    // ours are the interface's MAC and the frontends' (answered in ARP for them).
    let for_us =
        dst_mac == our_mac || dst_mac.is_multicast() || fwd.frontend_by_mac(dst_mac).is_some();
    if src_mac == our_mac || !for_us {
        return Err(DropReason::NotForUs);
    }
    match ethertype {
        EtherType::ARP => arp(frame, l3, ingress, our_mac, st, fwd),
        EtherType::IPV4 | EtherType::IPV6 => ip(frame, ingress, src_mac, dst_mac, st, fwd, now_ms),
        _ => Err(DropReason::Unsupported),
    }
}

/// ARP: answer for frontends, hand the appliance's own addresses to the kernel, learn senders.
fn arp(
    frame: &mut [u8],
    l3: usize,
    ingress: InterfaceId,
    our_mac: MacAddr,
    st: &mut WorkerState,
    fwd: &Forwarding,
) -> Result<Action, DropReason> {
    let body = frame.get_mut(l3..).ok_or(DropReason::Truncated)?;
    let mut arp = ArpPacket::new_checked(body)?;
    let (sender_ip, sender_mac, target) = (
        IpAddr::V4(arp.sender_ip()),
        arp.sender_mac(),
        IpAddr::V4(arp.target_ip()),
    );
    let frontend = fwd.frontend(target);
    let for_frontend = frontend.is_some();
    let for_us = fwd.own_address(target).is_some();
    if !for_frontend && !for_us {
        return Err(DropReason::NotForUs);
    }
    st.gleaned.learn(fwd, sender_ip, sender_mac);
    if for_us {
        return Ok(Action::ToKernel { interface: ingress });
    }
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

fn ip(
    frame: &mut [u8],
    ingress: InterfaceId,
    src_mac: MacAddr,
    dst_mac: MacAddr,
    st: &mut WorkerState,
    fwd: &Forwarding,
    now_ms: u64,
) -> Result<Action, DropReason> {
    let h = parse_headers(frame)?;
    if h.proto == IpProtocol::ICMPV6 {
        if let Some(action) = neighbour_solicitation(frame, &h, ingress, src_mac, st, fwd)? {
            return Ok(action);
        }
    }
    let addressee = fwd.addressee(h.dst);
    if matches!(addressee, Some(Addressee::Own(_)))
        || dst_mac.is_multicast()
        || is_broadcast_or_multicast(h.dst)
    {
        return Ok(Action::ToKernel { interface: ingress });
    }
    // Fragments: the first (it has the ports) is decided like any packet and its decision
    // kept; the later ones follow it. IPv6 fragments are not handled yet.
    let mut first_fragment = None;
    if h.fragment {
        let (ident, offset) = fragment_id(frame, &h)?;
        let key = fragment_key(&h, ident);
        if offset != 0 {
            return later_fragment(frame, &h, &key, st, fwd, now_ms);
        }
        first_fragment = Some(key);
    }
    if h.proto == IpProtocol::ICMP || h.proto == IpProtocol::ICMPV6 {
        if let Some(action) = icmp_error(frame, &h, dst_mac, st, fwd)? {
            return Ok(action);
        }
    }
    if let Some(Addressee::Frontend(fe)) = addressee {
        if is_echo_request(frame, &h) {
            return echo_reply(frame, &h, ingress);
        }
        return to_backend(
            frame,
            &h,
            fe,
            Via::Frontend,
            first_fragment,
            src_mac,
            st,
            fwd,
            now_ms,
        );
    }
    let reply = FlowKey {
        proto: h.proto,
        src: h.src,
        dst: h.dst,
        src_port: h.src_port,
        dst_port: h.dst_port,
    }
    .canonical();
    let known = match st
        .flows
        .lookup(&reply, symmetric_hash(&reply, fwd.hash_seed), now_ms)
    {
        Some(FlowEntry::Reply(rn)) => Some(rn),
        _ => None,
    };
    if let Some(rn) = known.or_else(|| fwd.reverse_nat(h.src, h.proto, h.src_port)) {
        if let Some(key) = first_fragment {
            remember_fragment(st, fwd, key, Fragment::Reply(rn), now_ms);
        }
        return reply_to_client(frame, &h, rn, rn.frontend_port, st, fwd);
    }
    // Transit: routed to a frontend as next hop (the NVA case; the frame carries that
    // frontend's MAC), balanced by its HA-ports rule.
    if let Some(fe) = fwd.frontend_by_mac(dst_mac) {
        return to_backend(
            frame,
            &h,
            fe,
            Via::Transit,
            first_fragment,
            src_mac,
            st,
            fwd,
            now_ms,
        );
    }
    Err(DropReason::NoFrontend)
}

/// How a packet came to be balanced by a frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// Addressed to the frontend: the most specific rule, NAT unless floating.
    Frontend,
    /// Routed through it: its HA-ports rule, and only the MAC header changes.
    Transit,
}

/// Frontend and transit traffic: flow table or Maglev, then DSR (MAC only) or destination
/// NAT. Transit packets are never rewritten above layer 2 (TTL included).
#[allow(clippy::too_many_arguments)]
fn to_backend(
    frame: &mut [u8],
    h: &Headers,
    fe: u32,
    via: Via,
    first_fragment: Option<FlowKey>,
    src_mac: MacAddr,
    st: &mut WorkerState,
    fwd: &Forwarding,
    now_ms: u64,
) -> Result<Action, DropReason> {
    let key = FlowKey {
        proto: h.proto,
        src: h.src,
        dst: h.dst,
        src_port: h.src_port,
        dst_port: h.dst_port,
    }
    .canonical();
    let (_, rule) = match via {
        Via::Frontend => fwd.rule(fe, h.proto, h.dst_port),
        Via::Transit => fwd.ha_rule(fe),
    }
    .ok_or(DropReason::NoRule)?;
    let nat = via == Via::Frontend && !rule.floating_ip;
    let hash = symmetric_hash(&key, fwd.hash_seed);
    let existing = st.flows.lookup(&key, hash, now_ms);
    let backend = match existing {
        Some(FlowEntry::Forward { pool, backend })
            if pool == rule.pool && fwd.keeps_flow(pool, backend) =>
        {
            backend
        }
        _ => {
            let b = fwd
                .pick(rule.pool, hash)
                .ok_or(DropReason::NoHealthyBackend)?;
            // A full table is not an error: the flow follows the Maglev decision.
            let _ = st.flows.insert(
                key,
                hash,
                FlowEntry::Forward {
                    pool: rule.pool,
                    backend: b,
                },
                now_ms,
                rule.idle_timeout_ms,
            );
            if nat {
                if let Some(FlowEntry::Forward { backend: old, .. }) = existing {
                    // The flow moved: its replies now come from another backend.
                    let stale = reply_key(fwd, h, rule, old);
                    st.flows
                        .remove(&stale, symmetric_hash(&stale, fwd.hash_seed));
                }
                remember_reply(st, fwd, h, rule, b, now_ms);
            }
            if let Some(route) = fwd.route(h.src) {
                st.gleaned.learn(fwd, route.next_hop, src_mac);
            }
            b
        }
    };
    if h.proto == IpProtocol::TCP && h.tcp_flags & (TcpFlags::FIN | TcpFlags::RST) != 0 {
        st.flows
            .set_timeout(&key, hash, CLOSING_TIMEOUT_MS.min(rule.idle_timeout_ms));
    }
    if let Some(key) = first_fragment {
        remember_fragment(st, fwd, key, Fragment::Forward { backend, nat }, now_ms);
    }
    let be = &fwd.backends[backend as usize];
    let route = be.route.ok_or(DropReason::NoNeighbour)?;
    let mac = be.mac.ok_or(DropReason::NoNeighbour)?;
    if nat {
        let port = (!rule.is_ha_ports() && rule.backend_port != 0).then_some(rule.backend_port);
        set_address(frame, h, Side::Dst, be.address)?;
        if let Some(p) = port {
            set_port(frame, h, Side::Dst, p)?;
        }
    }
    set_macs(frame, mac, fwd.interfaces[route.interface as usize].mac)?;
    Ok(Action::Transmit {
        interface: route.interface,
        backend: Some(backend),
    })
}

fn remember_fragment(
    st: &mut WorkerState,
    fwd: &Forwarding,
    key: FlowKey,
    what: Fragment,
    now_ms: u64,
) {
    let hash = symmetric_hash(&key, fwd.hash_seed);
    // Full: the later fragments are dropped, as without this table; never an error here.
    let _ = st
        .fragments
        .insert(key, hash, what, now_ms, FRAGMENT_TIMEOUT_MS);
}

/// A fragment after the first: it goes where its first fragment went, rewritten the same
/// way at the IP layer (it carries no transport header).
fn later_fragment(
    frame: &mut [u8],
    h: &Headers,
    key: &FlowKey,
    st: &mut WorkerState,
    fwd: &Forwarding,
    now_ms: u64,
) -> Result<Action, DropReason> {
    let hash = symmetric_hash(key, fwd.hash_seed);
    match st.fragments.lookup(key, hash, now_ms) {
        None => Err(DropReason::Fragment),
        Some(Fragment::Reply(rn)) => reply_to_client(frame, h, rn, None, st, fwd),
        Some(Fragment::Forward { backend, nat }) => {
            let be = fwd
                .backends
                .get(backend as usize)
                .ok_or(DropReason::Fragment)?;
            let route = be.route.ok_or(DropReason::NoNeighbour)?;
            let mac = be.mac.ok_or(DropReason::NoNeighbour)?;
            if nat {
                set_address(frame, h, Side::Dst, be.address)?;
            }
            set_macs(frame, mac, fwd.interfaces[route.interface as usize].mac)?;
            Ok(Action::Transmit {
                interface: route.interface,
                backend: Some(backend),
            })
        }
    }
}

/// A backend's reply under NAT: the frontend's address (and `port`) restored, out towards
/// the client.
fn reply_to_client(
    frame: &mut [u8],
    h: &Headers,
    rn: ReverseNat,
    port: Option<u16>,
    st: &WorkerState,
    fwd: &Forwarding,
) -> Result<Action, DropReason> {
    set_address(frame, h, Side::Src, rn.frontend)?;
    if let Some(p) = port {
        set_port(frame, h, Side::Src, p)?;
    }
    let route = fwd.route(h.dst).ok_or(DropReason::NoNeighbour)?;
    let mac = st
        .gleaned
        .lookup(fwd, route.next_hop)
        .ok_or(DropReason::NoNeighbour)?;
    let src = fwd.interfaces[route.interface as usize].mac;
    set_macs(frame, mac, src)?;
    Ok(Action::Transmit {
        interface: route.interface,
        backend: None,
    })
}

/// Records the reply direction of a new NATed flow: the backend's answer to the client
/// gets exactly this flow's frontend address and port back.
fn remember_reply(
    st: &mut WorkerState,
    fwd: &Forwarding,
    h: &Headers,
    rule: &RuleState,
    backend: BackendId,
    now_ms: u64,
) {
    let translated = !rule.is_ha_ports() && rule.backend_port != 0;
    let reply = FlowKey {
        proto: h.proto,
        src: fwd.backends[backend as usize].address,
        dst: h.src,
        src_port: if translated {
            rule.backend_port
        } else {
            h.dst_port
        },
        dst_port: h.src_port,
    };
    let entry = FlowEntry::Reply(ReverseNat {
        frontend: h.dst,
        frontend_port: translated.then_some(h.dst_port),
    });
    let hash = symmetric_hash(&reply, fwd.hash_seed);
    let _ = st
        .flows
        .insert(reply, hash, entry, now_ms, rule.idle_timeout_ms);
}

/// The five-tuple of `backend`'s replies to the flow of `h` under `rule`.
fn reply_key(fwd: &Forwarding, h: &Headers, rule: &RuleState, backend: BackendId) -> FlowKey {
    let translated = !rule.is_ha_ports() && rule.backend_port != 0;
    FlowKey {
        proto: h.proto,
        src: fwd.backends[backend as usize].address,
        dst: h.src,
        src_port: if translated {
            rule.backend_port
        } else {
            h.dst_port
        },
        dst_port: h.src_port,
    }
    .canonical()
}

/// An ICMP error about a flow (unreachable, fragmentation needed, time exceeded) goes where
/// the flow goes (DESIGN §6): to the backend owning the flow its quoted packet belongs to,
/// not wherever the error's own three-tuple would hash. Under NAT the backend gets it about
/// the packet as it sent it: outer destination and quoted source rewritten to the backend.
/// `None`: not an error about a flow of ours; the packet takes the ordinary path.
fn icmp_error(
    frame: &mut [u8],
    h: &Headers,
    dst_mac: MacAddr,
    st: &mut WorkerState,
    fwd: &Forwarding,
) -> Result<Option<Action>, DropReason> {
    let (l3, l4) = (usize::from(h.l3_offset), usize::from(h.l4_offset));
    let quoted = match h.dst {
        IpAddr::V4(_) => {
            let end = l3 + Ipv4Packet::new_checked(&frame[l3..])?.total_len();
            let message = frame.get(l4..end).ok_or(DropReason::Truncated)?;
            if !is_icmpv4_error(IcmpPacket::new_checked(message)?.msg_type()) {
                return Ok(None);
            }
            let q = QuotedIpv4::new_checked(message)?;
            let (src_port, dst_port) = q.ports();
            let (src, dst) = (IpAddr::V4(q.src()), IpAddr::V4(q.dst()));
            (
                FlowKey {
                    proto: q.protocol(),
                    src,
                    dst,
                    src_port,
                    dst_port,
                },
                end,
            )
        }
        IpAddr::V6(_) => {
            let end = l3 + 40 + Ipv6Packet::new_checked(&frame[l3..])?.payload_len();
            let message = frame.get(l4..end).ok_or(DropReason::Truncated)?;
            if !is_icmpv6_error(Icmpv6Packet::new_checked(message)?.msg_type()) {
                return Ok(None);
            }
            let q = QuotedIpv6::new_checked(message)?;
            let (src_port, dst_port) = q.ports();
            let (src, dst) = (IpAddr::V6(q.src()), IpAddr::V6(q.dst()));
            (
                FlowKey {
                    proto: q.next_header(),
                    src,
                    dst,
                    src_port,
                    dst_port,
                },
                end,
            )
        }
    };
    let (quoted, end) = quoted;
    // About a packet the frontend sent (a reply, NAT or DSR): the flow came in reversed.
    // Routed through a frontend (transit): the flow is the quoted packet's.
    let (fe, via, flow) = match (fwd.frontend(h.dst), fwd.frontend_by_mac(dst_mac)) {
        (Some(fe), _) if quoted.src == h.dst => (fe, Via::Frontend, quoted.reversed()),
        (None, Some(fe)) => (fe, Via::Transit, quoted),
        _ => return Ok(None),
    };
    let (_, rule) = match via {
        Via::Frontend => fwd.rule(fe, flow.proto, flow.dst_port),
        Via::Transit => fwd.ha_rule(fe),
    }
    .ok_or(DropReason::NoRule)?;
    let key = flow.canonical();
    let hash = symmetric_hash(&key, fwd.hash_seed);
    let backend = match st.flows.peek(&key, hash) {
        Some(FlowEntry::Forward { pool, backend })
            if pool == rule.pool && fwd.keeps_flow(pool, backend) =>
        {
            backend
        }
        _ => fwd
            .pick(rule.pool, hash)
            .ok_or(DropReason::NoHealthyBackend)?,
    };
    let be = &fwd.backends[backend as usize];
    let route = be.route.ok_or(DropReason::NoNeighbour)?;
    let mac = be.mac.ok_or(DropReason::NoNeighbour)?;
    if via == Via::Frontend && !rule.floating_ip {
        let port = (!rule.is_ha_ports() && rule.backend_port != 0).then_some(rule.backend_port);
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
        backend: Some(backend),
    }))
}

/// IPv6 neighbour discovery for a frontend (ARP's counterpart): a solicitation for a
/// frontend address is answered with an advertisement of the frontend's own MAC, out of the
/// interface it came in on; its sender is learnt. `None`: not a solicitation for a frontend
/// (the appliance's own addresses are the kernel twin's to answer).
fn neighbour_solicitation(
    frame: &mut [u8],
    h: &Headers,
    ingress: InterfaceId,
    src_mac: MacAddr,
    st: &mut WorkerState,
    fwd: &Forwarding,
) -> Result<Option<Action>, DropReason> {
    let (l3, l4) = (usize::from(h.l3_offset), usize::from(h.l4_offset));
    let (target, sender_mac) = {
        let Ok(icmp) = Icmpv6Packet::new_checked(&frame[l4..]) else {
            return Ok(None);
        };
        if let Some((target, mac)) = icmp.na_target_mac() {
            // An answer to our own solicitation (or news): learnt, then the kernel's too.
            st.gleaned.learn(fwd, IpAddr::V6(target), mac);
            return Ok(None);
        }
        match icmp.ns_target() {
            Some(t) => (t, icmp.ns_source_mac()),
            None => return Ok(None),
        }
    };
    let Some(fe) = fwd.frontend(IpAddr::V6(target)) else {
        return Ok(None);
    };
    let (IpAddr::V6(asker), Some(asker_mac)) = (h.src, sender_mac) else {
        // Duplicate-address detection (from ::) or no link-layer option: nothing to answer.
        return Err(DropReason::Unsupported);
    };
    st.gleaned.learn(fwd, h.src, asker_mac);
    let mac = fwd.frontends[fe as usize].mac;
    let end = l4 + 32;
    Icmpv6Packet::new_checked(&mut frame[l4..end])?.make_neighbour_advert_in_place(mac)?;
    let mut ip = Ipv6Packet::new_checked(&mut frame[l3..])?;
    ip.set_src(target);
    ip.set_dst(asker);
    ip.set_hop_limit(255);
    Icmpv6Packet::new_checked(&mut frame[l4..end])?.fill_checksum(target, asker);
    let mut eth = EthernetFrame::new_checked(&mut *frame)?;
    eth.set_dst(src_mac);
    eth.set_src(mac);
    Ok(Some(Action::Transmit {
        interface: ingress,
        backend: None,
    }))
}

/// Whether the packet is a ping (ICMP or ICMPv6 echo request).
fn is_echo_request(frame: &[u8], h: &Headers) -> bool {
    let Some(msg) = frame.get(usize::from(h.l4_offset)..) else {
        return false;
    };
    match h.proto {
        IpProtocol::ICMP => IcmpPacket::new_checked(msg)
            .is_ok_and(|m| m.msg_type() == IcmpType::ECHO_REQUEST && m.code() == 0),
        IpProtocol::ICMPV6 => Icmpv6Packet::new_checked(msg)
            .is_ok_and(|m| m.msg_type() == Icmpv6Type::ECHO_REQUEST && m.code() == 0),
        _ => false,
    }
}

/// Answers a ping to a frontend in place, out of the interface it came in on.
fn echo_reply(frame: &mut [u8], h: &Headers, ingress: InterfaceId) -> Result<Action, DropReason> {
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

#[derive(Clone, Copy)]
enum Side {
    Src,
    Dst,
}

/// NAT's address rewrite with every checksum kept right: IPv4 (header and transport),
/// IPv6 (transport), and IPv6 fragments, whose transport checksum only the first carries.
fn set_address(frame: &mut [u8], h: &Headers, side: Side, addr: IpAddr) -> Result<(), DropReason> {
    let l3 = usize::from(h.l3_offset);
    match (addr, side) {
        (IpAddr::V4(a), Side::Dst) => rewrite_ipv4_dst(&mut frame[l3..], a)?,
        (IpAddr::V4(a), Side::Src) => rewrite_ipv4_src(&mut frame[l3..], a)?,
        (IpAddr::V6(a), _) if h.fragment => {
            let (_, offset) = fragment_id(frame, h)?;
            let mut ip = Ipv6Packet::new_checked(&mut frame[l3..])?;
            let old = match side {
                Side::Src => ip.src(),
                Side::Dst => ip.dst(),
            };
            match side {
                Side::Src => ip.set_src(a),
                Side::Dst => ip.set_dst(a),
            }
            // The first fragment holds the transport header, whose checksum covers the
            // pseudo-header's addresses (parse_headers checked it is all there).
            let at = match h.proto {
                IpProtocol::TCP => Some(16),
                IpProtocol::UDP => Some(6),
                _ => None,
            };
            if let (0, Some(at)) = (offset, at) {
                let at = usize::from(h.l4_offset) + at;
                let field = frame.get_mut(at..at + 2).ok_or(DropReason::Truncated)?;
                let csum =
                    checksum::update_ipv6_addr(u16::from_be_bytes([field[0], field[1]]), old, a);
                field.copy_from_slice(&csum.to_be_bytes());
            }
        }
        (IpAddr::V6(a), Side::Dst) => rewrite_ipv6_dst(&mut frame[l3..], a)?,
        (IpAddr::V6(a), Side::Src) => rewrite_ipv6_src(&mut frame[l3..], a)?,
    }
    Ok(())
}

/// Port translation: rewrites a TCP or UDP port, updating the checksum incrementally.
fn set_port(frame: &mut [u8], h: &Headers, side: Side, port: u16) -> Result<(), DropReason> {
    let l4 = frame
        .get_mut(usize::from(h.l4_offset)..)
        .ok_or(DropReason::Truncated)?;
    match (h.proto, side) {
        (IpProtocol::TCP, Side::Src) => TcpPacket::new_checked(l4)?.set_src_port(port),
        (IpProtocol::TCP, Side::Dst) => TcpPacket::new_checked(l4)?.set_dst_port(port),
        (IpProtocol::UDP, Side::Src) => UdpPacket::new_checked(l4)?.set_src_port(port),
        (IpProtocol::UDP, Side::Dst) => UdpPacket::new_checked(l4)?.set_dst_port(port),
        _ => {}
    }
    Ok(())
}

fn set_macs(frame: &mut [u8], dst: MacAddr, src: MacAddr) -> Result<(), DropReason> {
    let mut eth = EthernetFrame::new_checked(frame)?;
    eth.set_dst(dst);
    eth.set_src(src);
    Ok(())
}

fn is_broadcast_or_multicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_broadcast() || a.is_multicast(),
        IpAddr::V6(a) => a.is_multicast(),
    }
}
#[cfg(test)]
#[path = "process_tests/mod.rs"]
mod tests;
