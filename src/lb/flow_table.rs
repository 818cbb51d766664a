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
    #[inline]
    fn way_of(&self, key: &V4Key) -> Option<usize> {
        (0..WAYS).find(|&w| {
            self.used & (1 << w) != 0
                && self.addrs[w] == key.addrs
                && self.ports[w] == key.ports
                && self.protos[w] == key.proto
        })
    }

    /// A way to put a new entry in: a free one, else an expired one (the bool says so).
    #[inline]
    fn room(&self, now: u32) -> Option<(usize, bool)> {
        (0..WAYS)
            .find(|&w| self.used & (1 << w) == 0)
            .map(|w| (w, false))
            .or_else(|| {
                (0..WAYS)
                    .find(|&w| expired(self.deadlines[w], now))
                    .map(|w| (w, true))
            })
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

/// A bounded, aged map from IPv4 flow to a 32-bit value, owned by one worker.
#[derive(Debug)]
pub struct FlowTable<M = Box<[Bucket]>> {
    memory: M,
    mask: usize,
    len: usize,
    capacity: usize,
    /// Next bucket `expire` examines.
    cursor: usize,
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
            len: 0,
            capacity,
            cursor: 0,
        }
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

    /// A flow's two buckets: the first from its hash, the second at an offset from the first
    /// that depends on the key alone, so that an entry's other bucket is known from where it
    /// sits and what it holds (cuckoo hashing's partial-key trick), which lets
    /// [`FlowTable::insert`] move an entry aside to make room.
    #[inline]
    fn homes(&self, key: &V4Key, hash: u64) -> (usize, usize) {
        let first = hash as usize & self.mask;
        (first, self.other(first, key))
    }

    /// The other bucket of `key`'s entry sitting in bucket `i`; distinct whenever there are
    /// two buckets.
    #[inline]
    fn other(&self, i: usize, key: &V4Key) -> usize {
        let mix = (key.addrs ^ u64::from(key.ports) << 16 ^ u64::from(key.proto))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (i ^ ((mix >> 40) as usize | 1)) & self.mask
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
        &self.memory.as_ref()[hash as usize & self.mask]
    }

    /// Where `key`'s entry is, live or expired.
    #[inline]
    fn locate(&self, key: &V4Key, hash: u64) -> Option<Slot> {
        let (a, b) = self.homes(key, hash);
        let buckets = self.memory.as_ref();
        for i in [a, b] {
            if let Some(w) = buckets[i].way_of(key) {
                return Some(Slot {
                    bucket: i as u32,
                    way: w as u8,
                });
            }
        }
        None
    }

    /// The live entry of a flow. An expired one is reclaimed and reported as a miss.
    #[inline]
    pub fn find(&mut self, key: &V4Key, hash: u64, now_ms: u64) -> Option<Slot> {
        let slot = self.locate(key, hash)?;
        let bucket = &mut self.memory.as_mut()[slot.bucket as usize];
        let w = usize::from(slot.way);
        if expired(bucket.deadlines[w], now_ms as u32) {
            bucket.used &= !(1 << w);
            self.len -= 1;
            return None;
        }
        Some(slot)
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
    #[inline]
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
                .room(now)
                .filter(|&(_, reused)| reused || !at_capacity)
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
        if !reused {
            self.len += 1;
        }
        Some(Slot {
            bucket: i as u32,
            way: w as u8,
        })
    }

    /// Both of a new flow's buckets are full of live entries: moves one of their entries to
    /// its own other bucket where that has a free way (one cuckoo step) and returns the way it
    /// left. None when no entry can move: the flow is not remembered.
    #[cold]
    fn make_room(&mut self, a: usize, b: usize) -> Option<(usize, usize, bool)> {
        for i in [a, b] {
            for w in 0..WAYS {
                let bucket = self.memory.as_ref()[i];
                let key = V4Key {
                    addrs: bucket.addrs[w],
                    ports: bucket.ports[w],
                    proto: bucket.protos[w],
                };
                let j = self.other(i, &key);
                let Some(free) = (0..WAYS).find(|&v| self.memory.as_ref()[j].used & (1 << v) == 0)
                else {
                    continue;
                };
                let buckets = self.memory.as_mut();
                let target = &mut buckets[j];
                target.addrs[free] = bucket.addrs[w];
                target.ports[free] = bucket.ports[w];
                target.protos[free] = bucket.protos[w];
                target.values[free] = bucket.values[w];
                target.deadlines[free] = bucket.deadlines[w];
                target.used |= 1 << free;
                buckets[i].used &= !(1 << w);
                return Some((i, w, false));
            }
        }
        None
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
    /// around the table, reclaims their expired entries and returns how many.
    pub fn expire(&mut self, now_ms: u64, max_buckets: usize) -> usize {
        let now = now_ms as u32;
        let buckets = self.memory.as_mut();
        let n = buckets.len();
        let mut removed = 0;
        for _ in 0..max_buckets.min(n) {
            let bucket = &mut buckets[self.cursor];
            self.cursor = (self.cursor + 1) & self.mask;
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn flow(n: u32) -> V4Key {
        V4Key::new(
            6,
            0x0a00_0000 | n,
            1024 + (n % 60000) as u16,
            0x0aff_0064,
            80,
        )
    }

    fn h(key: &V4Key) -> u64 {
        // Any well-mixed hash will do for the table; the data plane uses the flow hash.
        let x = key.addrs ^ u64::from(key.ports).rotate_left(17) ^ u64::from(key.proto);
        x.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(31)
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
    }

    fn lookup(t: &mut FlowTable, k: &V4Key, now: u64) -> Option<u32> {
        t.find(k, h(k), now).map(|s| t.value(s))
    }

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn both_directions_are_one_key() {
        let a = V4Key::new(17, 0x0a000001, 5000, 0x0a000064, 53);
        let b = V4Key::new(17, 0x0a000064, 53, 0x0a000001, 5000);
        assert_eq!(a, b);
        // The lower endpoint first, as FlowKey::canonical has it: same address, ports decide.
        let c = V4Key::new(6, 7, 9, 7, 8);
        assert_eq!(c.ports, 8 << 16 | 9);
    }

    #[test]
    fn insert_find_remove() {
        let mut t = FlowTable::with_capacity(8);
        let (a, b) = (flow(1), flow(2));
        assert!(t.is_empty());
        assert!(t.insert(a, h(&a), 10, 0, 1000).is_some());
        assert!(t.insert(b, h(&b), 20, 0, 1000).is_some());
        assert_eq!(t.len(), 2);
        assert_eq!(lookup(&mut t, &a, 1), Some(10));
        assert_eq!(lookup(&mut t, &b, 1), Some(20));
        assert_eq!(lookup(&mut t, &flow(3), 1), None);
        assert_eq!(t.remove(&a, h(&a)), Some(10));
        assert_eq!(t.remove(&a, h(&a)), None);
        assert_eq!(t.len(), 1);
        // Replacing keeps one entry.
        assert!(t.insert(b, h(&b), 21, 0, 1000).is_some());
        assert_eq!((t.len(), lookup(&mut t, &b, 2)), (1, Some(21)));
    }

    #[test]
    fn memory_is_sized_once_and_reported() {
        let t = FlowTable::with_capacity(1 << 20);
        assert_eq!(t.bytes(), 1_048_576 * 64);
        assert_eq!(buckets_for(0), 1);
        assert_eq!(buckets_for(3), 2);
    }

    #[test]
    fn idle_entries_expire_and_refresh_keeps_them() {
        let mut t = FlowTable::with_capacity(8);
        let (a, b) = (flow(1), flow(2));
        t.insert(a, h(&a), 1, 0, 100);
        t.insert(b, h(&b), 2, 0, 100);
        let s = t.find(&a, h(&a), 99).unwrap();
        t.refresh(s, 1, 99, 100);
        assert_eq!(lookup(&mut t, &b, 100), None);
        assert_eq!(t.len(), 1, "the expired entry was reclaimed by the miss");
        assert_eq!(lookup(&mut t, &a, 198), Some(1));
        assert_eq!(lookup(&mut t, &a, 199), None);
        assert!(t.is_empty());
    }

    #[test]
    fn colliding_flows_never_evict_live_entries() {
        // Every key's first bucket is the same one.
        let mut t = FlowTable::with_capacity(100);
        let same = |_: &V4Key| 0x0000_0003_0000_0001u64;
        let held: Vec<u32> = (0..40)
            .filter(|&n| t.insert(flow(n), same(&flow(n)), n, 0, 100).is_some())
            .collect();
        assert!(held.len() >= 2 * WAYS, "held {}", held.len());
        for &n in &held {
            let k = flow(n);
            assert_eq!(t.find(&k, same(&k), 50).map(|s| t.value(s)), Some(n));
        }
        assert_eq!(t.len(), held.len());
        // Once they expire, new flows take their ways in place.
        for n in 100..106 {
            assert!(t.insert(flow(n), same(&flow(n)), n, 150, 100).is_some());
        }
        assert!(t.len() <= held.len().max(6));
    }

    #[test]
    fn a_full_table_holds_its_whole_capacity() {
        // Two buckets a flow and one cuckoo step: every flow of a table filled to its
        // capacity finds room (without the step, about 0.1% found both buckets full).
        let capacity = 1 << 16;
        let mut t = FlowTable::with_capacity(capacity);
        let held = (0..capacity as u32)
            .filter(|&n| {
                let k = V4Key::new(
                    17,
                    0x0a40_0000 + n,
                    1024 + (n % 50_000) as u16,
                    0x0a00_0064,
                    53,
                );
                t.insert(k, h(&k), n, 0, 1000).is_some()
            })
            .count();
        assert_eq!(held, capacity);
        assert_eq!(t.len(), capacity);
    }

    #[test]
    fn capacity_bounds_the_entries_even_with_free_ways() {
        let mut t = FlowTable::with_capacity(3);
        let mut held = 0;
        for n in 0..50 {
            let k = flow(n);
            if t.insert(k, h(&k), n, 0, 100).is_some() {
                held += 1;
            }
        }
        assert_eq!((held, t.len()), (3, 3));
    }

    #[test]
    fn zero_capacity_refuses_everything() {
        let mut t = FlowTable::with_capacity(0);
        let a = flow(1);
        assert_eq!(t.insert(a, h(&a), 1, 0, 1000), None);
        assert_eq!(t.expire(0, 10), 0);
        assert_eq!(lookup(&mut t, &a, 0), None);
    }

    #[test]
    fn expire_sweeps_a_bounded_number_of_buckets_and_wraps() {
        let mut t = FlowTable::with_capacity(64);
        for n in 0..40 {
            let k = flow(n);
            t.insert(k, h(&k), n, 0, 50);
        }
        let buckets = buckets_for(64);
        assert_eq!(t.expire(49, buckets), 0);
        let mut removed = 0;
        for _ in 0..buckets {
            let r = t.expire(50, 1);
            assert!(r <= WAYS);
            removed += r;
        }
        assert_eq!((removed, t.len()), (40, 0));
    }

    #[test]
    fn deadlines_survive_the_32_bit_clock_wrapping() {
        let mut t = FlowTable::with_capacity(8);
        let a = flow(1);
        let near_wrap = u64::from(u32::MAX) - 10;
        t.insert(a, h(&a), 7, near_wrap, 100);
        assert_eq!(lookup(&mut t, &a, near_wrap + 99), Some(7));
        assert_eq!(lookup(&mut t, &a, near_wrap + 100), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert { key: u8, value: u16, timeout: u8 },
        Lookup { key: u8, timeout: u8 },
        Remove { key: u8 },
        Expire { buckets: u8 },
        Retain { modulus: u8 },
        Tick { ms: u8 },
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..40, any::<u16>(), 1u8..30)
                .prop_map(|(key, value, timeout)| Op::Insert { key, value, timeout }),
            3 => (0u8..40, 1u8..30).prop_map(|(key, timeout)| Op::Lookup { key, timeout }),
            1 => (0u8..40).prop_map(|key| Op::Remove { key }),
            1 => (0u8..8).prop_map(|buckets| Op::Expire { buckets }),
            1 => (1u8..5).prop_map(|modulus| Op::Retain { modulus }),
            2 => (0u8..10).prop_map(|ms| Op::Tick { ms }),
        ]
    }

    /// The model: key → (value, deadline), expired entries included until reclaimed.
    type Model = HashMap<V4Key, (u32, u64)>;

    fn live(model: &Model, key: &V4Key, now: u64) -> Option<u32> {
        model
            .get(key)
            .filter(|(_, deadline)| now < *deadline)
            .map(|(v, _)| *v)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Against a map with deadlines: bounded, lazily expired, refusing only when full,
        /// never losing a live entry, in both key orders (keys are built from either side).
        #[test]
        fn arbitrary_operations_agree_with_a_model(
            capacity in 0usize..24,
            // All keys sharing their first bucket must work as well as a good hash.
            collide in any::<bool>(),
            ops in proptest::collection::vec(arb_op(), 0..300),
        ) {
            let mut t = FlowTable::with_capacity(capacity);
            let bytes = t.bytes();
            let mut model = Model::new();
            let mut now = 0u64;
            let hash = |k: &V4Key| if collide { 7 } else { h(k) };
            // Even keys are written client side first, odd ones server side first.
            let key = |n: u8| {
                let (c, s) = (0x0a00_0000 | u32::from(n), 0x0a00_0064);
                if n % 2 == 0 {
                    V4Key::new(6, c, 40_000 + u16::from(n), s, 443)
                } else {
                    V4Key::new(6, s, 443, c, 40_000 + u16::from(n))
                }
            };
            for op in ops {
                match op {
                    Op::Insert { key: n, value, timeout } => {
                        let k = key(n);
                        let timeout = u64::from(timeout);
                        if t.insert(k, hash(&k), value.into(), now, timeout).is_some() {
                            model.insert(k, (value.into(), now + timeout));
                        } else {
                            prop_assert_eq!(live(&model, &k, now), None);
                            let live_count = model.keys().filter(|k| live(&model, k, now).is_some()).count();
                            // Refused: at capacity, or (colliding keys) both buckets live.
                            prop_assert!(t.len() == capacity || live_count >= 2 * WAYS,
                                "refused with {} live of capacity {}", live_count, capacity);
                        }
                    }
                    Op::Lookup { key: n, timeout } => {
                        let k = key(n);
                        let expected = live(&model, &k, now);
                        let found = t.find(&k, hash(&k), now);
                        prop_assert_eq!(found.map(|s| t.value(s)), expected);
                        if let Some(s) = found {
                            t.refresh(s, t.value(s), now, timeout.into());
                            model.get_mut(&k).unwrap().1 = now + u64::from(timeout);
                        } else {
                            model.remove(&k);
                        }
                    }
                    Op::Remove { key: n } => {
                        let k = key(n);
                        let removed = t.remove(&k, hash(&k));
                        match (live(&model, &k, now), model.remove(&k)) {
                            (Some(v), _) => prop_assert_eq!(removed, Some(v)),
                            (None, Some((v, _))) => prop_assert!(removed.is_none() || removed == Some(v)),
                            (None, None) => prop_assert_eq!(removed, None),
                        }
                    }
                    Op::Expire { buckets } => {
                        let before = t.len();
                        let removed = t.expire(now, buckets.into());
                        prop_assert!(removed <= usize::from(buckets) * WAYS);
                        prop_assert_eq!(t.len(), before - removed);
                    }
                    Op::Retain { modulus } => {
                        let keep = |v: &u32| v % u32::from(modulus) == 0;
                        t.retain(|_, v| keep(v));
                        model.retain(|_, (v, _)| keep(v));
                    }
                    Op::Tick { ms } => now += u64::from(ms),
                }
                let live_count = model.keys().filter(|k| live(&model, k, now).is_some()).count();
                prop_assert!(t.len() <= capacity);
                prop_assert!(t.len() >= live_count);
                prop_assert_eq!(t.bytes(), bytes);
                for k in model.keys() {
                    if let Some(v) = live(&model, k, now) {
                        prop_assert_eq!(t.peek(k, hash(k)), Some(v));
                    }
                }
            }
        }
    }
}
