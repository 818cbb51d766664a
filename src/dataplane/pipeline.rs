//! A burst through the worker, in stages (DESIGN §2; VPP's graph nodes and
//! `rte_hash_lookup_bulk` work the same way):
//!
//! 1. parse and classify every packet on the fast path, for plain IPv4 TCP and UDP to a
//!    frontend (fixed offsets, one length check, the frontend found by address in one probe),
//!    compute its flow hash once and prefetch the flow's first flow-table bucket (where nearly
//!    every flow lives), so that the memory latency of the whole burst overlaps;
//! 2. decide and rewrite each packet in order: fast ones with the prefetched state, through
//!    the same decision and rewrite as the slow path; IPv6 TCP and UDP to a frontend (no
//!    extension headers) classified on a fast path of its own (their flows live in the side
//!    table); everything else (ARP/ND, pings, ICMP errors, fragments, the appliance's own
//!    addresses, NAT replies, transit, drops) through [`process`], which keeps every
//!    behaviour of the slow path.
//!
//! Packets are handled in arrival order in stage 2, so a flow's state changes in the order
//! its packets came, whichever path they take.
//!
//! Where the flow table is large, the worker runs the stages a burst apart ([`classify_burst`]
//! on the burst just received, then [`decide_burst`] on the one before it), so that a burst's
//! buckets are requested a whole burst's work before they are read; below that it runs both
//! on each burst at once, as [`process_burst`] does (`decides_apart`, in the worker).

use super::action::Action;
use super::classify::{classify_fast, classify_fast6};
use super::counters::{count_backend, Traffic};
use super::ctx::Ctx;
use super::fragmenter::Spill;
use super::nat::deliver_v4;
use super::packet_buffer::PacketBuffer;
use super::slow::{decide_flow, process, to_backend};
use super::state::WorkerState;
use super::vxlan;
use crate::dpdk::{prefetch, BURST};
use crate::lb::decision::{Flow, Via};
use crate::lb::flow::{FlowKey, V4Key};
use crate::lb::forwarding::{Forwarding, FrontendId, InterfaceId};
use crate::lb::hash::table_hash_v4;
use crate::lb::verdict::DropReason;
use crate::wire::{Ipv4Flow, MacAddr};

/// What stage 1 found for a fast-path packet: its fields, canonical key and hash (the
/// [`Flow`] is built from them in stage 2). 48 bytes: a [`Flow`], which can hold an IPv6
/// key, would take 64, and two bursts of these share the first-level cache with the packets.
#[derive(Debug, Clone, Copy, Default)]
struct Fast {
    packet: Ipv4Flow,
    key: V4Key,
    hash: u64,
    frontend: FrontendId,
    /// The packet travels against the key's order.
    reversed: bool,
}

/// Stage 1's findings for a burst, kept for its stage 2. The worker classifies the next
/// burst before it decides this one, so that the flow-table lines of one burst come in
/// while the other is decided.
#[derive(Debug)]
pub struct Classified {
    fast: [Fast; BURST],
    /// Bit i: packet i takes the fast path, as `fast[i]` says.
    mask: u64,
    /// What was classified: how many packets, received where (stage 2 takes the interface
    /// from here), under which forwarding state (its generation). Stage 2 classifies again
    /// where the count or the generation differs (a new state may number its frontends
    /// otherwise).
    len: usize,
    ingress: InterfaceId,
    generation: u64,
}

impl Default for Classified {
    fn default() -> Self {
        Classified {
            fast: [Fast::default(); BURST],
            mask: 0,
            len: 0,
            ingress: 0,
            generation: 0,
        }
    }
}

/// Decides and rewrites a burst of packets received on `ingress`; `actions[i]` says where
/// packet `i` goes. At most [`BURST`] packets. Stage 1 ([`classify_burst`]) then stage 2
/// ([`decide_burst`]).
pub fn process_burst<P: PacketBuffer>(
    packets: &mut [P],
    ingress: InterfaceId,
    st: &mut WorkerState,
    fwd: &Forwarding,
    now_ms: u64,
    actions: &mut [Action],
    spill: &mut Spill<P>,
) {
    let mut classified = Classified::default();
    classify_burst(packets, ingress, st, fwd, &mut classified);
    decide_burst(packets, &classified, st, fwd, now_ms, actions, spill);
}

