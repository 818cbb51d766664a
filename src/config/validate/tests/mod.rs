//! Tests of `validate`: one small failing config per check; `combinations` has those over
//! several rules and load balancers.

use super::*;
use crate::config::testdata::MINIMAL;
use crate::config::{is_prime, LbKind};
use crate::config::{Dataplane, Encap, ProbeProtocol, Route, RuleProtocol};

fn base() -> Config {
    Config::from_toml(MINIMAL, "minimal.toml").unwrap()
}

fn lb(cfg: &mut Config) -> &mut LoadBalancer {
    &mut cfg.load_balancer[0]
}

fn backend(address: &str) -> Backend {
    Backend {
        address: address.parse().unwrap(),
        weight: 1,
        priority: 0,
        mac: None,
        instance: None,
        drain: false,
    }
}

/// `cfg` has exactly one problem, an error at `key`, whose message contains `what` and
/// ends with its tag.
#[track_caller]
fn only_problem(cfg: &Config, key: &str, what: &str) -> Problem {
    let problems = validate(cfg);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problems.into_iter().next().unwrap();
    assert_eq!(p.key, key, "{p:#?}");
    assert!(p.message.contains(what), "{p:#?}");
    assert!(p.message.ends_with(&format!(" [{}]", p.tag)), "{p:#?}");
    assert_eq!(p.severity, Severity::Error, "{p:#?}");
    p
}

/// The transit warning for an HA-ports rule's backends behind a route.
const TRANSIT: &str = "limitation: transit backends on-link or VXLAN";

/// `only_problem` for a config whose HA-ports rule has a backend behind a route, besides
/// the transit warning that gives.
#[track_caller]
fn only_problem_routed(cfg: &Config, key: &str, what: &str) {
    let problems = validate(cfg);
    assert!(problems.iter().any(|p| p.tag == TRANSIT), "{problems:#?}");
    let rest: Vec<Problem> = problems.into_iter().filter(|p| p.tag != TRANSIT).collect();
    assert_eq!(rest.len(), 1, "{rest:#?}");
    assert_eq!(
        (rest[0].key.as_str(), rest[0].severity),
        (key, Severity::Error)
    );
    assert!(rest[0].message.contains(what), "{rest:#?}");
}

/// Like `only_problem`, and the problem's tag is `tag`.
#[track_caller]
fn only_tagged(cfg: &Config, key: &str, tag: &str, what: &str) {
    assert_eq!(only_problem(cfg, key, what).tag, tag);
}

/// The (key, tag) of every problem of `cfg`.
fn found(cfg: &Config) -> Vec<(String, String)> {
    validate(cfg).into_iter().map(|p| (p.key, p.tag)).collect()
}

