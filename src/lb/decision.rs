//! The decision: which backend a packet of a flow goes to. One function, [`decide`], that the
//! data plane's fast path and slow path, ICMP-error steering and `haports lookup` all call, so
//! that they can never disagree.
//!
//! A flow is balanced by a frontend's rules: the most specific rule for its protocol and port
//! when addressed to the frontend ([`Via::Frontend`]), the frontend's HA-ports rule when routed
//! through it ([`Via::Transit`]). An established flow keeps the backend its worker remembered
//! ([`Flows`]) while that backend may keep it; a new one takes the pool's Maglev choice for its
//! symmetric hash, which every instance with the same config shares.

use super::flow::FlowKey;
use super::flow_table::{BucketMemory, Slot};
use super::forwarding::{BackendId, Decision, Forwarding, FrontendId, ReverseNat, RuleState};
use super::verdict::DropReason;
use crate::config::{Distribution, RuleProtocol};
use crate::wire::{is_broadcast_or_multicast, is_unicast_link_local};

/// Idle timeout of a TCP flow once a FIN or RST was seen.
pub const CLOSING_TIMEOUT_MS: u64 = 10_000;

/// Idle timeout of a flow seen in one packet only, or in nothing but TCP SYNs: a flood from
/// forged sources (SYNs, ACKs, datagrams, one each) makes entries that go soon, and a flow
/// earns its rule's idle timeout with its next packet other than a SYN.
pub const SYN_TIMEOUT_MS: u64 = 5_000;

/// A flow-table value: the backend id, and this bit once the flow is closing (TCP FIN or RST
/// seen), which keeps its timeout short for the packets that follow.
const CLOSING: u32 = 1 << 31;

/// A flow-table value's bit while the flow has shown one packet or nothing but SYNs
/// ([`SYN_TIMEOUT_MS`]).
const OPENING: u32 = 1 << 30;

/// The backend id in a flow-table value.
const BACKEND: u32 = !(CLOSING | OPENING);

/// How a packet came to be balanced by a frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Addressed to the frontend: its most specific rule, NAT unless floating.
    Frontend,
    /// Routed through it (the NVA case): its HA-ports rule, and only the MAC header changes.
    Transit,
}

/// What the flow memory is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// A packet of the flow: a hit refreshes the entry, a new flow is remembered.
    Record,
    /// About the flow (an ICMP error): read what is remembered, expired or not; change
    /// nothing.
    Peek,
}

/// What [`decide`] found for a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub frontend: FrontendId,
    /// The rule's index in its frontend's rules.
    pub rule: u32,
    pub backend: BackendId,
    /// Destination NAT to the backend (a non-floating rule, addressed to the frontend).
    pub nat: bool,
    /// The backend port a NATed packet's destination port becomes (a port-translating rule).
    pub port: Option<u16>,
    /// A new decision (not an established flow's).
    pub new: bool,
}

impl Decided {
    pub fn decision(&self) -> Decision {
        Decision {
            frontend: self.frontend,
            rule: self.rule,
            backend: self.backend,
        }
    }
}

/// The decision for a packet of `flow` balanced by frontend `fe`, arrived `via`.
///
/// With [`Memory::Record`], an established flow keeps its backend while
/// [`Forwarding::keeps_flow`] allows and its entry is refreshed (a FIN or RST shortens its
/// timeout); a new flow takes the Maglev choice and is remembered.
///
/// Inlined into its few callers: its result then stays in registers instead of going through
/// memory on the per-packet path.
#[inline(always)]
pub fn decide<M: BucketMemory>(
    fwd: &Forwarding,
    flows: &mut Flows<M>,
    fe: FrontendId,
    via: Via,
    flow: &Flow,
    now_ms: u64,
    memory: Memory,
) -> Result<Decided, DropReason> {
    let (rule_index, rule) = match via {
        // A frontend whose first rule takes everything has no other (HA ports sort last):
        // no need for the packet's port.
        Via::Frontend => match fwd.frontends.get(fe as usize).and_then(|f| f.rules.first()) {
            Some(first) if first.protocol == RuleProtocol::All => Some((0, first)),
            _ => fwd.rule(fe, flow.proto(), flow.dst_port()),
        }
        .ok_or(DropReason::NoRule)?,
        // A frontend without an HA-ports rule allows no transit: the packet was addressed to
        // neither it nor the appliance; nor one with a backend it cannot reach by MAC; nor one
        // of the other family (its MAC was learnt for its own: an IPv4 frontend's by ARP).
        Via::Transit => fwd
            .transit_rule(fe)
            .filter(|_| fwd.frontends[fe as usize].address.is_ipv4() == flow.packet().src.is_ipv4())
            .ok_or(DropReason::NoFrontend)?,
    };
    let nat = via == Via::Frontend && !rule.floating_ip;
    let port = if nat { rule.translated_port } else { None };
    let decided = |backend, new| Decided {
        frontend: fe,
        rule: rule_index,
        backend,
        nat,
        port,
        new,
    };
    let found = flows.remembered(flow, now_ms, memory);
    if let Some((value, at)) = found {
        let backend = value & BACKEND;
        if fwd.keeps_flow(rule.pool, backend) {
            if value & (OPENING | CLOSING) == 0 && !flow.changes_state() {
                if memory == Memory::Record {
                    // Established and staying so: only its time moves.
                    flows.remember(flow, at, value, now_ms, rule.idle_timeout_ms);
                }
                return Ok(decided(backend, false));
            }
            if !reopens_elsewhere(fwd, flow, value) {
                if memory == Memory::Record {
                    established_change(flows, rule, flow, (value, at), now_ms);
                }
                return Ok(decided(backend, false));
            }
        }
    }
    new_decision(fwd, flows, rule, flow, now_ms, memory, found).map(|(b, new)| decided(b, new))
}

