//! Health probes: real kernel connections to each backend through its interface's kernel
//! twin (the exception path; the socket bound to the twin, so that no other way the host
//! has to the backend answers for the data path), one thread per distinct (address, probe)
//! target.
//!
//! `tcp` passes when a connection is established; `http` when `GET path` answers 2xx (the
//! final answer, after any interim 1xx), its request sent in one segment. A target turns
//! down after `unhealthy_threshold` consecutive failures and up after `healthy_threshold`
//! consecutive passes; an http probe's answer that is not 2xx, or its connection refused or
//! reset, turns it down at once. Its first result decides its first state. Probes start on
//! a fixed rate (every `interval_ms`, whatever a probe took) and time out after one interval
//! (at most 2 s, for connect, request and answer together), so a dead backend is declared
//! down within
//! `interval × (threshold + 1)`. A target's first probe goes at once, its second within an
//! interval at a phase of its own ([`Target::first_gap`]), so that many targets do not
//! probe in step; one a reload starts from a carried state probes first at its phase
//! ([`first_probes`]).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};

use crate::config::{Config, Interface, ProbeProtocol};

/// What is probed and how; equal probes of several pools or load balancers are one target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub address: IpAddr,
    pub protocol: ProbeProtocol,
    pub port: u16,
    pub path: String,
    pub interval_ms: u64,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    /// The kernel twin the backend is reached through (its interface's, by the most specific
    /// subnet or route, as the data plane's), which the probe's socket is bound to; None:
    /// unbound (tests).
    pub device: Option<String>,
}

impl Target {
    /// `tcp:22` or `http:80/healthz`, for logs and metric labels.
    pub fn describe(&self) -> String {
        match self.protocol {
            ProbeProtocol::Tcp => format!("tcp:{}", self.port),
            ProbeProtocol::Http => format!("http:{}{}", self.port, self.path),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.interval_ms.clamp(10, 2000))
    }

    /// From its first probe to its second: a share of the interval (more than none, at most
    /// all of it) fixed by the service, so that targets started together (at start, or by
    /// one reload) probe in phases spread over the interval after their first, rather than
    /// all at once: their answers then come back to the kernel twins spread out, not as one
    /// burst over `kernel_pps`' (a tenth of a second's worth), nor the requests as one burst
    /// to the backends.
    fn first_gap(&self) -> Duration {
        use std::hash::{Hash, Hasher};
        // Unkeyed (`new`): the same phase at every start of one build.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.service().hash(&mut h);
        let interval = self.interval_ms.max(1);
        Duration::from_millis(1 + h.finish() % interval)
    }

    /// The service it checks (address, protocol, port and path), whatever its timing and
    /// thresholds: targets with the same one check the same service.
    fn service(&self) -> (IpAddr, ProbeProtocol, u16, &str) {
        (self.address, self.protocol, self.port, &self.path)
    }
}

/// The kernel twin through which `addr` is reached: its interface's by the most specific
/// prefix, as the data plane's routes choose (`Forwarding::route`): subnets, then routes, in
/// the config's order, the first of the longest winning.
fn twin_of(cfg: &Config, addr: IpAddr) -> Option<String> {
    let subnets = (cfg.interface.iter()).flat_map(|i| {
        i.address
            .iter()
            .map(move |n| (n.prefix_len(), n.contains(&addr), i))
    });
    let routes = (cfg.interface.iter()).flat_map(|i| {
        i.routes
            .iter()
            .map(move |r| (r.to.prefix_len(), r.to.contains(&addr), i))
    });
    let reaching = subnets.chain(routes).filter(|&(_, reaches, _)| reaches);
    // The first of the longest (`max_by_key` would keep the last).
    let best = reaching.fold(
        None,
        |best: Option<(u8, &Interface)>, (len, _, i)| match best {
            Some((longest, _)) if longest >= len => best,
            _ => Some((len, i)),
        },
    );
    best.map(|(_, i)| super::twin::kernel_name(&i.name))
}

/// Every probe target of a config: each rule's probe over each backend of its pool. Rules
/// with the same probe over the same backends share their targets (one connection each).
pub fn targets(cfg: &Config) -> HashSet<Target> {
    probed(cfg).map(|(_, _, _, target)| target).collect()
}

