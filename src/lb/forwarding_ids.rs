//! Stable identities across rebuilds and reloads: a pool keeps its id while (load balancer,
//! name, probe) exists, a backend while (load balancer, pool, address) does. Removed ones
//! stay as retired slots, given back to the same identity when it returns, so that a worker's
//! flow entry never comes to mean another backend, and the slots do not grow with reloads
//! that take backends or probes away and back. A backend slot retired for longer than any
//! flow entry lives (the control thread says which: [`Observations::reusable_backends`]) may
//! go to a backend new to the config, so that backends coming and going under new addresses
//! (autoscaling) do not use up the ids the counters have room for.

use std::net::IpAddr;

use hashbrown::{HashMap, HashSet};

use super::{BackendId, Forwarding, Observations, PoolId};
use crate::config::Config;

/// A pool state's identity: load balancer, pool, probe.
pub(super) type PoolKey<'a> = (&'a str, &'a str, Option<&'a str>);

/// The previous state's ids, and the retired backend slots a new backend may take.
pub(super) struct Ids<'a> {
    pools: HashMap<PoolKey<'a>, PoolId>,
    backends: HashMap<(&'a str, PoolId, IpAddr), BackendId>,
    /// Highest first: the lowest is taken first (popped).
    reusable: Vec<BackendId>,
}

impl<'a> Ids<'a> {
    pub(super) fn new(cfg: &Config, previous: Option<&'a Forwarding>, obs: &Observations) -> Self {
        let Some(p) = previous else {
            return Ids {
                pools: HashMap::new(),
                backends: HashMap::new(),
                reusable: Vec::new(),
            };
        };
        let pools = (p.pools.iter().enumerate())
            .map(|(i, q)| {
                let key = (
                    q.load_balancer.as_str(),
                    q.name.as_str(),
                    q.probe.as_deref(),
                );
                (key, i as PoolId)
            })
            .collect();
        let backends = (p.backends.iter().enumerate())
            .map(|(i, b)| {
                (
                    (b.load_balancer.as_str(), b.pool, b.address),
                    i as BackendId,
                )
            })
            .collect();
        // A retired slot whose address the config names again in its load balancer (under
        // any pool or probe) is not reused: its own backend takes it back where it returns
        // under the same pool state, and no new backend could take it from that one.
        let named: HashSet<(&str, IpAddr)> = (cfg.load_balancer.iter())
            .flat_map(|lb| {
                let backends = lb.backend_pool.iter().flat_map(|q| q.backends.iter());
                backends.map(move |b| (lb.name.as_str(), b.address))
            })
            .collect();
        let mut reusable: Vec<BackendId> = (obs.reusable_backends.iter().copied())
            .filter(|&id| {
                p.backends.get(id as usize).is_some_and(|b| {
                    b.retired && !named.contains(&(b.load_balancer.as_str(), b.address))
                })
            })
            .collect();
        reusable.sort_unstable_by(|a, b| b.cmp(a));
        reusable.dedup();
        Ids {
            pools,
            backends,
            reusable,
        }
    }

    /// The pool state's id, where the previous state had it.
    pub(super) fn pool(&self, key: &PoolKey) -> Option<PoolId> {
        self.pools.get(key).copied()
    }

    /// The backend's id: its own slot where the previous state had it, else a reusable
    /// retired one, else a new one at the end of `slots`.
    pub(super) fn backend<T>(
        &mut self,
        (lb, pool, address): (&str, PoolId, IpAddr),
        slots: &mut Vec<Option<T>>,
    ) -> BackendId {
        if let Some(&id) = self.backends.get(&(lb, pool, address)) {
            return id;
        }
        match self.reusable.pop() {
            Some(id) => id,
            None => {
                slots.push(None);
                (slots.len() - 1) as BackendId
            }
        }
    }
}
