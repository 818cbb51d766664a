//! A bounded, aged map keyed by any [`FlowKey`]: the side table for what the bucket
//! [`FlowTable`](super::flow_table::FlowTable) does not hold in a cache line (IPv6 flows, and
//! the datagrams being followed in fragments).
//!
//! It belongs to one worker (never shared, no lock) and is bounded: everything is allocated in
//! [`SideTable::with_capacity`], and nothing on the hot path allocates or frees. When it is
//! full of live entries, [`SideTable::insert`] says so and the caller goes on without
//! remembering: never an error, never unbounded memory.
//!
//! Layout: a slab of `capacity` entries, a free list of slab indices, and a `hashbrown`
//! index from the caller's flow hash (the symmetric hash the worker already computed for the
//! packet) to slab indices. Entries age out after an idle timeout; [`SideTable::expire`] ages
//! them incrementally from a wrapping cursor so that no call scans the whole table.

use hashbrown::HashTable;

use super::flow::FlowKey;

#[derive(Debug, Clone, Copy)]
struct Entry<V> {
    key: FlowKey,
    /// The caller's hash of `key`, kept so the index can rehash in place without the hasher.
    hash: u64,
    value: V,
    last_seen_ms: u64,
    idle_timeout_ms: u64,
}

impl<V> Entry<V> {
    /// Idle for at least its timeout. A clock that steps back counts as no idle time.
    #[inline]
    fn is_expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_seen_ms) >= self.idle_timeout_ms
    }
}

/// Slots `insert` examines for expired entries before it gives up on a full table.
const RECLAIM_SCAN: usize = 8;

/// A bounded, aged map from flow to `V` (typically a backend choice), owned by one worker.
#[derive(Debug)]
pub struct SideTable<V: Copy> {
    slots: Box<[Option<Entry<V>>]>,
    /// Indices of free slots; never holds more than `slots.len()`, so it never reallocates.
    free: Vec<u32>,
    /// Flow hash → slab index. Built for twice the capacity: hashbrown rehashes in place (no
    /// allocation) when tombstones use up its growth room, but only while it is at most half
    /// full; above that it would reallocate. Keeping `len <= capacity <= buckets * 7/8 / 2`
    /// rules that out.
    index: HashTable<u32>,
    /// Next slot `expire` examines.
    cursor: usize,
}

impl<V: Copy> SideTable<V> {
    /// A table for at most `capacity` flows, with all its memory allocated now.
    ///
    /// # Panics
    /// If `capacity` does not fit a `u32` slab index.
    pub fn with_capacity(capacity: usize) -> Self {
        assert!(
            u32::try_from(capacity).is_ok(),
            "flow table capacity {capacity} exceeds 2^32 - 1 entries"
        );
        let mut free = Vec::with_capacity(capacity);
        // Popped from the back: slot 0 is handed out first.
        free.extend((0..capacity as u32).rev());
        SideTable {
            slots: vec![None; capacity].into_boxed_slice(),
            free,
            index: HashTable::with_capacity(capacity.saturating_mul(2)),
            cursor: 0,
        }
    }