fn parse(text: &str) -> Config {
    Config::from_toml(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn minimal_config_has_no_problems() {
    assert_eq!(validate(&base()), vec![]);
    assert_eq!(base().check(), Ok(()));
}

#[test]
fn problem_displays_key_then_message_and_warnings_say_so() {
    let mut p = Problem {
        severity: Severity::Error,
        key: "dataplane.workers".into(),
        message: "must be at least 1 [limitation: at least one worker]".into(),
        tag: "limitation: at least one worker".into(),
    };
    assert_eq!(
        p.to_string(),
        "dataplane.workers: must be at least 1 [limitation: at least one worker]"
    );
    p.severity = Severity::Warning;
    assert_eq!(
        p.to_string(),
        "warning: dataplane.workers: must be at least 1 [limitation: at least one worker]"
    );
}

#[test]
fn tags_name_the_seed_rules_broken() {
    assert_eq!(Broken::Seed(&[3]).to_string(), "seed rule 3");
    assert_eq!(Broken::Seed(&[3, 6]).to_string(), "seed rules 3 and 6");
    assert_eq!(
        Broken::Seed(&[3, 4, 5]).to_string(),
        "seed rules 3, 4 and 5"
    );
    assert_eq!(
        limit::WORKERS.to_string(),
        "limitation: at least one worker"
    );
}

#[test]
fn dataplane_sizes_are_checked() {
    let mut cfg = base();
    cfg.dataplane.workers = 0;
    only_problem(&cfg, "dataplane.workers", "at least 1");

    let mut cfg = base();
    cfg.dataplane.maglev_table_size = 65536;
    only_problem(&cfg, "dataplane.maglev_table_size", "65536 is not prime");

    let mut cfg = base();
    cfg.dataplane.flow_table_capacity = 0;
    only_problem(&cfg, "dataplane.flow_table_capacity", "at least 1");

    let mut cfg = base();
    cfg.dataplane.flow_table_capacity = Dataplane::MAX_FLOW_TABLE_CAPACITY + 1;
    only_tagged(
        &cfg,
        "dataplane.flow_table_capacity",
        "limitation: flow table of at most 2^26 flows",
        "too large",
    );
    cfg.dataplane.flow_table_capacity = Dataplane::MAX_FLOW_TABLE_CAPACITY;
    assert!(validate(&cfg).is_empty());

    let mut cfg = base();
    cfg.dataplane.maglev_table_size = 4_294_967_291; // prime
    only_tagged(
        &cfg,
        "dataplane.maglev_table_size",
        "limitation: Maglev table of at most 2^22 entries",
        "too large",
    );
    cfg.dataplane.maglev_table_size = Dataplane::MAX_MAGLEV_TABLE_SIZE;
    assert!(validate(&cfg).is_empty(), "the largest is prime");

    let mut cfg = base();
    cfg.dataplane.kernel_pps = 0;
    only_tagged(
        &cfg,
        "dataplane.kernel_pps",
        "limitation: kernel rate above 0",
        "the health probes stop",
    );
    let cfg = parse(&format!("[dataplane]\nkernel_pps = 500\n{MINIMAL}"));
    assert_eq!(cfg.dataplane.kernel_pps, 500);
    // Two backends probed (tcp) every 100 ms bring about 60 packets a second back to the
    // twin: a warning where that is more than half of kernel_pps.
    let mut cfg = base();
    cfg.load_balancer[0].probe[0].interval_ms = 100;
    cfg.dataplane.kernel_pps = 100;
    let problems = validate(&cfg);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(
        (p.key.as_str(), p.tag.as_str(), p.severity),
        (
            "dataplane.kernel_pps",
            "limitation: probe answers within kernel_pps",
            Severity::Warning
        )
    );
    assert!(p.message.contains("about 60 packets a second"), "{p:?}");
    cfg.dataplane.kernel_pps = 120;
    assert_eq!(validate(&cfg), vec![]);
    // At the default 5 s, 1000 backends bring back 600 a second: less than one each.
    let mut cfg = base();
    let pool = &mut cfg.load_balancer[0].backend_pool[0];
    let template = pool.backends[0].clone();
    pool.backends = (0..1000u32)
        .map(|i| crate::config::Backend {
            address: std::net::Ipv4Addr::from(0x0a00_1000 + i).into(),
            ..template.clone()
        })
        .collect();
    cfg.dataplane.kernel_pps = 1000;
    let warned = validate(&cfg)
        .into_iter()
        .filter(|p| p.key == "dataplane.kernel_pps");
    let warned: Vec<Problem> = warned.collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(
        warned[0].message.contains("about 600 packets"),
        "{warned:#?}"
    );

    for bad in [0, 3601] {
        let mut cfg = base();
        cfg.dataplane.neighbour_reachable_s = bad;
        only_tagged(
            &cfg,
            "dataplane.neighbour_reachable_s",
            "limitation: neighbour reachable time of 1 s to 1 h",
            "out of range",
        );
    }
    let cfg = parse(&format!(
        "[dataplane]\nneighbour_reachable_s = 5\n{MINIMAL}"
    ));
    assert_eq!(cfg.dataplane.neighbour_reachable_s, 5);
}

/// `mbufs` is the pool's size as given: never fewer than the rings need (more workers need
/// more).
#[test]
fn packet_buffers_are_at_least_what_the_rings_need() {
    let mut cfg = base();
    let need = cfg.dataplane.mbufs_for_rings(cfg.interface.len());
    // The worker's two rings, the twin's two, the control thread's TX ring and the workers'
    // hand-off to the twin, 1024 each, 4096 more, and two lcores' caches of 384 at their
    // fullest.
    assert_eq!(
        need, 16383,
        "one interface, one worker: 11008, up to 2^n - 1"
    );
    // 12 × 6 × 1024 + 4096 = 77824 before the caches: beyond 2^16 - 1.
    assert_eq!(cfg.dataplane.mbufs_for_rings(12), 131_071);
    // 59 workers on one interface: (118 + 2 + 1 + 1) × 1024 + 4096 = 129024, and 60 caches
    // of 384, 23040, beyond 2^17 - 1.
    let many = Dataplane {
        workers: 59,
        ..Dataplane::default()
    };
    assert_eq!(many.mbufs_for_rings(1), 262_143);
    // Whatever the workers, a twin has one queue of each kind and the workers a hand-off to
    // it: 4 workers on 2 interfaces, 2 × (8 + 2 + 1 + 1) × 1024 + 4096 + 5 × 384 = 30592;
    // 16 on 2, 2 × (32 + 4) × 1024 + 4096 + 17 × 384 = 84352.
    let cases = [
        (3, 2, 32_767),
        (4, 1, 32_767),
        (4, 2, 32_767),
        (16, 2, 131_071),
    ];
    for (workers, interfaces, want) in cases {
        let dp = Dataplane {
            workers,
            ..Dataplane::default()
        };
        assert_eq!(dp.mbufs_for_rings(interfaces), want, "{workers} workers");
    }
    cfg.dataplane.mbufs = need;
    assert!(validate(&cfg).is_empty());
    cfg.dataplane.workers = 4;
    assert!(cfg.dataplane.mbufs_for_rings(cfg.interface.len()) > need);
    only_tagged(
        &cfg,
        "dataplane.mbufs",
        "limitation: enough packet buffers",
        "or at least",
    );
    cfg.dataplane.mbufs = 0;
    assert!(validate(&cfg).is_empty(), "0: sized from the rings");
}

#[test]
fn maglev_table_must_be_larger_than_every_pool() {
    let mut cfg = base();
    cfg.dataplane.maglev_table_size = 2;
    only_problem(
        &cfg,
        "dataplane.maglev_table_size",
        "2 must be larger than the 2 backends of load_balancer[ilb].backend_pool[nvas]",
    );
}

#[test]
fn backend_slots_within_those_counted() {
    // A pool of 32,769 backends named by rules with two probes: a slot for each backend under
    // each probe, 65,538 of them.
    let mut cfg = base();
    cfg.interface[0].address = vec!["10.0.0.2/8".parse().unwrap()];
    cfg.dataplane.maglev_table_size = 4_194_301;
    let l = lb(&mut cfg);
    l.backend_pool[0].backends = (0..32_769u32)
        .map(|n| backend(&std::net::Ipv4Addr::from(0x0a01_0000 + n).to_string()))
        .collect();
    let mut fe2 = l.frontend[0].clone();
    (fe2.name, fe2.address) = ("fe2".into(), "10.0.0.101".parse().unwrap());
    l.frontend.push(fe2);
    let mut probe2 = l.probe[0].clone();
    (probe2.name, probe2.port) = ("tcp80".into(), 80);
    l.probe.push(probe2);
    // Two HA-ports rules on one load balancer: floating IP (seed rule 5).
    l.rule[0].floating_ip = true;
    let mut rule2 = l.rule[0].clone();
    (rule2.name, rule2.frontend, rule2.probe) = ("ha2".into(), "fe2".into(), Some("tcp80".into()));
    l.rule.push(rule2);
    let errors = |cfg: &Config| -> Vec<Problem> {
        let all = validate(cfg).into_iter();
        // The probes' answers are more than kernel_pps: a warning, not this test's.
        all.filter(|p| p.severity == Severity::Error).collect()
    };
    let found = errors(&cfg);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].key, "load_balancer");
    assert_eq!(found[0].tag, "limitation: at most 65,536 backend slots");
    assert!(
        found[0].message.starts_with("65538 backend slots"),
        "{found:#?}"
    );
    // The same probe on both rules: one slot a backend.
    lb(&mut cfg).rule[1].probe = Some("tcp22".into());
    lb(&mut cfg).probe.pop();
    assert_eq!(errors(&cfg), vec![]);
    // Without a probe, a pool's backends take one slot each too, and so do those of a pool
    // that no rule names: 32,769 + 32,768 fit, one more does not.
    for rule in &mut lb(&mut cfg).rule {
        rule.probe = None;
    }
    lb(&mut cfg).probe.clear();
    let mut idle = lb(&mut cfg).backend_pool[0].clone();
    idle.name = "idle".into();
    idle.backends.truncate(32_767);
    lb(&mut cfg).backend_pool.push(idle);
    assert_eq!(errors(&cfg), vec![]);
    lb(&mut cfg).backend_pool[1]
        .backends
        .push(backend("10.2.0.1"));
    assert_eq!(errors(&cfg).len(), 1);
}

