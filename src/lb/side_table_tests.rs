//! Tests of `lb::side_table`.
use super::*;
use crate::lb::hash::symmetric_hash;
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::IpAddr;

fn flow(n: u32) -> FlowKey {
    FlowKey {
        proto: 6,
        src: IpAddr::from((0x0a00_0000 | n).to_be_bytes()),
        dst: IpAddr::from([10, 255, 0, 100]),
        src_port: 1024 + (n % 60000) as u16,
        dst_port: 80,
    }
}

fn h(key: &FlowKey) -> u64 {
    symmetric_hash(key, 0)
}

#[test]
fn insert_lookup_remove() {
    let mut table = SideTable::with_capacity(4);
    let (a, b) = (flow(1), flow(2));
    assert!(table.is_empty());
    assert!(table.insert(a, h(&a), 10u32, 0, 1000));
    assert!(table.insert(b, h(&b), 20u32, 0, 1000));
    assert_eq!(table.len(), 2);
    assert_eq!(table.lookup(&a, h(&a), 1), Some(10));
    assert_eq!(table.lookup(&b, h(&b), 1), Some(20));
    assert_eq!(table.lookup(&flow(3), h(&flow(3)), 1), None);
    assert_eq!(table.remove(&a, h(&a)), Some(10));
    assert_eq!(table.remove(&a, h(&a)), None);
    assert_eq!(table.lookup(&a, h(&a), 1), None);
    assert_eq!(table.len(), 1);
    assert_eq!(table.capacity(), 4);
}

#[test]
fn reply_direction_finds_the_flow_by_its_symmetric_hash_and_own_key() {
    // The key is directional; a worker seeing the reply looks up key.reversed() with the
    // same symmetric hash. Both directions are distinct entries that share a bucket chain.
    let mut table = SideTable::with_capacity(4);
    let a = flow(1);
    table.insert(a, h(&a), 1u8, 0, 1000);
    assert_eq!(h(&a), h(&a.reversed()));
    assert_eq!(table.lookup(&a.reversed(), h(&a), 0), None);
    table.insert(a.reversed(), h(&a), 2u8, 0, 1000);
    assert_eq!(table.lookup(&a, h(&a), 0), Some(1));
    assert_eq!(table.lookup(&a.reversed(), h(&a), 0), Some(2));
}

#[test]
fn insert_replaces_the_entry_for_the_same_key() {
    let mut table = SideTable::with_capacity(2);
    let a = flow(1);
    assert!(table.insert(a, h(&a), 1u32, 0, 1000));
    assert!(table.insert(a, h(&a), 2u32, 0, 1000));
    assert_eq!(table.len(), 1);
    assert_eq!(table.lookup(&a, h(&a), 0), Some(2));
}

#[test]
fn replacing_works_even_when_full() {
    let mut table = SideTable::with_capacity(1);
    let a = flow(1);
    assert!(table.insert(a, h(&a), 1u32, 0, 1000));
    assert!(table.insert(a, h(&a), 2u32, 0, 1000));
    assert_eq!(table.peek(&a, h(&a)), Some(2));
}

#[test]
fn idle_flows_expire_and_traffic_keeps_them_alive() {
    let mut table = SideTable::with_capacity(4);
    let (a, b) = (flow(1), flow(2));
    table.insert(a, h(&a), 1u32, 0, 100);
    table.insert(b, h(&b), 2u32, 0, 100);
    assert_eq!(table.lookup(&a, h(&a), 99), Some(1)); // refreshed at 99
    assert_eq!(table.lookup(&b, h(&b), 100), None); // idle 100 ms: gone
    assert_eq!(table.len(), 1);
    assert_eq!(table.lookup(&a, h(&a), 198), Some(1));
    assert_eq!(table.lookup(&a, h(&a), 298), None);
    assert!(table.is_empty());
}

