//! Announcing frontends by BGP through BIRD 2 (DESIGN §10).
//!
//! haports writes the frontends it announces into `announce.routes_file` as two BIRD static
//! protocols, `haports4` and `haports6`, one route a frontend, through an interface's kernel
//! twin (`route 10.0.0.100/32 via "hp-lan";`), and sends `configure` on BIRD's control
//! socket. BIRD's own config includes the file and exports those protocols to its BGP
//! peers. A route through an interface is up only while the interface exists, and the twin
//! is a tap device that lives exactly as long as the haports process: after a `kill -9` BIRD
//! sees the interface go and withdraws every route at once, with no help from haports.
//!
//! The [`Announcer`] thread does the file and the socket, so the control thread never waits
//! on BIRD; it retries every second while BIRD is away or refuses, and while nothing changes
//! asks BIRD every second whether it is still there.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::bird::{command, configure, BirdError};
use super::twin;
use crate::config::{Announce, Config};
use crate::lb::forwarding::Forwarding;

/// How often a failed announcement is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// How often BIRD is asked whether it is still there while nothing changes, so that the
/// status and the metrics follow a BIRD that stopped (it announces nothing then, and reads
/// the routes file when it starts again).
const WATCH: Duration = Duration::from_secs(1);

/// The routes to announce: each frontend address and the twin it goes through.
pub type Routes = BTreeMap<IpAddr, String>;

/// The routes file for `routes`: both protocols always, so that BIRD's filters may name them.
pub fn render(routes: &Routes) -> String {
    let mut text = String::from(
        "# Written by haports: the frontends this instance announces, each through the kernel\n\
         # twin of an interface (it exists only while haports runs). Do not edit.\n",
    );
    for (name, v6) in PROTOCOLS {
        let channel = if v6 { "ipv6" } else { "ipv4" };
        let _ = writeln!(text, "protocol static {name} {{\n  {channel};");
        for (address, via) in routes.iter().filter(|(a, _)| a.is_ipv6() == v6) {
            let len = if v6 { 128 } else { 32 };
            let _ = writeln!(text, "  route {address}/{len} via \"{via}\";");
        }
        text.push_str("}\n");
    }
    text
}

/// Replaces `path` with `text` in one step (a reader sees the old file or the new one).
pub fn write_routes(path: &Path, text: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The static protocols of the routes file: name, and whether they hold IPv6 routes.
const PROTOCOLS: [(&str, bool); 2] = [("haports4", false), ("haports6", true)];

/// BIRD refused its config while `announced` holds frontends that `wanted` withdraws: the
/// file cannot take them out, so each protocol holding one is disabled (`disable
/// "haports4"`), which withdraws all of its routes: more than asked, which ECMP's other paths
/// carry, rather than a route to an instance that no longer serves it. Returns the
/// protocols it disabled.
fn withdraw_by_disabling(
    socket: &Path,
    announced: &mut BTreeSet<IpAddr>,
    wanted: &Routes,
) -> Vec<&'static str> {
    let mut disabled = Vec::new();
    for (name, v6) in PROTOCOLS {
        let dropped = announced
            .iter()
            .any(|a| a.is_ipv6() == v6 && !wanted.contains_key(a));
        if dropped && command(socket, &format!("disable \"{name}\"")).is_ok() {
            tracing::warn!(protocol = name, "BIRD refused its config: its routes withdrawn by disabling the protocol, until BIRD takes the config again");
            announced.retain(|a| a.is_ipv6() != v6);
            disabled.push(name);
        }
    }
    disabled
}

/// One instance's claim on its routes file: `ROUTES_FILE.lock`, locked (`flock`) while the
/// instance runs; the kernel lets it go when the process ends, however it ends.
pub type RoutesClaim = fd_lock::RwLock<std::fs::File>;

