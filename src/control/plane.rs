//! What the control thread builds forwarding states from: the config, the health the probes
//! report, the neighbours, the interfaces' MACs and MTUs; and how a reload (SIGHUP or
//! `haports reload`) changes it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::announce::{self, Announcer};
use super::neighbours::Neighbours;
use super::probes::{self, Prober, Target};
use super::shutdown::WITHDRAW_WAIT;
use crate::config::{Config, MAX_BACKEND_SLOTS, MAX_IDLE_TIMEOUT_S};
use crate::lb::forwarding::{BackendId, Forwarding, Observations, PoolId};
use crate::wire::MacAddr;

/// What the control thread builds forwarding states from, and how it changes.
pub(super) struct Plane {
    pub(super) cfg: Config,
    /// `haports run -- ARGS`: part of what the config is checked against.
    pub(super) extra_eal_args: Vec<String>,
    pub(super) targets: HashSet<Target>,
    /// Each target's latest state (absent: no result yet, counted as down).
    pub(super) health: HashMap<Target, bool>,
    pub(super) neighbours: Neighbours,
    pub(super) macs: Vec<MacAddr>,
    pub(super) mtus: Vec<u16>,
    pub(super) generation: u64,
    pub(super) config_generation: u64,
    /// A valid reload that drops announced frontends, waiting (since then) for BIRD to take
    /// their withdrawal before it applies ([`Plane::apply_pending`]): the control thread
    /// goes on meanwhile (the twins' traffic, the probes' results).
    pub(super) pending: Option<(Config, Instant)>,
    /// An applied reload changed the load balancers (what the probes watch, or how flows
    /// are balanced), not only other settings: the health view must settle anew before a
    /// frontend is announced again. Taken by the control thread.
    pub(super) balancing_changed: bool,
    /// Since when each backend slot of the published state has been retired.
    pub(super) retired_since: HashMap<BackendId, Instant>,
    /// The last state built had more backend slots than are counted (warned once while so).
    slots_warned: bool,
    /// Pools that regained a backend for new flows after having none, until when their
    /// backends still down keep their flows ([`Plane::settle_flows`]).
    settling: HashMap<PoolId, Instant>,
    /// Reloads refused, and whether the last one was, for the metrics.
    pub(super) reloads: Arc<ReloadStats>,
    /// The last reload that waited for BIRD to take a withdrawal applied without BIRD
    /// confirming it, when its time was up.
    withdrawal_unconfirmed: bool,
}

/// Reloads as the metrics count them: how many were refused, and whether the last one was
/// (configuration management's own check of what it sent).
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub refused: AtomicU64,
    pub last_refused: AtomicBool,
}

/// How long a retired backend slot waits before a new backend may take it: longer than any
/// flow entry naming it lives (the longest idle timeout a config may give, and a margin).
pub(super) const SLOT_REUSE_AFTER: Duration = Duration::from_secs(MAX_IDLE_TIMEOUT_S as u64 + 3600);

impl Plane {
    /// A plane for `cfg` on interfaces of these MACs and MTUs, before any probe result.
    pub(super) fn new(
        cfg: Config,
        extra_eal_args: &[String],
        macs: Vec<MacAddr>,
        mtus: Vec<u16>,
    ) -> Self {
        Plane {
            extra_eal_args: extra_eal_args.to_vec(),
            targets: probes::targets(&cfg),
            neighbours: Neighbours::new(reachable(&cfg)),
            cfg,
            health: HashMap::new(),
            macs,
            mtus,
            generation: 1,
            config_generation: 1,
            pending: None,
            balancing_changed: false,
            retired_since: HashMap::new(),
            slots_warned: false,
            settling: HashMap::new(),
            reloads: Arc::default(),
            withdrawal_unconfirmed: false,
        }
    }

    /// A new forwarding state from the current inputs; Maglev tables of unchanged pools
    /// and every id are carried over from `previous`.
    pub(super) fn build(&mut self, previous: Option<&Forwarding>) -> Forwarding {
        self.build_at(previous, Instant::now())
    }

