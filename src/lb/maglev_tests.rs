//! Tests of `lb::maglev`.
use super::*;
use proptest::prelude::*;
use proptest::sample::subsequence;

fn pool(n: usize) -> Vec<MaglevBackend> {
    (0..n)
        .map(|i| MaglevBackend {
            id: instance_id(&format!("10.0.0.{}", 11 + i)),
            weight: 1,
        })
        .collect()
}

/// How many slots each backend index owns.
fn loads(table: &MaglevTable, n: usize) -> Vec<usize> {
    let mut loads = vec![0; n];
    for &slot in table.slots() {
        loads[slot as usize] += 1;
    }
    loads
}

/// The backend id in every slot.
fn ids(table: &MaglevTable, backends: &[MaglevBackend]) -> Vec<u64> {
    table
        .slots()
        .iter()
        .map(|&i| backends[i as usize].id)
        .collect()
}

#[test]
fn table_size_accepts_primes_only() {
    for p in [2, 3, 5, 251, 65537, 4_294_967_291] {
        assert_eq!(TableSize::new(p).map(TableSize::get), Ok(p));
    }
    for n in [0, 1, 4, 9, 65535, 65536, 251 * 251, 65537 * 3, u32::MAX] {
        assert_eq!(TableSize::new(n), Err(NotPrime(n)));
    }
    assert_eq!(TableSize::default(), TableSize::DEFAULT);
    assert_eq!(TableSize::DEFAULT.get(), 65537);
    let message = NotPrime(65536).to_string();
    assert!(
        message.contains("65536") && message.contains("prime"),
        "{message}"
    );
}

#[test]
fn empty_pool_and_all_zero_weights_give_no_backend() {
    let empty = MaglevTable::build(&[], TableSize::DEFAULT);
    assert_eq!(empty.lookup(42), None);
    assert_eq!(empty.size(), 65537);
    assert!(empty.slots().is_empty());
    let drained = [
        MaglevBackend { id: 1, weight: 0 },
        MaglevBackend { id: 2, weight: 0 },
    ];
    assert_eq!(
        MaglevTable::build(&drained, TableSize::DEFAULT).lookup(42),
        None
    );
}

#[test]
fn single_backend_owns_every_slot() {
    let table = MaglevTable::build(&pool(1), TableSize::DEFAULT);
    assert!(table.slots().iter().all(|&s| s == 0));
    assert_eq!(table.lookup(u64::MAX), Some(0));
}

#[test]
fn weight_zero_backend_gets_no_slot() {
    let mut backends = pool(4);
    backends[2].weight = 0;
    let table = MaglevTable::build(&backends, TableSize::new(251).unwrap());
    assert_eq!(loads(&table, 4)[2], 0);
    assert_eq!(table.slots().len(), 251);
}

#[test]
fn lookup_maps_hash_modulo_size() {
    let table = MaglevTable::build(&pool(7), TableSize::new(251).unwrap());
    for hash in [0u64, 1, 250, 251, 1 << 40, u64::MAX] {
        assert_eq!(
            table.lookup(hash),
            Some(table.slots()[(hash % 251) as usize])
        );
    }
}

#[test]
fn more_backends_than_slots_still_fills_the_table() {
    let table = MaglevTable::build(&pool(20), TableSize::new(7).unwrap());
    assert_eq!(table.slots().len(), 7);
    assert!(table.slots().iter().all(|&s| s < 20));
}

#[test]
fn equal_weights_balance_within_one_slot() {
    // Every round each backend claims exactly one slot, so loads differ by at most one:
    // max/mean is at most ceil(M/N) / (M/N), under 1.0002 for M = 65537, N <= 10.
    for n in [3, 5, 10] {
        let table = MaglevTable::build(&pool(n), TableSize::DEFAULT);
        let load = loads(&table, n);
        let (min, max) = (*load.iter().min().unwrap(), *load.iter().max().unwrap());
        let mean = 65537.0 / n as f64;
        assert!(max - min <= 1, "n = {n}: loads {load:?}");
        assert!(
            max as f64 / mean <= 1.0002,
            "n = {n}: max/mean {}",
            max as f64 / mean
        );
    }
}

