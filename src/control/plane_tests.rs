//! Tests of `control::plane`.
use super::*;
use crate::config::testdata::MINIMAL;

fn plane(cfg: Config) -> Plane {
    Plane::new(cfg, &[], Vec::new(), Vec::new())
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
    let (guard, _bird, announce) = silent_bird();
    let dir = guard.path();
    let cfg = Config::from_toml(&format!("{announce}{MINIMAL}{SECOND_FRONTEND}"), "t").unwrap();
    let mut p = plane(cfg.clone());
    let (mut prober, _) = Prober::new();
    let mut a = announcing(&cfg, &["10.0.0.100", "10.0.0.101"]);
    // The new config drops fe2.
    let path = dir.join("haports.toml");
    std::fs::write(&path, format!("{announce}{MINIMAL}")).unwrap();
    let current = p.build(None);
    assert_eq!(
        p.reload(&path, &current, &mut prober, Some(&mut a)),
        Reload::Withdrawing
    );
    assert!(!a.settled(), "BIRD has not taken the withdrawal");
    assert_eq!(
        p.reload(&path, &current, &mut prober, Some(&mut a)),
        Reload::Withdrawing,
        "the second reload applied before BIRD took the withdrawal"
    );
    assert_eq!(p.config_generation, 1, "nothing applied yet");
    assert!(p.pending.is_some());
}

/// A reload that withdraws more while another waits for BIRD gives BIRD the whole wait for
/// that: it kept the first one's deadline, which may have been nearly out.
#[test]
fn a_reload_withdrawing_more_waits_its_whole_time() {
    let (guard, _bird, announce) = silent_bird();
    let dir = guard.path();
    // Several HA-ports rules on one load balancer float (seed rule 5).
    let floating = |t: &str| {
        t.replace(
            "backend_port = 0\n",
            "backend_port = 0\nfloating_ip = true\n",
        )
    };
    let third = SECOND_FRONTEND
        .replace("fe2", "fe3")
        .replace("ha2", "ha3")
        .replace("10.0.0.101", "10.0.0.102");
    let text = |fronts: &str| floating(&format!("{announce}{MINIMAL}{fronts}"));
    let cfg = Config::from_toml(&text(&format!("{SECOND_FRONTEND}{third}")), "t").unwrap();
    let mut p = plane(cfg.clone());
    let (mut prober, _) = Prober::new();
    let mut a = announcing(&cfg, &["10.0.0.100", "10.0.0.101", "10.0.0.102"]);
    let path = dir.join("haports.toml");
    let current = p.build(None);
    // The first drops fe2; its wait nearly out (two of its three seconds gone).
    std::fs::write(&path, text(&third)).unwrap();
    let first = p.reload(&path, &current, &mut prober, Some(&mut a));
    assert_eq!(first, Reload::Withdrawing);
    let nearly_out = p.pending.as_ref().unwrap().1 - Duration::from_secs(2);
    p.pending.as_mut().unwrap().1 = nearly_out;
    // The second drops fe3 too.
    std::fs::write(&path, text("")).unwrap();
    let second = p.reload(&path, &current, &mut prober, Some(&mut a));
    assert_eq!(second, Reload::Withdrawing);
    let since = p.pending.as_ref().unwrap().1;
    assert!(
        since >= nearly_out + Duration::from_secs(2),
        "kept the first one's deadline"
    );
}

/// IPv4 and IPv6 frontends over NVAs behind VXLAN, on interface `lan`.
const VXLAN: &str = include_str!("../../tests/fixtures/vxlan-small-mtu.toml");

