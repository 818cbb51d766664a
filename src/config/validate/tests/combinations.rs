//! Tests of the checks over combinations of rules, frontends and load balancers (the seed's
//! rules 1 and 3-6, and the rule pairs of `rules`), each over a small TOML config.

use super::*;

/// One `[[load_balancer]]`: `frontends` as (name, address), `pools` as (name, backend
/// addresses), `rules` as (name, frontend, pool, "PROTOCOL FRONTEND_PORT BACKEND_PORT",
/// floating_ip).
fn lb_toml(
    name: &str,
    kind: &str,
    frontends: &[(&str, &str)],
    pools: &[(&str, &[&str])],
    rules: &[(&str, &str, &str, &str, bool)],
) -> String {
    let mut t = format!("[[load_balancer]]\nname = \"{name}\"\nkind = \"{kind}\"\n");
    for (fe, addr) in frontends {
        t += &format!("[[load_balancer.frontend]]\nname = \"{fe}\"\naddress = \"{addr}\"\n");
    }
    for (pool, backends) in pools {
        let list: Vec<String> = backends
            .iter()
            .map(|b| format!("{{ address = \"{b}\" }}"))
            .collect();
        t += &format!(
            "[[load_balancer.backend_pool]]\nname = \"{pool}\"\nbackends = [{}]\n",
            list.join(", ")
        );
    }
    for (rule, fe, pool, ports, floating) in rules {
        let mut w = ports.split(' ');
        let (protocol, fp, bp) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
        t += &format!(
            "[[load_balancer.rule]]\nname = \"{rule}\"\nfrontend = \"{fe}\"\n\
             backend_pool = \"{pool}\"\nprotocol = \"{protocol}\"\nfrontend_port = {fp}\n\
             backend_port = {bp}\nfloating_ip = {floating}\n"
        );
    }
    t
}

fn with_lan(lbs: &[String]) -> Config {
    let lan =
        "[[interface]]\nname = \"lan\"\nport = 0\naddress = [\"10.0.0.2/24\", \"fd00::2/64\"]\n";
    parse(&format!("{lan}{}", lbs.concat()))
}

const NVAS: [&str; 2] = ["10.0.0.11", "10.0.0.12"];

fn keys_tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, t)| (k.to_string(), t.to_string()))
        .collect()
}

#[test]
fn seed_rule_1_ha_ports_only_on_an_internal_load_balancer() {
    let cfg = with_lan(&[lb_toml(
        "plb",
        "public",
        &[("fe1", "10.0.0.100")],
        &[("p", &NVAS)],
        &[("ha", "fe1", "p", "all 0 0", false)],
    )]);
    only_tagged(
        &cfg,
        "load_balancer[plb].rule[ha]",
        "seed rule 1",
        "available only on an internal load balancer, and load_balancer[plb] is public",
    );
}

#[test]
fn seed_rule_3_a_non_floating_ha_ports_rule_is_alone_on_its_load_balancer() {
    let two_frontends = [("fe1", "10.0.0.100"), ("fe2", "10.0.0.101")];
    // Another rule, on another frontend and pool.
    let cfg = with_lan(&[lb_toml(
        "ilb",
        "internal",
        &two_frontends,
        &[("p", &NVAS), ("q", &["10.0.0.21"])],
        &[
            ("ha", "fe1", "p", "all 0 0", false),
            ("web", "fe2", "q", "tcp 80 80", true),
        ],
    )]);
    only_tagged(
        &cfg,
        "load_balancer[ilb].rule[ha]",
        "seed rule 3",
        "but rule `web` is on load_balancer[ilb] too",
    );
    // On the same frontend and backends it breaks rule 6 as well.
    let cfg = with_lan(&[lb_toml(
        "ilb",
        "internal",
        &two_frontends,
        &[("p", &NVAS)],
        &[
            ("ha", "fe1", "p", "all 0 0", false),
            ("web", "fe1", "p", "tcp 80 80", true),
        ],
    )]);
    only_tagged(
        &cfg,
        "load_balancer[ilb].rule[ha]",
        "seed rules 3 and 6",
        "on the same frontend `fe1` and backend 10.0.0.11",
    );
}