/// The Maglev tables, one for each pool (and distinct probe of the rules naming it), hold
/// at most 2^28 entries in all: 64 pools of the largest table fit, 65 do not.
#[test]
fn maglev_tables_within_their_memory_in_all() {
    let mut cfg = base();
    cfg.dataplane.maglev_table_size = 4_194_301;
    let pool = lb(&mut cfg).backend_pool[0].clone();
    for n in 1..64 {
        let mut idle = pool.clone();
        idle.name = format!("idle{n}");
        lb(&mut cfg).backend_pool.push(idle);
    }
    let errors = |cfg: &Config| -> Vec<Problem> {
        let all = validate(cfg).into_iter();
        all.filter(|p| p.severity == Severity::Error).collect()
    };
    assert_eq!(errors(&cfg), vec![]);
    let mut idle = pool.clone();
    idle.name = "idle64".into();
    lb(&mut cfg).backend_pool.push(idle);
    let found = errors(&cfg);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].key, "dataplane.maglev_table_size");
    assert_eq!(
        found[0].tag,
        "limitation: Maglev tables of at most 2^28 entries"
    );
    assert!(
        found[0].message.starts_with("65 Maglev tables"),
        "{found:#?}"
    );
    // A pool none of whose backends may take new flows has no table.
    let last = lb(&mut cfg).backend_pool.last_mut().unwrap();
    last.backends.iter_mut().for_each(|b| b.drain = true);
    assert_eq!(errors(&cfg), vec![]);
    lb(&mut cfg).backend_pool.last_mut().unwrap().backends[0].drain = false;
    assert_eq!(errors(&cfg).len(), 1);
    // The default table size: 65 pools are 4 million entries.
    cfg.dataplane.maglev_table_size = 65_537;
    assert_eq!(errors(&cfg), vec![]);
}

#[test]
fn primes() {
    let primes: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
    assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    assert!(is_prime(65537) && is_prime(4_294_967_291) && !is_prime(u32::MAX));
}

#[test]
fn names_are_unique() {
    let mut cfg = base();
    cfg.interface.push(cfg.interface[0].clone());
    cfg.interface[1].port = 1;
    cfg.interface[1].address = vec!["10.1.0.2/24".parse().unwrap()];
    only_problem(&cfg, "interface[lan]", "used by more than one interface");
    cfg.interface[1].name = String::new();
    only_problem(
        &cfg,
        "interface[1].name",
        "an interface needs a name, and it must not be empty",
    );

    let mut cfg = base();
    let mut second = cfg.load_balancer[0].clone();
    // Public, without rules or probes: no seed rule to break, no probe that never runs.
    (second.kind, second.rule, second.probe) = (LbKind::Public, vec![], vec![]);
    cfg.load_balancer.push(second);
    cfg.load_balancer[1].frontend[0].address = "10.0.0.101".parse().unwrap();
    only_problem(
        &cfg,
        "load_balancer[ilb]",
        "used by more than one load_balancer",
    );

    type Dup = fn(&mut LoadBalancer);
    let cases: [(Dup, &str); 4] = [
        (
            |lb| {
                let mut fe = lb.frontend[0].clone();
                fe.address = "10.0.0.101".parse().unwrap();
                lb.frontend.push(fe);
            },
            "load_balancer[ilb].frontend[fe1]",
        ),
        (
            |lb| lb.backend_pool.push(lb.backend_pool[0].clone()),
            "load_balancer[ilb].backend_pool[nvas]",
        ),
        (
            |lb| lb.probe.push(lb.probe[0].clone()),
            "load_balancer[ilb].probe[tcp22]",
        ),
        (
            |lb| {
                // A floating tcp rule beside a floating HA-ports rule: allowed (rule 4).
                lb.rule[0].floating_ip = true;
                let mut web = lb.rule[0].clone();
                (web.protocol, web.frontend_port, web.backend_port) = (RuleProtocol::Tcp, 80, 80);
                lb.rule.push(web);
            },
            "load_balancer[ilb].rule[ha]",
        ),
    ];
    for (dup, key) in cases {
        let mut cfg = base();
        dup(lb(&mut cfg));
        only_problem(&cfg, key, "names must be unique");
    }

    let mut cfg = base();
    lb(&mut cfg).probe[0].name.clear();
    lb(&mut cfg).rule[0].probe = None;
    only_problem(
        &cfg,
        "load_balancer[ilb].probe[0].name",
        "must not be empty",
    );
}