/// The lock file of `announce.routes_file`, to be locked with [`RoutesClaim::try_write`]
/// for the life of the instance: a second instance on the same file (started by hand, beside
/// the service) must not empty it, which would withdraw the first one's routes for as long
/// as its health stays the same.
pub fn routes_claim(announce: &Announce) -> Result<RoutesClaim, String> {
    let mut path = announce.routes_file.as_os_str().to_owned();
    path.push(".lock");
    let path = PathBuf::from(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    Ok(fd_lock::RwLock::new(file))
}

/// At start, before the twins exist: an empty routes file, taken by BIRD if it runs, so that
/// routes a killed predecessor left in the file do not come up with the new twin before any
/// backend is known healthy.
pub fn withdraw_at_start(announce: &Announce) -> Result<(), String> {
    write_routes(&announce.routes_file, &render(&Routes::new()))
        .map_err(|e| format!("writing {}: {e}", announce.routes_file.display()))?;
    match configure(&announce.bird_socket) {
        Ok(()) => Ok(()),
        Err(BirdError::NotRunning(e)) => {
            tracing::warn!(socket = %announce.bird_socket.display(), error = %e, "BIRD is not running; it will read the routes file when it starts");
            Ok(())
        }
        Err(e) => Err(format!(
            "{e} (socket {}): a stale announcement could come back with the twin",
            announce.bird_socket.display()
        )),
    }
}

/// The frontends of state `fwd` that can take new flows: those with a rule whose pool has a
/// backend that takes new flows (healthy, not drained).
pub fn serving_frontends(fwd: &Forwarding) -> BTreeSet<IpAddr> {
    fwd.frontends
        .iter()
        .filter(|fe| fe.rules.iter().any(|r| fwd.pool_has_active(r.pool)))
        .map(|fe| fe.address)
        .collect()
}

/// The frontends this instance should announce in state `fwd`: the
/// [serving](serving_frontends) ones, each through the twin of `announce.interface` (the
/// first interface by default).
pub fn serving(fwd: &Forwarding, cfg: &Config) -> Routes {
    let Some(announce) = &cfg.announce else {
        return Routes::new();
    };
    let interface = announce
        .interface
        .as_deref()
        .or_else(|| cfg.interface.first().map(|i| i.name.as_str()));
    let Some(interface) = interface else {
        return Routes::new();
    };
    let via = twin::kernel_name(interface);
    serving_frontends(fwd)
        .into_iter()
        .map(|address| (address, via.clone()))
        .collect()
}

/// How long the health view must have stood still before a frontend is announced anew: twice
/// the longest probe interval of the rules, at least half a second.
///
/// An instance the routers send flows to decides the flows it has not seen by its own view
/// of health. Backends come back one probe at a time; announced at the first, an instance
/// would pick among fewer backends than the other instances for the flows the routers move
/// to it, and send them to backends that never saw them (which reset them). So a frontend
/// rejoins only once every probe has reported and none has changed for this long.
pub fn settle_time(cfg: &Config) -> Duration {
    let longest = cfg
        .load_balancer
        .iter()
        .flat_map(|lb| lb.rule.iter().filter_map(|r| lb.probe_of(r)))
        .map(|p| p.interval_ms)
        .max()
        .unwrap_or(0);
    Duration::from_millis((2 * longest).max(500))
}

/// What to announce of `serving`: a frontend announced now stays while it serves; one not
/// announced now joins only when health has `settled` ([`settle_time`]).
pub fn to_announce(serving: Routes, announced: Option<&Routes>, settled: bool) -> Routes {
    if settled {
        return serving;
    }
    serving
        .into_iter()
        .filter(|(address, _)| announced.is_some_and(|a| a.contains_key(address)))
        .collect()
}

/// What BIRD has taken, for the metrics and the drain.
#[derive(Debug, Default)]
pub struct AnnounceStatus {
    /// The frontends in the routes file BIRD last took.
    pub announced: BTreeSet<IpAddr>,
    /// Exchanges with BIRD that failed, each try counted: BIRD not running (no socket, or
    /// nothing listening on it), refusing the file, or any other I/O error.
    pub errors: u64,
}

/// The thread that keeps BIRD's view equal to the latest wanted routes.
#[derive(Debug)]
pub struct Announcer {
    tx: Option<mpsc::Sender<(u64, Routes)>>,
    thread: Option<JoinHandle<()>>,
    pub status: Arc<Mutex<AnnounceStatus>>,
    /// Sequence number of the routes last handed over, and of those BIRD took.
    sent: u64,
    applied: Arc<AtomicU64>,
    last: Option<Routes>,
    /// Whether any route was asked for since the start.
    ever: bool,
}

impl Announcer {
    /// Starts the thread that hands the routes to BIRD; an error where it cannot start.
    pub fn start(announce: &Announce) -> Result<Announcer, super::Error> {
        let (tx, rx) = mpsc::channel::<(u64, Routes)>();
        let status = Arc::new(Mutex::new(AnnounceStatus::default()));
        let applied = Arc::new(AtomicU64::new(0));
        let (file, socket) = (announce.routes_file.clone(), announce.bird_socket.clone());
        let (st, ap) = (status.clone(), applied.clone());
        let thread = std::thread::Builder::new()
            .name("announce".into())
            .spawn(move || announce_loop(&rx, &file, &socket, &st, &ap))
            .map_err(|e| super::Error::Announce(format!("starting its thread: {e}")))?;
        Ok(Announcer {
            tx: Some(tx),
            thread: Some(thread),
            status,
            sent: 0,
            applied,
            last: None,
            ever: false,
        })
    }

    /// Asks for `routes` to be announced (and every other frontend withdrawn); nothing
    /// happens when they are what was last asked for.
    pub fn want(&mut self, routes: Routes) {
        if self.last.as_ref() == Some(&routes) {
            return;
        }
        self.sent += 1;
        self.ever |= !routes.is_empty();
        self.last = Some(routes.clone());
        if let Some(tx) = &self.tx {
            let _ = tx.send((self.sent, routes));
        }
    }

    /// The routes last asked for.
    pub fn wanted(&self) -> Option<&Routes> {
        self.last.as_ref()
    }

    /// Whether any route was asked of BIRD since the start (routers may have sent here).
    pub fn ever_announced(&self) -> bool {
        self.ever
    }

    /// Whether BIRD has taken the routes last asked for.
    pub fn settled(&self) -> bool {
        self.applied.load(Ordering::Acquire) >= self.sent
    }

    /// Waits until [`settled`](Self::settled), at most `limit`; whether it settled.
    pub fn wait_settled(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while !self.settled() {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

/// How long dropping the announcer waits for an exchange with BIRD under way (each of its
/// commands may take [`BIRD_TIMEOUT`](super::bird::BIRD_TIMEOUT) to connect and as long for
/// each reply): past it the thread ends with the process, so that a stop stays within what
/// a service manager gives it. The routes file is replaced whole (renamed into place), so an
/// exchange cut short leaves it as one version or the other.
const DROP_WAIT: Duration = Duration::from_secs(2);

impl Drop for Announcer {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + DROP_WAIT;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

fn announce_loop(
    rx: &mpsc::Receiver<(u64, Routes)>,
    file: &Path,
    socket: &Path,
    status: &Mutex<AnnounceStatus>,
    applied: &AtomicU64,
) {
    let mut pending: Option<(u64, Routes)> = None;
    // The routes BIRD took last, while it is known to be there.
    let mut taken: Option<(u64, Routes)> = None;
    let mut failing = false;
    // Protocols disabled when BIRD refused a withdrawal, enabled once it takes the file.
    let mut disabled: BTreeSet<&'static str> = BTreeSet::new();
    loop {
        let next = if pending.is_some() {
            rx.recv_timeout(RETRY)
        } else if taken.is_some() {
            rx.recv_timeout(WATCH)
        } else {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        match next {
            Ok(p) => pending = Some(p),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Only the latest routes matter.
        while let Ok(p) = rx.try_recv() {
            pending = Some(p);
        }
        // Nothing new: where BIRD is gone, what it took is handed over again (counted and
        // logged as any exchange that fails, and tried every second until it is back). A
        // BIRD that is there but slow to answer is left alone: a new config would only add
        // to its work.
        if pending.is_none() && taken.is_some() {
            let gone = matches!(
                command(socket, "show status"),
                Err(BirdError::NotRunning(_))
            );
            if gone {
                pending = taken.take();
            }
        }
        let Some((seq, routes)) = pending.take() else {
            continue;
        };
        let result = write_routes(file, &render(&routes))
            .map_err(BirdError::Io)
            .and_then(|()| configure(socket));
        if result.is_ok() {
            // `configure` enables them again where BIRD took the file (BIRD 2 restarts a
            // protocol whose state differs from its config); asked too, as a belt, its answer
            // ("already enabled") mattering not.
            for name in std::mem::take(&mut disabled) {
                let _ = command(socket, &format!("enable \"{name}\""));
            }
        }
        // A withdrawal BIRD refused from the file: by disabling, outside the status lock (it
        // talks to BIRD, and the control thread reads the status).
        let mut withdrawn = None;
        if let Err(BirdError::Refused(_)) = &result {
            let mut announced = status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .announced
                .clone();
            disabled.extend(withdraw_by_disabling(socket, &mut announced, &routes));
            withdrawn = Some(announced);
        }
        let mut st = status.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => {
                let now: BTreeSet<IpAddr> = routes.keys().copied().collect();
                for a in now.difference(&st.announced) {
                    tracing::info!(frontend = %a, "announced");
                }
                for a in st.announced.difference(&now) {
                    tracing::info!(frontend = %a, "withdrawn");
                }
                st.announced = now;
                applied.store(seq, Ordering::Release);
                failing = false;
                taken = Some((seq, routes));
            }
            // The file is right and BIRD reads it when it starts; until then nothing is
            // announced. Asked again every second, so that the status follows BIRD. The
            // change counts as taken, so that a drain or a reload does not wait for a BIRD
            // that is away, but each try is still a failed exchange: counted, so that an
            // outage shows in the metrics; logged once per outage, so that the log does not
            // fill up while BIRD stays away.
            Err(BirdError::NotRunning(e)) => {
                // A BIRD that starts again reads its config: nothing of ours stays disabled.
                disabled.clear();
                if !failing {
                    tracing::warn!(error = %e, socket = %socket.display(), "BIRD is not running; the routes file waits for it");
                }
                st.errors += 1;
                st.announced.clear();
                applied.store(seq, Ordering::Release);
                failing = true;
                pending = Some((seq, routes));
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, socket = %socket.display(), "BIRD did not take the routes; trying again every second");
                }
                if let Some(announced) = withdrawn {
                    st.announced = announced;
                    // Announced as wanted now (everything withdrawn, for a drain): taken, so
                    // that what waits for it goes on; tried again all the same.
                    if !disabled.is_empty() && st.announced.iter().eq(routes.keys()) {
                        applied.store(seq, Ordering::Release);
                    }
                }
                st.errors += 1;
                failing = true;
                pending = Some((seq, routes));
            }
        }
    }
}

#[cfg(test)]
#[path = "announce_tests.rs"]
mod tests;
