//! Which neighbours the control thread has a solicitation out for, as the workers see them:
//! a worker reports an answer (an ARP reply, a solicited advertisement) only for those.
//! Anyone on a segment can send answers nobody asked for, naming a new address each time,
//! and the control thread, which would ignore them, would spend its time on them; and a
//! rate limit on the answers alone would let such a flood crowd the real ones out of it.
//!
//! A bit per address hash: a few addresses share each, so an answer about another address
//! may be reported too (the control thread ignores it, as before). The control thread alone
//! writes, setting an address's bit before its solicitation is sent; a bit is cleared once no
//! outstanding solicitation maps to it. Workers only read.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits in the set: 8 KiB, for at most 4096 neighbours asked for at once.
const BITS: usize = 1 << 16;

#[derive(Debug)]
pub struct Asking {
    words: Box<[AtomicU64]>,
}

impl Default for Asking {
    fn default() -> Self {
        Asking {
            words: (0..BITS / 64).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Asking {
    /// Whether a solicitation for `addr` may be outstanding.
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        let (word, bit) = place(addr);
        self.words[word].load(Ordering::Acquire) & bit != 0
    }

    /// Marks `addr` asked for (the control thread [`publish`](Self::publish)es the set
    /// whole; tests mark one address).
    #[cfg(test)]
    pub fn insert(&self, addr: IpAddr) {
        let (word, bit) = place(addr);
        self.words[word].fetch_or(bit, Ordering::Release);
    }

    /// Makes the set exactly `asked` (the control thread's outstanding solicitations,
    /// every one of them): a word at a time, each word's new bits computed first, so that a
    /// bit of an address still asked for is never cleared, even for a moment.
    pub fn publish(&self, asked: impl IntoIterator<Item = IpAddr>) {
        let mut words = vec![0u64; BITS / 64];
        for addr in asked {
            let (word, bit) = place(addr);
            words[word] |= bit;
        }
        for (shared, new) in self.words.iter().zip(words) {
            if shared.load(Ordering::Relaxed) != new {
                shared.store(new, Ordering::Release);
            }
        }
    }
}

/// An address's word and bit: a multiplicative hash of the address (an IPv6 one's two
/// halves folded into one word first).
fn place(addr: IpAddr) -> (usize, u64) {
    let folded = match addr {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => (u128::from(a) as u64).rotate_left(17) ^ (u128::from(a) >> 64) as u64,
    };
    let h = (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) as usize;
    (h / 64, 1u64 << (h % 64))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))
    }

    fn v6(n: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, n))
    }

    #[test]
    fn an_address_is_asked_for_from_insertion_until_published_without_it() {
        let asking = Asking::default();
        assert!(!asking.contains(v4(1)) && !asking.contains(v6(1)));
        asking.insert(v4(1));
        asking.insert(v6(1));
        assert!(asking.contains(v4(1)) && asking.contains(v6(1)));
        asking.publish([v6(1)]);
        assert!(!asking.contains(v4(1)), "answered: no longer asked for");
        assert!(asking.contains(v6(1)));
        asking.publish([]);
        assert!(!asking.contains(v6(1)));
    }

    /// Neighbours asked for, a segment's worth, leave nearly every other address out: a
    /// flood of answers naming made-up addresses is not reported.
    #[test]
    fn few_other_addresses_share_the_bits_of_those_asked_for() {
        let asking = Asking::default();
        asking.publish((0..4096).map(v4));
        assert!((0..4096).all(|n| asking.contains(v4(n))));
        let others = (4096..1_004_096)
            .filter(|&n| asking.contains(v4(n)))
            .count();
        assert!(others < 100_000, "{others} of a million others reported");
        let others6 = (0..60_000).filter(|&n| asking.contains(v6(n))).count();
        assert!(others6 < 6_000, "{others6} of 60,000 IPv6 others reported");
    }
}
