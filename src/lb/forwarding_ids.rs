//! Stable identities across rebuilds and reloads: a pool keeps its id while (load balancer,
//! name, probe) exists, a backend while (load balancer, pool, address) does. Removed ones
//! stay as retired slots, given back to the same identity when it returns, so that a worker's
//! flow entry never comes to mean another backend, and the slots do not grow with reloads
//! that take backends or probes away and back. A backend slot retired for longer than any
//! flow entry lives (the control thread says which: [`Observations::reusable_backends`]) may
//! go to a backend new to the config, so that backends coming and going under new addresses
//! (autoscaling), or pools whose rules follow ever new probes, do not use up the ids the
//! counters have room for.

use std::net::IpAddr;

use hashbrown::{HashMap, HashSet};

use super::{BackendId, BackendState, Forwarding, Observations, PoolId};
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
        // A retired slot whose identity the config has again (load balancer, pool, probe,
        // address) is not reused: its own backend takes it back there. One whose pool state
        // is gone (its rules follow another probe now) may be, though its address is still
        // named: else each new probe name a reload brings would leave the pool's slots behind.
        let named: HashSet<(&str, &str, Option<&str>, IpAddr)> = (cfg.load_balancer.iter())
            .flat_map(|lb| {
                lb.backend_pool.iter().flat_map(move |q| {
                    let rules = lb.rule.iter().filter(|r| r.backend_pool == q.name);
                    let probes = rules.map(|r| r.probe.as_deref()).chain([None]);
                    let states: Vec<Option<&str>> = probes.collect();
                    q.backends.iter().flat_map(move |b| {
                        let at = (lb.name.as_str(), q.name.as_str(), b.address);
                        states
                            .clone()
                            .into_iter()
                            .map(move |probe| (at.0, at.1, probe, at.2))
                    })
                })
            })
            .collect();
        let identity = |b: &'a BackendState| {
            let pool = p.pools.get(b.pool as usize);
            let (name, probe) = pool.map_or(("", None), |q| (q.name.as_str(), q.probe.as_deref()));
            (b.load_balancer.as_str(), name, probe, b.address)
        };
        let mut reusable: Vec<BackendId> = (obs.reusable_backends.iter().copied())
            .filter(|&id| {
                (p.backends.get(id as usize))
                    .is_some_and(|b| b.retired && !named.contains(&identity(b)))
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
