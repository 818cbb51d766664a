//! The neighbour cache, owned by the control thread alone, with the kernel's discipline
//! (RFC 4861 §7.3): a neighbour is learnt only from an answer to the appliance's own ARP
//! request or neighbour solicitation; it is reachable for a while, then stale (still used),
//! and verified again when a packet needs it (backends' next hops always); one that does not
//! answer three solicitations is forgotten. Announcements nobody asked for (gratuitous ARP,
//! unsolicited advertisements, askers' addresses) at most make it ask again. A configured
//! `mac` is never looked up here. The cache is bounded: where it is full, the oldest entry a
//! packet asked for that has not been answered gives its place up (as Linux's forced
//! collection does: sources forged in a flood fill the cache with such entries, and a real
//! neighbour would otherwise be shut out for as long as the flood lasts); where none is left
//! to give, what does not fit is refused. Both are counted.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::collections::VecDeque;

use hashbrown::{HashMap, HashSet};

use crate::dataplane::{Asking, Report};
use crate::lb::forwarding::{Forwarding, InterfaceId, Neighbour};
use crate::wire::MacAddr;

/// How long an unanswered solicitation waits before it is sent again.
const RETRY: Duration = Duration::from_millis(500);

/// Solicitations without an answer before a neighbour is forgotten (a backend's next hop is
/// then asked for again, from scratch).
const TRIES: u8 = 3;

/// The most neighbours the cache holds.
pub const CAPACITY: usize = 4096;

/// Counters about the cache, read by the metrics server.
#[derive(Debug, Default)]
pub struct NeighbourStats {
    /// Entries held (resolved or being asked for).
    pub entries: AtomicU64,
    /// Next hops that did not fit: each unanswered entry a newer one pushed out of a full
    /// cache; each want a worker reported (a worker reports a next hop at most every 100 ms)
    /// that found nothing to push out, and each backend's next hop once, until it is admitted.
    pub refused: AtomicU64,
    /// Answers taken (a solicitation was outstanding).
    pub answers: AtomicU64,
    /// Answers and announcements nobody asked for, not learnt (the workers count those they
    /// do not report, `NeighbourReports::ignored`; the metric adds them).
    pub ignored: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    interface: InterfaceId,
    mac: Option<MacAddr>,
    /// When the last answer came.
    confirmed: Instant,
    /// The last solicitation sent while waiting for an answer, and how many were.
    asked: Option<Instant>,
    tries: u8,
    /// A packet needed it since it went stale.
    wanted: bool,
    /// Published as stale.
    stale: bool,
    /// A backend's next hop (as of the last tick): never pushed out.
    needed: bool,
    /// Someone claimed it at another MAC: verified by asking the segment, not its MAC.
    contradicted: bool,
    /// Which of the packets' requests for its address made it, in `asked_for`'s numbering.
    serial: u64,
}

/// The control thread's neighbour cache.
#[derive(Debug)]
pub struct Neighbours {
    entries: HashMap<IpAddr, Entry>,
    /// How long an answer keeps a neighbour reachable (`dataplane.neighbour_reachable_s`).
    pub reachable: Duration,
    pub stats: std::sync::Arc<NeighbourStats>,
    /// The neighbours asked for, as the workers see them: published with each round of
    /// solicitations, before it is sent.
    pub asking: std::sync::Arc<Asking>,
    /// Backends' next hops refused for want of room and not admitted since: counted once.
    refused_next_hops: HashSet<IpAddr>,
    /// What packets asked for, oldest first, each with the serial of the entry it made:
    /// where the oldest unanswered entry is found to give its place up. What has been
    /// answered or gone since (its address perhaps asked for again, under a new serial) is
    /// skipped as it comes up, and cleared out as it piles up.
    asked_for: VecDeque<(IpAddr, u64)>,
    next_serial: u64,
}

impl Neighbours {
    pub fn new(reachable: Duration) -> Self {
        Neighbours {
            entries: HashMap::new(),
            reachable,
            stats: Default::default(),
            asking: Default::default(),
            refused_next_hops: HashSet::new(),
            asked_for: VecDeque::new(),
            next_serial: 0,
        }
    }

    /// What the workers may use: every resolved neighbour, and whether it is stale.
    pub fn published(&self) -> HashMap<IpAddr, Neighbour> {
        self.entries
            .iter()
            .filter_map(|(addr, e)| {
                e.mac.map(|mac| {
                    (
                        *addr,
                        Neighbour {
                            mac,
                            stale: e.stale,
                        },
                    )
                })
            })
            .collect()
    }

    /// The MAC known for `addr`.
    #[cfg(test)]
    pub fn mac(&self, addr: IpAddr) -> Option<MacAddr> {
        self.entries.get(&addr).and_then(|e| e.mac)
    }

