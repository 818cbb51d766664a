//! What a worker does about neighbours. It learns nothing itself: the control thread owns
//! the neighbour cache (`control::neighbours`) and publishes it in the forwarding state. A
//! worker reports what it needs (a next hop it has no MAC for, or one gone stale) and what
//! it heard (answers to the appliance's solicitations, and announcements that at most make
//! the control thread ask again), and holds the few packets that wait for an answer.

use std::net::IpAddr;
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use super::action::Action;
use super::asking::Asking;
use super::exception::TokenBucket;
use crate::lb::forwarding::{BackendId, Forwarding, InterfaceId};
use crate::lb::verdict::DropReason;
use crate::wire::{parse_headers, MacAddr};

/// What a worker tells the control thread about a neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// A next hop out of `interface` that a packet needs: unknown, or known but stale.
    Want {
        interface: InterfaceId,
        addr: IpAddr,
    },
    /// What may answer one of the appliance's own solicitations: an ARP reply to an own
    /// address, sent to the interface's MAC; a solicited neighbour advertisement with hop
    /// limit 255 and a valid checksum. Taken only if a solicitation is outstanding.
    Answer {
        interface: InterfaceId,
        addr: IpAddr,
        mac: MacAddr,
    },
    /// Anything else that claims `addr` is at `mac` (an ARP request's sender, gratuitous ARP,
    /// an unsolicited advertisement): at most a reason to ask again.
    Hint {
        interface: InterfaceId,
        addr: IpAddr,
        mac: MacAddr,
    },
}

/// How long a worker waits before it reports the same want again.
const WANT_AGAIN_MS: u64 = 100;

/// How long a worker waits before it reports a hint about the same neighbour again: a host
/// that sends from two MACs (ARP flux, a VRRP router's physical MAC) would otherwise have
/// the control thread ask again ten times a second.
const HINT_AGAIN_MS: u64 = 1_000;

/// The reports queue's size: what the control thread takes at most a round.
pub const REPORTS: usize = 4096;

/// Wants remembered per worker to report each once per [`WANT_AGAIN_MS`].
const RECENT_WANTS: usize = 16;

/// New next hops a worker reports a second at most (a tenth of a second's worth at once):
/// packets from made-up sources on a segment would each have the control thread broadcast
/// a solicitation, and send it twice more unanswered.
pub const WANTS_PER_S: u32 = 1000;

/// How long a worker waits before it reports the same answer (an address at the same MAC)
/// again: a flood of one forged ARP reply is one report in this time, and where it copies a
/// real answer, the control thread has that at most this late. (Where the copy came while
/// the control thread was not asking yet, its solicitation's answer may be the one held
/// back: then the solicitation's retry, 500 ms later, brings it.)
pub const ANSWER_AGAIN_MS: u64 = 20;

/// Answers a worker reports a second at most, of those about addresses being asked for (a
/// tenth of a second's worth at once: 4096, the control thread's whole cache asked for at
/// once). Answers naming such an address from ever new MACs would otherwise each take a
/// place in the queue and the control thread's time.
pub const ANSWERS_PER_S: u32 = 40_960;

/// Hints a worker reports a second at most: claims about known neighbours that collide in
/// its table of recent hints get past it, and each hint makes the control thread ask again.
pub const HINTS_PER_S: u32 = 1000;

/// The room at the end of the reports queue only answers take: wants and hints, which a
/// flood can make, stop short of it, so that the answers to the appliance's own
/// solicitations (a backend's MAC verified) are not crowded out.
pub const ANSWERS_ROOM: usize = REPORTS / 4;

/// A worker's end of the reports queue.
#[derive(Debug)]
pub struct NeighbourReports {
    queue: Arc<ArrayQueue<Report>>,
    /// Recent wants (address, when), direct-mapped by address.
    recent: [(Option<IpAddr>, u64); RECENT_WANTS],
    /// Recent hints, the same way: a flood of claims about one neighbour is one hint.
    recent_hints: [(Option<IpAddr>, u64); RECENT_WANTS],
    /// Recent answers (address and MAC, when), direct-mapped by address.
    recent_answers: [(Option<(IpAddr, MacAddr)>, u64); RECENT_WANTS],
    /// The neighbours the control thread is asking for: answers about others are not
    /// reported as answers.
    pub asking: Arc<Asking>,
    /// Answers heard and not reported: about addresses nobody asked for and no news,
    /// repeated, over the rate, or finding the queue full.
    pub ignored: u64,
    /// Wants, answers and hints reported, at [`WANTS_PER_S`], [`ANSWERS_PER_S`] and
    /// [`HINTS_PER_S`].
    wants: TokenBucket,
    answers: TokenBucket,
    hints: TokenBucket,
}

