//! A worker's memory of its flows (the tables [`decide`](super::decide) reads and writes).

use super::{Flow, Memory, TableKey};
use crate::lb::flow_table::{Bucket, BucketMemory, FlowTable, Slot};
use crate::lb::side_table::SideTable;

/// A worker's memory of its flows: IPv4 flows in the cache-line [`FlowTable`], IPv6 flows in
/// a side table.
#[derive(Debug)]
pub struct Flows<M = Box<[Bucket]>> {
    pub v4: FlowTable<M>,
    pub wide: SideTable<u32>,
    /// The key of every hash into these tables ([`Flow::table_hash`]): random for each
    /// worker of a running appliance, so that where a flow lands cannot be aimed.
    pub secret: u64,
    /// Packets of new flows the tables had no room for (each decided by Maglev alone, not
    /// remembered).
    pub refused: u64,
    /// The last new decision recorded found no room: each packet of such a flow is decided
    /// anew, and counted in `refused`, not as a new flow.
    pub refused_last: bool,
}

/// The side table's size relative to the flow table's capacity.
const SIDE_SHARE: usize = 4;

impl Flows<Box<[Bucket]>> {
    /// Tables for `capacity` IPv4 flows (and a quarter as many IPv6 flows, at least one) on
    /// the ordinary heap, with the table secret 0 (offline decisions, tests).
    pub fn with_capacity(capacity: usize) -> Self {
        Flows::in_memory(FlowTable::with_capacity(capacity), 0)
    }
}

impl<M: BucketMemory> Flows<M> {
    /// The tables around `v4`, keyed by `secret`.
    pub fn in_memory(v4: FlowTable<M>, secret: u64) -> Self {
        // At least one entry: a table of fewer than SIDE_SHARE flows still remembers an IPv6
        // flow.
        let side = (v4.capacity() / SIDE_SHARE).max(1);
        Flows {
            v4: v4.keyed(secret),
            wide: SideTable::with_capacity(side),
            secret,
            refused: 0,
            refused_last: false,
        }
    }

    /// Flows held (expired ones not yet reclaimed included).
    pub fn len(&self) -> usize {
        self.v4.len() + self.wide.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Incremental aging, a few buckets and slots at a time.
    pub fn expire(&mut self, now_ms: u64, max_scan: usize) {
        self.v4.expire(now_ms, max_scan);
        self.wide.expire(now_ms, max_scan / 4);
    }

    /// The value remembered for a flow, and where it sits in the bucket table (for a
    /// refresh without a second lookup).
    #[inline(always)]
    pub(super) fn remembered(
        &mut self,
        flow: &Flow,
        now_ms: u64,
        memory: Memory,
    ) -> Option<(u32, Option<Slot>)> {
        match (&flow.key, memory) {
            (TableKey::V4(k), Memory::Record) => {
                let (slot, value) = self.v4.find_value(k, flow.table_hash, now_ms)?;
                Some((value, Some(slot)))
            }
            (TableKey::V4(k), Memory::Peek) => self.v4.peek(k, flow.table_hash).map(|v| (v, None)),
            (TableKey::Wide(k), Memory::Record) => self
                .wide
                .lookup(k, flow.table_hash, now_ms)
                .map(|v| (v, None)),
            (TableKey::Wide(k), Memory::Peek) => {
                self.wide.peek(k, flow.table_hash).map(|v| (v, None))
            }
        }
    }

    /// The value of a flow whose entry has not expired, its age untouched (an expired IPv4
    /// entry is reclaimed on the way).
    pub(super) fn live(&mut self, flow: &Flow, now_ms: u64) -> Option<u32> {
        match &flow.key {
            TableKey::V4(k) => self
                .v4
                .find_value(k, flow.table_hash, now_ms)
                .map(|(_, v)| v),
            TableKey::Wide(k) => self.wide.peek_live(k, flow.table_hash, now_ms),
        }
    }

    /// Remembers (or refreshes) a flow's value; a full table is not an error, but counted.
    #[inline(always)]
    pub(super) fn remember(
        &mut self,
        flow: &Flow,
        at: Option<Slot>,
        value: u32,
        now_ms: u64,
        timeout_ms: u64,
    ) {
        match (&flow.key, at) {
            (TableKey::V4(_), Some(slot)) => self.v4.refresh(slot, value, now_ms, timeout_ms),
            (TableKey::V4(k), None) => {
                let at = self
                    .v4
                    .insert(*k, flow.table_hash, value, now_ms, timeout_ms);
                self.refused += u64::from(at.is_none());
            }
            (TableKey::Wide(k), _) => {
                let kept = self
                    .wide
                    .insert(*k, flow.table_hash, value, now_ms, timeout_ms);
                self.refused += u64::from(!kept);
            }
        }
    }
}
