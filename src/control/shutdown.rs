//! How the appliance stops: at once, or (SIGTERM with `[announce]`) withdrawing its routes
//! first and draining.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::announce::Announcer;
use crate::config::Config;

/// The longest a drain or a reload waits for BIRD to take a withdrawal.
pub const WITHDRAW_WAIT: Duration = Duration::from_secs(3);

/// Where the appliance is on its way out. SIGINT stops at once; SIGTERM with `[announce]`
/// drains: withdraw every frontend, wait until BIRD took that (at most [`WITHDRAW_WAIT`]),
/// keep forwarding for `announce.drain_s`, then stop. A second SIGTERM, or SIGINT, during a
/// drain stops at once, as do two SIGTERMs that come before the control thread looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Running,
    Withdrawing { since: Instant },
    Draining { until: Instant },
    Stop,
}

/// What the signals raise: SIGINT's flag, SIGTERM's count and SIGHUP's flag (a reload).
pub type Signalled = (Arc<AtomicBool>, Arc<AtomicUsize>, Arc<AtomicBool>);

/// Takes SIGINT, SIGTERM and SIGHUP from here on. SIGTERMs are counted by a thread of their
/// own, which reads one byte a delivery from the handler's pipe: a second SIGTERM cuts the
/// drain short even where it comes while the control thread is busy (two still pending in
/// the kernel together are delivered, and counted, as one).
pub fn signals() -> io::Result<Signalled> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let [interrupt, reload] = [(); 2].map(|()| Arc::new(AtomicBool::new(false)));
    signal_hook::flag::register(SIGINT, interrupt.clone())?;
    signal_hook::flag::register(SIGHUP, reload.clone())?;
    let term = Arc::new(AtomicUsize::new(0));
    let (mut read, write) = UnixStream::pair()?;
    signal_hook::low_level::pipe::register(SIGTERM, write)?;
    let counter = term.clone();
    std::thread::Builder::new()
        .name("sigterm".into())
        .spawn(move || {
            let mut bytes = [0u8; 64];
            loop {
                match read.read(&mut bytes) {
                    Ok(0) => return,
                    Ok(n) => {
                        counter.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        })?;
    Ok((interrupt, term, reload))
}

impl Shutdown {
    /// The state after this one, given the signals since; systemd is told when the stop
    /// begins (`STOPPING=1`).
    pub fn next(
        self,
        interrupt: &AtomicBool,
        term: &AtomicUsize,
        announcer: Option<&Announcer>,
        cfg: &Config,
    ) -> Shutdown {
        let next = self.step(interrupt, term, announcer, cfg);
        if self == Shutdown::Running && next != Shutdown::Running {
            super::notify::send("STOPPING=1");
        }
        next
    }

    fn step(
        self,
        interrupt: &AtomicBool,
        term: &AtomicUsize,
        announcer: Option<&Announcer>,
        cfg: &Config,
    ) -> Shutdown {
        if interrupt.swap(false, Ordering::Relaxed) {
            tracing::info!("SIGINT: stopping");
            return Shutdown::Stop;
        }
        let now = Instant::now();
        // Counted, not flagged: two SIGTERMs between two looks are a second one too.
        let terms = term.swap(0, Ordering::Relaxed);
        let signalled = terms > 0;
        match (self, announcer, &cfg.announce) {
            (Shutdown::Running, _, _) if terms > 1 => {
                tracing::info!("SIGTERM twice: stopping now");
                Shutdown::Stop
            }
            // No router ever sent here (no route was asked of BIRD since the start): no
            // reason to drain. (After a withdrawal the routers may still be converging.)
            (Shutdown::Running, Some(a), Some(_)) if signalled && nothing_announced(a) => {
                tracing::info!("SIGTERM: nothing announced; stopping");
                Shutdown::Stop
            }
            (Shutdown::Running, Some(_), Some(_)) if signalled => {
                tracing::info!("SIGTERM: withdrawing every frontend, then draining");
                Shutdown::Withdrawing { since: now }
            }
            (Shutdown::Running, ..) if signalled => {
                tracing::info!("SIGTERM: stopping");
                Shutdown::Stop
            }
            (..) if signalled => {
                tracing::info!("SIGTERM again: stopping now");
                Shutdown::Stop
            }
            (Shutdown::Withdrawing { since }, Some(a), Some(cfg)) => {
                let confirmed = a.settled() && a.wanted().is_some_and(|w| w.is_empty());
                if confirmed || now >= since + WITHDRAW_WAIT {
                    if !confirmed {
                        tracing::warn!("BIRD has not confirmed the withdrawal; draining anyway");
                    }
                    let drain = Duration::from_secs(u64::from(cfg.drain_s));
                    tracing::info!(
                        drain_s = cfg.drain_s,
                        "withdrawn; still forwarding while the routers move the flows"
                    );
                    Shutdown::Draining { until: now + drain }
                } else {
                    self
                }
            }
            (Shutdown::Draining { until }, ..) if now >= until => {
                tracing::info!("drained");
                Shutdown::Stop
            }
            _ => self,
        }
    }
}

/// Whether no route was ever announced through `a` (during start-up, or no frontend served
/// since).
fn nothing_announced(a: &Announcer) -> bool {
    !a.ever_announced()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Announce;

    fn flags() -> (AtomicBool, AtomicUsize) {
        (AtomicBool::new(false), AtomicUsize::new(0))
    }

    /// A config announcing through a BIRD that is not running (in a folder named `name`),
    /// draining for `drain_s`, and its announcer.
    fn announcing(name: &str, drain_s: u32) -> (Config, Announcer, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("haports-{name}-{}", std::process::id()));
        let announce = Announce {
            bird_socket: dir.join("absent.ctl"),
            routes_file: dir.join("routes.conf"),
            drain_s,
            interface: None,
        };
        let a = Announcer::start(&announce).unwrap();
        let cfg = Config {
            announce: Some(announce),
            ..Config::default()
        };
        (cfg, a, dir)
    }

    #[test]
    fn sigterm_withdraws_then_drains_then_stops() {
        let (cfg, mut a, dir) = announcing("shutdown", 0);
        let (int, term) = flags();
        let frontend = "10.0.0.100".parse().unwrap();
        a.want([(frontend, "announced".to_string())].into_iter().collect());
        let s = Shutdown::Running.next(&int, &term, Some(&a), &cfg);
        assert_eq!(s, Shutdown::Running);
        term.store(1, Ordering::Relaxed);
        let s = s.next(&int, &term, Some(&a), &cfg);
        assert!(matches!(s, Shutdown::Withdrawing { .. }), "{s:?}");
        // Not drained before the empty set was asked for and taken.
        assert_eq!(s.next(&int, &term, Some(&a), &cfg), s);
        a.want(Default::default());
        assert!(a.wait_settled(Duration::from_secs(5)));
        let s = s.next(&int, &term, Some(&a), &cfg);
        assert!(matches!(s, Shutdown::Draining { .. }), "{s:?}");
        assert_eq!(s.next(&int, &term, Some(&a), &cfg), Shutdown::Stop);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sigterm_without_announce_and_sigint_stop_at_once_and_a_second_sigterm_cuts_a_drain() {
        let cfg = Config::default();
        let (int, term) = flags();
        term.store(1, Ordering::Relaxed);
        assert_eq!(
            Shutdown::Running.next(&int, &term, None, &cfg),
            Shutdown::Stop
        );
        int.store(true, Ordering::Relaxed);
        assert_eq!(
            Shutdown::Running.next(&int, &term, None, &cfg),
            Shutdown::Stop
        );
        let draining = Shutdown::Draining {
            until: Instant::now() + Duration::from_secs(60),
        };
        assert_eq!(draining.next(&int, &term, None, &cfg), draining);
        term.store(1, Ordering::Relaxed);
        assert_eq!(draining.next(&int, &term, None, &cfg), Shutdown::Stop);
    }

    /// Where nothing was ever announced (a SIGTERM during start-up, or with no frontend
    /// served since), no router sends here: SIGTERM stops at once, without the drain (which
    /// under the unit's stop timeout could have it killed). Once something was, it drains,
    /// even after a withdrawal (the routers may still be moving the flows).
    #[test]
    fn sigterm_with_nothing_ever_announced_stops_at_once() {
        let (cfg, mut a, dir) = announcing("shutdown3", 60);
        let (int, term) = flags();
        term.store(1, Ordering::Relaxed);
        let s = Shutdown::Running.next(&int, &term, Some(&a), &cfg);
        assert_eq!(s, Shutdown::Stop);
        a.want(Default::default());
        term.store(1, Ordering::Relaxed);
        let s = Shutdown::Running.next(&int, &term, Some(&a), &cfg);
        assert_eq!(s, Shutdown::Stop);
        let frontend = "10.0.0.100".parse().unwrap();
        a.want([(frontend, "announced".to_string())].into_iter().collect());
        a.want(Default::default());
        term.store(1, Ordering::Relaxed);
        let s = Shutdown::Running.next(&int, &term, Some(&a), &cfg);
        assert!(matches!(s, Shutdown::Withdrawing { .. }), "{s:?}");
        drop(a);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Each SIGTERM delivered counts, however fast they follow each other (raised here one
    /// after the other, each delivered before the next).
    #[test]
    fn sigterms_are_counted_one_by_one() {
        let (_, term, _) = signals().unwrap();
        for _ in 0..3 {
            signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while term.load(Ordering::Relaxed) < 3 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(term.load(Ordering::Relaxed), 3);
    }

    /// Two SIGTERMs that come between two looks of the control thread (one busy rebuilding)
    /// are a second SIGTERM as well: stop now, not withdraw and drain.
    #[test]
    fn two_sigterms_at_once_stop_at_once() {
        let (cfg, a, dir) = announcing("shutdown2", 30);
        let (int, term) = flags();
        term.store(2, Ordering::Relaxed);
        assert_eq!(
            Shutdown::Running.next(&int, &term, Some(&a), &cfg),
            Shutdown::Stop
        );
        drop(a);
        let _ = std::fs::remove_dir_all(dir);
    }
}