#[test]
fn weights_give_proportional_shares() {
    let mut backends = pool(3);
    backends[1].weight = 2;
    let table = MaglevTable::build(&backends, TableSize::DEFAULT);
    let load = loads(&table, 3);
    // Weight 2 claims a slot every round, weight 1 every other round: 2:1 within a slot.
    assert!(load[1].abs_diff(2 * load[0]) <= 2, "{load:?}");
    assert!(load[0].abs_diff(load[2]) <= 1, "{load:?}");

    let weighted: Vec<MaglevBackend> = [1, 3, 5, 7]
        .iter()
        .zip(pool(4))
        .map(|(&weight, b)| MaglevBackend { weight, ..b })
        .collect();
    let table = MaglevTable::build(&weighted, TableSize::DEFAULT);
    for (i, load) in loads(&table, 4).into_iter().enumerate() {
        let expected = 65537.0 * f64::from(weighted[i].weight) / 16.0;
        assert!(
            (load as f64 / expected - 1.0).abs() < 0.01,
            "backend {i} weight {}: {load} slots, expected {expected}",
            weighted[i].weight
        );
    }
}

#[test]
fn same_input_builds_the_same_table() {
    let backends = pool(10);
    assert_eq!(
        MaglevTable::build(&backends, TableSize::DEFAULT),
        MaglevTable::build(&backends, TableSize::DEFAULT)
    );
}

#[test]
fn table_is_pinned_so_instances_and_versions_agree() {
    // Like the flow hash, the table must not change between releases without intent.
    let table = MaglevTable::build(&pool(3), TableSize::new(13).unwrap());
    assert_eq!(table.slots(), PINNED_13_SLOTS);
}
const PINNED_13_SLOTS: &[u32] = &[2, 1, 2, 0, 1, 2, 0, 0, 0, 0, 2, 1, 1];

/// Slots that changed owner between two tables, not counting those the removed backend
/// owned before.
fn moved_beyond_removed(before: &[u64], after: &[u64], removed: u64) -> usize {
    before
        .iter()
        .zip(after)
        .filter(|(b, a)| **b != removed && b != a)
        .count()
}