/// Each (load balancer, rule, probe name, target) the config's rules ask for.
fn probed(cfg: &Config) -> impl Iterator<Item = (&str, &str, &str, Target)> {
    cfg.load_balancer.iter().flat_map(move |lb| {
        lb.rule.iter().flat_map(move |rule| {
            let probe = lb.probe_of(rule);
            let pool = lb.pool_of(rule);
            let backends = match (probe, pool) {
                (Some(_), Some(pool)) => pool.backends.as_slice(),
                _ => &[],
            };
            backends.iter().filter_map(move |b| {
                let probe = probe?;
                let target = Target {
                    address: b.address,
                    protocol: probe.protocol,
                    port: probe.port,
                    // A tcp probe has no path (`check` warns of one): the same target
                    // whatever it says, as its metric labels have none.
                    path: match probe.protocol {
                        ProbeProtocol::Http => probe.path.clone().unwrap_or_else(|| "/".into()),
                        ProbeProtocol::Tcp => "/".into(),
                    },
                    interval_ms: probe.interval_ms,
                    unhealthy_threshold: probe.unhealthy_threshold.max(1),
                    healthy_threshold: probe.healthy_threshold.max(1),
                    device: twin_of(cfg, b.address),
                };
                Some((
                    lb.name.as_str(),
                    rule.name.as_str(),
                    probe.name.as_str(),
                    target,
                ))
            })
        })
    })
}

/// (backend address, load balancer, probe) whose probe fails (or has no result yet): the
/// backend is down for the rules using that probe.
pub fn down_by_probe(
    cfg: &Config,
    states: &HashMap<Target, bool>,
) -> hashbrown::HashSet<(IpAddr, String, String)> {
    probed(cfg)
        .filter(|(_, _, _, t)| !states.get(t).copied().unwrap_or(false))
        .map(|(lb, _, probe, t)| (t.address, lb.to_owned(), probe.to_owned()))
        .collect()
}

/// A target's state changed (or got its first result).
#[derive(Debug, Clone)]
pub struct Transition {
    pub target: Target,
    pub healthy: bool,
    /// Which thread of the target's said it ([`Prober::is_current`]).
    pub serial: u64,
}

/// What metrics show of one target.
#[derive(Debug, Clone, Default)]
pub struct TargetStatus {
    pub healthy: Option<bool>,
    pub last_latency: Option<Duration>,
    pub transitions_up: u64,
    pub transitions_down: u64,
    pub probes: u64,
    pub failures: u64,
    /// Probes the appliance could not make (its own resources short): they leave the
    /// target's state as it was, however long that lasts.
    pub local_errors: u64,
}

pub type StatusBoard = Arc<Mutex<HashMap<Target, TargetStatus>>>;

/// How long the stop waits for probe threads still in a probe.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// Runs the probe threads; reports transitions on a channel the control loop drains.
#[derive(Debug)]
pub struct Prober {
    /// Each target's thread: its stop flag, handle and serial (one for each thread started).
    running: HashMap<Target, (Arc<AtomicBool>, JoinHandle<()>, u64)>,
    next_serial: u64,
    /// Threads told to stop, perhaps still in a probe: reaped once finished, never waited
    /// for on the control loop (only at [`Prober::stop`]).
    stopping: Vec<JoinHandle<()>>,
    /// Targets whose thread could not be started (reported once).
    unstarted: HashSet<Target>,
    events: Sender<Transition>,
    pub status: StatusBoard,
    /// The probe threads' stack size (the default where none): tests make it one no thread
    /// can have, to see a start fail.
    #[cfg(test)]
    stack_size: Option<usize>,
}

impl Prober {
    pub fn new() -> (Prober, Receiver<Transition>) {
        let (tx, rx) = crossbeam::channel::unbounded();
        let p = Prober {
            running: HashMap::new(),
            next_serial: 0,
            stopping: Vec::new(),
            unstarted: HashSet::new(),
            events: tx,
            status: Arc::default(),
            #[cfg(test)]
            stack_size: None,
        };
        (p, rx)
    }