    /// Whether the cache holds `addr`, answered or not.
    #[cfg(test)]
    pub fn holds(&self, addr: IpAddr) -> bool {
        self.entries.contains_key(&addr)
    }

    /// How many requests wait in line to give their place up (some perhaps answered since).
    #[cfg(test)]
    pub fn in_line(&self) -> usize {
        self.asked_for.len()
    }

    /// Every entry answered at `mac`, as if each had been asked for and had answered.
    #[cfg(test)]
    pub fn answer_all_for_test(&mut self, mac: MacAddr, now: Instant) {
        for e in self.entries.values_mut() {
            *e = Entry {
                mac: Some(mac),
                confirmed: now,
                ..Entry::unknown(e.interface, now)
            };
        }
    }

    /// Takes a worker's report; true when what is published changed.
    pub fn report(&mut self, report: Report, now: Instant) -> bool {
        match report {
            Report::Want { interface, addr } => {
                self.want(interface, addr, now);
                false
            }
            Report::Answer {
                interface,
                addr,
                mac,
            } => self.answer(interface, addr, mac, now),
            Report::Hint {
                interface,
                addr,
                mac,
            } => {
                self.hint(interface, addr, mac);
                false
            }
        }
    }

    /// A packet needs `addr` out of `interface`: asked for when unknown, verified when stale.
    fn want(&mut self, interface: InterfaceId, addr: IpAddr, now: Instant) {
        if let Some(e) = self.entries.get_mut(&addr) {
            e.wanted = true;
            return;
        }
        if self.entries.len() >= CAPACITY && !self.make_room() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.next_serial += 1;
        let serial = self.next_serial;
        let entry = Entry {
            serial,
            ..Entry::unknown(interface, now)
        };
        self.entries.insert(addr, entry);
        self.asked_for.push_back((addr, serial));
        if self.asked_for.len() > 2 * self.entries.len() + 64 {
            // Mostly answered or gone: only those still waiting are kept in line, which
            // at least halves it (so that each request is looked at a bounded number of times).
            let entries = &self.entries;
            self.asked_for
                .retain(|&(a, serial)| entries.get(&a).is_some_and(|e| e.evictable(serial)));
        }
    }