proptest! {
    #[test]
    fn shuffled_order_gives_the_same_backend_per_slot(
        backends in proptest::collection::vec(
            (any::<u64>(), 0u32..4).prop_map(|(id, weight)| MaglevBackend { id, weight }),
            1..12,
        ).prop_shuffle(),
        seed in any::<u64>(),
    ) {
        let size = TableSize::new(1009).unwrap();
        let mut shuffled = backends.clone();
        // A seeded rotation and reversal: a different order of the same set.
        shuffled.rotate_left((seed % backends.len() as u64) as usize);
        if seed & 1 == 1 { shuffled.reverse(); }
        let a = MaglevTable::build(&backends, size);
        let b = MaglevTable::build(&shuffled, size);
        prop_assert_eq!(ids(&a, &backends), ids(&b, &shuffled));
    }

    #[test]
    fn no_holes_when_any_backend_has_weight(
        weights in proptest::collection::vec(0u32..5, 1..16),
    ) {
        let backends: Vec<MaglevBackend> = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| MaglevBackend { id: instance_id(&i.to_string()), weight })
            .collect();
        let table = MaglevTable::build(&backends, TableSize::new(1009).unwrap());
        if weights.iter().all(|&w| w == 0) {
            prop_assert!(table.slots().is_empty());
        } else {
            prop_assert_eq!(table.slots().len(), 1009);
            for &slot in table.slots() {
                prop_assert!(backends[slot as usize].weight > 0);
            }
        }
    }

    #[test]
    fn removing_a_backend_moves_little_beyond_its_own_slots(
        n in 3usize..20,
        removed in any::<proptest::sample::Index>(),
    ) {
        let backends = pool(n);
        let removed = removed.index(n);
        let remaining: Vec<MaglevBackend> = backends
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != removed)
            .map(|(_, b)| *b)
            .collect();
        let before = MaglevTable::build(&backends, TableSize::DEFAULT);
        let after = MaglevTable::build(&remaining, TableSize::DEFAULT);
        let moved = moved_beyond_removed(
            &ids(&before, &backends),
            &ids(&after, &remaining),
            backends[removed].id,
        );
        prop_assert!(
            moved as f64 <= DISRUPTION_BOUND * 65537.0,
            "n = {}: {} slots ({:.2}%) moved beyond the removed backend's",
            n, moved, 100.0 * moved as f64 / 65537.0
        );
        // Adding it back, at the end of the list, restores the original table slot for slot.
        let mut added_back = remaining.clone();
        added_back.push(backends[removed]);
        let restored = MaglevTable::build(&added_back, TableSize::DEFAULT);
        prop_assert_eq!(ids(&restored, &added_back), ids(&before, &backends));
    }

    #[test]
    fn random_pools_keep_their_slots_when_a_member_leaves(
        members in subsequence((0..40).collect::<Vec<u32>>(), 4..30),
        removed in any::<proptest::sample::Index>(),
    ) {
        let backends: Vec<MaglevBackend> = members
            .iter()
            .map(|m| MaglevBackend { id: instance_id(&format!("nva{m}")), weight: 1 })
            .collect();
        let removed = removed.index(backends.len());
        let mut remaining = backends.clone();
        remaining.remove(removed);
        let size = TableSize::DEFAULT;
        let moved = moved_beyond_removed(
            &ids(&MaglevTable::build(&backends, size), &backends),
            &ids(&MaglevTable::build(&remaining, size), &remaining),
            backends[removed].id,
        );
        prop_assert!(moved as f64 <= DISRUPTION_BOUND * 65537.0, "{} slots moved", moved);
    }
}

/// Extra slots (as a fraction of the table) that may change owner when one backend leaves,
/// beyond the slots it owned. Maglev trades a little of this for balance (paper §3.4).
/// Measured on 65537 slots, equal weights: worst 0.03% at N = 3, 0.43% at N = 10, 0.79% at
/// N = 18 or 19 (`measure_disruption`), 0.77% over 400 random pools of 3 to 14; but the
/// random pools of the property test below found 1.30% (nva11, 13, 24 and 32, nva32
/// leaving: `a_rare_pool_moves_more`), which failed it now and then at a bound of 1%. 2%
/// leaves a margin; a broken permutation or fill moves tens of percent.
const DISRUPTION_BOUND: f64 = 0.02;

/// The worst pool the property test has found (1.30% moved), checked every run.
#[test]
fn a_rare_pool_moves_more() {
    let backends: Vec<MaglevBackend> = [11, 13, 24, 32]
        .iter()
        .map(|m| MaglevBackend {
            id: instance_id(&format!("nva{m}")),
            weight: 1,
        })
        .collect();
    let size = TableSize::DEFAULT;
    let before = ids(&MaglevTable::build(&backends, size), &backends);
    let remaining = &backends[..3];
    let moved = moved_beyond_removed(
        &before,
        &ids(&MaglevTable::build(remaining, size), remaining),
        backends[3].id,
    );
    assert!((moved as f64) <= DISRUPTION_BOUND * 65537.0, "{moved}");
}

#[test]
#[ignore = "measurement: cargo test --lib maglev -- --ignored --nocapture"]
fn measure_disruption() {
    for n in 3..20 {
        let backends = pool(n);
        let before = MaglevTable::build(&backends, TableSize::DEFAULT);
        let mut worst = 0;
        for removed in 0..n {
            let mut remaining = backends.clone();
            remaining.remove(removed);
            let after = MaglevTable::build(&remaining, TableSize::DEFAULT);
            worst = worst.max(moved_beyond_removed(
                &ids(&before, &backends),
                &ids(&after, &remaining),
                backends[removed].id,
            ));
        }
        println!(
            "n = {n}: worst extra moved {worst} ({:.3}%)",
            100.0 * worst as f64 / 65537.0
        );
    }
}