/// IPv6 inside VXLAN needs an interface MTU of 1330 (IPv6's 1280 inside, 50 bytes of outer
/// headers): below that the plane names the frontend and the interface, and refuses a reload
/// that would put IPv6 into the tunnel, keeping the running config; IPv4 alone goes through
/// any MTU, and at 1330 the reload applies.
#[test]
fn ipv6_inside_vxlan_needs_an_interface_mtu_of_1330() {
    let both = Config::from_toml(VXLAN, "t").unwrap();
    let mut v4 = both.clone();
    v4.load_balancer[0].frontend.retain(|f| f.name != "fe6");
    v4.load_balancer[0].rule.retain(|r| r.name != "ha6");
    let mut p = plane(v4.clone());
    p.mtus = vec![1329];
    assert_eq!(p.narrow_ipv6_tunnels(&v4), Vec::<String>::new());
    let problems = p.narrow_ipv6_tunnels(&both);
    assert_eq!(problems.len(), 1, "{problems:?}");
    for said in [
        "`fe6`",
        "`lan`",
        "MTU 1329 leaves 1279 bytes",
        "at least 1330",
    ] {
        assert!(problems[0].contains(said), "{said}: {}", problems[0]);
    }

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), VXLAN).unwrap();
    let (mut prober, _) = Prober::new();
    let current = p.build(None);
    match p.reload(file.path(), &current, &mut prober, None) {
        Reload::Refused(why) => assert!(why.len() == 1 && why[0].contains("`fe6`"), "{why:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p.cfg.load_balancer[0].frontend.len(),
        1,
        "the running config kept"
    );
    assert_eq!(p.config_generation, 1);

    p.mtus = vec![1330];
    assert_eq!(p.narrow_ipv6_tunnels(&both), Vec::<String>::new());
    assert!(matches!(
        p.reload(file.path(), &current, &mut prober, None),
        Reload::Applied(2)
    ));
    assert_eq!(p.cfg.load_balancer[0].frontend.len(), 2);
}

/// A reload that keeps a frontend's address but leaves it nothing to serve (its rule removed,
/// or its pool drained) withdraws it first, as one dropping the frontend does: applied at
/// once, it would have dropped the frontend's traffic (`no_rule`) until the routers learnt
/// of the withdrawal. A reload that leaves every frontend served applies at once.
#[test]
fn a_reload_that_stops_serving_a_kept_frontend_withdraws_it_first() {
    let (guard, _bird, announce) = silent_bird();
    let dir = guard.path();
    let text = format!("{announce}{MINIMAL}{SECOND_FRONTEND}");
    let mut cfg = Config::from_toml(&text, "t").unwrap();
    for rule in &mut cfg.load_balancer[0].rule {
        rule.floating_ip = true; // two HA-ports rules on one load balancer
    }
    let both: announce::Routes = ["10.0.0.100", "10.0.0.101"]
        .iter()
        .map(|addr| (addr.parse().unwrap(), "hp-lan".to_owned()))
        .collect();
    let path = dir.join("haports.toml");
    let (mut prober, _) = Prober::new();

    let mut unchanged = cfg.clone();
    unchanged.dataplane.kernel_pps += 1;
    let mut no_rule = cfg.clone();
    no_rule.load_balancer[0].rule.retain(|r| r.name != "ha2");
    let mut drained = cfg.clone();
    let mut pool = drained.load_balancer[0].backend_pool[0].clone();
    pool.name = "drained".into();
    for b in &mut pool.backends {
        b.drain = true;
    }
    drained.load_balancer[0].backend_pool.push(pool);
    for rule in &mut drained.load_balancer[0].rule {
        if rule.name == "ha2" {
            rule.backend_pool = "drained".into();
        }
    }
    for (next, up, expected) in [
        (unchanged.clone(), true, None),
        (no_rule, true, Some("10.0.0.100")),
        (drained, true, Some("10.0.0.100")),
        // Every probe failed: fe1 is not served now, nor by the new config, and still
        // asked for (the announcer withdraws it on its own): nothing to wait on.
        (unchanged, false, None),
    ] {
        assert_eq!(next.check(), Ok(()), "a valid config");
        let mut p = plane(cfg.clone());
        // Every probe has passed (or failed: then fe2 alone, whose rule has no probe, is
        // served): both frontends are asked for.
        p.health = p.targets.iter().map(|t| (t.clone(), up)).collect();
        let mut a = Announcer::start(cfg.announce.as_ref().unwrap()).unwrap();
        a.want(both.clone());
        std::fs::write(&path, toml::to_string(&next).unwrap()).unwrap();
        let current = p.build(None);
        assert_eq!(
            announce::serving_frontends(&current).len(),
            if up { 2 } else { 1 }
        );
        let outcome = p.reload(&path, &current, &mut prober, Some(&mut a));
        match expected {
            None => assert_eq!(outcome, Reload::Applied(2)),
            Some(kept) => {
                assert_eq!(
                    outcome,
                    Reload::Withdrawing,
                    "applied before the withdrawal"
                );
                let wanted: Vec<String> =
                    a.wanted().unwrap().keys().map(|k| k.to_string()).collect();
                assert_eq!(wanted, vec![kept.to_owned()]);
                assert_eq!(p.config_generation, 1, "nothing applied yet");
            }
        }
    }
}