#[test]
fn rule_references_exist_in_the_same_load_balancer() {
    let mut cfg = base();
    lb(&mut cfg).rule[0].frontend = "fe2".into();
    only_problem(
        &cfg,
        "load_balancer[ilb].rule[ha].frontend",
        "no frontend named `fe2` in load_balancer[ilb]",
    );

    let mut cfg = base();
    lb(&mut cfg).rule[0].backend_pool = "pool".into();
    only_problem(
        &cfg,
        "load_balancer[ilb].rule[ha].backend_pool",
        "no backend_pool named `pool`",
    );

    // The probe there is, `tcp22`, is then named by no rule: a warning besides.
    let mut cfg = base();
    lb(&mut cfg).rule[0].probe = Some("http".into());
    let problems = validate(&cfg);
    assert_eq!(
        found(&cfg),
        [
            (
                "load_balancer[ilb].probe[tcp22]",
                "limitation: probe named by a rule"
            ),
            ("load_balancer[ilb].rule[ha].probe", "seed rule 7"),
        ]
        .map(|(k, t)| (k.to_owned(), t.to_owned())),
        "{problems:#?}"
    );
    assert_eq!(problems[0].severity, Severity::Warning);
    assert!(problems[1].message.contains("no probe named `http`"));

    // A name from another load balancer does not count.
    let mut cfg = base();
    let mut other = cfg.load_balancer[0].clone();
    other.name = "other".into();
    other.frontend[0].name = "fe9".into();
    other.frontend[0].address = "10.0.0.109".parse().unwrap();
    (other.kind, other.rule, other.probe) = (LbKind::Public, vec![], vec![]);
    cfg.load_balancer.push(other);
    lb(&mut cfg).rule[0].frontend = "fe9".into();
    only_problem(
        &cfg,
        "load_balancer[ilb].rule[ha].frontend",
        "no frontend named `fe9`",
    );
}

#[test]
fn rule2_protocol_all_only_with_ports_0() {
    let mut cfg = base();
    lb(&mut cfg).rule[0].frontend_port = 80;
    only_problem(
        &cfg,
        "load_balancer[ilb].rule[ha].frontend_port",
        "protocol \"all\" (HA ports) takes every port, so frontend_port must be 0, not 80",
    );
    assert!(validate(&cfg)[0].message.ends_with("[seed rule 2]"));

    let mut cfg = base();
    lb(&mut cfg).rule[0].backend_port = 8080;
    only_problem(
        &cfg,
        "load_balancer[ilb].rule[ha].backend_port",
        "must be 0, not 8080",
    );
}

#[test]
fn rule2_port_0_only_with_protocol_all() {
    let mut cfg = base();
    lb(&mut cfg).rule[0].protocol = RuleProtocol::Tcp;
    let problems = validate(&cfg);
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "load_balancer[ilb].rule[ha].frontend_port",
            "load_balancer[ilb].rule[ha].backend_port"
        ]
    );
    assert!(problems[0]
        .message
        .contains("with protocol \"tcp\" give a port from 1 to 65535"));

    let mut cfg = base();
    let rule = &mut lb(&mut cfg).rule[0];
    (rule.protocol, rule.frontend_port, rule.backend_port) = (RuleProtocol::Udp, 53, 0);
    only_problem(
        &cfg,
        "load_balancer[ilb].rule[ha].backend_port",
        "port 0 means every port",
    );

    let mut cfg = base();
    let rule = &mut lb(&mut cfg).rule[0];
    (rule.protocol, rule.frontend_port, rule.backend_port) = (RuleProtocol::Tcp, 443, 8443);
    assert_eq!(validate(&cfg), vec![]);
}

#[test]
fn pools_are_not_empty_and_list_each_backend_once() {
    let mut cfg = base();
    lb(&mut cfg).backend_pool[0].backends.clear();
    only_problem(
        &cfg,
        "load_balancer[ilb].backend_pool[nvas].backends",
        "no backends",
    );

    let mut cfg = base();
    let mut again = backend("10.0.0.11");
    again.instance = Some("nva9".into());
    lb(&mut cfg).backend_pool[0].backends.push(again);
    only_problem(
        &cfg,
        "load_balancer[ilb].backend_pool[nvas].backends[10.0.0.11].address",
        "listed more than once",
    );

    let mut cfg = base();
    for (b, addr) in lb(&mut cfg).backend_pool[0]
        .backends
        .iter_mut()
        .zip(["nva1", "nva1"])
    {
        b.instance = Some(addr.into());
    }
    only_problem(
        &cfg,
        "load_balancer[ilb].backend_pool[nvas].backends[10.0.0.12].instance",
        "instance `nva1` is named by more than one backend",
    );

    // An empty instance name is no name (two backends given one would be one appliance).
    let mut cfg = base();
    lb(&mut cfg).backend_pool[0].backends[0].instance = Some(String::new());
    only_tagged(
        &cfg,
        "load_balancer[ilb].backend_pool[nvas].backends[10.0.0.11].instance",
        "seed rule 7",
        "an instance needs a name, and it must not be empty",
    );
}