#[test]
fn expire_scans_at_most_max_scan_slots_and_wraps() {
    let mut table = SideTable::with_capacity(10);
    for n in 0..10 {
        let k = flow(n);
        table.insert(k, h(&k), n, 0, 50);
    }
    assert_eq!(table.expire(49, 10), 0);
    assert_eq!(table.expire(50, 3), 3);
    assert_eq!(table.len(), 7);
    assert_eq!(table.expire(50, 4), 4);
    assert_eq!(table.expire(50, 100), 3); // the rest; scans one lap at most
    assert!(table.is_empty());
    // The cursor wraps: new entries anywhere in the slab are found again.
    for n in 0..10 {
        let k = flow(100 + n);
        table.insert(k, h(&k), n, 100, 50);
    }
    assert_eq!(table.expire(149, 25), 0);
    assert_eq!(table.expire(150, 25), 10);
}

#[test]
fn full_table_refuses_then_accepts_once_entries_expire() {
    let mut table = SideTable::with_capacity(3);
    for n in 0..3 {
        let k = flow(n);
        assert!(table.insert(k, h(&k), n, 0, 100));
    }
    let late = flow(9);
    assert!(!table.insert(late, h(&late), 9, 50, 100));
    assert_eq!(table.len(), 3);
    assert_eq!(table.lookup(&late, h(&late), 50), None);
    // At 100 ms the others are idle; insert reclaims them by itself.
    assert!(table.insert(late, h(&late), 9, 100, 100));
    assert_eq!(table.lookup(&late, h(&late), 100), Some(9));
    assert!(table.len() <= 3);
}

#[test]
fn set_timeout_shortens_a_flow_from_its_last_packet() {
    let mut table = SideTable::with_capacity(2);
    let a = flow(1);
    table.insert(a, h(&a), 1u32, 0, 240_000);
    assert_eq!(table.lookup(&a, h(&a), 1000), Some(1));
    table.set_timeout(&a, h(&a), 10);
    assert_eq!(table.lookup(&a, h(&a), 1005), Some(1));
    assert_eq!(table.lookup(&a, h(&a), 1015), None);
    // Unknown keys are ignored.
    table.set_timeout(&flow(2), h(&flow(2)), 0);
}

#[test]
fn retain_keeps_and_updates_selected_flows() {
    let mut table = SideTable::with_capacity(8);
    for n in 0..8 {
        let k = flow(n);
        table.insert(k, h(&k), n, 0, 1000);
    }
    table.retain(|_, v| {
        *v *= 10;
        *v % 20 == 0
    });
    assert_eq!(table.len(), 4);
    for n in 0..8 {
        let k = flow(n);
        let expected = (n % 2 == 0).then_some(n * 10);
        assert_eq!(table.lookup(&k, h(&k), 1), expected);
    }
    // Freed slots are reusable.
    for n in 10..14 {
        let k = flow(n);
        assert!(table.insert(k, h(&k), n, 1, 1000));
    }
    assert_eq!(table.len(), 8);
}

#[test]
fn zero_capacity_table_refuses_everything() {
    let mut table = SideTable::<u32>::with_capacity(0);
    let a = flow(1);
    assert!(!table.insert(a, h(&a), 1, 0, 1000));
    assert_eq!(table.expire(0, 10), 0);
    assert_eq!(table.lookup(&a, h(&a), 0), None);
}

#[test]
fn churn_at_full_load_never_reallocates_the_index() {
    // Tombstones from removals use up hashbrown's growth room; with the index sized at
    // twice the capacity it rehashes in place instead of growing.
    let capacity = 1000;
    let mut table = SideTable::with_capacity(capacity);
    let size = table.index_allocation_size();
    let mut now = 0;
    for n in 0..200_000u32 {
        let k = flow(n);
        if !table.insert(k, h(&k), n, now, 5) {
            table.expire(now, 64);
        }
        now += n as u64 % 2;
        assert_eq!(table.index_allocation_size(), size, "after {n} inserts");
    }
    assert!(table.len() <= capacity);
}