    /// [`Plane::build`] at `now`: backend slots retired for [`SLOT_REUSE_AFTER`] by then
    /// may go to backends new to the config.
    pub(super) fn build_at(&mut self, previous: Option<&Forwarding>, now: Instant) -> Forwarding {
        if previous.is_some() {
            self.generation += 1;
        }
        let obs = Observations {
            down: Default::default(),
            down_probes: probes::down_by_probe(&self.cfg, &self.health),
            neighbours: self.neighbours.published(),
            interface_macs: self.macs.clone(),
            interface_mtus: self.mtus.clone(),
            reusable_backends: (self.retired_since.iter())
                .filter(|(_, &since)| now.saturating_duration_since(since) >= SLOT_REUSE_AFTER)
                .map(|(&id, _)| id)
                .collect(),
        };
        let mut fwd = Forwarding::build(&self.cfg, &obs, self.generation, previous);
        let retired = (fwd.backends.iter().enumerate()).filter(|(_, b)| b.retired);
        let retired: HashSet<BackendId> = retired.map(|(i, _)| i as BackendId).collect();
        self.retired_since.retain(|id, _| retired.contains(id));
        for id in retired {
            self.retired_since.entry(id).or_insert(now);
        }
        fwd.config_generation = self.config_generation;
        self.settle_flows(&mut fwd, previous, now);
        if fwd.backends.len() > MAX_BACKEND_SLOTS && !self.slots_warned {
            // The config's own slots fit (`check`); with those that left it lately (a slot is
            // kept 25 h), they do not: the ids beyond still forward, but count in no metric.
            tracing::warn!(
                slots = fwd.backends.len(),
                "more backend slots than the {MAX_BACKEND_SLOTS} counted: backends that left \
                 the config in the last 25 hours keep theirs, and a backend given a slot \
                 beyond is counted in no per-backend metric while it stays in the config \
                 (until a restart)"
            );
        }
        self.slots_warned = fwd.backends.len() > MAX_BACKEND_SLOTS;
        tracing::debug!(
            generation = self.generation,
            down = obs.down_probes.len(),
            "forwarding state built"
        );
        fwd
    }

    /// Where a pool regains a backend for new flows after having none (every probe failed:
    /// perhaps on the appliance's side, its twin or its `kernel_pps`, rather than the
    /// backends'), its backends still down keep their established flows for the settle time
    /// ([`announce::settle_time`]), as they did while it had none: backends that come back
    /// together do so one probe at a time, and the first back would otherwise take every
    /// flow of the others for good (a stateful NVA resets them). A backend still down after
    /// it loses its flows as any backend going down does; so does one going down meanwhile,
    /// once the time is up.
    fn settle_flows(&mut self, fwd: &mut Forwarding, previous: Option<&Forwarding>, now: Instant) {
        let settle = announce::settle_time(&self.cfg);
        let name = |fwd: &Forwarding, p: PoolId| {
            let pool = &fwd.pools[p as usize];
            format!("{}/{}", pool.load_balancer, pool.name)
        };
        for pool in previous.map(|p| fwd.regained(p)).unwrap_or_default() {
            if self.settling.insert(pool, now + settle).is_none() {
                tracing::info!(
                    pool = %name(fwd, pool),
                    settle_ms = settle.as_millis() as u64,
                    "a backend is back: the pool's backends still down keep their flows while \
                     it settles"
                );
            }
        }
        // Until its time is up, or it has no backend for new flows again (all keep theirs).
        self.settling.retain(|&p, until| {
            let keep = now < *until && fwd.pool_has_active(p);
            if !keep && fwd.pool_has_active(p) {
                tracing::info!(
                    pool = %name(fwd, p),
                    "settled: the pool's backends still down lose their flows"
                );
            }
            keep
        });
        for &pool in self.settling.keys() {
            fwd.hold_flows(pool);
        }
    }

    /// Whether a pool's settle time ([`Plane::settle_flows`]) has ended: a state without its
    /// hold must be published.
    pub(super) fn settled_flows(&self, now: Instant) -> bool {
        self.settling.values().any(|&until| now >= until)
    }

    /// What `cfg` would put inside VXLAN tunnels too narrow for IPv6 on these interfaces
    /// ([`Forwarding::narrow_ipv6_tunnels`]), each said as a problem: the appliance neither
    /// starts nor reloads with such a config.
    pub(super) fn narrow_ipv6_tunnels(&self, cfg: &Config) -> Vec<String> {
        // Only IPv6 frontends and VXLAN pools together can: else no state is built for it (it
        // builds every Maglev table, on the thread that relays the twins' traffic).
        let lbs = || cfg.load_balancer.iter();
        let ipv6 = lbs().any(|lb| lb.frontend.iter().any(|f| f.address.is_ipv6()));
        if !(ipv6 && lbs().any(|lb| lb.backend_pool.iter().any(|p| p.encap.is_some()))) {
            return Vec::new();
        }
        let obs = Observations {
            interface_macs: self.macs.clone(),
            interface_mtus: self.mtus.clone(),
            ..Observations::default()
        };
        let fwd = Forwarding::build(cfg, &obs, 0, None);
        fwd.narrow_ipv6_tunnels()
            .iter()
            .map(|n| n.to_string())
            .collect()
    }