#[test]
fn weight_0_is_allowed() {
    let mut cfg = base();
    lb(&mut cfg).backend_pool[0].backends[0].weight = 0;
    assert_eq!(validate(&cfg), vec![]);
}

#[test]
fn interface_ports_are_unique_and_addresses_present() {
    let mut cfg = base();
    let mut wan = cfg.interface[0].clone();
    wan.name = "wan".into();
    wan.address = vec!["192.168.1.2/24".parse().unwrap()];
    cfg.interface.push(wan);
    only_problem(
        &cfg,
        "interface[wan].port",
        "DPDK port 0 is already used by interface[lan]",
    );

    let mut cfg = base();
    cfg.interface.clear();
    let problems = validate(&cfg);
    assert_eq!(problems[0].key, "interface");
    assert!(problems[0].message.contains("at least one DPDK port"));

    let mut cfg = base();
    cfg.interface[0].address.push("fd00::2/64".parse().unwrap());
    assert_eq!(validate(&cfg), vec![]);
    cfg.interface[0].address.clear();
    let problems = validate(&cfg);
    assert_eq!(problems[0].key, "interface[lan].address");
    assert!(problems[0].message.contains("needs at least one address"));
}

#[test]
fn at_most_16_interfaces_each_named_to_fit_its_kernel_twin() {
    let mut cfg = base();
    for i in 1..17u8 {
        let mut extra = cfg.interface[0].clone();
        extra.name = format!("if{i}");
        extra.port = u16::from(i);
        extra.address = vec![format!("192.168.{i}.2/24").parse().unwrap()];
        cfg.interface.push(extra);
    }
    only_tagged(
        &cfg,
        "interface",
        "limitation: at most 16 interfaces",
        "17 [[interface]]s; one appliance serves at most 16",
    );
    cfg.interface.pop();
    assert_eq!(validate(&cfg), vec![]);

    for bad in ["a-name-too-long", "lan0ünï", "la n", "lan/0", "lan:1"] {
        let mut cfg = base();
        cfg.interface[0].name = bad.into();
        let p = only_problem(
            &cfg,
            &format!("interface[{bad}].name"),
            "fits Linux's 15 bytes",
        );
        assert_eq!(p.tag, "limitation: interface name fits its twin's");
    }
    for good in ["a", "lan-0_v.2", "twelve-chars"] {
        let mut cfg = base();
        cfg.interface[0].name = good.into();
        assert_eq!(validate(&cfg), vec![], "{good}");
    }
}

#[test]
fn ipv6_frontends_differ_in_their_last_32_bits() {
    let mut cfg = base();
    cfg.interface[0].address.push("fd00::2/64".parse().unwrap());
    lb(&mut cfg).rule[0].floating_ip = true;
    lb(&mut cfg).frontend[0].address = "fd00::1:100".parse().unwrap();
    let mut fe2 = lb(&mut cfg).frontend[0].clone();
    fe2.name = "fe2".into();
    fe2.address = "fd00::2:100".parse().unwrap();
    lb(&mut cfg).frontend.push(fe2);
    assert_eq!(validate(&cfg), vec![]);
    lb(&mut cfg).frontend[1].address = "fd00::9:1:100".parse().unwrap();
    only_tagged(
        &cfg,
        "load_balancer[ilb].frontend[fe2].address",
        "limitation: IPv6 frontends differ in their last 32 bits",
        "ends in the same 32 bits as fd00::1:100",
    );
}

#[test]
fn macs_are_unicast() {
    let mut cfg = base();
    cfg.interface[0].mac = Some("01:00:5e:00:00:01".parse().unwrap());
    only_problem(&cfg, "interface[lan].mac", "not a unicast MAC");

    let mut cfg = base();
    lb(&mut cfg).backend_pool[0].backends[0].mac = Some(MacAddr::ZERO);
    only_problem(
        &cfg,
        "load_balancer[ilb].backend_pool[nvas].backends[10.0.0.11].mac",
        "not a unicast MAC",
    );
}

/// The appliance's own MACs (an interface's given one, a frontend's derived one) are no
/// backend's, and an interface's is no frontend's.
#[test]
fn the_appliances_macs_are_its_own() {
    let own_tag = "limitation: the appliance's MACs its own";
    let fe_mac = crate::config::frontend_mac(lb(&mut base()).frontend[0].address);
    let backend_mac = "load_balancer[ilb].backend_pool[nvas].backends[10.0.0.11].mac";
    let mut cfg = base();
    lb(&mut cfg).backend_pool[0].backends[0].mac = Some(fe_mac);
    only_tagged(
        &cfg,
        backend_mac,
        own_tag,
        "is the MAC of load_balancer[ilb].frontend[fe1]",
    );

    let mut cfg = base();
    let mac: MacAddr = "02:00:00:00:00:aa".parse().unwrap();
    cfg.interface[0].mac = Some(mac);
    assert_eq!(validate(&cfg), vec![]);
    lb(&mut cfg).backend_pool[0].backends[0].mac = Some(mac);
    only_tagged(&cfg, backend_mac, own_tag, "is the mac of interface[lan]");

    let mut cfg = base();
    cfg.interface[0].mac = Some(fe_mac);
    only_tagged(
        &cfg,
        "interface[lan].mac",
        own_tag,
        "give the interface another mac",
    );

    // Two interfaces, on segments of their own, may share a MAC.
    let mut cfg = base();
    cfg.interface[0].mac = Some(mac);
    let mut second = cfg.interface[0].clone();
    (second.name, second.port) = ("wan".into(), 1);
    second.address = vec!["10.1.0.2/24".parse().unwrap()];
    cfg.interface.push(second);
    assert_eq!(validate(&cfg), vec![]);
}

