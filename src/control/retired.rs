//! Forwarding states the control thread replaced, kept until no worker holds them, so that
//! they are freed here and not in a worker's loop.
//!
//! A state's destructor frees its strings, maps, vectors and Maglev tables: calls into the
//! allocator, which may lock and `munmap`, and the data plane takes no lock and makes no
//! syscall. Whoever drops the last reference runs it; without this list that was the last
//! worker to move on to the next state. Each worker reports the generation of the state it
//! holds ([`WorkerCounters::generation`]); a retired state older than every worker's is
//! held by none of them, and this thread's reference is its last.

use std::collections::VecDeque;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::dataplane::WorkerCounters;
use crate::lb::forwarding::Forwarding;

/// The most replaced states kept at once. The list only grows while a worker does not come
/// round to its quiescent point (stuck, or not started yet): health flapping publishes a few
/// states a second, and a state's Maglev tables are shared with the one after it where its
/// pool did not change.
pub(super) const MAX_RETIRED: usize = 64;

/// Replaced forwarding states, oldest first, waiting until no worker holds them.
#[derive(Debug, Default)]
pub(super) struct Retired {
    states: VecDeque<Arc<Forwarding>>,
    /// The list has been full since it last emptied (warned once for that time).
    overflowing: bool,
}

impl Retired {
    /// Publishes `next` in place of the current state, which is kept here until the workers
    /// (their `counters`) all hold a later one. A backend slot `next` gives to a new backend
    /// (retired for longer than any flow entry could name it) starts its counts from 0.
    pub(super) fn publish(
        &mut self,
        published: &ArcSwap<Forwarding>,
        next: Forwarding,
        counters: &[Arc<WorkerCounters>],
    ) {
        zero_reused_slots(&published.load(), &next, counters);
        self.states.push_back(published.swap(Arc::new(next)));
        self.release(counters);
    }

    /// Frees the states every worker moved past. Past [`MAX_RETIRED`] (a worker stuck),
    /// lets go of the oldest states no worker reports holding: should a worker hold one
    /// after all (it moved on and has not reported yet), that worker frees it.
    pub(super) fn release(&mut self, counters: &[Arc<WorkerCounters>]) {
        let held = || counters.iter().map(|c| c.generation.get());
        let oldest = held().min().unwrap_or(u64::MAX);
        self.states.retain(|s| s.generation >= oldest);
        if self.states.is_empty() {
            self.overflowing = false;
        }
        if self.states.len() <= MAX_RETIRED {
            return;
        }
        if !self.overflowing {
            self.overflowing = true;
            tracing::warn!(
                held = MAX_RETIRED,
                oldest_held_generation = oldest,
                "a worker has not taken up new forwarding states for a while; \
                 letting go of replaced states it does not hold"
            );
        }
        while self.states.len() > MAX_RETIRED {
            let free = self
                .states
                .iter()
                .position(|s| held().all(|g| g != s.generation))
                .unwrap_or(0);
            self.states.remove(free);
        }
    }

    /// How many replaced states are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.states.len()
    }
}

