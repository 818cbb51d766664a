//! Maglev consistent hashing: a backend pool in, a lookup table out.
//!
//! Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016,
//! section 3.4. Each backend has a permutation of the table's slots, given by an offset and a
//! skip derived from two hashes of its id; backends take turns claiming the next free slot of
//! their permutation until the table is full. The table size is prime, so every skip is
//! coprime with it and every permutation visits every slot. Weights follow Katran's
//! `MaglevHashV2`: each round a backend adds its weight to a running total and claims a slot
//! each time that total reaches the largest weight, so a backend of weight `w` gets about
//! `w / sum` of the slots and one of weight 0 gets none.
//!
//! The table depends only on the set of `(id, weight)` pairs: ids are hashes of backend
//! instance names under `dataplane.hash_seed`, so every instance of the appliance with the
//! same seed, and every pool holding the same instances, builds the same table (flow symmetry
//! across pools, DESIGN §4 and §10). This module keeps no global state and never touches the
//! data plane: the control thread builds tables and publishes them; workers only call
//! [`MaglevTable::lookup`].

use super::hash::hash_bytes;
use crate::config::is_prime;

/// Seeds of the two permutation hashes (offset and skip). Changing either re-balances every
/// flow.
const OFFSET_SEED: u64 = u64::from_le_bytes(*b"mglv-off");
const SKIP_SEED: u64 = u64::from_le_bytes(*b"mglvskip");
/// Seed of [`instance_id`]: the default `dataplane.hash_seed`, which the forwarding state's
/// build hashes instance names under.
const INSTANCE_SEED: u64 = 0;

/// Marks a slot nobody has claimed yet while the table is being built.
const UNCLAIMED: u32 = u32::MAX;

/// The number of slots of a Maglev table: a prime, checked once here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableSize(u32);

/// A table size that is not prime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "Maglev table size {0} is not prime: it must be a prime number larger than the number of backends, such as 65537 (the default)"
)]
pub struct NotPrime(pub u32);

impl TableSize {
    /// 65537, the size the paper evaluates: a prime more than 100 times the backend count of
    /// any pool up to 655 backends, as §3.4 advises.
    pub const DEFAULT: TableSize = TableSize(65537);

    pub fn new(n: u32) -> Result<TableSize, NotPrime> {
        if is_prime(n) {
            Ok(TableSize(n))
        } else {
            Err(NotPrime(n))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for TableSize {
    fn default() -> TableSize {
        TableSize::DEFAULT
    }
}

/// One backend as Maglev sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaglevBackend {
    /// Hash of the backend's instance name under `dataplane.hash_seed`, as the forwarding
    /// state's build makes it (`hash_bytes(instance, hash_seed)`); stable across processes
    /// given the seed. [`instance_id`] is the same under seed 0, the default.
    pub id: u64,
    /// Relative share of the table; 0 takes the backend out of it.
    pub weight: u32,
}

/// The Maglev id of a backend instance name (the config's `instance`, default its address)
/// under seed 0: the id the forwarding state gives it with the default `dataplane.hash_seed`
/// (with another seed the build hashes the name under that seed instead).
pub fn instance_id(instance: &str) -> u64 {
    hash_bytes(instance.as_bytes(), INSTANCE_SEED)
}

/// The next position of a permutation walk, `(position + skip) mod m` for both below `m`,
/// without a division (the build's inner loop).
#[inline]
fn step(position: u64, skip: u64, m: u64) -> u64 {
    let next = position + skip;
    if next >= m {
        next - m
    } else {
        next
    }
}

/// A built lookup table: each slot holds an index into the backend slice it was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaglevTable {
    size: TableSize,
    /// Empty when no backend has a weight above 0; otherwise `size` slots, all claimed.
    slots: Box<[u32]>,
}

impl MaglevTable {
    /// Builds the table for `backends` (Maglev §3.4, weights as in Katran's `MaglevHashV2`).
    ///
    /// The result depends only on the set of backends: the same set in another order gives
    /// the same backend id in every slot, each slot naming that backend's index in the slice
    /// given here. Ids should be unique within a pool; backends sharing an id share one
    /// permutation and split its slots.
    ///
    /// # Panics
    /// If `backends` has `u32::MAX` entries or more.
    pub fn build(backends: &[MaglevBackend], size: TableSize) -> MaglevTable {
        assert!(
            backends.len() < UNCLAIMED as usize,
            "a Maglev pool holds fewer than 2^32 - 1 backends"
        );
        // Take turns in id order, not slice order, so that the table is a function of the set.
        // Ties (duplicate ids) break by weight, then index, to stay deterministic.
        let mut order: Vec<u32> = (0..backends.len() as u32)
            .filter(|&i| backends[i as usize].weight > 0)
            .collect();
        order.sort_unstable_by_key(|&i| (backends[i as usize].id, backends[i as usize].weight, i));
        let Some(max_weight) = order.iter().map(|&i| backends[i as usize].weight).max() else {
            return MaglevTable {
                size,
                slots: Box::new([]),
            };
        };

        struct Walk {
            index: u32,
            weight: u64,
            /// Next slot of this backend's permutation, walked lazily: offset + j * skip mod m.
            position: u64,
            skip: u64,
            credit: u64,
        }
        let m = u64::from(size.get());
        let mut walks: Vec<Walk> = order
            .iter()
            .map(|&index| {
                let backend = backends[index as usize];
                let id = backend.id.to_le_bytes();
                Walk {
                    index,
                    weight: u64::from(backend.weight),
                    position: hash_bytes(&id, OFFSET_SEED) % m,
                    // In 1..m, hence coprime with the prime m: the walk visits every slot.
                    skip: hash_bytes(&id, SKIP_SEED) % (m - 1).max(1) + 1,
                    credit: 0,
                }
            })
            .collect();

        let mut slots = vec![UNCLAIMED; m as usize].into_boxed_slice();
        let mut claimed = 0u64;
        'rounds: loop {
            for walk in &mut walks {
                walk.credit += walk.weight;
                if walk.credit < u64::from(max_weight) {
                    continue;
                }
                walk.credit -= u64::from(max_weight);
                // Some free slot remains (claimed < m), and the walk reaches it within m steps.
                while slots[walk.position as usize] != UNCLAIMED {
                    walk.position = step(walk.position, walk.skip, m);
                }
                slots[walk.position as usize] = walk.index;
                walk.position = step(walk.position, walk.skip, m);
                claimed += 1;
                if claimed == m {
                    break 'rounds;
                }
            }
        }
        MaglevTable { size, slots }
    }

    /// The backend index for a flow hash; `None` when no backend has a weight above 0.
    #[inline]
    pub fn lookup(&self, hash: u64) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        Some(self.slots[(hash % u64::from(self.size.get())) as usize])
    }

    /// The configured number of slots (also when the table is empty).
    pub fn size(&self) -> u32 {
        self.size.get()
    }

    /// Every slot's backend index; empty when no backend has a weight above 0.
    pub fn slots(&self) -> &[u32] {
        &self.slots
    }
}

#[cfg(test)]
#[path = "maglev_tests.rs"]
mod tests;