#[test]
fn frontend_addresses_are_unicast_and_not_the_appliances_own() {
    for (addr, why) in [
        (
            "224.0.0.5",
            "is a multicast address; a frontend needs a unicast address",
        ),
        ("0.0.0.0", "the unspecified address"),
        ("255.255.255.255", "the broadcast address"),
        ("127.0.0.1", "a loopback address"),
        ("ff02::1", "a multicast address"),
        ("::", "the unspecified address"),
        ("::1", "the loopback address"),
        ("::ffff:10.0.0.100", "an IPv4-mapped address"),
    ] {
        let mut cfg = base();
        lb(&mut cfg).frontend[0].address = addr.parse().unwrap();
        // Floating: an IPv6 frontend over IPv4 backends is no NAT problem.
        lb(&mut cfg).rule[0].floating_ip = true;
        only_problem(&cfg, "load_balancer[ilb].frontend[fe1].address", why);
    }

    let mut cfg = base();
    lb(&mut cfg).frontend[0].address = "10.0.0.2".parse().unwrap();
    only_problem(
        &cfg,
        "load_balancer[ilb].frontend[fe1].address",
        "10.0.0.2 is the own address of interface[lan]",
    );
}

/// Link-local frontends pass as unicast, but the data plane never forwards to them.
/// Link-local frontends and backends pass as unicast, but the data plane never forwards to
/// or from them.
#[test]
fn frontend_and_backend_addresses_are_not_link_local() {
    let tag = "limitation: frontends and backends not link-local".to_string();
    for addr in ["169.254.10.1", "fe80::10"] {
        let mut cfg = base();
        lb(&mut cfg).frontend[0].address = addr.parse().unwrap();
        lb(&mut cfg).rule[0].floating_ip = true;
        let key = "load_balancer[ilb].frontend[fe1].address".to_string();
        assert!(
            found(&cfg).contains(&(key, tag.clone())),
            "{addr}: {:?}",
            found(&cfg)
        );
    }
    let mut cfg = base();
    lb(&mut cfg).backend_pool[0].backends[0] = backend("169.254.10.11");
    assert!(
        found(&cfg)
            .iter()
            .any(|(k, t)| k.ends_with(".address") && *t == tag),
        "{:?}",
        found(&cfg)
    );
}

#[test]
fn frontend_addresses_are_unique() {
    let mut cfg = base();
    let mut fe2 = lb(&mut cfg).frontend[0].clone();
    fe2.name = "fe2".into();
    lb(&mut cfg).frontend.push(fe2);
    only_problem(
        &cfg,
        "load_balancer[ilb].frontend[fe2].address",
        "10.0.0.100 is already the address of load_balancer[ilb].frontend[fe1]",
    );
}

#[test]
fn backend_addresses_are_unicast_and_not_the_appliances_own() {
    let mut cfg = base();
    lb(&mut cfg).backend_pool[0].backends[0].address = "10.0.0.2".parse().unwrap();
    only_problem(
        &cfg,
        "load_balancer[ilb].backend_pool[nvas].backends[10.0.0.2].address",
        "own address of interface[lan]",
    );

    let mut cfg = base();
    cfg.interface[0].routes.push(Route {
        to: "0.0.0.0/0".parse().unwrap(),
        via: "10.0.0.1".parse().unwrap(),
    });
    lb(&mut cfg).backend_pool[0].backends[0].address = "239.1.1.1".parse().unwrap();
    only_problem_routed(
        &cfg,
        "load_balancer[ilb].backend_pool[nvas].backends[239.1.1.1].address",
        "239.1.1.1 is a multicast address; a backend needs a unicast address",
    );
}

#[test]
fn backends_are_on_link_or_routed() {
    let mut cfg = base();
    lb(&mut cfg).backend_pool[0]
        .backends
        .push(backend("10.9.1.1"));
    only_problem(
        &cfg,
        "load_balancer[ilb].backend_pool[nvas].backends[10.9.1.1]",
        "backend 10.9.1.1 is on no interface's subnet and no route leads to it",
    );

    let mut routed = cfg.clone();
    routed.interface[0].routes.push(Route {
        to: "10.9.0.0/16".parse().unwrap(),
        via: "10.0.0.1".parse().unwrap(),
    });
    // NAT reaches it; the HA-ports rule's transit (MAC-only) would not: a warning.
    let problems = validate(&routed);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].severity, Severity::Warning);
    assert_eq!(problems[0].key, "load_balancer[ilb].rule[ha].backend_pool");
    assert_eq!(problems[0].tag, TRANSIT);
    let mut port_rule = routed.clone();
    lb(&mut port_rule).rule[0].protocol = RuleProtocol::Tcp;
    (
        lb(&mut port_rule).rule[0].frontend_port,
        lb(&mut port_rule).rule[0].backend_port,
    ) = (80, 80);
    assert_eq!(validate(&port_rule), vec![], "a port rule takes no transit");
    // Behind the route, the router's MAC is the way: a configured one is refused.
    let mut with_mac = routed.clone();
    let pool = &mut lb(&mut with_mac).backend_pool[0];
    pool.backends.last_mut().unwrap().mac = Some(MacAddr([2, 0, 0, 0, 0, 0x11]));
    only_problem_routed(
        &with_mac,
        "load_balancer[ilb].backend_pool[nvas].backends[10.9.1.1].mac",
        "backend 10.9.1.1 is behind a route, where its packets go to the router's MAC",
    );

    // On a segment, but with a longer route to it: the route is the way, and the same holds.
    let mut overlapped = base();
    overlapped.interface[0].routes.push(Route {
        to: "10.0.0.11/32".parse().unwrap(),
        via: "10.0.0.1".parse().unwrap(),
    });
    lb(&mut overlapped).backend_pool[0].backends[0].mac = Some(MacAddr([2, 0, 0, 0, 0, 0x11]));
    let problems = found(&overlapped);
    assert!(
        problems.contains(&(
            "load_balancer[ilb].backend_pool[nvas].backends[10.0.0.11].mac".into(),
            "limitation: backend mac only on a segment".into()
        )),
        "{problems:?}"
    );

    // VXLAN or not, a backend is reached by its address.
    let mut encapsulated = routed.clone();
    lb(&mut encapsulated).backend_pool[0].encap = Some(Encap::Vxlan);
    encapsulated.interface[0].routes.clear();
    assert!(found(&encapsulated).contains(&(
        "load_balancer[ilb].backend_pool[nvas].backends[10.9.1.1]".into(),
        "limitation: backend reachable".into()
    )));
}