/// Stage 1: parses and classifies a burst received on `ingress` (at most [`BURST`]
/// packets), hashes the fast ones' flows and prefetches their first buckets. Changes nothing
/// but `out`.
pub fn classify_burst<P: PacketBuffer>(
    packets: &mut [P],
    ingress: InterfaceId,
    st: &WorkerState,
    fwd: &Forwarding,
    out: &mut Classified,
) {
    let n = packets.len().min(BURST);
    for p in &packets[..n] {
        p.prefetch();
    }
    out.len = n;
    out.ingress = ingress;
    out.generation = fwd.generation;
    out.mask = 0;
    let Some(our_mac) = fwd.interfaces.get(ingress as usize).map(|ifc| ifc.mac) else {
        return;
    };
    for (i, p) in packets[..n].iter_mut().enumerate() {
        if p.is_chained() {
            continue;
        }
        let checked = p.ip_checksum_good();
        if let Some((packet, frontend)) = classify_fast(p.bytes(), checked, our_mac, fwd) {
            let fast = &mut out.fast[i];
            fast.packet = packet;
            fast.frontend = frontend;
            out.mask |= 1u64 << i;
        }
    }
    // Then each fast packet's key and hash, and its flow's bucket requested: the requests
    // close together, so that where they need page walks the walks overlap (issued one per
    // packet between the classifications, the burst bench at 1M flows took 2.95 µs instead
    // of 1.84 µs); in a loop of their own, the classification's loop holds fewer values.
    let (table, secret) = (&st.flows.v4, st.flows.secret);
    let mut left = out.mask;
    while left != 0 {
        let f = &mut out.fast[left.trailing_zeros() as usize];
        left &= left - 1;
        let (key, reversed) = Flow::v4_order(&f.packet);
        f.key = key;
        f.hash = table_hash_v4(&key, secret);
        f.reversed = reversed;
        prefetch(table.first_bucket_of(f.hash));
    }
}

/// Requests the first bucket of each fast packet's flow of a classified burst.
///
/// The worker requests them twice where the table is large ([`prefetch_buckets_again`]):
/// in stage 1, then again once it has decided the burst before. A request that needs a page
/// walk seems to bring in the page's translation but not always the line (`perf` on the
/// worker with a million flows: a burst later, the bucket's first load still held two fifths
/// of stage 2's samples); the second finds the translation and brings the line (through the
/// pipeline without DPDK at 1M flows, 61.1 → 53.9 ns a packet; 0.8 ns more at 1k, where
/// nothing misses).
fn prefetch_buckets(found: &Classified, st: &WorkerState) {
    let table = &st.flows.v4;
    for (i, f) in found.fast[..found.len].iter().enumerate() {
        if found.mask & (1u64 << i) != 0 {
            prefetch(table.first_bucket_of(f.hash));
        }
    }
}

/// Buckets in use from which the worker requests a classified burst's buckets a second time
/// ([`prefetch_buckets_again`]): 1 MiB of them. Below that the table sits in the second-level
/// cache, where the first request brings every line.
const AGAIN_FROM_BUCKETS: usize = 1 << 14;

/// [`prefetch_buckets`] a second time, where the flow table is large enough for the first
/// request to miss its line: beyond a level of [`AGAIN_FROM_BUCKETS`]. Where it is not (a
/// thousand flows take 1024 buckets) the second pass cost 17 instructions a packet
/// (callgrind, 1k flows, NAT) for nothing.
pub fn prefetch_buckets_again(found: &Classified, st: &WorkerState) {
    if st.flows.v4.buckets_in_use() >= AGAIN_FROM_BUCKETS {
        prefetch_buckets(found, st);
    }
}

/// Stage 2: decides and rewrites the burst `classified` describes, in arrival order;
/// `actions[i]` says where packet `i` goes. Classifies it again first where it was
/// classified under another forwarding state, or is not the burst described.
///
/// Counts each packet decided for a backend in [`WorkerState::traffic`] (its frame as it
/// leaves), and returns true, unless backends behind VXLAN may take some: their frames are
/// counted as sent, encapsulated, by the caller. Counted here, where the backend and the
/// frame's length are at hand: 5 instructions a packet fewer than as sent (docs/performance.md).
#[allow(clippy::too_many_arguments)]
pub fn decide_burst<P: PacketBuffer>(
    packets: &mut [P],
    classified: &Classified,
    st: &mut WorkerState,
    fwd: &Forwarding,
    now_ms: u64,
    actions: &mut [Action],
    spill: &mut Spill<P>,
) -> bool {
    let n = packets.len().min(BURST).min(actions.len());
    let ingress = classified.ingress;
    if classified.generation != fwd.generation || classified.len != packets.len().min(BURST) {
        let mut again = Classified::default();
        classify_burst(packets, ingress, st, fwd, &mut again);
        return decide_burst(packets, &again, st, fwd, now_ms, actions, spill);
    }
    let (fast, fast_mask) = (&classified.fast, classified.mask);
    let our_mac = fwd.interfaces.get(ingress as usize).map(|ifc| ifc.mac);
    // Who sent each packet (rewritten on the way to a backend): where an ICMP error about one
    // too big for a VXLAN tunnel goes back to.
    let senders = fwd.has_vxlan().then(|| vxlan::senders(&mut packets[..n]));
    // Out of the state for the burst (see `WorkerState::traffic`), back at the end.
    let counted = st.traffic.take();
    let traffic: &[Traffic] = match &counted {
        Some(counted) if senders.is_none() => counted,
        _ => &[],
    };
    let mut cx = Ctx { fwd, st, now_ms };
    // Runs of fast packets go through a loop of their own, apart from the other paths' code
    // (which made the compiler keep more of the fast path's values on the stack;
    // docs/performance.md has the count); a packet between runs goes alone.
    let mut i = 0;
    while i < n {
        let run = ((fast_mask >> i).trailing_ones() as usize).min(n - i);
        if run > 0 {
            let (p, a) = (&mut packets[i..i + run], &mut actions[i..i + run]);
            decide_fast(p, &fast[i..i + run], &mut cx, traffic, a);
            i += run;
        } else {
            let action = decide_other(&mut packets[i], ingress, our_mac, &mut cx);
            if let Action::Transmit {
                backend: Some(b), ..
            } = action
            {
                count_backend(traffic, b, packets[i].bytes().len() as u64);
            }
            actions[i] = action;
            i += 1;
        }
    }
    if let Some(senders) = senders {
        let errors = (&mut cx.st.icmp_errors, cx.now_ms);
        tunnel(
            &mut packets[..n],
            (ingress, errors),
            fwd,
            &senders,
            (&mut actions[..n], spill),
        );
    }
    cx.st.traffic = counted;
    senders.is_none()
}

