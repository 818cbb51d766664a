//! The datagrams a worker follows in fragments ([`fragments`](super::fragments)): what each
//! one's first fragment got, keyed by the datagram's identity.
//!
//! They are bounded ([`FRAGMENT_CAPACITY`] a worker), and the oldest makes room for a new
//! one: a flood of first fragments whose later ones never come then shortens how long a
//! datagram is followed (to the time the flood takes to bring that many first fragments:
//! 16 ms at a million a second, where a datagram's fragments come within microseconds of
//! each other) instead of locking every new datagram out for 5 s.

use std::collections::VecDeque;
use std::net::IpAddr;

use crate::lb::flow::FlowKey;
use crate::lb::forwarding::{BackendId, ReverseNat};
use crate::lb::side_table::SideTable;
use crate::wire::{Headers, IpProtocol};

/// Datagrams in flight in fragments one worker follows at once.
pub(super) const FRAGMENT_CAPACITY: usize = 16_384;
/// How long a datagram's next fragment is expected after the one before (each fragment
/// found renews its entry).
const FRAGMENT_TIMEOUT_MS: u64 = 5_000;

/// What a datagram's first fragment got, for its later fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// To a backend (destination rewritten to it when `nat`).
    Forward { backend: BackendId, nat: bool },
    /// A NATed reply: source rewritten to the frontend.
    Reply(ReverseNat),
}

/// The datagrams a worker follows in fragments: what each one's first fragment got, and
/// the order the first fragments came in. A datagram is followed until 5 s after its last
/// fragment, or until [`FRAGMENT_CAPACITY`] newer first fragments have come, whichever is
/// first: a full table makes room by its oldest. All its memory is taken at start.
#[derive(Debug)]
pub struct Datagrams {
    /// What each datagram got, and the number of its latest insert.
    table: SideTable<(Fragment, u64)>,
    /// The keys (and hashes) of the last `capacity` inserts with their numbers, oldest
    /// first: every datagram the table holds has one here, so that the table never holds
    /// more than this does. A key inserted again is here twice, and only its latest insert
    /// takes it out of the table when it comes to the front; one that left the table
    /// (expired) stays until then.
    order: VecDeque<(FlowKey, u64, u64)>,
    /// Inserts so far.
    inserts: u64,
    /// Live datagrams that left for newer ones.
    pub evicted: u64,
}

impl Datagrams {
    pub fn with_capacity(capacity: usize) -> Self {
        Datagrams {
            table: SideTable::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            inserts: 0,
            evicted: 0,
        }
    }

    /// Datagrams held, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Follows the datagram `key` (its hash `hash`) for [`FRAGMENT_TIMEOUT_MS`]; where the
    /// last `capacity` inserts are in the order already, the oldest of them leaves first.
    pub(super) fn insert(&mut self, key: FlowKey, hash: u64, what: Fragment, now_ms: u64) {
        if self.order.len() >= self.table.capacity() {
            if let Some((old, old_hash, n)) = self.order.pop_front() {
                let latest = self.table.peek(&old, old_hash).is_some_and(|(_, m)| m == n);
                let live = self.table.live(&old, old_hash, now_ms);
                if latest && self.table.remove(&old, old_hash).is_some() && live {
                    self.evicted += 1;
                }
            }
        }
        // With fewer items in the order than the table's capacity, the table has room.
        self.inserts += 1;
        let n = self.inserts;
        if self
            .table
            .insert(key, hash, (what, n), now_ms, FRAGMENT_TIMEOUT_MS)
        {
            self.order.push_back((key, hash, n));
        }
    }

    /// What the first fragment of datagram `key` got, if it is followed (its 5 s restart).
    pub(super) fn lookup(&mut self, key: &FlowKey, hash: u64, now_ms: u64) -> Option<Fragment> {
        self.table.lookup(key, hash, now_ms).map(|(what, _)| what)
    }

    /// Incremental aging, at most `max_scan` slots.
    pub fn expire(&mut self, now_ms: u64, max_scan: usize) {
        self.table.expire(now_ms, max_scan);
    }
}

/// A datagram's identity, as its receiver reassembles it: addresses, identification (in the
/// port slot; this key lives in its own table, never among flows) and, for IPv4, protocol.
/// IPv6 reassembles without it (RFC 8200 §4.5): a later fragment names only the first header
/// of the fragmentable part, which need not be the transport its first fragment names.
pub(super) fn fragment_key(h: &Headers, ident: u32) -> FlowKey {
    let proto = match h.dst {
        IpAddr::V4(_) => h.proto,
        IpAddr::V6(_) => IpProtocol::IPV6_FRAGMENT,
    };
    FlowKey {
        proto,
        src: h.src,
        dst: h.dst,
        src_port: ident as u16,
        dst_port: (ident >> 16) as u16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(ident: u16) -> (FlowKey, u64) {
        let key = FlowKey {
            proto: IpProtocol::UDP,
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            src_port: ident,
            dst_port: 0,
        };
        (key, u64::from(ident))
    }

    const TO_0: Fragment = Fragment::Forward {
        backend: 0,
        nat: false,
    };

    /// The oldest datagram leaves for a new one once the table's capacity of datagrams came
    /// after it; counted only where it was still followed.
    #[test]
    fn the_oldest_datagram_leaves_first_and_counts_only_while_followed() {
        let mut d = Datagrams::with_capacity(2);
        let [(a, ha), (b, hb), (c, hc), (e, he)] = [1, 2, 3, 4].map(datagram);
        d.insert(a, ha, TO_0, 0);
        d.insert(b, hb, TO_0, 4_000);
        // `a` expired at 5 s: it leaves uncounted.
        d.insert(c, hc, TO_0, 6_000);
        assert_eq!((d.len(), d.evicted), (2, 0));
        // `b` is followed until 9 s: it leaves, counted.
        d.insert(e, he, TO_0, 6_000);
        assert_eq!((d.len(), d.evicted), (2, 1));
        assert_eq!(d.lookup(&b, hb, 6_000), None);
        assert_eq!(d.lookup(&c, hc, 6_000), Some(TO_0));
        assert_eq!(d.lookup(&e, he, 6_000), Some(TO_0));
    }

    /// A first fragment sent again (a retransmission) renews its datagram: the older insert
    /// coming to the front of the order does not take it out.
    #[test]
    fn a_datagram_inserted_again_leaves_by_its_latest_insert() {
        let mut d = Datagrams::with_capacity(2);
        let [(a, ha), (b, hb), (c, hc)] = [1, 2, 3].map(datagram);
        d.insert(a, ha, TO_0, 0);
        d.insert(a, ha, TO_0, 100);
        // The order is full: its front, `a`'s first insert, leaves it, but `a` stays.
        d.insert(b, hb, TO_0, 200);
        assert_eq!((d.lookup(&a, ha, 300), d.evicted), (Some(TO_0), 0));
        // `a`'s latest insert is at the front now: `a` leaves for `c`, counted.
        d.insert(c, hc, TO_0, 400);
        assert_eq!((d.lookup(&a, ha, 400), d.evicted), (None, 1));
        assert_eq!(d.lookup(&b, hb, 400), Some(TO_0));
        assert_eq!(d.lookup(&c, hc, 400), Some(TO_0));
    }
}
