//! How a [`FlowTable`] grows within its memory: linear hashing, a level's buckets split one
//! at a time into their twins above it.

use super::{offset, BucketMemory, FlowTable, V4Key, WAYS};

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
            let key = V4Key {
                addrs: bucket.addrs[w],
                ports: bucket.ports[w],
                proto: bucket.protos[w],
            };
            let h = self.hash(&key) as usize;
            // The position it sits by: its first place, or its second.
            let at = if h & level == b { h } else { h ^ offset(&key) };
            if at & (level + 1) == 0 {
                continue;
            }
            let buckets = self.memory.as_mut();
            let to = &mut buckets[twin];
            to.addrs[w] = bucket.addrs[w];
            to.ports[w] = bucket.ports[w];
            to.protos[w] = bucket.protos[w];
            to.values[w] = bucket.values[w];
            to.deadlines[w] = bucket.deadlines[w];
            to.used |= 1 << w;
            buckets[b].used &= !(1 << w);
        }
        self.split += 1;
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