#[test]
fn seed_rule_3_no_other_internal_load_balancer_but_one_public_on_its_backends() {
    let ilb = lb_toml(
        "ilb",
        "internal",
        &[("fe1", "10.0.0.100")],
        &[("p", &NVAS)],
        &[("ha", "fe1", "p", "all 0 0", false)],
    );
    let other = |name: &str, kind: &str, addr: &str, backends: &[&str]| {
        lb_toml(
            name,
            kind,
            &[("web", addr)],
            &[("q", backends)],
            &[("web", "web", "q", "tcp 80 80", false)],
        )
    };
    let ilb2 = other("ilb2", "internal", "10.0.0.101", &["10.0.0.12"]);
    let plb1 = other("plb1", "public", "10.0.0.201", &["10.0.0.11"]);
    let plb2 = other("plb2", "public", "10.0.0.202", &["10.0.0.12"]);
    let apart = other("ilb3", "internal", "10.0.0.103", &["10.0.0.31"]);

    assert_eq!(found(&with_lan(&[ilb.clone(), plb1.clone()])), vec![]);
    assert_eq!(found(&with_lan(&[ilb.clone(), apart])), vec![]);
    assert_eq!(
        found(&with_lan(&[ilb.clone(), ilb2])),
        keys_tags(&[("load_balancer[ilb].rule[ha]", "seed rule 3")])
    );
    assert_eq!(
        found(&with_lan(&[ilb.clone(), plb1, plb2])),
        keys_tags(&[("load_balancer[ilb]", "seed rule 3")])
    );

    // The same instance under another address is the same backend.
    let mut cfg = with_lan(&[ilb, other("ilb2", "internal", "10.0.0.101", &["10.0.0.13"])]);
    cfg.load_balancer[0].backend_pool[0].backends[0].instance = Some("nva1".into());
    cfg.load_balancer[1].backend_pool[0].backends[0].instance = Some("nva1".into());
    only_tagged(
        &cfg,
        "load_balancer[ilb].rule[ha]",
        "seed rule 3",
        "also has instance `nva1` (10.0.0.11 and 10.0.0.13)",
    );
}

#[test]
fn seed_rule_4_floating_ha_ports_takes_floating_rules_and_one_public_load_balancer() {
    let frontends = [("fe1", "10.0.0.100"), ("fe2", "10.0.0.101")];
    // Each public load balancer sends port 80 to a backend port of its own.
    let plb = |name: &str, addr: &str, backend_port: u16| {
        let ports = format!("tcp 80 {backend_port}");
        lb_toml(
            name,
            "public",
            &[("web", addr)],
            &[("q", &NVAS)],
            &[("web", "web", "q", &ports, false)],
        )
    };
    let ilb = |second_floating: bool| {
        lb_toml(
            "ilb",
            "internal",
            &frontends,
            &[("p", &NVAS)],
            &[
                ("ha", "fe1", "p", "all 0 0", true),
                ("web", "fe2", "p", "tcp 443 443", true),
                ("ha2", "fe2", "p", "all 0 0", second_floating),
            ],
        )
    };
    assert_eq!(
        found(&with_lan(&[ilb(true), plb("plb", "10.0.0.200", 8080)])),
        vec![]
    );
    // Non-floating, `ha2` also breaks rule 3 (alone on its load balancer) and 6 (`web`
    // shares its frontend and backends).
    assert_eq!(
        found(&with_lan(&[ilb(false), plb("plb", "10.0.0.200", 8080)])),
        keys_tags(&[
            ("load_balancer[ilb].rule[ha2]", "seed rules 3 and 6"),
            (
                "load_balancer[ilb].rule[ha2].floating_ip",
                "seed rules 4 and 5"
            )
        ])
    );
    assert_eq!(
        found(&with_lan(&[
            ilb(true),
            plb("plb", "10.0.0.200", 8080),
            plb("plb2", "10.0.0.201", 8081)
        ])),
        keys_tags(&[("load_balancer[ilb]", "seed rule 4")])
    );
    // Two HA-ports rules over pools of their own: each may have a public load balancer.
    let apart = lb_toml(
        "ilb",
        "internal",
        &frontends,
        &[("p1", &["10.0.0.11"]), ("p2", &["10.0.0.12"])],
        &[
            ("ha1", "fe1", "p1", "all 0 0", true),
            ("ha2", "fe2", "p2", "all 0 0", true),
        ],
    );
    let public = |name: &str, addr: &str, backend: &str, ports: &str| {
        lb_toml(
            name,
            "public",
            &[("web", addr)],
            &[("q", &[backend])],
            &[("web", "web", "q", ports, false)],
        )
    };
    let plb1 = public("plb1", "10.0.0.201", "10.0.0.11", "tcp 80 80");
    let plb2 = public("plb2", "10.0.0.202", "10.0.0.12", "tcp 80 80");
    let cfg = with_lan(&[apart.clone(), plb1.clone(), plb2]);
    assert_eq!(found(&cfg), vec![]);
    let plb3 = public("plb3", "10.0.0.203", "10.0.0.11", "tcp 80 8080");
    let cfg = with_lan(&[apart, plb1, plb3]);
    only_tagged(
        &cfg,
        "load_balancer[ilb]",
        "seed rule 4",
        "HA-ports rules (`ha1`), but 2 public load balancers do",
    );
    // A non-floating HA-ports rule on another internal load balancer, on these backends.
    let cfg = with_lan(&[
        ilb(true),
        lb_toml(
            "ilb2",
            "internal",
            &[("fe9", "10.0.0.109")],
            &[("p", &NVAS)],
            &[("ha", "fe9", "p", "all 0 0", false)],
        ),
    ]);
    only_tagged(
        &cfg,
        "load_balancer[ilb2].rule[ha]",
        "seed rules 3 and 4",
        "behind a floating HA-ports rule",
    );
}