#[derive(Debug, Clone)]
enum Op {
    Insert { key: u8, value: u16, timeout: u8 },
    Lookup { key: u8 },
    SetTimeout { key: u8, timeout: u8 },
    Remove { key: u8 },
    Expire { max_scan: u8 },
    Retain { modulus: u8 },
    Tick { ms: u8 },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..40, any::<u16>(), 0u8..30)
            .prop_map(|(key, value, timeout)| Op::Insert { key, value, timeout }),
        3 => (0u8..40).prop_map(|key| Op::Lookup { key }),
        1 => (0u8..40, 0u8..10).prop_map(|(key, timeout)| Op::SetTimeout { key, timeout }),
        1 => (0u8..40).prop_map(|key| Op::Remove { key }),
        1 => (0u8..20).prop_map(|max_scan| Op::Expire { max_scan }),
        1 => (1u8..5).prop_map(|modulus| Op::Retain { modulus }),
        2 => (0u8..10).prop_map(|ms| Op::Tick { ms }),
    ]
}

/// The model: key → (value, last seen, timeout), expired entries included until removed.
type Model = HashMap<FlowKey, (u16, u64, u64)>;

fn live(model: &Model, key: &FlowKey, now: u64) -> Option<u16> {
    model
        .get(key)
        .filter(|(_, seen, timeout)| now.saturating_sub(*seen) < *timeout)
        .map(|(v, _, _)| *v)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_operations_stay_bounded_and_agree_with_a_model(
        capacity in 0usize..24,
        // All keys colliding on one hash must work as well as a good hash.
        collide in any::<bool>(),
        ops in proptest::collection::vec(arb_op(), 0..300),
    ) {
        let mut table = SideTable::<u16>::with_capacity(capacity);
        let index_size = table.index_allocation_size();
        let mut model = Model::new();
        let mut now = 0u64;
        let hash = |k: &FlowKey| if collide { 7 } else { symmetric_hash(k, 1) };
        for op in ops {
            match op {
                Op::Insert { key, value, timeout } => {
                    let k = flow(key.into());
                    if table.insert(k, hash(&k), value, now, timeout.into()) {
                        model.insert(k, (value, now, timeout.into()));
                    } else {
                        // Refused only when full of other flows.
                        prop_assert_eq!(table.len(), capacity);
                        prop_assert_eq!(live(&model, &k, now), None);
                    }
                }
                Op::Lookup { key } => {
                    let k = flow(key.into());
                    let expected = live(&model, &k, now);
                    prop_assert_eq!(table.lookup(&k, hash(&k), now), expected);
                    match expected {
                        Some(_) => model.get_mut(&k).unwrap().1 = now,
                        None => { model.remove(&k); }
                    }
                }
                Op::SetTimeout { key, timeout } => {
                    // As a worker does: right after a hit, on a live flow.
                    let k = flow(key.into());
                    if live(&model, &k, now).is_some() {
                        table.set_timeout(&k, hash(&k), timeout.into());
                        model.get_mut(&k).unwrap().2 = timeout.into();
                    }
                }
                Op::Remove { key } => {
                    let k = flow(key.into());
                    let was_live = live(&model, &k, now);
                    let removed = table.remove(&k, hash(&k));
                    match (was_live, model.remove(&k)) {
                        (Some(v), _) => prop_assert_eq!(removed, Some(v)),
                        // Expired: may or may not have been reclaimed already.
                        (None, Some((v, _, _))) => {
                            prop_assert!(removed.is_none() || removed == Some(v))
                        }
                        (None, None) => prop_assert_eq!(removed, None),
                    }
                }
                Op::Expire { max_scan } => {
                    let before = table.len();
                    let removed = table.expire(now, max_scan.into());
                    prop_assert!(removed <= usize::from(max_scan));
                    prop_assert_eq!(table.len(), before - removed);
                }
                Op::Retain { modulus } => {
                    let keep = |v: &u16| v % u16::from(modulus) == 0;
                    table.retain(|_, v| keep(v));
                    model.retain(|_, (v, _, _)| keep(v));
                }
                Op::Tick { ms } => now += u64::from(ms),
            }
            let live_count = model.keys().filter(|k| live(&model, k, now).is_some()).count();
            prop_assert!(table.len() <= capacity);
            prop_assert!(table.len() <= model.len());
            prop_assert!(table.len() >= live_count);
            prop_assert_eq!(table.index_allocation_size(), index_size);
            for k in model.keys() {
                if let Some(v) = live(&model, k, now) {
                    prop_assert_eq!(table.peek(k, hash(k)), Some(v));
                }
            }
        }
    }
}
