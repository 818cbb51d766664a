//! The exception path's budget: how many packets a second a worker hands to the kernel twins
//! (DESIGN §6), so that a flood at the appliance's own addresses can starve neither the
//! kernel nor the control thread. Answers to the health probes (from the backend side) have a
//! budget of their own, so that such a flood cannot fail the probes either.

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

/// A worker's two budgets towards the kernel.
#[derive(Debug, Clone)]
pub struct KernelBudget {
    others: TokenBucket,
    backends: TokenBucket,
}

impl KernelBudget {
    pub fn new(rate: u32) -> KernelBudget {
        KernelBudget {
            others: TokenBucket::full(rate),
            backends: TokenBucket::full(rate),
        }
    }

    /// Whether a packet for the kernel may go, at `rate` packets a second (each budget);
    /// `from_backend`: it came from the backend side (a probe's answer).
    #[inline]
    pub fn admit(&mut self, now_ms: u64, rate: u32, from_backend: bool) -> bool {
        let bucket = if from_backend {
            &mut self.backends
        } else {
            &mut self.others
        };
        bucket.take(now_ms, rate)
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn probe_answers_have_a_budget_of_their_own() {
        let mut k = KernelBudget::new(100);
        while k.admit(0, 100, false) {}
        assert!(
            k.admit(0, 100, true),
            "a flood spent the others' budget only"
        );
    }
}