/// Whether a SYN on a five-tuple whose entry is established or closing starts a connection
/// of its own, decided afresh: where the entry's backend takes no new flows (drained, weight
/// 0, a lower tier's while a better one serves), the client reusing its port would otherwise
/// go on opening connections to it for as long as the entry lives. A retransmitted SYN finds
/// its entry still opening, and stays. Out of line, as few packets come here.
#[cold]
#[inline(never)]
fn reopens_elsewhere(fwd: &Forwarding, flow: &Flow, value: u32) -> bool {
    flow.only_opens() && value & OPENING == 0 && !fwd.takes_new(value & BACKEND)
}

/// An established flow's packet where its state may change (a SYN, FIN or RST; a flow opening
/// or closing), written again with the new state's timeout (the handshake's ACK turns a lone
/// SYN's 5 s into the idle timeout): out of line, as few packets come here (the fast path's
/// NAT took 439.7 instructions a packet with the state's bits worked out inline for every
/// packet, 423.5 so; callgrind, 1k flows).
#[cold]
#[inline(never)]
fn established_change<M: BucketMemory>(
    flows: &mut Flows<M>,
    rule: &RuleState,
    flow: &Flow,
    (value, at): (u32, Option<Slot>),
    now_ms: u64,
) {
    let value = flow.value(value & BACKEND, Some(value));
    flows.remember(flow, at, value, now_ms, timeout(rule, value));
}

/// The decision for a flow `found` nowhere, or on a backend that may not keep it: the same
/// backend in the rule's state of its pool where the flow's is another state of that pool
/// (a reload changed the rule's probe) and it may keep the flow there; else the Maglev choice
/// (true: a new decision), remembered with [`Memory::Record`]. Out of line, so that an
/// established flow's path, inlined into its callers, is not compiled around this code (the
/// fast path's stage 2 went from 473 stack references to 300).
#[inline(never)]
fn new_decision<M: BucketMemory>(
    fwd: &Forwarding,
    flows: &mut Flows<M>,
    rule: &RuleState,
    flow: &Flow,
    now_ms: u64,
    memory: Memory,
    found: Option<(u32, Option<Slot>)>,
) -> Result<(BackendId, bool), DropReason> {
    if let Some((value, at)) = found {
        let remembered = value & BACKEND;
        let same = fwd.counterpart(rule.pool, remembered);
        if let Some(backend) = same.filter(|&b| fwd.keeps_flow(rule.pool, b)) {
            if memory == Memory::Record {
                // The entry keeps a backend that still serves in its own pool (a two-NIC
                // NVA's other side, which the other direction's packets find at once), and
                // takes this one in place of a retired or failed one.
                let own = fwd.link(remembered).is_some_and(|l| l.keeps_flows);
                let kept = if own { remembered } else { backend };
                let value = flow.value(kept, Some(value));
                flows.remember(flow, at, value, now_ms, timeout(rule, value));
            }
            return Ok((backend, false));
        }
    }
    let backend = fwd
        .pick(
            rule.pool,
            flow.decision_hash(fwd.hash_seed, rule.distribution),
        )
        .ok_or(DropReason::NoHealthyBackend)?;
    if memory == Memory::Record {
        // A flow moved keeps its state (a closing one its short timeout); a SYN opens.
        let before = found.map(|(v, _)| v).filter(|_| !flow.only_opens());
        let value = flow.value(backend, before);
        let at = found.and_then(|(_, at)| at);
        let refused = flows.refused;
        flows.remember(flow, at, value, now_ms, timeout(rule, value));
        flows.refused_last = flows.refused != refused;
    }
    Ok((backend, true))
}