    /// Starts threads for new targets and tells those no longer wanted to stop, without
    /// waiting for them. A thread that cannot be started is logged and tried again at the
    /// next call (the control loop calls this every housekeeping round). A new thread starts
    /// from the target's state in `states` (carried over a reload, [`carried_health`]): its
    /// thresholds apply from there, rather than its first result deciding. A target whose
    /// thread could not start loses its state there: nothing probes it, so it counts as down
    /// (as before a first result) rather than keep a state carried over a reload for good.
    /// Returns whether a state was lost so (a new forwarding state is due).
    pub fn set_targets(
        &mut self,
        wanted: &HashSet<Target>,
        states: &mut HashMap<Target, bool>,
    ) -> bool {
        self.stopping.retain(|h| !h.is_finished());
        self.unstarted.retain(|t| wanted.contains(t));
        let gone: Vec<Target> = self
            .running
            .keys()
            .filter(|t| !wanted.contains(*t))
            .cloned()
            .collect();
        for t in gone {
            if let Some((stop, handle, _)) = self.running.remove(&t) {
                stop.store(true, Ordering::Relaxed);
                // Waiting for its next probe, it wakes now (not in the middle of one).
                handle.thread().unpark();
                self.stopping.push(handle);
            }
            lock(&self.status).remove(&t);
        }
        let mut lost = false;
        for t in wanted {
            if self.running.contains_key(t) {
                continue;
            }
            let stop = Arc::new(AtomicBool::new(false));
            let (target, state, flag) = (t.clone(), states.get(t).copied(), stop.clone());
            let (events, status) = (self.events.clone(), self.status.clone());
            let serial = self.next_serial + 1;
            let builder = std::thread::Builder::new().name(format!("probe {}", t.address));
            #[cfg(test)]
            let builder = match self.stack_size {
                Some(size) => builder.stack_size(size),
                None => builder,
            };
            let spawned =
                builder.spawn(move || run_target(target, state, flag, (events, serial), status));
            match spawned {
                Ok(handle) => {
                    self.next_serial = serial;
                    self.unstarted.remove(t);
                    self.running.insert(t.clone(), (stop, handle, serial));
                }
                Err(e) => {
                    // Said once per target, not every round it is tried again.
                    if self.unstarted.insert(t.clone()) {
                        tracing::error!(
                            backend = %t.address, probe = %t.describe(), error = %e,
                            "cannot start the probe thread; the backend counts as down for it; \
                             will try again"
                        );
                    }
                    lost |= states.remove(t).is_some();
                }
            }
        }
        lost
    }

    /// Whether `t` is probed now.
    pub fn probes(&self, t: &Target) -> bool {
        self.running.contains_key(t)
    }

    /// Whether a transition comes from its target's thread now: one from a thread told to
    /// stop is stale, even where a reload has brought its target back under a new thread
    /// (which starts from the state carried over, and says only what changes from it).
    pub fn is_current(&self, t: &Transition) -> bool {
        self.running
            .get(&t.target)
            .is_some_and(|&(_, _, serial)| serial == t.serial)
    }

    /// Stops every probe thread and waits for them (at shutdown), [`STOP_WAIT`] at most: one
    /// still in a probe then ends with the process, so that the stop stays within what a
    /// service manager gives it.
    pub fn stop(&mut self) {
        self.set_targets(&HashSet::new(), &mut HashMap::new());
        let deadline = Instant::now() + STOP_WAIT;
        while !self.stopping.iter().all(JoinHandle::is_finished) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        for handle in self.stopping.drain(..).filter(JoinHandle::is_finished) {
            let _ = handle.join();
        }
    }
}