    /// SIGHUP or `haports reload`: re-reads and checks the config; applies it when valid
    /// and when nothing it changes needs a restart (then a new state must be published).
    /// `current` is the state the workers run (what is served now).
    pub(super) fn reload(
        &mut self,
        path: &Path,
        current: &Forwarding,
        prober: &mut Prober,
        announcer: Option<&mut Announcer>,
    ) -> Reload {
        let outcome = self.try_reload(path, current, prober, announcer);
        let refused = matches!(outcome, Reload::Refused(_));
        self.reloads.last_refused.store(refused, Ordering::Relaxed);
        self.reloads
            .refused
            .fetch_add(u64::from(refused), Ordering::Relaxed);
        match &outcome {
            Reload::Applied(generation) => tracing::info!(generation, "config reloaded"),
            Reload::Withdrawing => {
                tracing::info!("config valid; applying once BIRD took the withdrawal of the frontends it drops");
            }
            Reload::Refused(problems) => {
                for p in problems {
                    tracing::error!(problem = %p, "reload refused");
                }
                tracing::error!(
                    generation = self.config_generation,
                    pending = self.pending.is_some(),
                    "reload refused; keeping the running config (and applying one accepted \
                     before once BIRD took its withdrawal, if pending)"
                );
            }
        }
        outcome
    }

    fn try_reload(
        &mut self,
        path: &Path,
        current: &Forwarding,
        prober: &mut Prober,
        announcer: Option<&mut Announcer>,
    ) -> Reload {
        let next = match Config::load_regular(path) {
            Ok(c) => c,
            Err(e) => return Reload::Refused(vec![e.to_string()]),
        };
        let problems = next.problems_with_eal_args(&self.extra_eal_args);
        // The lines `haports check` prints: errors refuse the reload, warnings are logged.
        let lines = |error| {
            let said = problems.iter().filter(move |p| p.is_error() == error);
            said.map(|p| format!("{}: {p}", path.display()))
        };
        if problems.iter().any(|p| p.is_error()) {
            return Reload::Refused(lines(true).collect());
        }
        for warning in lines(false) {
            tracing::warn!(problem = %warning, "reload: config warning");
        }
        let restart = [
            (self.cfg.dpdk != next.dpdk, "[dpdk]"),
            (self.cfg.interface != next.interface, "[[interface]]"),
            (
                self.cfg.dataplane.workers != next.dataplane.workers,
                "dataplane.workers",
            ),
            (
                self.cfg.dataplane.flow_table_capacity != next.dataplane.flow_table_capacity,
                "dataplane.flow_table_capacity",
            ),
            (self.cfg.control != next.control, "[control]"),
            (self.cfg.announce != next.announce, "[announce]"),
            (
                self.cfg.dataplane.mbufs != next.dataplane.mbufs,
                "dataplane.mbufs",
            ),
            // Every flow's Maglev pick: changed on the fly, a flow decided again (on another
            // worker or instance, or once its entry expired) would get another backend, and
            // instances would disagree.
            (
                self.cfg.dataplane.hash_seed != next.dataplane.hash_seed,
                "dataplane.hash_seed",
            ),
        ];
        let needs: Vec<&str> = restart
            .iter()
            .filter(|(c, _)| *c)
            .map(|(_, what)| *what)
            .collect();
        if !needs.is_empty() {
            return Reload::Refused(vec![format!(
                "{}: changes to {} take a restart",
                path.display(),
                needs.join(", ")
            )]);
        }
        let narrow = self.narrow_ipv6_tunnels(&next);
        if !narrow.is_empty() {
            let problem = |n: String| format!("{}: {n}", path.display());
            return Reload::Refused(narrow.into_iter().map(problem).collect());
        }
        // A frontend served now that the new config no longer serves (dropped, or left
        // without a rule or a backend for new flows) is withdrawn before the appliance stops
        // serving it: the reload applies once BIRD took that (`apply_pending`). One not
        // served now either is the announcer's to withdraw, not for the reload to wait on.
        if let Some(a) = announcer {
            if let Some(wanted) = a.wanted() {
                let now = announce::serving_frontends(current);
                let next_serves = self.would_serve(&next, current);
                let kept: announce::Routes = wanted
                    .iter()
                    .filter(|(addr, _)| next_serves.contains(*addr) || !now.contains(*addr))
                    .map(|(addr, via)| (*addr, via.clone()))
                    .collect();
                // A reload while another still waits for its withdrawal waits with it: what
                // that one drops is no longer asked for, so this one would find nothing to
                // withdraw and apply before BIRD took it. It keeps the first one's deadline,
                // unless it withdraws more: BIRD gets the whole wait for that.
                let waiting = self.pending.take().map(|(_, since)| since);
                let waiting = waiting.filter(|_| !a.settled());
                let withdraws = kept.len() < wanted.len();
                if withdraws || waiting.is_some() {
                    if withdraws {
                        a.want(kept);
                    }
                    let since = waiting.filter(|_| !withdraws).unwrap_or_else(Instant::now);
                    self.pending = Some((next, since));
                    return Reload::Withdrawing;
                }
            }
        }
        // A reload that applies at once supersedes one still waiting.
        self.pending = None;
        Reload::Applied(self.apply(next, prober))
    }