/// Zeroes the workers' counts for each backend slot retired in `current` that `next` gives
/// to another backend. No worker writes them meanwhile: a worker counts only the backends
/// its decisions take, never a retired one, and the slot was retired for 25 hours (a worker
/// still on a state where it was not would have stopped taking new states long ago).
fn zero_reused_slots(current: &Forwarding, next: &Forwarding, counters: &[Arc<WorkerCounters>]) {
    let reused = (current.backends.iter().zip(&next.backends).enumerate())
        .filter(|(_, (was, now))| {
            was.retired
                && !now.retired
                && (&was.load_balancer, was.pool, was.address)
                    != (&now.load_balancer, now.pool, now.address)
        })
        .map(|(i, _)| i);
    for i in reused {
        for w in counters {
            if let Some(t) = w.backend_traffic.get(i) {
                t.packets.set(0);
                t.bytes.set(0);
            }
            if let Some(c) = w.backend_flows.get(i) {
                c.set(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Weak;

    use super::*;
    use crate::config::{testdata::MINIMAL, Config};
    use crate::dataplane::state::ForwardingCache;
    use crate::lb::forwarding::Observations;

    fn state(generation: u64) -> Forwarding {
        let cfg = Config::from_toml(MINIMAL, "t").unwrap();
        Forwarding::build(&cfg, &Observations::default(), generation, None)
    }

    /// The published state (generation 1) and `n` workers' counters.
    fn workers(n: usize) -> (Arc<ArcSwap<Forwarding>>, Vec<Arc<WorkerCounters>>) {
        let published = Arc::new(ArcSwap::from_pointee(state(1)));
        let counters = (0..n).map(|_| Arc::default()).collect();
        (published, counters)
    }

    /// The workers' caches of the published state, each having come round its loop once.
    fn caches(p: &Arc<ArcSwap<Forwarding>>, c: &[Arc<WorkerCounters>]) -> Vec<ForwardingCache> {
        let mut caches: Vec<_> = c
            .iter()
            .map(|c| ForwardingCache::new(p.clone(), c.clone()))
            .collect();
        for cache in &mut caches {
            cache.load();
        }
        caches
    }

    #[test]
    fn the_last_worker_to_move_on_leaves_the_old_state_to_the_control_thread() {
        let (published, counters) = workers(2);
        let mut caches = caches(&published, &counters);
        let old: Weak<Forwarding> = Arc::downgrade(caches[0].load());
        let mut retired = Retired::default();
        retired.publish(&published, state(2), &counters);
        assert!(old.upgrade().is_some(), "both workers hold it");

        caches[0].load();
        retired.release(&counters);
        assert!(old.upgrade().is_some(), "worker 1 holds it still");
        // The last worker moves on: its reference must not be the last.
        assert_eq!(caches[1].load().generation, 2);
        assert!(old.upgrade().is_some(), "freed in the worker's loop");

        retired.release(&counters);
        assert!(
            old.upgrade().is_none(),
            "every worker moved past it: freed here"
        );
        assert_eq!(retired.len(), 0);
    }

    #[test]
    fn states_no_worker_held_are_freed_once_every_worker_is_past_them() {
        let (published, counters) = workers(1);
        let mut caches = caches(&published, &counters);
        let mut retired = Retired::default();
        retired.publish(&published, state(2), &counters);
        let skipped = Arc::downgrade(&published.load_full());
        retired.publish(&published, state(3), &counters);
        assert_eq!(retired.len(), 2, "the worker holds generation 1");
        assert!(skipped.upgrade().is_some());

        assert_eq!(caches[0].load().generation, 3);
        retired.release(&counters);
        assert_eq!(retired.len(), 0);
        assert!(skipped.upgrade().is_none());
    }

    #[test]
    fn a_stuck_worker_keeps_the_list_bounded_and_its_own_state() {
        let (published, counters) = workers(2);
        let mut caches = caches(&published, &counters);
        let stuck = Arc::downgrade(caches[1].load());
        let mut retired = Retired::default();
        for generation in 2..MAX_RETIRED as u64 + 10 {
            retired.publish(&published, state(generation), &counters);
            caches[0].load();
        }
        assert_eq!(retired.len(), MAX_RETIRED);
        assert!(
            stuck.upgrade().is_some(),
            "the state the stuck worker holds stays"
        );

        caches[1].load();
        retired.release(&counters);
        assert_eq!(retired.len(), 0);
        assert!(stuck.upgrade().is_none());
    }

    /// A slot that goes to another backend starts its counts from 0 in every worker; the
    /// others' counts, a returning backend's own included, are left as they were.
    #[test]
    fn a_reused_slot_counts_from_zero() {
        let cfg = |list: &str| {
            let text = MINIMAL.replace(
                r#"backends = [{ address = "10.0.0.11" }, { address = "10.0.0.12" }]"#,
                &format!("backends = [{list}]"),
            );
            Config::from_toml(&text, "t").unwrap()
        };
        let both = r#"{ address = "10.0.0.11" }, { address = "10.0.0.12" }"#;
        let first = Forwarding::build(&cfg(both), &Observations::default(), 1, None);
        let obs = Observations::default();
        let one = Forwarding::build(&cfg(r#"{ address = "10.0.0.12" }"#), &obs, 2, Some(&first));
        let published = Arc::new(ArcSwap::from_pointee(one));
        let counters: Vec<Arc<WorkerCounters>> = (0..2).map(|_| Arc::default()).collect();
        for w in &counters {
            for slot in 0..2 {
                w.backend_traffic[slot].packets.set(10);
                w.backend_traffic[slot].bytes.set(640);
                w.backend_flows[slot].set(3);
            }
        }
        let reusable = Observations {
            reusable_backends: vec![0],
            ..Observations::default()
        };
        let other = r#"{ address = "10.0.0.12" }, { address = "10.0.0.13" }"#;
        let next = Forwarding::build(&cfg(other), &reusable, 3, Some(&published.load()));
        assert_eq!(next.backends[0].address.to_string(), "10.0.0.13");
        Retired::default().publish(&published, next, &counters);
        for w in &counters {
            let t = |slot: usize| {
                let traffic = &w.backend_traffic[slot];
                (
                    traffic.packets.get(),
                    traffic.bytes.get(),
                    w.backend_flows[slot].get(),
                )
            };
            assert_eq!((t(0), t(1)), ((0, 0, 0), (10, 640, 3)));
        }
    }
}