impl NeighbourReports {
    pub fn new(queue: Arc<ArrayQueue<Report>>) -> Self {
        NeighbourReports {
            queue,
            recent: [(None, 0); RECENT_WANTS],
            recent_hints: [(None, 0); RECENT_WANTS],
            recent_answers: [(None, 0); RECENT_WANTS],
            asking: Arc::default(),
            ignored: 0,
            wants: TokenBucket::full(WANTS_PER_S),
            answers: TokenBucket::full(ANSWERS_PER_S),
            hints: TokenBucket::full(HINTS_PER_S),
        }
    }

    /// Reports on `queue`, answers where `asking` says the control thread asks.
    pub fn answering(queue: Arc<ArrayQueue<Report>>, asking: Arc<Asking>) -> Self {
        NeighbourReports {
            asking,
            ..Self::new(queue)
        }
    }

    /// Whether the queue has room for a want or a hint (short of [`ANSWERS_ROOM`]).
    fn room_for_news(&self) -> bool {
        self.queue.len() < REPORTS - ANSWERS_ROOM
    }

    /// A queue for workers' reports to the control thread.
    pub fn new_queue() -> Arc<ArrayQueue<Report>> {
        Arc::new(ArrayQueue::new(REPORTS))
    }

    /// Reports that `addr` out of `interface` is needed, unless this worker did so lately, or
    /// has reported [`WANTS_PER_S`] already. Where the queue is short of room (the control
    /// thread is behind) or the rate spent, the want comes again with a later packet.
    pub fn want(&mut self, interface: InterfaceId, addr: IpAddr, now_ms: u64) {
        let recent = reported(&self.recent, addr, addr, now_ms, WANT_AGAIN_MS);
        if recent || !self.room_for_news() || !self.wants.take(now_ms, WANTS_PER_S) {
            return;
        }
        if self.queue.push(Report::Want { interface, addr }).is_ok() {
            note(&mut self.recent, addr, addr, now_ms);
        }
    }

    /// Reports what may answer one of the appliance's solicitations, `addr` at `mac`, where
    /// the control thread is asking for `addr` ([`Asking`]), this worker did not report the
    /// same within [`ANSWER_AGAIN_MS`] and has not reported [`ANSWERS_PER_S`] already. About
    /// another address, only where it is news, as a hint is ([`Self::hint`]): the control
    /// thread counts it as ignored and asks again. Those not reported are counted here.
    pub fn answer(
        &mut self,
        fwd: &Forwarding,
        interface: InterfaceId,
        (addr, mac): (IpAddr, MacAddr),
        now_ms: u64,
    ) {
        let answer = Report::Answer {
            interface,
            addr,
            mac,
        };
        let reported = if self.asking.contains(addr) {
            let again = ANSWER_AGAIN_MS;
            let recent = reported(&self.recent_answers, (addr, mac), addr, now_ms, again);
            let sent = mac.is_unicast()
                && !recent
                && self.answers.take(now_ms, ANSWERS_PER_S)
                && self.queue.push(answer).is_ok();
            if sent {
                note(&mut self.recent_answers, (addr, mac), addr, now_ms);
            }
            sent
        } else {
            self.news(fwd, answer, now_ms)
        };
        self.ignored += u64::from(!reported);
    }

    /// Reports that something claims `addr` is at `mac`, where that is news: `addr` is a
    /// neighbour the published state has resolved to another MAC (a backend's new NIC, an
    /// address taken over), and this worker did not say so about `addr` within
    /// [`HINT_AGAIN_MS`] nor, in all, more than [`HINTS_PER_S`] a second (a tenth of a
    /// second's worth at once). Anything else a hint could say the control thread would
    /// ignore, and a flood of it would crowd the answers out of the queue.
    pub fn hint(
        &mut self,
        fwd: &Forwarding,
        interface: InterfaceId,
        (addr, mac): (IpAddr, MacAddr),
        now_ms: u64,
    ) {
        let hint = Report::Hint {
            interface,
            addr,
            mac,
        };
        self.news(fwd, hint, now_ms);
    }

    /// Reports `claim` (a hint, or an answer nobody asked for) where it is news, as
    /// [`Self::hint`] says; whether it did.
    fn news(&mut self, fwd: &Forwarding, claim: Report, now_ms: u64) -> bool {
        let (Report::Hint { addr, mac, .. } | Report::Answer { addr, mac, .. }) = claim else {
            return false;
        };
        let news = mac.is_unicast() && fwd.neighbour(addr).is_some_and(|known| known != mac);
        let sent = news
            && self.room_for_news()
            && !reported(&self.recent_hints, addr, addr, now_ms, HINT_AGAIN_MS)
            && self.hints.take(now_ms, HINTS_PER_S)
            && self.queue.push(claim).is_ok();
        if sent {
            note(&mut self.recent_hints, addr, addr, now_ms);
        }
        sent
    }
}