    /// Entries held, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The value for a live flow, refreshing its last-seen time. An expired entry is removed
    /// and reported as a miss.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, hash: u64, now_ms: u64) -> Option<V> {
        let i = self.find(key, hash)?;
        let entry = self.slots[i].as_mut()?;
        if entry.is_expired(now_ms) {
            self.release(i, hash);
            return None;
        }
        entry.last_seen_ms = now_ms;
        Some(entry.value)
    }

    /// The value for a flow without touching its age (expired or not): for inspection, not for
    /// forwarding.
    pub fn peek(&self, key: &FlowKey, hash: u64) -> Option<V> {
        let i = self.find(key, hash)?;
        self.slots[i].map(|entry| entry.value)
    }

    /// Whether `key` has an entry that has not expired at `now_ms` (its age untouched).
    pub fn live(&self, key: &FlowKey, hash: u64, now_ms: u64) -> bool {
        self.peek_live(key, hash, now_ms).is_some()
    }

    /// The value for `key` where its entry has not expired at `now_ms` (its age untouched).
    pub fn peek_live(&self, key: &FlowKey, hash: u64, now_ms: u64) -> Option<V> {
        let entry = self.slots[self.find(key, hash)?].as_ref()?;
        (!entry.is_expired(now_ms)).then_some(entry.value)
    }

    /// Remembers `value` for `key`, replacing any entry for the same key. Returns false, and
    /// remembers nothing, when every slot holds a live flow (after trying to reclaim a few
    /// expired ones): the caller then forwards by the Maglev decision alone.
    #[inline]
    pub fn insert(
        &mut self,
        key: FlowKey,
        hash: u64,
        value: V,
        now_ms: u64,
        idle_timeout_ms: u64,
    ) -> bool {
        let entry = Entry {
            key,
            hash,
            value,
            last_seen_ms: now_ms,
            idle_timeout_ms,
        };
        if let Some(i) = self.find(&key, hash) {
            self.slots[i] = Some(entry);
            return true;
        }
        if self.free.is_empty() {
            self.expire(now_ms, RECLAIM_SCAN);
        }
        let Some(i) = self.free.pop() else {
            return false;
        };
        debug_assert!(self.index.len() < self.slots.len());
        self.slots[i as usize] = Some(entry);
        let slots = &self.slots;
        self.index
            .insert_unique(hash, i, |&j| slots[j as usize].map_or(0, |e| e.hash));
        true
    }

    /// Changes a flow's idle timeout, counted from its last packet (TCP FIN or RST shorten it).
    /// Meant for a flow just found live by [`SideTable::lookup`]: on an expired entry not yet
    /// reclaimed, a longer timeout would bring it back.
    pub fn set_timeout(&mut self, key: &FlowKey, hash: u64, idle_timeout_ms: u64) {
        if let Some(entry) = self.find(key, hash).and_then(|i| self.slots[i].as_mut()) {
            entry.idle_timeout_ms = idle_timeout_ms;
        }
    }

    /// Forgets a flow, returning what was remembered for it (expired or not).
    pub fn remove(&mut self, key: &FlowKey, hash: u64) -> Option<V> {
        let i = self.find(key, hash)?;
        let value = self.slots[i].map(|entry| entry.value);
        self.release(i, hash);
        value
    }

    /// Incremental aging: examines at most `max_scan` slots from a cursor that wraps around
    /// the table, removes the expired entries among them, and returns how many it removed.
    pub fn expire(&mut self, now_ms: u64, max_scan: usize) -> usize {
        if self.index.is_empty() {
            // Nothing to age: no need to walk (and miss the cache on) empty slots.
            return 0;
        }
        let capacity = self.slots.len();
        let mut removed = 0;
        for _ in 0..max_scan.min(capacity) {
            let i = self.cursor;
            self.cursor = if i + 1 == capacity { 0 } else { i + 1 };
            if let Some(entry) = self.slots[i] {
                if entry.is_expired(now_ms) {
                    self.release(i, entry.hash);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Keeps only the flows for which `f` returns true, letting it update their values. Slow
    /// path: visits every slot (control-plane changes such as a backend removed from a pool).
    pub fn retain(&mut self, mut f: impl FnMut(&FlowKey, &mut V) -> bool) {
        for i in 0..self.slots.len() {
            let Some(entry) = self.slots[i].as_mut() else {
                continue;
            };
            if !f(&entry.key, &mut entry.value) {
                let hash = entry.hash;
                self.release(i, hash);
            }
        }
    }

    /// The slab index of `key`'s entry.
    #[inline]
    fn find(&self, key: &FlowKey, hash: u64) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| {
                slots[i as usize]
                    .as_ref()
                    .is_some_and(|entry| entry.key == *key)
            })
            .map(|&i| i as usize)
    }

    /// Empties slot `i`, whose entry is indexed under `hash`.
    fn release(&mut self, i: usize, hash: u64) {
        if let Ok(found) = self.index.find_entry(hash, |&j| j as usize == i) {
            found.remove();
        }
        self.slots[i] = None;
        self.free.push(i as u32);
    }

    /// Bytes held by the index; constant for the table's life (tests check it).
    #[cfg(test)]
    fn index_allocation_size(&self) -> usize {
        self.index.allocation_size()
    }
}

#[cfg(test)]
#[path = "side_table_tests.rs"]
mod tests;
