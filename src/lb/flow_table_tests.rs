//! Tests of `lb::flow_table`.
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

/// [`h`] as a table's hasher.
fn h_keyed(key: &V4Key, _: u64) -> u64 {
    h(key)
}

/// A table placing keys by [`h`].
fn table(capacity: usize) -> FlowTable {
    FlowTable::with_capacity(capacity).hashed_by(h_keyed)
}

/// Every key in the same first bucket.
fn seven(_: &V4Key, _: u64) -> u64 {
    7
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
    let mut t = table(8);
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
    let mut t = table(8);
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
    let same_hash: TableHash = |_, _| 0x0000_0003_0000_0001;
    let mut t = FlowTable::with_capacity(100).hashed_by(same_hash);
    let same = |k: &V4Key| same_hash(k, 0);
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
    let mut t = table(capacity);
    let held = (0..capacity as u32)
        .filter(|&n| {
            let k = V4Key::new(
                17,
                0x0a40_0000 + n,
                1024 + (n % 50_000) as u16,
                0x0a00_0064,
                53,
            );
            t.insert(k, t.hash(&k), n, 0, 1000).is_some()
        })
        .count();
    assert_eq!(held, capacity);
    assert_eq!(t.len(), capacity);
}

#[test]
fn capacity_bounds_the_entries_even_with_free_ways() {
    let mut t = table(3);
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
    let mut t = table(0);
    let a = flow(1);
    assert_eq!(t.insert(a, h(&a), 1, 0, 1000), None);
    assert_eq!(t.expire(0, 10), 0);
    assert_eq!(lookup(&mut t, &a, 0), None);
}