/// Whether `key` (about `addr`) was reported within `again_ms`, by the reports `recent`
/// keeps.
fn reported<K: PartialEq>(
    recent: &[(Option<K>, u64); RECENT_WANTS],
    key: K,
    addr: IpAddr,
    now_ms: u64,
    again_ms: u64,
) -> bool {
    let slot = &recent[slot_of(addr)];
    slot.0 == Some(key) && now_ms.saturating_sub(slot.1) < again_ms
}

/// Notes in `recent` that `key` (about `addr`) is reported now.
fn note<K>(recent: &mut [(Option<K>, u64); RECENT_WANTS], key: K, addr: IpAddr, now_ms: u64) {
    recent[slot_of(addr)] = (Some(key), now_ms);
}

fn slot_of(addr: IpAddr) -> usize {
    let folded = match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            u32::from_be_bytes([o[12], o[13], o[14], o[15]])
        }
    };
    (folded as usize ^ (folded as usize >> 7)) % RECENT_WANTS
}

/// The MAC a packet to `dst` is sent to out of the route's interface: its next hop's, as
/// published. A stale entry still serves, and is reported as wanted so that the control
/// thread verifies it; an unknown one is reported and the packet waits ([`Action::Hold`]).
pub(super) fn next_hop_mac(
    fwd: &Forwarding,
    reports: &mut NeighbourReports,
    dst: IpAddr,
    now_ms: u64,
) -> Result<(InterfaceId, Option<MacAddr>), DropReason> {
    let route = fwd.route(dst).ok_or(DropReason::NoNeighbour)?;
    let entry = fwd.neighbour_entry(route.next_hop);
    if entry.map_or(true, |n| n.stale) {
        reports.want(route.interface, route.next_hop, now_ms);
    }
    Ok((route.interface, entry.map(|n| n.mac)))
}

/// How long a packet waits for its next hop to be resolved before it is dropped
/// (`no_neighbour`): the control thread asks three times, 500 ms apart.
pub const HOLD_MS: u64 = 2_000;

/// Packets one worker holds for unresolved next hops; more are dropped (`no_neighbour`).
pub const HOLD_CAPACITY: usize = 64;
// Held packets are ordered by their slots' numbers as bytes.
const _: () = assert!(HOLD_CAPACITY <= 256);

/// What a held packet waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Its destination's next hop out of the interface ([`Action::Hold`]).
    NextHop(InterfaceId),
    /// The backend's MAC ([`Action::HoldForBackend`]).
    Backend(BackendId),
}

/// Packets waiting for their next hop's MAC (the kernel's queue of unresolved packets): a
/// fixed ring, filled by [`Action::Hold`] and [`Action::HoldForBackend`] and released in the
/// order they came when the published state has the MAC, or dropped after [`HOLD_MS`].
/// Packets for backends take at most half of it (a backend whose MAC never comes, a dead
/// host no probe marks down, cannot keep the replies of others from waiting).
#[derive(Debug)]
pub struct Held<P> {
    slots: Vec<Option<Waiting<P>>>,
    len: usize,
    /// Of `len`, the packets waiting for a backend.
    for_backends: usize,
    /// Numbers the packets as they come, so that they leave in that order.
    next: u64,
    /// The state generation held packets were last looked at under: they are looked at again
    /// when a new state is published.
    generation: u64,
    /// The earliest deadline of a held packet: they are looked at again then too.
    due: u64,
}

/// A held packet: what it waits for, since when, and its place in the order of arrival.
#[derive(Debug)]
struct Waiting<P> {
    packet: P,
    wait: Wait,
    since: u64,
    order: u64,
}

