//! A small index from IPv4 addresses (as words) to ids, for the fast path: open addressing
//! with linear probing, kept at most half full, so that a lookup is one multiply and a few
//! word compares in one or two cache lines (a hash map's hasher and control bytes cost more
//! than that for a handful of frontends).

/// Addresses to ids; built once, read-only after.
#[derive(Debug, Clone)]
pub struct V4Index {
    /// (address, id + 1); an id of 0 marks an empty slot.
    slots: Box<[(u32, u32)]>,
    /// 32 minus log2 of the slot count: the hash's top bits pick the home slot.
    shift: u32,
    /// One bit for each indexed address, chosen by another hash: a clear bit proves an
    /// address absent without touching the slots (see [`V4Index::may_hold`]).
    filter: u64,
}

impl Default for V4Index {
    fn default() -> Self {
        V4Index::new([])
    }
}

impl V4Index {
    /// The index of `entries`; a later entry for the same address replaces an earlier one.
    /// Ids must be below `u32::MAX`.
    pub fn new(entries: impl IntoIterator<Item = (u32, u32)>) -> V4Index {
        let entries: Vec<(u32, u32)> = entries.into_iter().collect();
        // At least twice as many slots as entries: every probe run ends at an empty slot.
        let size = (entries.len() * 2).next_power_of_two().max(8);
        let mut index = V4Index {
            slots: vec![(0, 0); size].into_boxed_slice(),
            shift: 32 - size.trailing_zeros(),
            filter: 0,
        };
        for (addr, id) in entries {
            assert!(id < u32::MAX, "V4Index ids are below u32::MAX");
            let mut i = index.home(addr);
            while index.slots[i].1 != 0 && index.slots[i].0 != addr {
                i = (i + 1) & (size - 1);
            }
            index.slots[i] = (addr, id + 1);
            index.filter |= filter_bit(addr);
        }
        index
    }

    /// False when `addr` is certainly not indexed; true when it may be. For lookups that
    /// nearly always miss (is a packet's source one of the appliance's own addresses?): a
    /// multiply and a test instead of a probe.
    #[inline]
    pub fn may_hold(&self, addr: u32) -> bool {
        self.filter & filter_bit(addr) != 0
    }

    #[inline]
    fn home(&self, addr: u32) -> usize {
        (addr.wrapping_mul(0x9E37_79B9) >> self.shift) as usize
    }

    /// The id of `addr`, if indexed.
    #[inline]
    pub fn get(&self, addr: u32) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(addr);
        loop {
            let (a, id) = self.slots[i & mask];
            if id == 0 {
                return None;
            }
            if a == addr {
                return Some(id - 1);
            }
            i += 1;
        }
    }
}

/// `addr`'s bit in [`V4Index::filter`]: the top 6 bits of a multiplicative hash other than
/// the slots'.
#[inline]
fn filter_bit(addr: u32) -> u64 {
    1 << (addr.wrapping_mul(0x85EB_CA6B) >> 26)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn an_empty_index_finds_nothing() {
        let index = V4Index::default();
        assert_eq!(index.get(0), None);
        assert_eq!(index.get(0x0a00_0064), None);
    }

    #[test]
    fn the_filter_rules_out_most_addresses_that_are_not_indexed() {
        // A few own and frontend addresses; sources from a busy /16.
        let index = V4Index::new((0..6).map(|i| (0x0a00_0002 + i * 0x62, i)));
        let passed = (0..65_536u32)
            .filter(|i| index.may_hold(0x0a40_0000 | i))
            .count();
        assert!(
            passed < 65_536 * 12 / 100,
            "{passed} of 65536 pass the filter"
        );
    }

    #[test]
    fn the_last_entry_for_an_address_wins() {
        let index = V4Index::new([(7, 1), (7, 2)]);
        assert_eq!(index.get(7), Some(2));
    }

    proptest! {
        /// The same answers as a hash map, for addresses in and out of it (clustered
        /// addresses collide in their home slots and probe).
        #[test]
        fn answers_as_a_map_does(
            entries in proptest::collection::vec((0u32..64, 0u32..1000), 0..40),
            probes in proptest::collection::vec(0u32..80, 0..40),
        ) {
            let model: HashMap<u32, u32> = entries.iter().copied().collect();
            let index = V4Index::new(entries.iter().copied());
            for addr in probes.iter().chain(model.keys()) {
                prop_assert_eq!(index.get(*addr), model.get(addr).copied());
                // The filter never hides an indexed address.
                prop_assert!(index.may_hold(*addr) || !model.contains_key(addr));
            }
        }
    }
}
