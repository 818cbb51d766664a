//! Where a [`FlowTable`]'s entries move from one bucket to another: as the table grows
//! within its memory (linear hashing, a level's buckets split one at a time into their twins
//! above it), to make room for a new flow (one cuckoo step), and home to their first bucket.

use super::{offset, Bucket, BucketMemory, FlowTable, Slot, V4Key, WAYS};

/// Moves the entry in way `w` of bucket `from` to the free way `v` of bucket `to`.
fn move_entry(buckets: &mut [Bucket], (from, w): (usize, usize), (to, v): (usize, usize)) {
    let entry = buckets[from];
    let target = &mut buckets[to];
    target.addrs[v] = entry.addrs[w];
    target.ports[v] = entry.ports[w];
    target.protos[v] = entry.protos[w];
    target.values[v] = entry.values[w];
    target.deadlines[v] = entry.deadlines[w];
    target.used |= 1 << v;
    buckets[from].used &= !(1 << w);
}

/// A way of `bucket` that holds no entry.
fn free_way(bucket: &Bucket) -> Option<usize> {
    (0..WAYS).find(|&v| bucket.used & (1 << v) == 0)
}

impl Bucket {
    /// The key of the entry in way `w`.
    fn key(&self, w: usize) -> V4Key {
        V4Key {
            addrs: self.addrs[w],
            ports: self.ports[w],
            proto: self.protos[w],
        }
    }
}

impl<M: BucketMemory> FlowTable<M> {
    /// Splits up to `max` buckets while the table grows, and starts growing once a third of
    /// the ways in use hold entries (the load at which a table sized by
    /// [`buckets_for`](super::buckets_for) is full). True if a bucket was split.
    pub(super) fn grow(&mut self, max: usize) -> bool {
        if !self.growing && self.level < self.mask && self.len * 3 > (self.level + 1) * WAYS {
            self.growing = true;
        }
        if !self.growing {
            return false;
        }
        for _ in 0..max {
            self.split_next();
            if self.split > self.level {
                self.level = self.next_level;
                self.next_level = self.level << 1 | 1;
                self.split = 0;
                self.growing = false;
                break;
            }
        }
        true
    }

    /// Splits the level's bucket at the split cursor: each entry whose place in the next
    /// level is the bucket's twin moves there, to the same way (the twin is empty: no key has
    /// had a place in it before this split).
    fn split_next(&mut self) {
        let (b, level) = (self.split, self.level);
        let twin = b + level + 1;
        let bucket = self.memory.as_ref()[b];
        for w in 0..WAYS {
            if bucket.used & (1 << w) == 0 {
                continue;
            }
            let key = bucket.key(w);
            let h = self.hash(&key) as usize;
            // The position it sits by: its first place, or its second.
            let at = if h & level == b { h } else { h ^ offset(&key) };
            if at & (level + 1) != 0 {
                move_entry(self.memory.as_mut(), (b, w), (twin, w));
            }
        }
        self.split += 1;
    }

    /// A flow not in its first bucket: in its second, from where it moves to the first if
    /// that has a free way, so that its next packets find it in the bucket the caller
    /// prefetches. (Entries land in their second bucket while their first is full, which
    /// is more often while the table grows: 6.3% of a million flows, against 2.4% in a
    /// table on all of its memory from the start.)
    #[cold]
    pub(super) fn find_second(&mut self, key: &V4Key, hash: u64, first: usize) -> Option<Slot> {
        let second = self.place(hash as usize ^ offset(key));
        let buckets = self.memory.as_mut();
        let w = buckets.get(second)?.way_of(key)?;
        let (bucket, way) = match free_way(&buckets[first]) {
            Some(free) => {
                move_entry(buckets, (second, w), (first, free));
                (first, free)
            }
            None => (second, w),
        };
        Some(Slot {
            bucket: bucket as u32,
            way: way as u8,
        })
    }

    /// Both of a new flow's buckets are full of live entries: moves one of their entries to
    /// its own other bucket where that has a free way (one cuckoo step) and returns the way it
    /// left. None when no entry can move: the flow is not remembered.
    #[cold]
    pub(super) fn make_room(&mut self, a: usize, b: usize) -> Option<(usize, usize, bool)> {
        for i in [a, b] {
            for w in 0..WAYS {
                let key = self.memory.as_ref()[i].key(w);
                let (first, second) = self.homes(&key, self.hash(&key));
                let j = if first == i { second } else { first };
                let Some(free) = free_way(&self.memory.as_ref()[j]) else {
                    continue;
                };
                move_entry(self.memory.as_mut(), (i, w), (j, free));
                return Some((i, w, false));
            }
        }
        None
    }

    /// A table starting on `buckets` buckets of its memory (a power of two, at most all of
    /// it): for tests of growth on small tables.
    #[cfg(test)]
    pub(super) fn starting_on(mut self, buckets: usize) -> Self {
        assert!(self.is_empty() && buckets.is_power_of_two() && buckets <= self.mask + 1);
        self.level = buckets - 1;
        self.next_level = self.level << 1 | 1;
        self
    }

    /// The table placing keys by `hasher` instead of the data plane's hash: for tests.
    #[cfg(test)]
    pub(super) fn hashed_by(mut self, hasher: super::TableHash) -> Self {
        assert!(self.is_empty());
        self.hasher = hasher;
        self
    }
}
