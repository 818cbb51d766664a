//! The per-worker flow table of IPv4 flows: which backend an established flow goes to.
//!
//! Established flows keep their backend when the pool changes (DESIGN §2); this table remembers
//! the decision. It belongs to one worker (never shared, no lock) and is bounded: its memory is
//! one fixed array of [`Bucket`]s given at construction (the data plane allocates it on
//! hugepages on the worker's socket), and nothing here allocates or frees.
//!
//! Layout, after VPP's `lb_hash.h`: a bucket is one 64-byte cache line holding [`WAYS`]
//! entries, each the flow's canonical key as machine words ([`V4Key`]), a 32-bit value and a
//! 32-bit deadline in milliseconds. A flow lives in one of two buckets, the first chosen by
//! its hash and tried first (the caller prefetches it across a burst,
//! [`FlowTable::first_bucket_of`]), the second at a key-dependent offset from it, so a lookup
//! reads at most two lines; when both are full an entry moves to its own other bucket to make
//! room (one cuckoo step). Entries expire lazily: an expired entry is a miss and its
//! way is reused in place; [`FlowTable::expire`] sweeps a few buckets per call so that every
//! entry is reclaimed (and `len` kept honest) within a bounded time.
//!
//! The table grows within its memory: it starts on the first [`FIRST_LEVEL`] buckets and,
//! once a third of their ways are used, doubles the buckets in use (linear hashing: the
//! buckets of the level are split one at a time, a few on each insert and each
//! [`FlowTable::expire`], each moving the entries whose place is now in its twin above the
//! level). A thousand flows then live in 64 KiB rather than spread over the whole
//! allocation, one TLB entry per page of it: on a virtual machine, whose hugepages the host
//! may back with 4 KiB pages, the spread cost a page walk a packet (`perf`: the bucket
//! prefetch held 18% of the worker's samples with 1,000 flows in a 1M-flow table, 5.5% in a
//! small one). Nothing is allocated; the memory stays what it was at start.
//!
//! Full (every way of both buckets live, or `capacity` entries held): [`FlowTable::insert`]
//! refuses, live entries are never evicted, and the caller forwards by the Maglev decision
//! alone: never an error, never unbounded memory.
//!
//! Deadlines are 32-bit and compared wrapping, which holds for timeouts under 2^31 ms (24
//! days; the config allows 24 h) as long as `expire` keeps sweeping, as the worker does
//! every loop.

use bytemuck::Zeroable;

pub use super::flow::V4Key;

/// Entries per bucket.
pub const WAYS: usize = 3;

/// One cache line of entries. All zeroes is an empty bucket.
#[derive(Debug, Clone, Copy, Zeroable)]
#[repr(C, align(64))]
pub struct Bucket {
    addrs: [u64; WAYS],
    ports: [u32; WAYS],
    values: [u32; WAYS],
    deadlines: [u32; WAYS],
    protos: [u8; WAYS],
    /// Bit `w` set: way `w` holds an entry (live or expired).
    used: u8,
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

impl Bucket {
    /// The way holding `key`: the used ways whose address pair matches, found without a
    /// branch, then ports and protocol checked on those alone (nearly always one).
    #[inline(always)]
    fn way_of(&self, key: &V4Key) -> Option<usize> {
        let mut pairs = 0u8;
        for w in 0..WAYS {
            pairs |= u8::from(self.addrs[w] == key.addrs) << w;
        }
        pairs &= self.used;
        while pairs != 0 {
            let w = pairs.trailing_zeros() as usize;
            if self.ports[w] == key.ports && self.protos[w] == key.proto {
                return Some(w);
            }
            pairs &= pairs - 1;
        }
        None
    }

    /// A way to put a new entry in: a free one, else an expired one (the bool says so); only
    /// an expired one for a table holding all the entries it may (`full`), where a free way
    /// is no room.
    #[inline]
    fn room(&self, now: u32, full: bool) -> Option<(usize, bool)> {
        let free = (0..WAYS).find(|&w| self.used & (1 << w) == 0);
        match free.filter(|_| !full) {
            Some(w) => Some((w, false)),
            None => (0..WAYS)
                .find(|&w| self.used & (1 << w) != 0 && expired(self.deadlines[w], now))
                .map(|w| (w, true)),
        }
    }
}

/// Whether `deadline` has passed at `now`, both wrapping milliseconds.
#[inline]
fn expired(deadline: u32, now: u32) -> bool {
    now.wrapping_sub(deadline) as i32 >= 0
}

#[inline]
fn deadline(now_ms: u64, timeout_ms: u64) -> u32 {
    // Timeouts are far below 2^31 ms; longer ones are clamped so the comparison stays right.
    (now_ms as u32).wrapping_add(timeout_ms.min(i32::MAX as u64) as u32)
}

/// Where an entry is: bucket and way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    bucket: u32,
    way: u8,
}