/// Stage 2 of a run of fast packets: the decision, then the rewrite; each packet for a
/// backend counted in `traffic`.
#[inline(never)]
fn decide_fast<P: PacketBuffer>(
    packets: &mut [P],
    fast: &[Fast],
    cx: &mut Ctx,
    traffic: &[Traffic],
    actions: &mut [Action],
) {
    for ((p, f), action) in packets.iter_mut().zip(fast).zip(actions) {
        let flow = Flow::v4(&f.packet, f.key, f.hash, f.reversed);
        match decide_flow(f.frontend, Via::Frontend, &flow, cx) {
            Ok(d) => {
                let frame = p.bytes();
                let len = frame.len() as u64;
                deliver_v4(frame, &f.packet, d, cx.fwd, action);
                if let Action::Transmit {
                    backend: Some(b), ..
                } = *action
                {
                    count_backend(traffic, b, len);
                }
            }
            Err(reason) => *action = Action::Drop(reason),
        }
    }
}

/// Stage 2 of a packet off the IPv4 fast path: IPv6 TCP and UDP to a frontend on a fast path
/// of its own, anything else through the slow path.
#[inline(never)]
fn decide_other<P: PacketBuffer>(
    p: &mut P,
    ingress: InterfaceId,
    our_mac: Option<MacAddr>,
    cx: &mut Ctx,
) -> Action {
    let fwd = cx.fwd;
    if p.is_chained() {
        Action::Drop(DropReason::Unsupported)
    } else if let Some((h, frontend)) = our_mac.and_then(|m| classify_fast6(p.bytes(), m, fwd)) {
        // IPv6 TCP and UDP to a frontend: its flows live in the side table, which has
        // nothing to prefetch, so it is classified here rather than in stage 1.
        let frame = p.bytes();
        let flow = Flow::new(FlowKey::of(&h), h.tcp_flags, cx.st.flows.secret);
        to_backend(frame, &h, frontend, Via::Frontend, &flow, None, cx).unwrap_or_else(Action::Drop)
    } else {
        process(p.bytes(), ingress, cx.st, fwd, cx.now_ms)
    }
}

/// One packet through the slow path alone ([`process`]), then inside the tunnel where it is
/// decided for a backend behind VXLAN: what [`decide_burst`] does to a packet off the fast
/// path, and what the fuzz target holds the burst pipeline to.
pub fn process_alone<P: PacketBuffer>(
    p: &mut P,
    ingress: InterfaceId,
    st: &mut WorkerState,
    fwd: &Forwarding,
    now_ms: u64,
    spill: &mut Spill<P>,
) -> Action {
    let one = std::slice::from_mut(p);
    let senders = fwd.has_vxlan().then(|| vxlan::senders(one));
    let mut action = [process(one[0].bytes(), ingress, st, fwd, now_ms)];
    if let Some(senders) = senders {
        let errors = (&mut st.icmp_errors, now_ms);
        tunnel(one, (ingress, errors), fwd, &senders, (&mut action, spill));
    }
    action[0]
}

/// Packets decided for backends behind VXLAN, as addressed to them, go inside the tunnel.
#[inline(never)]
fn tunnel<P: PacketBuffer>(
    packets: &mut [P],
    (ingress, errors): (InterfaceId, vxlan::Errors),
    fwd: &Forwarding,
    senders: &[[u8; 6]; BURST],
    (actions, spill): (&mut [Action], &mut Spill<P>),
) {
    for ((p, action), sender) in packets.iter_mut().zip(actions).zip(senders) {
        if let Action::Transmit {
            interface,
            backend: Some(b),
        } = *action
        {
            match fwd.tunnel(b) {
                Some(v) => {
                    let from = ((ingress, *sender), (&mut *errors.0, errors.1));
                    let out = (interface, &mut *spill);
                    *action = vxlan::encapsulate(p, (b, v), fwd, from, out);
                }
                // Behind VXLAN with the tunnel's next hop unresolved: never out unwrapped.
                None if fwd
                    .backends
                    .get(b as usize)
                    .is_some_and(|be| be.vxlan.is_some()) =>
                {
                    *action = Action::Drop(DropReason::NoNeighbour);
                }
                None => {}
            }
        }
    }
}