#[test]
fn expire_sweeps_a_bounded_number_of_buckets_and_wraps() {
    let mut t = table(64);
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
    let mut t = table(8);
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

/// Whether `t` may refuse `key` at `now`: at capacity, or both of its buckets full of live
/// entries none of which has a free way in its own other bucket (the one cuckoo step
/// `make_room` takes).
fn may_refuse<M: BucketMemory>(t: &FlowTable<M>, key: &V4Key, hash: u64, now: u64) -> bool {
    if t.len() >= t.capacity() {
        return true;
    }
    let buckets = t.memory.as_ref();
    let (a, b) = t.homes(key, hash);
    [a, b].into_iter().all(|i| {
        let bucket = &buckets[i];
        (0..WAYS).all(|w| {
            let live = bucket.used & (1 << w) != 0 && !expired(bucket.deadlines[w], now as u32);
            let k = V4Key {
                addrs: bucket.addrs[w],
                ports: bucket.ports[w],
                proto: bucket.protos[w],
            };
            let (first, second) = t.homes(&k, t.hash(&k));
            let other = &buckets[if first == i { second } else { first }];
            live && other.used == (1 << WAYS) - 1
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Against a map with deadlines: bounded, lazily expired, refusing only when full,
    /// never losing a live entry, in both key orders (keys are built from either side),
    /// whether the table starts on all of its memory or grows from 1, 2 or 4 buckets.
    #[test]
    fn arbitrary_operations_agree_with_a_model(
        capacity in 0usize..200,
        start in 0u32..4,
        // All keys sharing their first bucket must work as well as a good hash.
        collide in any::<bool>(),
        ops in proptest::collection::vec(arb_op(), 0..300),
    ) {
        let hasher: TableHash = if collide { seven } else { h_keyed };
        let mut t = FlowTable::with_capacity(capacity).hashed_by(hasher);
        let all = buckets_for(capacity);
        if start < 3 {
            t = t.starting_on((1 << start).min(all));
        }
        let bytes = t.bytes();
        let mut model = Model::new();
        let mut now = 0u64;
        let hash = |k: &V4Key| hasher(k, 0);
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
                        // Refused: at capacity, or both of its buckets live and full with no
                        // entry able to move (the cuckoo step).
                        prop_assert!(may_refuse(&t, &k, hash(&k), now),
                            "refused with room, {} of capacity {}", t.len(), capacity);
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

#[test]
fn a_thousand_flows_stay_in_the_first_buckets() {
    // A 1M-flow table: its memory is all allocated, but a thousand flows live in the
    // first FIRST_LEVEL buckets (64 KiB).
    let mut t = FlowTable::with_capacity(1 << 20).keyed(0x5eed);
    for n in 0..1000 {
        let k = flow(n);
        assert!(t.insert(k, t.hash(&k), n, 0, 1000).is_some());
    }
    assert_eq!(t.buckets_in_use(), FIRST_LEVEL);
    assert_eq!(t.bytes(), (1 << 20) * 64);
}

#[test]
fn growing_keeps_every_entry_and_its_value() {
    // From FIRST_LEVEL buckets to the whole table, every entry checked after each thousand
    // inserts, and aging (which also splits) interleaved.
    let capacity = 1 << 16;
    let mut t = FlowTable::with_capacity(capacity).keyed(42);
    let key = |n: u32| {
        V4Key::new(
            17,
            0x0a40_0000 + n,
            1024 + (n % 50_000) as u16,
            0x0a00_0064,
            53,
        )
    };
    let mut levels = vec![t.buckets_in_use()];
    for n in 0..capacity as u32 {
        let k = key(n);
        assert!(
            t.insert(k, t.hash(&k), n, 0, 1000).is_some(),
            "flow {n} refused"
        );
        if n % 7 == 0 {
            t.expire(1, 8);
        }
        if n % 1000 == 999 {
            for m in (0..=n).step_by(13) {
                let k = key(m);
                assert_eq!(lookup_keyed(&mut t, &k), Some(m), "flow {m} of {n}");
            }
            levels.push(t.buckets_in_use());
        }
    }
    for m in 0..capacity as u32 {
        assert_eq!(lookup_keyed(&mut t, &key(m)), Some(m), "flow {m}");
    }
    assert_eq!(t.len(), capacity);
    assert!(levels.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(
        t.buckets_in_use(),
        buckets_for(capacity),
        "grew to all its memory"
    );
}

fn lookup_keyed(t: &mut FlowTable, k: &V4Key) -> Option<u32> {
    let hash = t.hash(k);
    t.find(k, hash, 1).map(|s| t.value(s))
}

#[test]
fn a_flow_found_in_its_second_bucket_moves_to_its_first_once_it_has_room() {
    let mut t = FlowTable::with_capacity(100).hashed_by(seven);
    for n in 0..4 {
        let k = flow(n);
        assert!(t.insert(k, 7, n, 0, 1000).is_some());
    }
    let fourth = flow(3);
    let first = t.place(7);
    assert_ne!(
        t.locate(&fourth, 7).unwrap().bucket as usize,
        first,
        "first bucket full"
    );
    assert_eq!(t.remove(&flow(0), 7), Some(0));
    // Found where it was, and moved home on the way.
    assert_eq!(t.find(&fourth, 7, 1).map(|s| t.value(s)), Some(3));
    assert_eq!(t.locate(&fourth, 7).unwrap().bucket as usize, first);
    assert_eq!(t.find(&fourth, 7, 1).map(|s| t.value(s)), Some(3));
    assert_eq!(t.len(), 3);
}

/// A table holding all the entries it may takes a new flow in place of an expired entry of
/// the flow's own bucket, though a free way sits beside it (a full table is about half used,
/// so that is the usual case): refused, the flow waited for the sweep to reach the bucket.
#[test]
fn at_capacity_an_expired_entry_beside_a_free_way_makes_room() {
    // Capacity 2: two buckets of three ways; every key hashes to 7.
    let mut t = FlowTable::with_capacity(2).hashed_by(seven);
    let (a, b, c) = (flow(1), flow(2), flow(3));
    assert!(t.insert(a, 7, 1, 0, 1).is_some());
    assert!(t.insert(b, 7, 2, 0, 100_000).is_some());
    assert_eq!(t.len(), 2);
    // At 10 ms `a` has expired, beside a free way in c's bucket.
    assert!(t.insert(c, 7, 3, 10, 100_000).is_some(), "room made");
    assert_eq!(t.len(), 2, "in place of the expired entry");
    assert_eq!(t.find_value(&c, 7, 10).map(|(_, v)| v), Some(3));
    assert_eq!(t.peek(&a, 7), None, "the expired entry gave its way");
    // Nothing expired: still refused at capacity.
    assert!(t.insert(flow(4), 7, 4, 10, 100_000).is_none());
}