/// Only a reload that changes the load balancers asks the health view to settle anew before
/// frontends are announced again; the same config again (as configuration management sends
/// it, perhaps every few minutes) or another setting does not, else it could hold every
/// announcement back for as long as such reloads come.
#[test]
fn only_a_reload_that_changes_the_load_balancers_makes_health_settle_anew() {
    let cfg = Config::from_toml(MINIMAL, "t").unwrap();
    let (mut prober, _) = Prober::new();
    let now = Instant::now();
    let mut other_setting = cfg.clone();
    other_setting.dataplane.kernel_pps = 500;
    let mut new_backend = cfg.clone();
    let pool = &mut new_backend.load_balancer[0].backend_pool[0];
    let mut added = pool.backends[0].clone();
    added.address = "10.0.0.13".parse().unwrap();
    pool.backends.push(added);
    for (next, changed) in [
        (cfg.clone(), false),
        (other_setting, false),
        (new_backend, true),
    ] {
        let mut p = plane(cfg.clone());
        p.pending = Some((next, now));
        assert_eq!(p.apply_pending(&mut prober, None, now), Some(2));
        assert_eq!(p.balancing_changed, changed);
    }
}

/// A backend slot retired for [`SLOT_REUSE_AFTER`] (a day and an hour: longer than any flow
/// entry lives) goes to the next backend new to the config; before that a new backend takes
/// a new slot. The plane keeps when each slot retired, and forgets it once the slot is taken.
#[test]
fn a_backend_slot_goes_to_a_new_backend_once_retired_for_longer_than_any_flow() {
    let cfg = Config::from_toml(MINIMAL, "t").unwrap();
    let mut p = plane(cfg.clone());
    let t0 = Instant::now();
    let a = p.build_at(None, t0);
    let first: IpAddr = "10.0.0.11".parse().unwrap();
    backends(&mut p).retain(|b| b.address != first);
    let b = p.build_at(Some(&a), t0);
    assert!(b.backends[0].retired);
    assert_eq!(p.retired_since.get(&0), Some(&t0));

    let add = |p: &mut Plane, address: &str| {
        let mut new = backends(p)[0].clone();
        new.address = address.parse().unwrap();
        backends(p).push(new);
    };
    add(&mut p, "10.0.0.13");
    let c = p.build_at(Some(&b), t0 + Duration::from_secs(3600));
    let slot_of = |f: &Forwarding, a: &str| {
        let a: IpAddr = a.parse().unwrap();
        f.backends.iter().position(|b| b.address == a && !b.retired)
    };
    assert_eq!(slot_of(&c, "10.0.0.13"), Some(2), "too early: a new slot");
    assert_eq!(
        p.retired_since.get(&0),
        Some(&t0),
        "still retired since then"
    );

    add(&mut p, "10.0.0.14");
    let d = p.build_at(Some(&c), t0 + SLOT_REUSE_AFTER);
    assert_eq!(slot_of(&d, "10.0.0.14"), Some(0), "the retired slot");
    assert_eq!(d.backends.len(), 3);
    assert!(p.retired_since.is_empty(), "{:?}", p.retired_since);
}