#[test]
fn vxlan_pools_need_a_vni_ipv4_backends_with_their_macs_and_dsr() {
    let tag = "limitation: VXLAN pools: vni, IPv4 backends with a mac, DSR";
    let mut cfg = base();
    lb(&mut cfg).backend_pool[0].encap = Some(Encap::Vxlan);
    let pool = "load_balancer[ilb].backend_pool[nvas]";
    let mut problems = found(&cfg);
    problems.sort();
    let backends: Vec<String> = lb(&mut cfg).backend_pool[0]
        .backends
        .iter()
        .map(|b| format!("{pool}.backends[{}].mac", b.address))
        .collect();
    let mut expected: Vec<(String, String)> = backends
        .into_iter()
        .chain([
            format!("{pool}.vni"),
            "load_balancer[ilb].rule[ha].floating_ip".to_owned(),
        ])
        .map(|k| (k, tag.to_owned()))
        .collect();
    expected.sort();
    assert_eq!(problems, expected);

    let mut fixed = cfg.clone();
    for rule in &mut lb(&mut fixed).rule {
        rule.floating_ip = true;
    }
    let pool_cfg = &mut lb(&mut fixed).backend_pool[0];
    pool_cfg.vni = Some(100);
    for (i, b) in pool_cfg.backends.iter_mut().enumerate() {
        b.mac = Some(crate::wire::MacAddr([2, 0, 0, 0, 0x0b, i as u8 + 1]));
    }
    assert_eq!(validate(&fixed), vec![]);

    let mut big = fixed.clone();
    lb(&mut big).backend_pool[0].vni = Some(1 << 24);
    only_tagged(
        &big,
        &format!("{pool}.vni"),
        tag,
        "does not fit VXLAN's 24 bits",
    );
    let mut stray = base();
    lb(&mut stray).backend_pool[0].vni = Some(7);
    only_tagged(&stray, &format!("{pool}.vni"), tag, "vni is for encap");
    let mut v6 = fixed.clone();
    let b = &mut lb(&mut v6).backend_pool[0].backends[0];
    b.address = "fd00::11".parse().unwrap();
    v6.interface[0].address.push("fd00::2/64".parse().unwrap());
    assert!(found(&v6)
        .iter()
        .any(|(k, t)| k.ends_with("backends[fd00::11].address") && t == tag));
}

#[test]
fn route_next_hops_are_on_link() {
    let mut cfg = base();
    cfg.interface[0].routes.push(Route {
        to: "10.9.0.0/16".parse().unwrap(),
        via: "10.1.0.1".parse().unwrap(),
    });
    only_problem(
        &cfg,
        "interface[lan].routes[10.9.0.0/16].via",
        "next hop 10.1.0.1 is not on a subnet of this interface",
    );
}

#[test]
fn probes_are_checked() {
    let mut cfg = base();
    lb(&mut cfg).probe[0].protocol = ProbeProtocol::Http;
    only_problem(
        &cfg,
        "load_balancer[ilb].probe[tcp22].path",
        "an http probe needs a path",
    );
    lb(&mut cfg).probe[0].path = Some("healthz".into());
    only_problem(
        &cfg,
        "load_balancer[ilb].probe[tcp22].path",
        "`healthz` must start with \"/\"",
    );
    lb(&mut cfg).probe[0].path = Some("/healthz".into());
    assert_eq!(validate(&cfg), vec![]);

    for (ms, ok) in [
        (49, false),
        (50, true),
        (3_600_000, true),
        (3_600_001, false),
    ] {
        let mut cfg = base();
        lb(&mut cfg).probe[0].interval_ms = ms;
        if ok {
            assert_eq!(validate(&cfg), vec![], "{ms}");
        } else {
            only_tagged(
                &cfg,
                "load_balancer[ilb].probe[tcp22].interval_ms",
                "limitation: probe interval 50 ms to 1 h",
                &format!("{ms} ms is too"),
            );
        }
    }

    // A tcp probe's path has no effect: a warning, and the config still passes.
    let mut cfg = base();
    lb(&mut cfg).probe[0].path = Some("/".into());
    let problems = validate(&cfg);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].severity, Severity::Warning);
    assert_eq!(problems[0].key, "load_balancer[ilb].probe[tcp22].path");
    assert_eq!(problems[0].tag, "limitation: path is for http probes");
    assert_eq!(cfg.check(), Ok(()));

    let mut cfg = base();
    lb(&mut cfg).probe[0].unhealthy_threshold = 0;
    only_problem(
        &cfg,
        "load_balancer[ilb].probe[tcp22].unhealthy_threshold",
        "at least 1",
    );

    let mut cfg = base();
    lb(&mut cfg).probe[0].healthy_threshold = 0;
    only_problem(
        &cfg,
        "load_balancer[ilb].probe[tcp22].healthy_threshold",
        "at least 1",
    );

    let mut cfg = base();
    lb(&mut cfg).probe[0].port = 0;
    only_problem(
        &cfg,
        "load_balancer[ilb].probe[tcp22].port",
        "from 1 to 65535",
    );
}

