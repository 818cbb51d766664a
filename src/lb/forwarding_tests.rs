//! Tests of the forwarding state: tiers, weights, table reuse, stable ids, routes, NAT
//! mappings, transit and instance health.

use std::net::Ipv4Addr;

use super::*;
use crate::config::Config;
use crate::lb::decision::lookup;
use crate::lb::flow::FlowKey;
use crate::lb::verdict::DropReason;

fn config(backends: &str, rules: &str) -> Config {
    let text = format!(
        r#"
[dataplane]
maglev_table_size = 4099
[[interface]]
name = "lan"
port = 0
address = ["10.0.0.2/24", "10.0.1.2/24"]
routes = [{{ to = "10.9.0.0/16", via = "10.0.1.1" }}]
[[load_balancer]]
name = "ilb"
kind = "internal"
  [[load_balancer.frontend]]
  name = "fe1"
  address = "10.0.0.100"
  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [{backends}]
{rules}
"#
    );
    Config::from_toml(&text, "test").unwrap()
}

const HA: &str = r#"
  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe1"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
"#;

fn flows(n: u16) -> impl Iterator<Item = FlowKey> {
    (0..n).map(|i| FlowKey {
        proto: 6,
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 1, (i % 200) as u8 + 10)),
        dst: "10.0.0.100".parse().unwrap(),
        src_port: 1024 + i,
        dst_port: 80 + (i % 50),
    })
}

