//! The health probe targets start from across a reload.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::{down_by_probe, Target};
use crate::config::Config;

/// The health a reload's `targets` start from: each one's own last state, else that of the
/// targets that checked the same service with other timing or thresholds (up if all of them
/// were), else, for a backend that was serving before the reload (`served`, see [`serving`]:
/// a rule given a probe, a probe's port or path changed), up; from there its thresholds
/// apply ([`Prober::set_targets`](super::Prober::set_targets)). A target of a backend new to the config counts as down
/// until its first result, as at start. Without this, such a reload took its backends down
/// until their first result and their established flows with them.
pub fn carried_health(
    health: &HashMap<Target, bool>,
    targets: &HashSet<Target>,
    served: &HashSet<IpAddr>,
) -> HashMap<Target, bool> {
    targets
        .iter()
        .filter_map(|t| {
            let state = health.get(t).copied().or_else(|| {
                let mut same = health.iter().filter(|(old, _)| old.same_check(t));
                same.next()
                    .map(|(_, &up)| up && same.all(|(_, &other)| other))
            });
            let state = state.or_else(|| served.contains(&t.address).then_some(true))?;
            Some((t.clone(), state))
        })
        .collect()
}

/// The backends of `cfg` that take traffic under `health`: every probe of theirs is up
/// (unprobed ones always are).
pub fn serving(cfg: &Config, health: &HashMap<Target, bool>) -> HashSet<IpAddr> {
    let down: HashSet<IpAddr> = down_by_probe(cfg, health)
        .into_iter()
        .map(|(address, _, _)| address)
        .collect();
    let pools = cfg.load_balancer.iter().flat_map(|lb| &lb.backend_pool);
    let backends = pools.flat_map(|p| &p.backends).map(|b| b.address);
    backends.filter(|a| !down.contains(a)).collect()
}