#[test]
fn idle_timeout_is_a_second_to_a_day() {
    for (s, ok) in [(0, false), (1, true), (86_400, true), (86_401, false)] {
        let mut cfg = base();
        lb(&mut cfg).rule[0].idle_timeout_s = s;
        if ok {
            assert_eq!(validate(&cfg), vec![], "{s}");
        } else {
            only_tagged(
                &cfg,
                "load_balancer[ilb].rule[ha].idle_timeout_s",
                "limitation: idle timeout 1 s to 24 h",
                &format!("{s} s is out of range; give 1 to 86400 seconds"),
            );
        }
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut cfg = base();
    cfg.dataplane.workers = 0;
    cfg.dataplane.maglev_table_size = 1000;
    let lb = lb(&mut cfg);
    lb.rule[0].backend_pool = "missing".into();
    lb.rule[0].frontend_port = 443;
    lb.probe[0].interval_ms = 1;
    lb.backend_pool[0].backends.push(backend("192.168.7.7"));
    let keys: Vec<String> = validate(&cfg).into_iter().map(|p| p.key).collect();
    assert_eq!(
        keys,
        [
            "dataplane.workers",
            "dataplane.maglev_table_size",
            "load_balancer[ilb].backend_pool[nvas].backends[192.168.7.7]",
            "load_balancer[ilb].probe[tcp22].interval_ms",
            "load_balancer[ilb].rule[ha].backend_pool",
            "load_balancer[ilb].rule[ha].frontend_port",
        ]
    );
    assert_eq!(cfg.check().unwrap_err().len(), 6);
}

#[test]
fn maglev_table_below_100_per_backend_is_a_warning() {
    let mut cfg = base();
    cfg.dataplane.maglev_table_size = 199;
    let problems = validate(&cfg);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].severity, Severity::Warning);
    assert!(
        problems[0].message.starts_with(
            "199 is less than 100 × the 2 backends of load_balancer[ilb].backend_pool[nvas] \
             = 200; "
        ),
        "{problems:#?}"
    );
    assert!(problems[0]
        .message
        .contains("(the smallest prime at least that is 211)"));
    assert_eq!(cfg.check(), Ok(()));
    cfg.dataplane.maglev_table_size = 211;
    assert_eq!(validate(&cfg), vec![]);
}

#[test]
fn interface_ports_exist_among_the_vdevs_when_pci_is_off() {
    let mut cfg = base();
    cfg.dpdk.eal_args = ["--no-pci", "--vdev=net_af_packet0,iface=lb0"]
        .map(String::from)
        .to_vec();
    assert_eq!(validate(&cfg), vec![]);
    cfg.interface[0].port = 1;
    only_tagged(
        &cfg,
        "interface[lan].port",
        "limitation: DPDK port must exist",
        "DPDK port 1 does not exist: with --no-pci the ports are the --vdev devices of the EAL \
         arguments in order, and there are 1 (port 0: net_af_packet0)",
    );
    // `haports run … -- --vdev=…` adds ports.
    assert_eq!(
        cfg.problems_with_eal_args(&["--vdev=net_null1".into()]),
        vec![]
    );
    assert!(cfg
        .problems_with_eal_args(&[])
        .iter()
        .any(Problem::is_error));
    // Without --no-pci, PCI devices may take any port id.
    cfg.dpdk.eal_args.remove(0);
    assert_eq!(validate(&cfg), vec![]);
}

/// Each worker polls an RX queue of its own on every port: an AF_PACKET vdev fills as many
/// as its `qpairs`, an AF_XDP one its `queue_count` (1 unless given), and must fill one for
/// each worker (with fewer the port cannot start; with more, frames are lost on the others).
#[test]
fn af_packet_and_af_xdp_ports_fill_a_queue_per_worker() {
    let mut cfg = base();
    cfg.dpdk.eal_args = ["-l", "0-2", "--no-pci", "--vdev=net_af_packet0,iface=lb0"]
        .map(String::from)
        .to_vec();
    cfg.dataplane.workers = 2;
    only_tagged(
        &cfg,
        "interface[lan].port",
        "limitation: AF_PACKET and AF_XDP ports fill a queue per worker",
        "port 0 (net_af_packet0) fills 1 RX queue (qpairs, 1 unless given) but 2 workers poll \
         2, one each: give the vdev qpairs=2",
    );
    cfg.dpdk.eal_args[3] = "--vdev=net_af_packet0,iface=lb0,qpairs=2".into();
    assert_eq!(validate(&cfg), vec![]);
    cfg.dataplane.workers = 1;
    assert_eq!(
        found(&cfg),
        [(
            "interface[lan].port".to_owned(),
            "limitation: AF_PACKET and AF_XDP ports fill a queue per worker".to_owned()
        )]
    );
    cfg.dpdk.eal_args[3] = "--vdev=net_af_xdp0,iface=lb0,start_queue=0,queue_count=1".into();
    assert_eq!(validate(&cfg), vec![]);
    cfg.dataplane.workers = 2;
    only_tagged(
        &cfg,
        "interface[lan].port",
        "limitation: AF_PACKET and AF_XDP ports fill a queue per worker",
        "give the vdev queue_count=2",
    );
    // Other drivers make as many queues as asked for.
    cfg.dpdk.eal_args[3] = "--vdev=net_tap0".into();
    assert_eq!(validate(&cfg), vec![]);
}

mod announce;
mod combinations;
mod segments;