    /// A reload waiting for BIRD ([`Plane::pending`]): applied once BIRD took the withdrawal,
    /// or after [`WITHDRAW_WAIT`] without it. Its config generation, when applied now.
    pub(super) fn apply_pending(
        &mut self,
        prober: &mut Prober,
        announcer: Option<&Announcer>,
        now: Instant,
    ) -> Option<u64> {
        let since = self.pending.as_ref()?.1;
        let settled = announcer.map_or(true, Announcer::settled);
        if !settled && now < since + WITHDRAW_WAIT {
            return None;
        }
        if !settled {
            tracing::warn!("BIRD has not confirmed the withdrawal of the removed frontends; applying the reload anyway");
        }
        self.withdrawal_unconfirmed = !settled;
        let (next, _) = self.pending.take()?;
        let generation = self.apply(next, prober);
        tracing::info!(generation, "config reloaded");
        Some(generation)
    }

    /// The answer to a reload that waited for BIRD to take a withdrawal, once it applied as
    /// generation `generation`: whether BIRD confirmed the withdrawal too (where it did not,
    /// in time, the frontends dropped may still be announced).
    pub(super) fn applied_after_withdrawal(&self, generation: u64) -> serde_json::Value {
        let confirmed = !self.withdrawal_unconfirmed;
        serde_json::json!({"outcome": "applied", "generation": generation,
            "withdrawal_confirmed": confirmed})
    }

    /// The frontends `next` would serve once applied (with the health the reload carries
    /// over): those a reload must not stop serving before BIRD took their withdrawal. The
    /// Maglev tables of pools it leaves as they were are `current`'s, not built again.
    fn would_serve(&self, next: &Config, current: &Forwarding) -> BTreeSet<IpAddr> {
        let health = self.health_under(next, &probes::targets(next));
        let obs = Observations {
            down: Default::default(),
            down_probes: probes::down_by_probe(next, &health),
            neighbours: self.neighbours.published(),
            interface_macs: self.macs.clone(),
            interface_mtus: self.mtus.clone(),
            reusable_backends: Vec::new(),
        };
        let fwd = Forwarding::build(next, &obs, self.generation + 1, Some(current));
        announce::serving_frontends(&fwd)
    }

    /// The health of `next`'s probe `targets`, carried over from the running config's.
    fn health_under(&self, next: &Config, targets: &HashSet<Target>) -> HashMap<Target, bool> {
        let served = probes::serving(&self.cfg, &self.health);
        let served = probes::served_under(next, &served);
        probes::carried_health(&self.health, targets, served)
    }

    /// Makes `next` (valid, nothing in it needing a restart) the running config.
    fn apply(&mut self, next: Config, prober: &mut Prober) -> u64 {
        let targets = probes::targets(&next);
        self.health = self.health_under(&next, &targets);
        self.targets = targets;
        self.balancing_changed |= self.cfg.load_balancer != next.load_balancer;
        self.cfg = next;
        self.neighbours.reachable = reachable(&self.cfg);
        // A target it cannot start a thread for loses its state (down): the reload publishes.
        prober.set_targets(&self.targets, &mut self.health);
        self.config_generation += 1;
        self.config_generation
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The new config runs as this generation.
    Applied(u64),
    /// The new config is valid and applies once BIRD took the withdrawal of the frontends
    /// it drops ([`Plane::apply_pending`]).
    Withdrawing,
    /// The running config stays; why, one line a problem (as `haports check` prints them).
    Refused(Vec<String>),
}

/// How long an answered neighbour stays reachable (`dataplane.neighbour_reachable_s`).
pub(super) fn reachable(cfg: &Config) -> Duration {
    Duration::from_secs(u64::from(cfg.dataplane.neighbour_reachable_s))
}

#[cfg(test)]
#[path = "plane_tests.rs"]
mod tests;