#[test]
fn seed_rule_5_several_ha_ports_frontends_each_their_own_and_all_floating() {
    let frontends = [("fe1", "10.0.0.100"), ("fe2", "10.0.0.101")];
    let ilb = |rules: &[(&str, &str, &str, &str, bool)]| {
        with_lan(&[lb_toml(
            "ilb",
            "internal",
            &frontends,
            &[("p", &NVAS)],
            rules,
        )])
    };
    let both_floating = ilb(&[
        ("ha1", "fe1", "p", "all 0 0", true),
        ("ha2", "fe2", "p", "all 0 0", true),
    ]);
    assert_eq!(found(&both_floating), vec![]);
    assert_eq!(
        found(&ilb(&[
            ("ha1", "fe1", "p", "all 0 0", false),
            ("ha2", "fe2", "p", "all 0 0", false),
        ])),
        keys_tags(&[
            ("load_balancer[ilb].rule[ha1].floating_ip", "seed rule 5"),
            ("load_balancer[ilb].rule[ha2].floating_ip", "seed rule 5"),
        ])
    );
    assert_eq!(
        found(&ilb(&[
            ("ha1", "fe1", "p", "all 0 0", true),
            ("ha2", "fe1", "p", "all 0 0", true),
        ])),
        keys_tags(&[("load_balancer[ilb].rule[ha2].frontend", "seed rule 5")])
    );
    // The same two frontends on two internal load balancers over the same backends: not the
    // seed's several HA-ports configurations (one internal load balancer's); over backends
    // of their own, two separate ones.
    let two_ilbs = |second: &[&str]| {
        with_lan(&[
            lb_toml(
                "ilb",
                "internal",
                &frontends[..1],
                &[("p", &NVAS)],
                &[("ha1", "fe1", "p", "all 0 0", true)],
            ),
            lb_toml(
                "ilb2",
                "internal",
                &frontends[1..],
                &[("q", second)],
                &[("ha2", "fe2", "q", "all 0 0", true)],
            ),
        ])
    };
    only_tagged(
        &two_ilbs(&["10.0.0.12", "10.0.0.13"]),
        "load_balancer[ilb2].rule[ha2]",
        "seed rule 5",
        "`ha1` of load_balancer[ilb] and this one share backend 10.0.0.12",
    );
    assert_eq!(found(&two_ilbs(&["10.0.0.21", "10.0.0.22"])), vec![]);
}

#[test]
fn seed_rule_6_ha_ports_and_another_rule_on_one_frontend_and_backends_both_floating() {
    let ilb = |web_floating: bool, pool: &str| {
        with_lan(&[lb_toml(
            "ilb",
            "internal",
            &[("fe1", "10.0.0.100")],
            &[("p", &NVAS), ("q", &["10.0.0.21"])],
            &[
                ("ha", "fe1", "p", "all 0 0", true),
                ("web", "fe1", pool, "tcp 80 80", web_floating),
            ],
        )])
    };
    assert_eq!(found(&ilb(true, "p")), vec![]);
    assert_eq!(found(&ilb(false, "q")), vec![], "other backends");
    only_tagged(
        &ilb(false, "p"),
        "load_balancer[ilb].rule[web].floating_ip",
        "seed rule 6",
        "shares frontend `fe1` and backend 10.0.0.11 with floating HA-ports rule `ha`",
    );
    // Another NIC of an appliance behind the HA-ports rule is another ipconfiguration: the
    // rule speaks of those, not of whole instances.
    let mut two_nics = ilb(false, "q");
    let nics = ["10.0.0.11", "10.0.0.21"].map(|a| a.parse::<std::net::IpAddr>().unwrap());
    let pools = &mut two_nics.load_balancer[0].backend_pool;
    for b in pools.iter_mut().flat_map(|p| p.backends.iter_mut()) {
        if nics.contains(&b.address) {
            b.instance = Some("nva-a".into());
        }
    }
    assert_eq!(found(&two_nics), vec![]);
}

