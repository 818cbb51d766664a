//! Tests of `control::plane`.
use super::*;
use crate::config::testdata::MINIMAL;

fn plane(cfg: Config) -> Plane {
    Plane {
        extra_eal_args: Vec::new(),
        targets: probes::targets(&cfg),
        cfg,
        health: HashMap::new(),
        neighbours: Neighbours::new(Duration::from_secs(30)),
        macs: Vec::new(),
        mtus: Vec::new(),
        generation: 1,
        config_generation: 1,
        pending: None,
    }
}

/// A reload waiting for BIRD applies on the control thread's next look once nothing
/// holds it (no announcer to wait for), and only once: nothing else waits meanwhile.
#[test]
fn a_waiting_reload_applies_once_nothing_holds_it() {
    let cfg = Config::from_toml(MINIMAL, "t").unwrap();
    let mut next = cfg.clone();
    next.dataplane.kernel_pps = 500;
    let mut p = plane(cfg);
    let (mut prober, _) = Prober::new();
    let now = Instant::now();
    assert_eq!(
        p.apply_pending(&mut prober, None, now),
        None,
        "nothing waits"
    );
    p.pending = Some((next, now));
    assert_eq!(p.apply_pending(&mut prober, None, now), Some(2));
    assert_eq!(p.cfg.dataplane.kernel_pps, 500);
    assert!(p.pending.is_none());
    assert_eq!(
        p.apply_pending(&mut prober, None, now),
        None,
        "applied once"
    );
}

/// A second frontend with its HA-ports rule, added to [`MINIMAL`]'s load balancer.
const SECOND_FRONTEND: &str = r#"
  [[load_balancer.frontend]]
  name = "fe2"
  address = "10.0.0.101"

  [[load_balancer.rule]]
  name = "ha2"
  frontend = "fe2"
  backend_pool = "nvas"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
"#;

/// A reload (SIGHUP, or `haports reload` beside it) while another waits for BIRD to take its
/// withdrawal waits too: the frontend the first drops is no longer asked for, and the second
/// found nothing to withdraw and applied at once, with the routers still sending its traffic.
#[test]
fn a_second_reload_waits_for_the_withdrawal_the_first_waits_for() {
    let guard = tempfile::Builder::new()
        .prefix("haports-plane-")
        .tempdir()
        .unwrap();
    let dir = guard.path();
    // A BIRD that takes connections and never answers: nothing settles.
    let bird = dir.join("bird.ctl");
    let _bird = std::os::unix::net::UnixListener::bind(&bird).unwrap();
    let announce = format!(
        "[announce]\nbird_socket = \"{}\"\nroutes_file = \"{}\"\n",
        bird.display(),
        dir.join("routes.conf").display()
    );
    let cfg = Config::from_toml(&format!("{announce}{MINIMAL}{SECOND_FRONTEND}"), "t").unwrap();
    let mut p = plane(cfg.clone());
    let (mut prober, _) = Prober::new();
    let mut a = Announcer::start(cfg.announce.as_ref().unwrap());
    let both: announce::Routes = ["10.0.0.100", "10.0.0.101"]
        .iter()
        .map(|addr| (addr.parse().unwrap(), "hp-lan".to_owned()))
        .collect();
    a.want(both);
    // The new config drops fe2.
    let path = dir.join("haports.toml");
    std::fs::write(&path, format!("{announce}{MINIMAL}")).unwrap();
    assert_eq!(
        p.reload(&path, &mut prober, Some(&mut a)),
        Reload::Withdrawing
    );
    assert!(!a.settled(), "BIRD has not taken the withdrawal");
    assert_eq!(
        p.reload(&path, &mut prober, Some(&mut a)),
        Reload::Withdrawing,
        "the second reload applied before BIRD took the withdrawal"
    );
    assert_eq!(p.config_generation, 1, "nothing applied yet");
    assert!(p.pending.is_some());
}
