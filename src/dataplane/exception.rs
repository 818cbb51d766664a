//! The exception path's budget: how many packets a second the workers hand to the kernel twins
//! (DESIGN §6), so that a flood at the appliance's own addresses can starve neither the
//! kernel nor the control thread. Answers to the health probes (from the backend side) have a
//! budget of their own, so that such a flood cannot fail the probes either. The workers share
//! it: one flow (a BGP session, a copy to the appliance's address) lands on one worker and
//! may take the whole rate, and so may the neighbour discovery that one queue receives.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crossbeam::utils::CachePadded;

/// A token bucket counted in thousandths of a packet: `rate` packets a second, bursts of a
/// tenth of a second's worth (at least [`MIN_BURST`] packets).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Thousandths of a packet available.
    tokens: u64,
    /// When it was last refilled (milliseconds).
    at_ms: u64,
}

/// The smallest burst admitted at once, whatever the rate.
pub const MIN_BURST: u64 = 32;

impl TokenBucket {
    /// A bucket that starts full.
    pub fn full(rate: u32) -> TokenBucket {
        TokenBucket {
            tokens: Self::capacity(rate),
            at_ms: 0,
        }
    }

    fn capacity(rate: u32) -> u64 {
        (u64::from(rate) / 10).max(MIN_BURST) * 1000
    }

    /// Takes one packet's token at `now_ms` at `rate` packets a second; false when there is
    /// none (the packet is over the rate).
    #[inline]
    pub fn take(&mut self, now_ms: u64, rate: u32) -> bool {
        // A packet a second is a thousandth of a packet a millisecond.
        let earned = now_ms
            .saturating_sub(self.at_ms)
            .saturating_mul(u64::from(rate));
        self.tokens = self.tokens.saturating_add(earned).min(Self::capacity(rate));
        self.at_ms = self.at_ms.max(now_ms);
        if self.tokens < 1000 {
            return false;
        }
        self.tokens -= 1000;
        true
    }
}

/// A budget of `rate` packets a second that the workers share, with bursts of a tenth of a
/// second's worth (at least [`MIN_BURST`] packets), as [`TokenBucket`] admits them: the
/// generic cell rate algorithm on one word, the time at which the budget would be whole
/// again. Over the rate a packet costs a load of that word, shared by the cores while no
/// packet goes; one admitted costs a compare-and-swap.
#[derive(Debug, Default)]
pub struct SharedBucket {
    shared: CachePadded<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// When the next packet is due at the rate (ns, the workers' clock): the budget is spent
    /// while that lies more than a burst's span ahead.
    due_ns: AtomicU64,
    /// The rate the last packet was taken at (a reload may change it).
    rate: AtomicU32,
}

impl SharedBucket {
    /// Takes one packet's share at `now_ms` at `rate` packets a second; false when the rate
    /// is spent.
    #[inline]
    pub fn take(&self, now_ms: u64, rate: u32) -> bool {
        // At most a packet a nanosecond: beyond, a packet is no time at all, and a burst none.
        let every = (1_000_000_000 / u64::from(rate.max(1))).max(1);
        let span = ((u64::from(rate) / 10).max(MIN_BURST) - 1) * every;
        let now = now_ms.saturating_mul(1_000_000);
        let s = &*self.shared;
        let new_rate = s.rate.load(Ordering::Relaxed) != rate;
        if new_rate {
            s.rate.store(rate, Ordering::Relaxed);
        }
        let mut due = s.due_ns.load(Ordering::Relaxed);
        loop {
            if due > now.saturating_add(span) {
                // The first packet at a rate a reload raised: a lower rate's debt would refuse
                // packets long after the new rate allows them, so it is cut to an empty budget
                // at the new rate (only then: a worker whose clock lags would cut it too).
                let empty = now.saturating_add(span + every);
                if new_rate && due > empty {
                    let _ = (s.due_ns).compare_exchange(
                        due,
                        empty,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                return false;
            }
            let next = due.max(now) + every;
            match (s.due_ns).compare_exchange_weak(due, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => due = seen,
            }
        }
    }
}

/// Whose budget towards the kernel a packet spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelShare {
    /// From the backend side: a health probe's answer, and the backends' (and their
    /// gateways') ARP and neighbour discovery.
    Backends,
    /// Anyone else's ARP, neighbour discovery (hop limit 255) and multicast listener queries
    /// (hop limit 1, from a link-local address): what only a host on the segment can send,
    /// and what keeps the appliance's own addresses (BGP's next hop) resolvable, so that a
    /// flood routed to an own address cannot starve it.
    Neighbours,
    /// The rest: traffic to the appliance's own addresses.
    Others,
}

/// The workers' three budgets towards the kernel, shared by them all.
#[derive(Debug, Default)]
pub struct KernelBudget {
    others: SharedBucket,
    backends: SharedBucket,
    neighbours: SharedBucket,
}

impl KernelBudget {
    /// Whether a packet for the kernel may go, at `rate` packets a second over all workers
    /// (each budget), out of `share`'s budget.
    #[inline]
    pub fn admit(&self, now_ms: u64, rate: u32, share: KernelShare) -> bool {
        let bucket = match share {
            KernelShare::Backends => &self.backends,
            KernelShare::Neighbours => &self.neighbours,
            KernelShare::Others => &self.others,
        };
        bucket.take(now_ms, rate)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let mut b = TokenBucket::full(1000);
        // A tenth of a second's worth at once.
        assert_eq!((0..500).filter(|_| b.take(0, 1000)).count(), 100);
        // Then one a millisecond.
        assert!(b.take(1, 1000));
        assert!(!b.take(1, 1000));
        assert_eq!((0..50).filter(|_| b.take(11, 1000)).count(), 10);
        // Idle for long, it holds no more than its burst.
        assert_eq!((0..500).filter(|_| b.take(60_000, 1000)).count(), 100);
    }