/// The status board, whatever happened to another holder (with `panic = "abort"` none can
/// have panicked holding it).
fn lock(status: &StatusBoard) -> std::sync::MutexGuard<'_, HashMap<Target, TargetStatus>> {
    status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn run_target(
    t: Target,
    state: Option<bool>,
    stop: Arc<AtomicBool>,
    (events, serial): (Sender<Transition>, u64),
    status: StatusBoard,
) {
    let interval = Duration::from_millis(t.interval_ms.max(1));
    let mut health = Health {
        healthy: state,
        ..Health::default()
    };
    let (wait, mut gap) = first_probes(&t, state);
    let mut next = Instant::now() + wait;
    if state.is_some() {
        // On the board (its metrics) from now, with the state carried, not from its first
        // probe an interval away. Not where it was removed meanwhile (see below).
        let mut board = lock(&status);
        if !stop.load(Ordering::Relaxed) {
            board.entry(t.clone()).or_default().healthy = state;
        }
    }
    let mut cannot_probe = false;
    while !stop.load(Ordering::Relaxed) {
        // Asleep until then, unless told to stop (`set_targets` wakes it): a thousand targets
        // do not wake the CPU twenty times a second each to look at their flags.
        while !stop.load(Ordering::Relaxed) {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::park_timeout(left);
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let started = Instant::now();
        let outcome = probe_once(&t);
        let latency = started.elapsed();
        if stop.load(Ordering::Relaxed) {
            // Removed while probing: its verdict no longer matters.
            break;
        }
        let change = health.observe(&t, &outcome);
        {
            let mut board = lock(&status);
            // Removed since the check above: `set_targets` raises the flag before it takes
            // its entry off the board, so this sees it and leaves no entry behind.
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let s = board.entry(t.clone()).or_default();
            s.probes += 1;
            s.healthy = health.healthy;
            match &outcome {
                Outcome::Pass => s.last_latency = Some(latency),
                // Not the backend's failure.
                Outcome::Local(_) => s.local_errors += 1,
                _ => s.failures += 1,
            }
            match change {
                Some(true) => s.transitions_up += 1,
                Some(false) => s.transitions_down += 1,
                None => {}
            }
        }
        if let Some(healthy) = change {
            let why = match &outcome {
                Outcome::Pass => "probe passed".to_owned(),
                Outcome::Fail(e) | Outcome::Reject(e) | Outcome::Local(e) => e.clone(),
            };
            if healthy {
                tracing::info!(backend = %t.address, probe = %t.describe(), latency_ms = latency.as_secs_f64() * 1e3, "backend up");
            } else {
                tracing::warn!(backend = %t.address, probe = %t.describe(), reason = %why, "backend down");
            }
            if events
                .send(Transition {
                    target: t.clone(),
                    healthy,
                    serial,
                })
                .is_err()
            {
                return;
            }
        } else if let Outcome::Fail(e) | Outcome::Reject(e) = &outcome {
            tracing::debug!(backend = %t.address, probe = %t.describe(), error = %e, "probe failed");
        }
        // Said once while it lasts: the appliance is short of sockets, not the backend down.
        match &outcome {
            Outcome::Local(e) if !cannot_probe => {
                tracing::error!(backend = %t.address, probe = %t.describe(), error = %e, "cannot probe (the appliance's own resources); the backend's state stays as it was");
                cannot_probe = true;
            }
            Outcome::Local(_) => {}
            _ => cannot_probe = false,
        }
        // The next probe at the target's own phase, then every interval.
        next += gap.take().unwrap_or(interval);
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
}

/// When a target's first probe goes (after how long), and the gap to its second (none: an
/// interval). A new target's goes at once, its second at its own phase ([`Target::first_gap`]).
/// One started from a carried state (a reload changed its timing or thresholds, or gave a
/// serving rule a new probe) keeps that state until its first probe, at its phase: the
/// targets a reload starts together do not all probe at once, their answers one burst over
/// the kernel twins' budget (`kernel_pps`), which could take down backends that were up.
fn first_probes(t: &Target, state: Option<bool>) -> (Duration, Option<Duration>) {
    match state {
        None => (Duration::ZERO, Some(t.first_gap())),
        Some(_) => (t.first_gap(), None),
    }
}

#[path = "probes_carry.rs"]
mod carry;

#[path = "probes_health.rs"]
mod health;
use health::Health;

#[path = "probes_once.rs"]
mod once;
pub use carry::{carried_health, served_under, serving, Served};
pub use once::raise_open_files_limit;
use once::{probe_once, Outcome};

#[cfg(test)]
#[path = "probes_tests.rs"]
mod tests;