fn chosen(fwd: &Forwarding, n: u16) -> HashMap<IpAddr, usize> {
    let mut out = HashMap::new();
    for k in flows(n) {
        let d = lookup(fwd, &k, None).unwrap();
        *out.entry(fwd.backends[d.backend as usize].address)
            .or_default() += 1;
    }
    out
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn only_the_best_priority_tier_with_a_healthy_backend_gets_flows() {
    let cfg = config(
        r#"{ address = "10.0.0.11" }, { address = "10.0.0.12" }, { address = "10.0.0.13", priority = 1 }"#,
        HA,
    );
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    let got = chosen(&fwd, 2000);
    assert_eq!(
        got.get(&addr("10.0.0.13")),
        None,
        "the passive tier is idle: {got:?}"
    );
    assert_eq!(got.len(), 2);

    // The whole active tier down: the passive takes everything.
    let down = [addr("10.0.0.11"), addr("10.0.0.12")].into_iter().collect();
    let fwd = Forwarding::build(
        &cfg,
        &Observations {
            down,
            ..Default::default()
        },
        2,
        Some(&fwd),
    );
    assert_eq!(chosen(&fwd, 2000).get(&addr("10.0.0.13")), Some(&2000));

    // Every tier down: nothing to pick.
    let down = [addr("10.0.0.11"), addr("10.0.0.12"), addr("10.0.0.13")]
        .into_iter()
        .collect();
    let fwd = Forwarding::build(
        &cfg,
        &Observations {
            down,
            ..Default::default()
        },
        3,
        None,
    );
    assert_eq!(
        lookup(&fwd, &flows(1).next().unwrap(), None),
        Err(DropReason::NoHealthyBackend)
    );
}

#[test]
fn weights_set_the_share_of_new_flows_and_drained_backends_get_none() {
    let cfg = config(
        r#"{ address = "10.0.0.11" }, { address = "10.0.0.12", weight = 3 }, { address = "10.0.0.13", drain = true }"#,
        HA,
    );
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    let got = chosen(&fwd, 8000);
    assert_eq!(got.get(&addr("10.0.0.13")), None);
    let ratio = got[&addr("10.0.0.12")] as f64 / got[&addr("10.0.0.11")] as f64;
    assert!(
        (2.6..3.4).contains(&ratio),
        "weight 3 vs 1 gave {ratio:.2}: {got:?}"
    );
    // A drained backend still keeps its established flows while healthy.
    let drained = fwd
        .backends
        .iter()
        .position(|b| b.address == addr("10.0.0.13"))
        .unwrap() as BackendId;
    assert!(fwd.keeps_flow(0, drained));
}

#[test]
fn unchanged_pools_share_their_maglev_table_with_the_previous_state() {
    let cfg = config(
        r#"{ address = "10.0.0.11" }, { address = "10.0.0.12" }"#,
        HA,
    );
    let a = Forwarding::build(&cfg, &Observations::default(), 1, None);
    let mut obs = Observations::default();
    obs.neighbours.insert(
        addr("10.0.0.11"),
        Neighbour::fresh(MacAddr([2, 0, 0, 0, 0, 0x11])),
    );
    let b = Forwarding::build(&cfg, &obs, 2, Some(&a));
    assert!(
        Arc::ptr_eq(&a.pools[0].table, &b.pools[0].table),
        "a neighbour change must not rebuild Maglev"
    );
    assert_eq!(b.backends[0].mac, Some(MacAddr([2, 0, 0, 0, 0, 0x11])));
    obs.down.insert(addr("10.0.0.12"));
    let c = Forwarding::build(&cfg, &obs, 3, Some(&b));
    assert!(
        !Arc::ptr_eq(&b.pools[0].table, &c.pools[0].table),
        "a health change rebuilds it"
    );
}

#[test]
fn routes_pick_the_longest_prefix_and_on_link_next_hops() {
    let cfg = config(r#"{ address = "10.0.0.11" }"#, HA);
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    assert_eq!(
        fwd.route(addr("10.0.1.77")),
        Some(Route {
            interface: 0,
            next_hop: addr("10.0.1.77")
        })
    );
    assert_eq!(
        fwd.route(addr("10.9.3.4")),
        Some(Route {
            interface: 0,
            next_hop: addr("10.0.1.1")
        })
    );
    assert_eq!(fwd.route(addr("192.0.2.1")), None);
    assert_eq!(fwd.own_address(addr("10.0.1.2")), Some(0));
    assert_eq!(fwd.unresolved(), vec![(0, addr("10.0.0.11"))]);
}

#[test]
fn port_rules_win_over_ha_ports_and_set_the_reverse_rewrite() {
    let rules = format!(
        r#"{HA}
  [[load_balancer.rule]]
  name = "web"
  frontend = "fe1"
  backend_pool = "pool"
  protocol = "tcp"
  frontend_port = 80
  backend_port = 8080
"#
    );
    let cfg = config(r#"{ address = "10.0.0.11" }"#, &rules);
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    let (_, r) = fwd.rule(0, 6, 80).unwrap();
    assert_eq!(r.name, "web");
    assert_eq!(fwd.rule(0, 17, 80).unwrap().1.name, "ha");
    assert_eq!(
        fwd.reverse_nat(addr("10.0.0.11"), 6, 8080),
        Some(ReverseNat {
            frontend: addr("10.0.0.100"),
            frontend_port: Some(80)
        })
    );
    assert_eq!(
        fwd.reverse_nat(addr("10.0.0.11"), 17, 5353),
        Some(ReverseNat {
            frontend: addr("10.0.0.100"),
            frontend_port: None
        })
    );
    assert_eq!(fwd.reverse_nat(addr("10.0.0.99"), 6, 8080), None);
}

#[test]
fn backends_and_pools_keep_their_ids_across_reloads_and_removed_ones_retire() {
    let two = config(
        r#"{ address = "10.0.0.11" }, { address = "10.0.0.12" }"#,
        HA,
    );
    let a = Forwarding::build(&two, &Observations::default(), 1, None);
    let id_of = |f: &Forwarding, ip: &str| {
        f.backends
            .iter()
            .position(|b| b.address == addr(ip) && !b.retired)
            .map(|i| i as BackendId)
    };
    let three = config(
        r#"{ address = "10.0.0.11" }, { address = "10.0.0.12" }, { address = "10.0.0.13" }"#,
        HA,
    );
    let b = Forwarding::build(&three, &Observations::default(), 2, Some(&a));
    assert_eq!(id_of(&b, "10.0.0.11"), id_of(&a, "10.0.0.11"));
    assert_eq!(id_of(&b, "10.0.0.12"), id_of(&a, "10.0.0.12"));
    assert_eq!(id_of(&b, "10.0.0.13"), Some(2));

    let without_first = config(
        r#"{ address = "10.0.0.12" }, { address = "10.0.0.13" }"#,
        HA,
    );
    let c = Forwarding::build(&without_first, &Observations::default(), 3, Some(&b));
    assert_eq!(id_of(&c, "10.0.0.12"), id_of(&a, "10.0.0.12"));
    assert_eq!(id_of(&c, "10.0.0.13"), Some(2));
    assert_eq!(id_of(&c, "10.0.0.11"), None);
    assert!(
        c.backends[0].retired && !c.keeps_flow(0, 0),
        "a removed backend keeps no flow"
    );
    assert!(c.keeps_flow(0, 1));
    let got = chosen(&c, 1000);
    assert_eq!(got.get(&addr("10.0.0.11")), None);
    // Added back, it is the same backend again, in its own slot (entries that name it mean
    // it); taken away and back again and again, the slots stay as many.
    let mut d = Forwarding::build(&three, &Observations::default(), 4, Some(&c));
    assert_eq!(id_of(&d, "10.0.0.11"), Some(0));
    for generation in 5..25 {
        let cfg = if generation % 2 == 0 {
            &without_first
        } else {
            &three
        };
        d = Forwarding::build(cfg, &Observations::default(), generation, Some(&d));
    }
    assert_eq!((d.backends.len(), d.pools.len()), (3, 1));
}

/// A retired slot the control thread says no flow entry can name any more goes to a backend
/// new to the config, not to a new slot: backends that come and go under new addresses do
/// not use up the ids. Not while the config names its address again (it is that backend's),
/// and never a slot in use.
#[test]
fn a_retired_slot_no_flow_names_goes_to_a_new_backend() {
    let id_of = |f: &Forwarding, ip: &str| {
        (f.backends.iter())
            .position(|b| b.address == addr(ip) && !b.retired)
            .map(|i| i as BackendId)
    };
    let pool = |list: &str| config(list, HA);
    let a = Forwarding::build(
        &pool(r#"{ address = "10.0.0.11" }, { address = "10.0.0.12" }"#),
        &Observations::default(),
        1,
        None,
    );
    let b = Forwarding::build(
        &pool(r#"{ address = "10.0.0.12" }"#),
        &Observations::default(),
        2,
        Some(&a),
    );
    assert!(b.backends[0].retired);
    let reusable = Observations {
        reusable_backends: vec![0, 1],
        ..Observations::default()
    };
    let with_new = pool(r#"{ address = "10.0.0.12" }, { address = "10.0.0.13" }"#);
    let c = Forwarding::build(&with_new, &reusable, 3, Some(&b));
    assert_eq!(id_of(&c, "10.0.0.13"), Some(0), "the retired slot");
    assert_eq!(id_of(&c, "10.0.0.12"), Some(1), "in use: kept");
    assert_eq!(c.backends.len(), 2);
    assert!(c.keeps_flow(0, 0) && c.keeps_flow(0, 1));
    // The retired backend back in the same config: its slot is its own, the new one's is new.
    let back = pool(r#"{ address = "10.0.0.11" }, { address = "10.0.0.13" }"#);
    let d = Forwarding::build(&back, &reusable, 3, Some(&b));
    assert_eq!(id_of(&d, "10.0.0.11"), Some(0));
    assert_eq!(id_of(&d, "10.0.0.13"), Some(2));
    // Without the control thread's word, no slot is reused.
    let e = Forwarding::build(&with_new, &Observations::default(), 3, Some(&b));
    assert_eq!(id_of(&e, "10.0.0.13"), Some(2));
}

/// The HA rule following the probe `name` (its pool's state of that probe).
fn probed_by(name: &str) -> Config {
    let rules = format!(
        "{HA}  probe = \"{name}\"\n  [[load_balancer.probe]]\n  name = \"{name}\"\n  \
         protocol = \"tcp\"\n  port = 22\n"
    );
    config(
        r#"{ address = "10.0.0.11" }, { address = "10.0.0.12" }"#,
        &rules,
    )
}

/// Each new probe name a reload gives a rule makes a new state of its pool, the old one's
/// slots retired: once no flow entry can name them, the next new state takes them, though
/// the config still names their addresses. The slots grew with every such reload.
#[test]
fn slots_of_a_pool_state_gone_go_to_the_next() {
    let mut state = Forwarding::build(&probed_by("p0"), &Observations::default(), 1, None);
    for n in 1..10u64 {
        let retired: Vec<BackendId> = (state.backends.iter().zip(0..))
            .filter(|(b, _)| b.retired)
            .map(|(_, id)| id)
            .collect();
        let obs = Observations {
            reusable_backends: retired,
            ..Observations::default()
        };
        let cfg = probed_by(&format!("p{n}"));
        state = Forwarding::build(&cfg, &obs, n + 1, Some(&state));
    }
    let live = state.backends.iter().filter(|b| !b.retired).count();
    assert_eq!(live, 2, "the rule's probe state, two backends");
    assert!(state.backends.len() <= 6, "{} slots", state.backends.len());
}

#[test]
fn an_instance_is_down_when_any_of_its_addresses_is_and_pools_of_one_instance_set_agree() {
    let cfg = crate::lb::testdata::two_nic_config("", false);
    let (u, t) = (0, 1);
    let instance = |f: &Forwarding, k: &FlowKey, via| {
        f.backends[lookup(f, k, Some(via)).unwrap().backend as usize]
            .instance
            .clone()
    };
    let check = |f: &Forwarding| {
        for i in 0..500u16 {
            let k: FlowKey = format!(
                "tcp 10.10.0.{}:{} 10.20.0.50:{}",
                // Clients, not the frontend 10.10.0.100 (a martian source).
                150 + i % 100,
                1024 + i,
                80 + i % 7
            )
            .parse()
            .unwrap();
            assert_eq!(
                instance(f, &k, u),
                instance(f, &k.reversed(), t),
                "both directions, one NVA: {k}"
            );
        }
    };
    let all_up = Forwarding::build(&cfg, &Observations::default(), 1, None);
    check(&all_up);
    // nva2's trusted NIC fails its probe: the whole instance is out, on both sides.
    let obs = Observations {
        down: [addr("10.20.0.12")].into_iter().collect(),
        ..Default::default()
    };
    let one_down = Forwarding::build(&cfg, &obs, 2, Some(&all_up));
    assert!(one_down
        .backends
        .iter()
        .filter(|b| b.instance == "nva2")
        .all(|b| !b.healthy));
    check(&one_down);
    // Flows of the other NVAs stay put, but for Maglev's small disruption (about 1 %).
    let (mut others, mut moved) = (0, 0);
    for i in 0..2000u16 {
        let k: FlowKey = format!("udp 10.10.0.9:{} 10.20.0.50:53", 1024 + i)
            .parse()
            .unwrap();
        let before = instance(&all_up, &k, u);
        if before != "nva2" {
            others += 1;
            moved += usize::from(instance(&one_down, &k, u) != before);
        }
    }
    assert!(
        moved * 50 <= others,
        "{moved} of {others} flows of healthy NVAs moved"
    );
}

#[test]
fn transit_flows_need_a_frontend_named_as_next_hop() {
    let cfg = config(
        r#"{ address = "10.0.0.11" }, { address = "10.0.0.12" }"#,
        HA,
    );
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    let key: FlowKey = "tcp 10.1.0.5:1000 10.2.0.7:22".parse().unwrap();
    assert_eq!(lookup(&fwd, &key, None), Err(DropReason::NoFrontend));
    let fe = fwd.frontend_named("fe1").unwrap();
    // The appliance's own address is the kernel twin's, whatever frame carries it: no rule's.
    let own: FlowKey = "tcp 10.0.0.50:1000 10.0.0.2:22".parse().unwrap();
    assert_eq!(lookup(&fwd, &own, Some(fe)), Err(DropReason::NoFrontend));
    assert_eq!(fwd.frontend_named("ilb/fe1"), Some(fe));
    assert_eq!(fwd.frontend_named("10.0.0.100"), Some(fe));
    // Both directions of each transit flow pick one backend (over many flows: with two
    // backends, one flow would agree half the time by chance), and the flows use both.
    let mut used = std::collections::BTreeSet::new();
    for port in 1000..1100u16 {
        let key: FlowKey = format!("tcp 10.1.0.5:{port} 10.2.0.7:22").parse().unwrap();
        let there = lookup(&fwd, &key, Some(fe)).unwrap();
        let back = lookup(&fwd, &key.reversed(), Some(fe)).unwrap();
        assert_eq!(there.backend, back.backend, "{key:?}");
        used.insert(there.backend);
    }
    assert_eq!(used.len(), 2, "both backends take transit flows");
}

/// One pool behind two rules with different probes (a public load balancer's HTTPS and SSH).
const TWO_PROBES: &str = r#"
[[interface]]
name = "lan"
port = 0
address = "10.0.0.2/24"
[[load_balancer]]
name = "plb"
kind = "public"
  [[load_balancer.frontend]]
  name = "www"
  address = "10.0.0.100"
  [[load_balancer.backend_pool]]
  name = "web"
  backends = [{ address = "10.0.0.11" }, { address = "10.0.0.12" }, { address = "10.0.0.13" }]
  [[load_balancer.probe]]
  name = "https"
  protocol = "tcp"
  port = 443
  [[load_balancer.probe]]
  name = "ssh"
  protocol = "tcp"
  port = 22
  [[load_balancer.rule]]
  name = "https"
  frontend = "www"
  backend_pool = "web"
  probe = "https"
  protocol = "tcp"
  frontend_port = 443
  backend_port = 443
  [[load_balancer.rule]]
  name = "ssh"
  frontend = "www"
  backend_pool = "web"
  probe = "ssh"
  protocol = "tcp"
  frontend_port = 22
  backend_port = 22
"#;

/// The backends new flows to `port` reach, over many clients.
fn reached(fwd: &Forwarding, port: u16) -> std::collections::BTreeSet<IpAddr> {
    (0..300u16)
        .map(|i| {
            let key: FlowKey = format!("tcp 192.0.2.{}:{} 10.0.0.100:{port}", i % 250, 1024 + i)
                .parse()
                .unwrap();
            let d = lookup(fwd, &key, None).unwrap();
            fwd.backends[d.backend as usize].address
        })
        .collect()
}

#[test]
fn health_is_per_rule_a_backend_down_for_one_probe_serves_the_other_rule() {
    let cfg = Config::from_toml(TWO_PROBES, "test").unwrap();
    let b1 = addr("10.0.0.11");
    let mut obs = Observations::default();
    obs.down_probes
        .insert((b1, "plb".to_owned(), "https".to_owned()));
    let fwd = Forwarding::build(&cfg, &obs, 1, None);
    assert!(!reached(&fwd, 443).contains(&b1), "down for the HTTPS rule");
    assert_eq!(reached(&fwd, 22).len(), 3, "still up for the SSH rule");
    assert_eq!(
        fwd.pools.len(),
        2,
        "the pool has one state per probe its rules use"
    );

    // `--down` (the address down for every rule) takes it out of both.
    let mut obs = Observations::default();
    obs.down.insert(b1);
    let fwd = Forwarding::build(&cfg, &obs, 1, None);
    assert!(!reached(&fwd, 443).contains(&b1) && !reached(&fwd, 22).contains(&b1));
}

/// Frontend names are unique only within a load balancer: a bare name two of them use names
/// none (`haports lookup --via` says so), `LB/NAME` names each.
#[test]
fn a_frontend_name_two_load_balancers_use_needs_its_load_balancer() {
    let second = r#"
[[load_balancer]]
name = "elb"
kind = "internal"
  [[load_balancer.frontend]]
  name = "fe1"
  address = "10.0.0.101"
  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [{ address = "10.0.0.13" }]
  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe1"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
"#;
    let cfg = config(r#"{ address = "10.0.0.11" }"#, &format!("{HA}{second}"));
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    assert_eq!(fwd.frontend_named("fe1"), None, "ambiguous");
    let (i, e) = (fwd.frontend_named("ilb/fe1"), fwd.frontend_named("elb/fe1"));
    assert!(i.is_some() && e.is_some() && i != e);
    assert_eq!(fwd.frontend_named("10.0.0.101"), e);
}