impl<P: super::packet_buffer::PacketBuffer> Held<P> {
    pub fn new() -> Self {
        Held {
            slots: (0..HOLD_CAPACITY).map(|_| None).collect(),
            len: 0,
            for_backends: 0,
            next: 0,
            generation: 0,
            due: u64::MAX,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Holds `packet` until what it waits for is known; gives it back when full (for a
    /// backend: when half of the room waits for backends).
    pub fn hold(&mut self, packet: P, wait: Wait, now_ms: u64) -> Result<(), P> {
        let for_backend = matches!(wait, Wait::Backend(_));
        // Full, without a look at the slots: a flood at unresolved next hops finds it so.
        if self.len >= HOLD_CAPACITY || (for_backend && self.for_backends >= HOLD_CAPACITY / 2) {
            return Err(packet);
        }
        let Some(slot) = self.slots.iter_mut().find(|s| s.is_none()) else {
            return Err(packet);
        };
        *slot = Some(Waiting {
            packet,
            wait,
            since: now_ms,
            order: self.next,
        });
        self.next += 1;
        self.len += 1;
        self.for_backends += usize::from(for_backend);
        self.due = self.due.min(now_ms + HOLD_MS);
        Ok(())
    }

    /// Each held packet whose next hop (or backend) is now known, its MACs written, with its
    /// [`Action::Transmit`]; each one held too long, or whose backend no longer takes it,
    /// with a drop. Calls `out` for each, in the order they came.
    pub fn release(&mut self, fwd: &Forwarding, now_ms: u64, mut out: impl FnMut(P, Action)) {
        if self.len == 0 || (self.generation == fwd.generation && now_ms < self.due) {
            return;
        }
        self.generation = fwd.generation;
        self.due = u64::MAX;
        // The occupied slots by arrival (a slot freed early is taken by a later packet).
        let mut by_arrival = [0u8; HOLD_CAPACITY];
        let mut n = 0;
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.is_some() {
                by_arrival[n] = i as u8;
                n += 1;
            }
        }
        let order = |i: &u8| self.slots[usize::from(*i)].as_ref().map_or(0, |w| w.order);
        by_arrival[..n].sort_unstable_by_key(order);
        for &i in &by_arrival[..n] {
            let slot = &mut self.slots[usize::from(i)];
            let Some(w) = slot else {
                continue;
            };
            let known = match w.wait {
                Wait::NextHop(interface) => resolved(w.packet.bytes(), interface, fwd),
                Wait::Backend(backend) => backend_resolved(w.packet.bytes(), backend, fwd),
            };
            let action = match known {
                Some(action) => action,
                None if now_ms.saturating_sub(w.since) >= HOLD_MS => {
                    Action::Drop(DropReason::NoNeighbour)
                }
                None => {
                    self.due = self.due.min(w.since + HOLD_MS);
                    continue;
                }
            };
            if let Some(w) = slot.take() {
                self.len -= 1;
                self.for_backends -= usize::from(matches!(w.wait, Wait::Backend(_)));
                out(w.packet, action);
            }
        }
    }
}

impl<P: super::packet_buffer::PacketBuffer> Default for Held<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// A frame held for `backend`: its MACs written once the backend's are known; dropped where
/// the backend no longer keeps its flows (down, past its pool's hold, or gone: the client's
/// next try is decided again; a reload that gave its rule another probe keeps it, as its
/// flows) or has come to be behind VXLAN (a reload meanwhile: its frames go in the tunnel,
/// which a held one skipped).
fn backend_resolved(frame: &mut [u8], backend: BackendId, fwd: &Forwarding) -> Option<Action> {
    let Some((backend, link)) = fwd.keeping_flows_of(backend) else {
        return Some(Action::Drop(DropReason::NoHealthyBackend));
    };
    if fwd.backends.get(backend as usize)?.vxlan.is_some() {
        return Some(Action::Drop(DropReason::NoNeighbour));
    }
    let out = link.egress?;
    frame.get_mut(..12)?.copy_from_slice(&out.macs);
    Some(Action::Transmit {
        interface: out.interface,
        backend: Some(backend),
    })
}

/// A held frame's release: the MACs of its next hop out of `interface` written, once known.
fn resolved(frame: &mut [u8], interface: InterfaceId, fwd: &Forwarding) -> Option<Action> {
    let h = parse_headers(frame).ok()?;
    let route = fwd.route(h.dst).filter(|r| r.interface == interface)?;
    let mac = fwd.neighbour(route.next_hop)?;
    let src = fwd.interfaces.get(interface as usize)?.mac;
    let header = frame.get_mut(..12)?;
    header[..6].copy_from_slice(mac.as_bytes());
    header[6..].copy_from_slice(src.as_bytes());
    Some(Action::Transmit {
        interface,
        backend: None,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn on_link(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))
    }

    fn wants(queue: &ArrayQueue<Report>) -> usize {
        std::iter::from_fn(|| queue.pop())
            .filter(|r| matches!(r, Report::Want { .. }))
            .count()
    }

    /// Packets from a thousand made-up sources at once are a tenth of a second's worth of
    /// wants, then one a millisecond: each a solicitation the control thread would send.
    #[test]
    fn a_worker_reports_new_next_hops_at_its_rate() {
        let queue = NeighbourReports::new_queue();
        let mut reports = NeighbourReports::new(queue.clone());
        for n in 0..1000 {
            reports.want(0, on_link(n), 5_000);
        }
        assert_eq!(wants(&queue), WANTS_PER_S as usize / 10);
        for n in 1000..1010 {
            reports.want(0, on_link(n), 5_001);
        }
        assert_eq!(wants(&queue), 1, "a millisecond's worth");
        // One the rate held back is reported with a later packet, not 100 ms later.
        reports.want(0, on_link(999), 5_002);
        assert_eq!(wants(&queue), 1, "held back, then reported");
    }
}