/// A pool whose every backend went down (probes failing, perhaps on the appliance's side)
/// and comes back one probe at a time keeps each backend's established flows on it for the
/// settle time, as it did while none was up: the first back does not take every flow of the
/// others. A backend still down after that loses its flows, as any backend going down does;
/// new flows meanwhile go only to the backends up.
#[test]
fn a_pool_coming_back_from_no_backend_keeps_its_flows_in_place_while_it_settles() {
    let cfg = Config::from_toml(MINIMAL, "t").unwrap();
    let settle = announce::settle_time(&cfg);
    let mut p = plane(cfg);
    let target = |p: &Plane, a: &str| {
        let a: IpAddr = a.parse().unwrap();
        p.targets.iter().find(|t| t.address == a).unwrap().clone()
    };
    let (b11, b12) = (target(&p, "10.0.0.11"), target(&p, "10.0.0.12"));
    let keeps = |f: &Forwarding, a: &str| {
        let a: IpAddr = a.parse().unwrap();
        let id = f.backends.iter().position(|b| b.address == a).unwrap();
        f.keeps_flow(f.backends[id].pool, id as BackendId)
    };
    let t0 = Instant::now();
    p.health.insert(b11.clone(), true);
    p.health.insert(b12.clone(), true);
    let up = p.build_at(None, t0);
    p.health.insert(b11.clone(), false);
    p.health.insert(b12.clone(), false);
    let none = p.build_at(Some(&up), t0);
    assert!(keeps(&none, "10.0.0.11") && keeps(&none, "10.0.0.12"));

    // .11 comes back first: .12's flows stay on .12 for the settle time.
    p.health.insert(b11.clone(), true);
    let t1 = t0 + Duration::from_secs(1);
    let first_back = p.build_at(Some(&none), t1);
    assert!(
        keeps(&first_back, "10.0.0.12"),
        "the first back took .12's flows"
    );
    let id12 = first_back.backends.iter().position(|b| !b.healthy).unwrap();
    assert!(
        !first_back.takes_new(id12 as BackendId),
        "no new flow to a down backend"
    );
    assert!(!p.settled_flows(t1 + settle - Duration::from_millis(1)));

    // .12 back within it: nothing moved.
    p.health.insert(b12.clone(), true);
    let both = p.build_at(Some(&first_back), t1 + settle / 2);
    assert!(keeps(&both, "10.0.0.11") && keeps(&both, "10.0.0.12"));

    // Or still down once it is over: its flows move, as a backend's going down does.
    p.health.insert(b12.clone(), false);
    let still = p.build_at(Some(&first_back), t1 + settle / 2);
    assert!(keeps(&still, "10.0.0.12"), "held for the whole settle time");
    assert!(
        p.settled_flows(t1 + settle),
        "a state without the hold is due"
    );
    let after = p.build_at(Some(&still), t1 + settle);
    assert!(!keeps(&after, "10.0.0.12"), "held past the settle time");
    assert!(keeps(&after, "10.0.0.11"));
    assert!(!p.settled_flows(t1 + settle), "published once");
}

/// An announcer for `cfg`'s `[announce]`, asked to announce `frontends` on `hp-lan`.
fn announcing(cfg: &Config, frontends: &[&str]) -> Announcer {
    let mut a = Announcer::start(cfg.announce.as_ref().unwrap()).unwrap();
    let routes: announce::Routes = (frontends.iter())
        .map(|addr| (addr.parse().unwrap(), "hp-lan".to_owned()))
        .collect();
    a.want(routes);
    a
}

