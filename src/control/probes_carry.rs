//! The health probe targets start from across a reload.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::{probed, Target};
use crate::config::Config;

/// Which rule served which backend: (load balancer, rule, backend address).
pub type Served = HashSet<(String, String, IpAddr)>;

/// The health a reload's `targets` start from: each one's own last state, else that of the
/// targets that checked the same service with other timing or thresholds (up if all of them
/// were), else up where `served` says a rule asking for it served its backend before the
/// reload (a rule given a probe, a probe's port or path changed: see [`served_under`]); from
/// there its thresholds apply ([`Prober::set_targets`](super::Prober::set_targets)). A
/// target of a backend new to the config, or of one its rules did not serve, counts as down
/// until its first result, as at start. Without this, such a reload took its backends down
/// until their first result and their established flows with them.
pub fn carried_health(
    health: &HashMap<Target, bool>,
    targets: &HashSet<Target>,
    served: impl Fn(&Target) -> bool,
) -> HashMap<Target, bool> {
    // The old states by the service they checked, each up if all of its targets were: one
    // pass, not one over every state for each target (quadratic in a large reload).
    let mut by_service: HashMap<_, bool> = HashMap::new();
    for (old, &up) in health {
        *by_service.entry(old.service()).or_insert(true) &= up;
    }
    targets
        .iter()
        .filter_map(|t| {
            let state = (health.get(t).copied()).or_else(|| by_service.get(&t.service()).copied());
            let state = state.or_else(|| served(t).then_some(true))?;
            Some((t.clone(), state))
        })
        .collect()
}

/// The backends each rule of `cfg` sent traffic to under `health`: all of its pool where it
/// has no probe, else those its probe found up. Per rule, as health is: a backend down by
/// another rule's probe still served this one.
pub fn serving(cfg: &Config, health: &HashMap<Target, bool>) -> Served {
    let mut served = Served::new();
    for lb in &cfg.load_balancer {
        for rule in &lb.rule {
            let probed = lb.probe_of(rule);
            let pool = lb.pool_of(rule);
            if let (None, Some(pool)) = (probed, pool) {
                let key = |a| (lb.name.clone(), rule.name.clone(), a);
                served.extend(pool.backends.iter().map(|b| key(b.address)));
            }
        }
    }
    let up = probed(cfg).filter(|(_, _, _, t)| health.get(t) == Some(&true));
    served.extend(up.map(|(lb, rule, _, t)| (lb.to_owned(), rule.to_owned(), t.address)));
    served
}

/// Whether a rule of `cfg` (the config a reload brings) that asks for a target served its
/// backend before the reload, by `served` ([`serving`] under the config before). A target
/// that several rules share (the same check) starts up where any of them served it, as a
/// healthy backend's would: its thresholds take it down.
pub fn served_under(cfg: &Config, served: &Served) -> impl Fn(&Target) -> bool {
    let targets: HashSet<Target> = probed(cfg)
        .filter(|(lb, rule, _, t)| served.contains(&(lb.to_string(), rule.to_string(), t.address)))
        .map(|(_, _, _, t)| t)
        .collect();
    move |t: &Target| targets.contains(t)
}