#[test]
fn one_rule_per_frontend_protocol_and_port() {
    let cfg = with_lan(&[lb_toml(
        "plb",
        "public",
        &[("fe1", "10.0.0.100")],
        &[("p", &NVAS)],
        &[
            ("a", "fe1", "p", "tcp 80 8080", false),
            ("b", "fe1", "p", "udp 80 8080", false),
            ("c", "fe1", "p", "tcp 80 8081", false),
        ],
    )]);
    only_tagged(
        &cfg,
        "load_balancer[plb].rule[c].frontend_port",
        "limitation: one rule per frontend port",
        "rules `a` and `c` both take tcp port 80 of frontend `fe1`",
    );
}

#[test]
fn backend_port_reuse_needs_floating_ip() {
    let plb = |floating: bool, second_frontend: &str, second_port: &str| {
        with_lan(&[lb_toml(
            "plb",
            "public",
            &[("fe1", "10.0.0.100"), ("fe2", "10.0.0.101")],
            &[("p", &NVAS), ("q", &["10.0.0.12", "10.0.0.13"])],
            &[
                ("a", "fe1", "p", "tcp 80 8080", floating),
                ("b", second_frontend, "q", second_port, floating),
            ],
        )])
    };
    only_tagged(
        &plb(false, "fe2", "tcp 80 8080"),
        "load_balancer[plb].rule[b]",
        "limitation: backend port reuse needs floating IP",
        "sends tcp to port 8080 of backend 10.0.0.12, as load_balancer[plb].rule[a] does, \
         from frontend 10.0.0.101:80 here and 10.0.0.100:80 there",
    );
    // Another port of the same frontend is as ambiguous.
    only_tagged(
        &plb(false, "fe1", "tcp 8080 8080"),
        "load_balancer[plb].rule[b]",
        "limitation: backend port reuse needs floating IP",
        "from frontend 10.0.0.100:8080 here and 10.0.0.100:80 there",
    );
    // Floating, both rules deliver to backend port 8080 (their frontend port) from two
    // frontends: each backend answers from the frontend address itself.
    let floating = with_lan(&[lb_toml(
        "plb",
        "public",
        &[("fe1", "10.0.0.100"), ("fe2", "10.0.0.101")],
        &[("p", &NVAS), ("q", &["10.0.0.12", "10.0.0.13"])],
        &[
            ("a", "fe1", "p", "tcp 8080 8080", true),
            ("b", "fe2", "q", "tcp 8080 8080", true),
        ],
    )]);
    assert_eq!(found(&floating), vec![]);
    assert_eq!(found(&plb(false, "fe2", "udp 80 8080")), vec![]);
    assert_eq!(found(&plb(false, "fe2", "tcp 80 8081")), vec![]);
}

#[test]
fn nat_keeps_the_address_family() {
    let rule = |floating| {
        with_lan(&[lb_toml(
            "ilb",
            "internal",
            &[("fe1", "10.0.0.100")],
            &[("p", &["10.0.0.11", "fd00::11", "fd00::12"])],
            &[("ha", "fe1", "p", "all 0 0", floating)],
        )])
    };
    only_tagged(
        &rule(false),
        "load_balancer[ilb].rule[ha]",
        "limitation: NAT keeps the address family",
        "frontend `fe1` (10.0.0.100, IPv4) to its backends, but backend_pool `p` has IPv6 \
         backend fd00::11 and 1 more",
    );
    assert_eq!(found(&rule(true)), vec![]);
}

#[test]
fn floating_ip_keeps_the_port() {
    let plb = |ports: &str, floating: bool| {
        with_lan(&[lb_toml(
            "plb",
            "public",
            &[("fe1", "10.0.0.100")],
            &[("p", &NVAS)],
            &[("a", "fe1", "p", ports, floating)],
        )])
    };
    only_tagged(
        &plb("tcp 443 8443", true),
        "load_balancer[plb].rule[a].backend_port",
        "limitation: floating IP keeps the port",
        "reaches the backend unchanged, at port 443, so backend_port 8443 cannot apply",
    );
    assert_eq!(found(&plb("tcp 443 443", true)), vec![]);
    assert_eq!(found(&plb("tcp 443 8443", false)), vec![]);
}