/// The bucket memory a table runs on: a plain boxed slice, or DPDK's hugepage memory.
pub trait BucketMemory: AsRef<[Bucket]> + AsMut<[Bucket]> {}
impl<M: AsRef<[Bucket]> + AsMut<[Bucket]>> BucketMemory for M {}

/// Buckets a table starts on (64 KiB), or all of its memory if that is less.
pub const FIRST_LEVEL: usize = 1024;

/// Buckets of the level split for each new entry while the table grows: the level doubles
/// within half as many inserts as it has buckets, before its load passes one half.
const SPLITS_PER_INSERT: usize = 2;

/// The hash a table places a key by, under its secret.
pub type TableHash = fn(&V4Key, u64) -> u64;

/// A bounded, aged map from IPv4 flow to a 32-bit value, owned by one worker.
#[derive(Debug)]
pub struct FlowTable<M = Box<[Bucket]>> {
    memory: M,
    /// The memory's bucket count less one: the most the table grows to.
    mask: usize,
    /// The level's bucket count less one: a key's place is its hash masked by this, or by
    /// the next level's mask where its bucket has been split already.
    level: usize,
    /// The next level's mask (`level << 1 | 1`).
    next_level: usize,
    /// While growing: the level's buckets below this one have been split.
    split: usize,
    growing: bool,
    len: usize,
    capacity: usize,
    /// Next bucket `expire` examines.
    cursor: usize,
    /// Every hash given for a key must be `hasher(key, secret)`: splitting a bucket
    /// recomputes the hashes of its entries.
    hasher: TableHash,
    secret: u64,
}

/// Buckets for `capacity` entries: a power of two with at least twice as many ways (at most
/// half of them used when full, a third for a power-of-two capacity), which keeps refusals for
/// want of room in both of a flow's buckets negligible below `capacity` (at two thirds, 3% of
/// the flows of a full table found no room).
pub fn buckets_for(capacity: usize) -> usize {
    capacity
        .saturating_mul(2)
        .div_ceil(WAYS)
        .max(1)
        .next_power_of_two()
}

impl FlowTable<Box<[Bucket]>> {
    /// A table for at most `capacity` flows on the ordinary heap (tests, `haports lookup`).
    pub fn with_capacity(capacity: usize) -> Self {
        let memory = vec![Bucket::zeroed(); buckets_for(capacity)].into_boxed_slice();
        FlowTable::in_memory(memory, capacity)
    }
}

impl<M: BucketMemory> FlowTable<M> {
    /// A table for at most `capacity` flows in `memory`, which must hold
    /// [`buckets_for`]`(capacity)` zeroed buckets.
    ///
    /// # Panics
    /// If `memory` has another number of buckets.
    pub fn in_memory(mut memory: M, capacity: usize) -> Self {
        let n = memory.as_mut().len();
        assert_eq!(
            n,
            buckets_for(capacity),
            "flow table memory of the wrong size"
        );
        debug_assert!(memory.as_ref().iter().all(|b| b.used == 0));
        FlowTable {
            memory,
            mask: n - 1,
            level: n.min(FIRST_LEVEL) - 1,
            next_level: (n.min(FIRST_LEVEL) - 1) << 1 | 1,
            split: 0,
            growing: false,
            len: 0,
            capacity,
            cursor: 0,
            hasher: super::hash::table_hash_v4,
            secret: 0,
        }
    }

    /// The table with its keys placed under `secret` ([`table_hash_v4`]); before any entry.
    ///
    /// [`table_hash_v4`]: super::hash::table_hash_v4
    ///
    /// # Panics
    /// If the table holds entries.
    pub fn keyed(mut self, secret: u64) -> Self {
        assert!(self.is_empty(), "a table is keyed before its first entry");
        self.secret = secret;
        self
    }

    /// The hash every lookup and insert of `key` must be given.
    #[inline]
    pub fn hash(&self, key: &V4Key) -> u64 {
        (self.hasher)(key, self.secret)
    }

    /// Buckets in use: the level, and its split buckets' twins above it.
    pub fn buckets_in_use(&self) -> usize {
        self.level + 1 + self.split
    }