    #[test]
    fn a_slow_rate_still_admits_a_small_burst_and_earns_its_tokens() {
        let mut b = TokenBucket::full(1);
        assert_eq!(
            (0..100).filter(|_| b.take(0, 1)).count(),
            MIN_BURST as usize
        );
        assert!(!b.take(999, 1));
        assert!(b.take(1000, 1), "one a second");
        assert!(!b.take(1000, 1));
        // A clock going back is no windfall.
        assert!(!b.take(10, 1));
    }

    /// The shared budget admits as the worker's own bucket does, and once over all workers.
    #[test]
    fn a_shared_budget_admits_as_a_bucket_does_over_every_worker() {
        for rate in [1, 100, 1000, 20_000, 1_000_000] {
            let (mut own, shared) = (TokenBucket::full(rate), Arc::new(SharedBucket::default()));
            let mut at = 1_000;
            for step in [0, 1, 1, 7, 250, 0, 3_000, 1] {
                at += step;
                let mine = (0..200_000).filter(|_| own.take(at, rate)).count();
                // Two workers at once: they share it.
                let theirs: usize = std::thread::scope(|s| {
                    let take = || (0..100_000).filter(|_| shared.take(at, rate)).count();
                    let (a, b) = (s.spawn(take), s.spawn(take));
                    a.join().unwrap() + b.join().unwrap()
                });
                assert_eq!(mine, theirs, "rate {rate} at {at} ms");
            }
        }
    }

    /// A reload that raises the rate: the new rate holds from the next millisecond, not once
    /// the old rate's debt is paid (3.1 s from 10 to 20000 a second). Lowered, its burst.
    #[test]
    fn a_shared_budget_takes_a_new_rate_at_once() {
        let b = SharedBucket::default();
        while b.take(1000, 10) {}
        assert!(
            !b.take(1001, 20_000),
            "spent, and an empty budget at the new rate"
        );
        assert_eq!((0..100).filter(|_| b.take(1002, 20_000)).count(), 20);
        assert_eq!((0..100).filter(|_| b.take(1003, 20_000)).count(), 20);
        let lowered = SharedBucket::default();
        while lowered.take(1000, 20_000) {}
        assert_eq!((0..100).filter(|_| lowered.take(60_000, 10)).count(), 32);
        assert!(!lowered.take(60_000, 10));
    }

    /// A worker whose clock lags another's (it was paused after reading it) takes nothing
    /// beyond the rate: only a new rate cuts the debt.
    #[test]
    fn a_lagging_worker_gets_nothing_beyond_the_rate() {
        let b = SharedBucket::default();
        assert_eq!((0..500).filter(|_| b.take(1010, 1000)).count(), 100);
        assert!(!b.take(1000, 1000), "10 ms behind");
        assert!(!b.take(1010, 1000), "and no packet more for it");
        assert!(b.take(1011, 1000));
    }

    /// Rates beyond a packet a nanosecond keep a burst, so that a worker whose clock is a
    /// millisecond behind another's is not refused (the rate someone gives to mean "no
    /// limit").
    #[test]
    fn a_shared_budget_beyond_a_packet_a_nanosecond_keeps_its_burst() {
        let b = SharedBucket::default();
        assert!(b.take(1001, u32::MAX));
        assert!(b.take(1000, u32::MAX));
    }

    #[test]
    fn probe_answers_and_neighbours_have_budgets_of_their_own() {
        let k = KernelBudget::default();
        while k.admit(0, 100, KernelShare::Others) {}
        assert!(
            k.admit(0, 100, KernelShare::Backends),
            "a flood spent the others' budget only"
        );
        assert!(k.admit(0, 100, KernelShare::Neighbours));
        while k.admit(0, 100, KernelShare::Neighbours) {}
        assert!(k.admit(0, 100, KernelShare::Backends));
    }
}