    /// Removes the oldest entry a packet asked for that is still unanswered and no backend's
    /// next hop, counting it as refused; false where there is none.
    fn make_room(&mut self) -> bool {
        while let Some((addr, serial)) = self.asked_for.pop_front() {
            if self.entries.get(&addr).is_some_and(|e| e.evictable(serial)) {
                self.entries.remove(&addr);
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        false
    }

    /// Takes an answer only while a solicitation for it is outstanding on that interface.
    fn answer(&mut self, interface: InterfaceId, addr: IpAddr, mac: MacAddr, now: Instant) -> bool {
        let asked = self
            .entries
            .get_mut(&addr)
            .filter(|e| e.interface == interface && e.asked.is_some() && mac.is_unicast());
        let Some(e) = asked else {
            // Not learnt, but where it places a known neighbour elsewhere, a reason to ask
            // again, as any claim is (a backend back on a new NIC answers the twin's ARP,
            // and says nothing else): the answer to that decides.
            self.stats.ignored.fetch_add(1, Ordering::Relaxed);
            self.recheck(interface, addr, mac);
            return false;
        };
        self.stats.answers.fetch_add(1, Ordering::Relaxed);
        let changed = e.mac != Some(mac) || e.stale;
        *e = Entry {
            mac: Some(mac),
            confirmed: now,
            asked: None,
            tries: 0,
            wanted: false,
            stale: false,
            needed: e.needed,
            contradicted: false,
            serial: e.serial,
            interface,
        };
        changed
    }

    /// Someone claims `addr` is at `mac`: if that is news about a neighbour in the cache, it
    /// is asked again at once (the answer decides); nothing is learnt from the claim.
    fn hint(&mut self, interface: InterfaceId, addr: IpAddr, mac: MacAddr) {
        if !self.recheck(interface, addr, mac) {
            self.stats.ignored.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Where `addr` is a neighbour on `interface` known at another MAC than `mac` and not
    /// being asked for: due to be asked now (the next round of solicitations sends it).
    fn recheck(&mut self, interface: InterfaceId, addr: IpAddr, mac: MacAddr) -> bool {
        match self.entries.get_mut(&addr) {
            Some(e) if e.interface == interface && e.mac != Some(mac) && e.asked.is_none() => {
                e.wanted = true;
                e.contradicted = true;
                e.confirmed = e
                    .confirmed
                    .checked_sub(self.reachable)
                    .unwrap_or(e.confirmed);
                true
            }
            _ => false,
        }
    }

    /// Ages the cache and returns the solicitations due (interface, frame), for the next
    /// hops `fwd` needs (backends' without a configured MAC, kept and verified as long as
    /// they are needed) and every entry waiting for an answer or stale and wanted; true with
    /// them when what is published changed.
    pub fn tick(&mut self, fwd: &Forwarding, now: Instant) -> (Vec<(InterfaceId, Vec<u8>)>, bool) {
        let needed = fwd.needed_neighbours();
        // A backend's next hop that does not fit is refused and counted like a worker's want,
        // but once until it is admitted: ticks come with every housekeeping round and every
        // want, not with the next hop, so counting it at each would make the counter follow
        // the clock. It is tried again at each tick; one no longer needed is let go, so that
        // it counts anew if it is needed again.
        if !self.refused_next_hops.is_empty() {
            self.refused_next_hops
                .retain(|addr| needed.iter().any(|(_, a)| a == addr));
        }
        // Marked before any room is made for those absent: a packet's request that became a
        // next hop is not pushed out for another next hop, and one that is no longer a next
        // hop may give its place up.
        let wanted: HashSet<IpAddr> = needed.iter().map(|&(_, addr)| addr).collect();
        for (addr, e) in self.entries.iter_mut() {
            e.needed = wanted.contains(addr);
        }
        for &(interface, addr) in &needed {
            let absent = !self.entries.contains_key(&addr);
            if absent && (self.entries.len() < CAPACITY || self.make_room()) {
                self.entries.insert(addr, Entry::unknown(interface, now));
            }
            if self.entries.contains_key(&addr) {
                self.refused_next_hops.remove(&addr);
            } else if self.refused_next_hops.insert(addr) {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut changed = false;
        let mut due = Vec::new();
        let reachable = self.reachable;
        self.entries.retain(|addr, e| {
            let pinned = wanted.contains(addr);
            e.needed = pinned;
            match e.asked {
                Some(at) if now.duration_since(at) < RETRY => {}
                Some(_) if e.tries >= TRIES => {
                    // No answer: forgotten (a backend's next hop is asked for afresh).
                    changed |= e.mac.is_some();
                    if !pinned {
                        return false;
                    }
                    *e = Entry {
                        needed: true,
                        ..Entry::unknown(e.interface, now)
                    };
                    due.push((e.interface, *addr, None));
                    e.asked = Some(now);
                    e.tries = 1;
                }
                Some(_) => {
                    e.tries += 1;
                    due.push((e.interface, *addr, e.probe_at()));
                    e.asked = Some(now);
                }
                None if e.mac.is_none() => {
                    due.push((e.interface, *addr, None));
                    e.asked = Some(now);
                    e.tries = 1;
                }
                None if now.duration_since(e.confirmed) >= reachable => {
                    if !e.stale {
                        e.stale = true;
                        changed = true;
                    }
                    if pinned || e.wanted {
                        e.tries = 1;
                        due.push((e.interface, *addr, e.probe_at()));
                        e.asked = Some(now);
                    } else if now.duration_since(e.confirmed) >= reachable * 2 {
                        // Stale and unused for as long again: forgotten.
                        changed = true;
                        return false;
                    }
                }
                None => {}
            }
            true
        });
        self.stats
            .entries
            .store(self.entries.len() as u64, Ordering::Relaxed);
        let asked = self.entries.iter().filter(|(_, e)| e.asked.is_some());
        self.asking.publish(asked.map(|(addr, _)| *addr));
        let frames = due
            .into_iter()
            .filter_map(|(ifc, addr, at)| Some((ifc, solicitation(fwd, ifc, addr, at)?)))
            .collect();
        (frames, changed)
    }
}

impl Entry {
    fn unknown(interface: InterfaceId, now: Instant) -> Entry {
        Entry {
            interface,
            mac: None,
            confirmed: now,
            asked: None,
            tries: 0,
            wanted: false,
            stale: false,
            needed: false,
            contradicted: false,
            serial: 0,
        }
    }

    /// Where a try verifying a known neighbour goes: to its MAC (RFC 4861 §7.3.3: a switch
    /// delivers it whatever it knows of the neighbour's multicast groups), but for the last
    /// try, to the segment (the neighbour may have moved to another MAC), and to the segment
    /// where someone claimed it elsewhere.
    fn probe_at(&self) -> Option<MacAddr> {
        self.mac
            .filter(|_| self.tries < TRIES && !self.contradicted)
    }

    /// Whether the entry that the request numbered `serial` made may give its place up: it
    /// is still that one, unanswered, and no backend's next hop.
    fn evictable(&self, serial: u64) -> bool {
        self.serial == serial && self.mac.is_none() && !self.needed
    }
}

#[path = "neighbours_frames.rs"]
mod frames;
use frames::solicitation;
#[cfg(test)]
use frames::{arp_request, neighbour_solicitation};

#[cfg(test)]
#[path = "neighbours_tests.rs"]
mod tests;