    /// Entries held, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes of bucket memory, fixed for the table's life.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(self.memory.as_ref())
    }

    /// A flow's two buckets: the first from its hash, the second from its hash at an offset
    /// that depends on the key alone, so that an entry's other bucket is known from where it
    /// sits and what it holds (cuckoo hashing's partial-key trick), which lets
    /// [`FlowTable::insert`] move an entry aside to make room. Distinct whenever two buckets
    /// are in use.
    #[inline]
    fn homes(&self, key: &V4Key, hash: u64) -> (usize, usize) {
        let h = hash as usize;
        (self.place(h), self.place(h ^ offset(key)))
    }

    /// Where a position (a hash, or a hash at its key's offset) falls: in the level, or in
    /// the next one where the level's bucket has been split.
    #[inline(always)]
    fn place(&self, x: usize) -> usize {
        let low = x & self.level;
        if low < self.split {
            x & self.next_level
        } else {
            low
        }
    }

    /// The two buckets `key` may live in, for the caller to prefetch.
    #[inline]
    pub fn buckets_of(&self, key: &V4Key, hash: u64) -> (&Bucket, &Bucket) {
        let (a, b) = self.homes(key, hash);
        let buckets = self.memory.as_ref();
        (&buckets[a], &buckets[b])
    }

    /// The bucket a flow with this hash tries first (and nearly always lives in), for the
    /// caller to prefetch.
    #[inline]
    pub fn first_bucket_of(&self, hash: u64) -> &Bucket {
        &self.memory.as_ref()[self.place(hash as usize)]
    }

    /// Where `key`'s entry is, live or expired: its first bucket, where nearly every entry
    /// lives, then its second.
    #[inline(always)]
    fn locate(&self, key: &V4Key, hash: u64) -> Option<Slot> {
        let buckets = self.memory.as_ref();
        let first = self.place(hash as usize);
        let at = |i: usize, w: usize| Slot {
            bucket: i as u32,
            way: w as u8,
        };
        if let Some(w) = buckets.get(first)?.way_of(key) {
            return Some(at(first, w));
        }
        let second = self.place(hash as usize ^ offset(key));
        buckets.get(second)?.way_of(key).map(|w| at(second, w))
    }

    /// The live entry of a flow. An expired one is reclaimed and reported as a miss.
    #[inline(always)]
    pub fn find(&mut self, key: &V4Key, hash: u64, now_ms: u64) -> Option<Slot> {
        self.find_value(key, hash, now_ms).map(|(slot, _)| slot)
    }

    /// [`FlowTable::find`] with the entry's value, read from the bucket in hand.
    #[inline(always)]
    pub fn find_value(&mut self, key: &V4Key, hash: u64, now_ms: u64) -> Option<(Slot, u32)> {
        let first = self.place(hash as usize);
        let slot = match self.memory.as_ref().get(first)?.way_of(key) {
            Some(w) => Slot {
                bucket: first as u32,
                way: w as u8,
            },
            None => self.find_second(key, hash, first)?,
        };
        let bucket = &mut self.memory.as_mut()[slot.bucket as usize];
        let w = usize::from(slot.way);
        if expired(bucket.deadlines[w], now_ms as u32) {
            bucket.used &= !(1 << w);
            self.len -= 1;
            return None;
        }
        Some((slot, bucket.values[w]))
    }

    /// A flow's value without touching its age, expired or not: for inspection.
    pub fn peek(&self, key: &V4Key, hash: u64) -> Option<u32> {
        self.locate(key, hash).map(|s| self.value(s))
    }

    #[inline]
    pub fn value(&self, slot: Slot) -> u32 {
        self.memory.as_ref()[slot.bucket as usize].values[usize::from(slot.way)]
    }

    /// Sets a live entry's value and pushes its deadline to `timeout_ms` from now.
    #[inline(always)]
    pub fn refresh(&mut self, slot: Slot, value: u32, now_ms: u64, timeout_ms: u64) {
        let bucket = &mut self.memory.as_mut()[slot.bucket as usize];
        let w = usize::from(slot.way);
        bucket.values[w] = value;
        bucket.deadlines[w] = deadline(now_ms, timeout_ms);
    }

    /// Remembers `value` for `key`, replacing any entry for the same key. None, and nothing
    /// remembered, when the table holds `capacity` entries or both of the flow's buckets are
    /// full of live ones: the caller then forwards by the Maglev decision alone.
    #[inline]
    pub fn insert(
        &mut self,
        key: V4Key,
        hash: u64,
        value: u32,
        now_ms: u64,
        timeout_ms: u64,
    ) -> Option<Slot> {
        if let Some(slot) = self.locate(&key, hash) {
            self.refresh(slot, value, now_ms, timeout_ms);
            return Some(slot);
        }
        let now = now_ms as u32;
        let (a, b) = self.homes(&key, hash);
        let at_capacity = self.len >= self.capacity;
        let found = [a, b].into_iter().find_map(|i| {
            self.memory.as_ref()[i]
                .room(now, at_capacity)
                .map(|(w, reused)| (i, w, reused))
        });
        let (i, w, reused) = match found {
            Some(place) => place,
            None if at_capacity => return None,
            None => self.make_room(a, b)?,
        };
        let buckets = self.memory.as_mut();
        let bucket = &mut buckets[i];
        bucket.addrs[w] = key.addrs;
        bucket.ports[w] = key.ports;
        bucket.protos[w] = key.proto;
        bucket.values[w] = value;
        bucket.deadlines[w] = deadline(now_ms, timeout_ms);
        bucket.used |= 1 << w;
        let slot = Slot {
            bucket: i as u32,
            way: w as u8,
        };
        if reused {
            return Some(slot);
        }
        self.len += 1;
        if self.grow(SPLITS_PER_INSERT) {
            // The entry may have moved to its bucket's twin.
            return self.locate(&key, hash);
        }
        Some(slot)
    }

    /// Forgets a flow, returning its value (expired or not).
    pub fn remove(&mut self, key: &V4Key, hash: u64) -> Option<u32> {
        let slot = self.locate(key, hash)?;
        let value = self.value(slot);
        self.memory.as_mut()[slot.bucket as usize].used &= !(1 << slot.way);
        self.len -= 1;
        Some(value)
    }

    /// Incremental aging: examines at most `max_buckets` buckets from a cursor that wraps
    /// around the buckets in use, reclaims their expired entries and returns how many. While
    /// the table grows, it also splits as many buckets.
    pub fn expire(&mut self, now_ms: u64, max_buckets: usize) -> usize {
        self.grow(max_buckets);
        let now = now_ms as u32;
        let in_use = self.buckets_in_use();
        let buckets = self.memory.as_mut();
        let mut removed = 0;
        for _ in 0..max_buckets.min(in_use) {
            if self.cursor >= in_use {
                self.cursor = 0;
            }
            let bucket = &mut buckets[self.cursor];
            self.cursor += 1;
            for w in 0..WAYS {
                if bucket.used & (1 << w) != 0 && expired(bucket.deadlines[w], now) {
                    bucket.used &= !(1 << w);
                    removed += 1;
                }
            }
        }
        self.len -= removed;
        removed
    }

    /// The bucket `ahead` places past the next one [`FlowTable::expire`] examines: for the
    /// caller to prefetch the next sweep's buckets while other work goes on.
    #[inline]
    pub fn swept_next(&self, ahead: usize) -> &Bucket {
        // Masked by the memory, not wrapped at the buckets in use (a division each): near the
        // wrap a bucket out of use may be fetched for nothing.
        &self.memory.as_ref()[(self.cursor + ahead) & self.mask]
    }

    /// Keeps only the entries for which `f` returns true, letting it update their values.
    /// Slow path: visits every bucket.
    pub fn retain(&mut self, mut f: impl FnMut(&V4Key, &mut u32) -> bool) {
        let mut removed = 0;
        for bucket in self.memory.as_mut() {
            for w in 0..WAYS {
                if bucket.used & (1 << w) == 0 {
                    continue;
                }
                let key = V4Key {
                    addrs: bucket.addrs[w],
                    ports: bucket.ports[w],
                    proto: bucket.protos[w],
                };
                if !f(&key, &mut bucket.values[w]) {
                    bucket.used &= !(1 << w);
                    removed += 1;
                }
            }
        }
        self.len -= removed;
    }
}

/// Where a key's second bucket lies from its first: odd, so never the same bucket.
#[inline]
fn offset(key: &V4Key) -> usize {
    let mix = (key.addrs ^ u64::from(key.ports) << 16 ^ u64::from(key.proto))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mix >> 40) as usize | 1
}

#[path = "flow_table_moves.rs"]
mod moves;

#[cfg(test)]
#[path = "flow_table_tests.rs"]
mod tests;