/// The frontend (and port) a NAT reply from a backend whose replies the rules cannot map
/// back ([`Forwarding::reply_candidates`]: an HA-ports rule and a port rule of another
/// frontend share its address) returns from: the one whose flow `flows` holds, live, on that
/// backend. Each candidate rule names the flow the reply would belong to (its client, the
/// frontend, and the frontend port: the reply's source port under HA ports, the rule's own
/// where it translates the backend port the reply comes from); its entry, renewed by the
/// client's packets, is looked up without being renewed (but for a datagram answering a flow
/// seen in one client packet: that earns it the idle timeout). `None` where no candidate's
/// live flow is on this backend: the caller falls back to the rules' mapping.
pub fn reply_frontend<M: BucketMemory>(
    fwd: &Forwarding,
    flows: &mut Flows<M>,
    reply: &FlowKey,
    now_ms: u64,
    answer: Answer,
) -> Option<ReverseNat> {
    for &(fe, r) in fwd.reply_candidates(reply.src) {
        let Some(frontend) = fwd.frontends.get(fe as usize) else {
            continue;
        };
        let Some(rule) = frontend.rules.get(r as usize) else {
            continue;
        };
        let port = match rule.translated_port {
            Some(p) if p == reply.src_port => rule.frontend_port,
            Some(_) => continue,
            None => reply.src_port,
        };
        // The flow is that rule's: the rule its frontend gives its protocol and port.
        if fwd.rule(fe, reply.proto, port).map(|(i, _)| i) != Some(r) {
            continue;
        }
        let client = FlowKey {
            proto: reply.proto,
            src: reply.dst,
            dst: frontend.address,
            src_port: reply.dst_port,
            dst_port: port,
        };
        let flow = Flow::new(client, 0, flows.secret);
        let Some(value) = flows.live(&flow, now_ms) else {
            continue;
        };
        // Packets go to the kept backend's counterpart in the rule's pool where it has one.
        let kept = value & BACKEND;
        let to = fwd.counterpart(rule.pool, kept).unwrap_or(kept);
        if fwd
            .backends
            .get(to as usize)
            .is_some_and(|b| b.address == reply.src)
        {
            // A flow seen in one packet of its client, answered, earns the idle timeout: a
            // UDP request whose answers go on for longer than the opening timeout keeps
            // their frontend.
            if answer == Answer::Datagram && value & (OPENING | CLOSING) == OPENING {
                if let Some((_, at)) = flows.remembered(&flow, now_ms, Memory::Record) {
                    let answered = value & !OPENING;
                    flows.remember(&flow, at, answered, now_ms, rule.idle_timeout_ms);
                }
            }
            return Some(ReverseNat {
                frontend: frontend.address,
                frontend_port: translates(rule).then_some(port),
            });
        }
    }
    None
}

/// What a backend's packet that [`reply_frontend`] maps back is to its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A datagram (not TCP): it confirms a flow seen in one client packet.
    Datagram,
    /// A TCP segment (the client's ACK confirms a TCP flow, not a SYN-ACK to a forged SYN)
    /// or an ICMP error (no answer at all): it confirms nothing.
    Other,
}

/// The offline decision `haports lookup` prints, by the same [`decide`] and with no flow
/// remembered: a flow to a frontend is balanced by its rules; any other flow only `via` a
/// frontend used as next hop, by its HA-ports rule (transit). A flow the data plane drops
/// by its addresses alone is refused for the same reason first: a martian source (the
/// appliance's own addresses and frontends among them, or IPv6 link-local), a group or
/// martian destination. A flow to one of the appliance's own addresses, which the data plane
/// hands its kernel twin, is no rule's: `NoFrontend`, even `via` a frontend.
pub fn lookup(
    fwd: &Forwarding,
    key: &FlowKey,
    via: Option<FrontendId>,
) -> Result<Decision, DropReason> {
    if fwd.is_martian_source(key.src) || is_unicast_link_local(key.src) {
        return Err(DropReason::MartianSource);
    }
    if is_broadcast_or_multicast(key.dst) {
        return Err(DropReason::NotForUs);
    }
    if fwd.is_martian_destination(key.dst) {
        return Err(DropReason::MartianDestination);
    }
    if fwd.own_address(key.dst).is_some() {
        return Err(DropReason::NoFrontend);
    }
    let (fe, how) = match fwd.frontend(key.dst) {
        Some(fe) => (fe, Via::Frontend),
        None => (via.ok_or(DropReason::NoFrontend)?, Via::Transit),
    };
    let mut flows = Flows::with_capacity(0);
    let flow = Flow::new(*key, 0, flows.secret);
    decide(fwd, &mut flows, fe, how, &flow, 0, Memory::Record).map(|d| d.decision())
}

/// How long a flow's entry lives idle: short once closing or while only opening.
fn timeout(rule: &RuleState, value: u32) -> u64 {
    if value & CLOSING != 0 {
        CLOSING_TIMEOUT_MS.min(rule.idle_timeout_ms)
    } else if value & OPENING != 0 {
        SYN_TIMEOUT_MS.min(rule.idle_timeout_ms)
    } else {
        rule.idle_timeout_ms
    }
}

/// Whether `rule` translates ports (a non-HA-ports rule with a backend port).
fn translates(rule: &RuleState) -> bool {
    rule.translated_port.is_some()
}

#[path = "decision_flows.rs"]
mod flows;
pub use flows::Flows;

#[path = "decision_flow.rs"]
mod flow;
pub use flow::{Flow, TableKey};

#[cfg(test)]
#[path = "decision_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "distribution_tests.rs"]
mod distribution_tests;