/// An internal HA-ports NAT rule and a public NAT port rule on one backend: with one worker
/// each flow's frontend is remembered, with several the rules alone must tell.
#[test]
fn nat_replies_are_mapped_by_the_rules_on_any_worker() {
    let ilb = lb_toml(
        "ilb",
        "internal",
        &[("fe1", "10.0.0.100")],
        &[("p", &NVAS)],
        &[("ha", "fe1", "p", "all 0 0", false)],
    );
    let plb = |ports: &str, floating: bool, backends: &[&str]| {
        lb_toml(
            "plb",
            "public",
            &[("web", "10.0.0.201")],
            &[("q", backends)],
            &[("web", "web", "q", ports, floating)],
        )
    };
    let with_workers = |lbs: &[String], workers: u32| {
        let mut cfg = with_lan(lbs);
        cfg.dataplane.workers = workers;
        cfg.dpdk.eal_args = vec!["-l".into(), "0-4".into()];
        cfg
    };
    let shared = plb("tcp 443 8443", false, &["10.0.0.11"]);
    assert_eq!(
        found(&with_workers(&[ilb.clone(), shared.clone()], 1)),
        vec![]
    );
    only_tagged(
        &with_workers(&[ilb.clone(), shared.clone()], 2),
        "load_balancer[plb].rule[web]",
        "limitation: NAT replies mapped by the rules on any worker",
        "backend 10.0.0.11 answers this rule from tcp port 8443 and the HA-ports rule \
         load_balancer[ilb].rule[ha] from any port; with several workers",
    );
    // Several instances, one worker each: a reply may reach another instance just the same
    // (and every NAT rule is warned of, as its replies come to one instance).
    let mut instances = with_workers(&[ilb.clone(), shared.clone()], 1);
    instances.announce = Some(crate::config::Announce::default());
    let replies = "limitation: NAT replies mapped by the rules on any worker";
    let one_instance = "limitation: NAT replies come to one instance";
    assert_eq!(
        found(&instances),
        vec![
            ("load_balancer[plb].rule[web]".into(), replies.into()),
            ("load_balancer[ilb].rule[ha]".into(), one_instance.into()),
            ("load_balancer[plb].rule[web]".into(), one_instance.into()),
        ]
    );
    // Floating, or on other backends, the public rule leaves the replies unambiguous.
    let floating = plb("tcp 443 443", true, &["10.0.0.11"]);
    assert_eq!(found(&with_workers(&[ilb.clone(), floating], 2)), vec![]);
    let apart = plb("tcp 443 8443", false, &["10.0.0.31"]);
    assert_eq!(found(&with_workers(&[ilb, apart], 2)), vec![]);
}

/// A flow through two frontends' HA-ports rules over the same backends (a two-NIC
/// appliance's two sides) has one entry and one lifetime: rules with different idle
/// timeouts are warned of, as its entry would live by whichever carried its last packet.
#[test]
fn ha_ports_rules_on_shared_backends_time_out_alike() {
    let frontends = [("fe1", "10.0.0.100"), ("fe2", "10.0.0.101")];
    let ilb = |pools: &[(&str, &[&str])], second_pool: &str| {
        lb_toml(
            "ilb",
            "internal",
            &frontends,
            pools,
            &[
                ("u", "fe1", "p", "all 0 0", true),
                ("t", "fe2", second_pool, "all 0 0", true),
            ],
        )
    };
    let timeouts = |text: String, u: u32, t: u32| {
        let text = text.replacen(
            "floating_ip = true\n",
            &format!("floating_ip = true\nidle_timeout_s = {u}\n"),
            1,
        );
        let at = text.rfind("floating_ip = true\n").unwrap();
        let (head, tail) = text.split_at(at);
        let tail = tail.replacen(
            "floating_ip = true\n",
            &format!("floating_ip = true\nidle_timeout_s = {t}\n"),
            1,
        );
        with_lan(&[format!("{head}{tail}")])
    };
    let shared = ilb(&[("p", &NVAS)], "p");
    assert_eq!(found(&timeouts(shared.clone(), 300, 300)), vec![]);
    let cfg = timeouts(shared, 3600, 60);
    let problems = validate(&cfg);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].severity, Severity::Warning);
    assert_eq!(problems[0].key, "load_balancer[ilb].rule[t].idle_timeout_s");
    assert_eq!(
        problems[0].tag,
        "limitation: HA-ports rules on shared backends time out alike"
    );
    assert!(
        problems[0]
            .message
            .starts_with("60 s here but 3600 s on load_balancer[ilb].rule[u]"),
        "{problems:#?}"
    );
    // Over backends of their own, each rule's flows are its own.
    let apart = ilb(&[("p", &["10.0.0.11"]), ("q", &["10.0.0.12"])], "q");
    assert_eq!(found(&timeouts(apart, 3600, 60)), vec![]);
}