fn backends(p: &mut Plane) -> &mut Vec<crate::config::Backend> {
    &mut p.cfg.load_balancer[0].backend_pool[0].backends
}

/// A folder with a BIRD socket that takes connections and never answers (nothing settles),
/// the socket's listener, and the `[announce]` section for them.
fn silent_bird() -> (tempfile::TempDir, std::os::unix::net::UnixListener, String) {
    let guard = tempfile::Builder::new()
        .prefix("haports-plane-")
        .tempdir()
        .unwrap();
    let dir = guard.path();
    let bird = dir.join("bird.ctl");
    let listener = std::os::unix::net::UnixListener::bind(&bird).unwrap();
    let announce = format!(
        "[announce]\nbird_socket = \"{}\"\nroutes_file = \"{}\"\n",
        bird.display(),
        dir.join("routes.conf").display()
    );
    (guard, listener, announce)
}

/// A refused reload (SIGHUP's, which nothing answers) is counted and marks the last reload
/// refused for the metrics, until one applies; the running config stays.
#[test]
fn a_refused_reload_is_counted_and_marked_until_one_applies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haports.toml");
    let mut p = plane(Config::from_toml(MINIMAL, "t").unwrap());
    let (mut prober, _) = Prober::new();
    let current = p.build(None);
    let seen = |p: &Plane| {
        let r = &p.reloads;
        (
            r.refused.load(Ordering::Relaxed),
            r.last_refused.load(Ordering::Relaxed),
        )
    };
    assert_eq!(seen(&p), (0, false), "before any reload");
    std::fs::write(&path, "[[interface]]\nname = 7\n").unwrap();
    let refused = p.reload(&path, &current, &mut prober, None);
    assert!(matches!(refused, Reload::Refused(_)), "{refused:?}");
    assert_eq!(seen(&p), (1, true));
    assert_eq!(p.config_generation, 1, "the running config kept");
    std::fs::write(&path, MINIMAL).unwrap();
    assert_eq!(
        p.reload(&path, &current, &mut prober, None),
        Reload::Applied(2)
    );
    assert_eq!(seen(&p), (1, false), "applied since");
    prober.stop();
}

/// A reload that waited for BIRD to take a withdrawal answers, once it applies, whether BIRD
/// confirmed it: not where its time ran out with BIRD silent (the frontends dropped may
/// still be announced); yes where nothing held it.
#[test]
fn a_reload_applied_without_birds_confirmation_says_so() {
    let (guard, _bird, announce) = silent_bird();
    let cfg = Config::from_toml(&format!("{announce}{MINIMAL}{SECOND_FRONTEND}"), "t").unwrap();
    let mut p = plane(cfg.clone());
    let (mut prober, _) = Prober::new();
    let mut a = announcing(&cfg, &["10.0.0.100", "10.0.0.101"]);
    let path = guard.path().join("haports.toml");
    std::fs::write(&path, format!("{announce}{MINIMAL}")).unwrap();
    let current = p.build(None);
    let waiting = p.reload(&path, &current, &mut prober, Some(&mut a));
    assert_eq!(waiting, Reload::Withdrawing);
    let since = p.pending.as_ref().unwrap().1;
    assert_eq!(
        p.apply_pending(&mut prober, Some(&a), since),
        None,
        "still waiting"
    );
    let applied = p.apply_pending(&mut prober, Some(&a), since + WITHDRAW_WAIT);
    assert_eq!(applied, Some(2), "applied once its time was up");
    let answer = p.applied_after_withdrawal(2);
    assert_eq!(answer["withdrawal_confirmed"], false, "{answer}");
    // Nothing holding the next one: confirmed.
    p.pending = Some((Config::from_toml(MINIMAL, "t").unwrap(), since));
    assert_eq!(p.apply_pending(&mut prober, None, since), Some(3));
    assert_eq!(p.applied_after_withdrawal(3)["withdrawal_confirmed"], true);
    prober.stop();
}
