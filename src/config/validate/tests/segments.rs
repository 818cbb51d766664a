//! Interfaces' subnets and routes, a backend's address against the frontends' and its MAC
//! across pools, an HTTP probe's path and the metrics port.

use super::*;

#[test]
fn an_interface_address_is_no_network_or_broadcast_address() {
    for (address, which) in [("10.0.0.255/24", "broadcast"), ("10.0.0.0/24", "network")] {
        let mut cfg = base();
        cfg.interface[0].address = vec![address.parse().unwrap()];
        only_tagged(
            &cfg,
            "interface[lan].address",
            "limitation: unicast addresses only",
            &format!("the {which} address of its subnet 10.0.0.0/24"),
        );
    }
    // A /31 has neither: both its addresses are hosts'.
    let mut cfg = base();
    cfg.interface[0]
        .address
        .push("10.5.0.0/31".parse().unwrap());
    assert_eq!(validate(&cfg), vec![]);
}

#[test]
fn two_interfaces_take_no_common_subnet() {
    let mut cfg = base();
    let mut wan = cfg.interface[0].clone();
    (wan.name, wan.port) = ("wan".into(), 1);
    wan.address = vec!["10.0.0.3/25".parse().unwrap()];
    cfg.interface.push(wan);
    only_tagged(
        &cfg,
        "interface[wan].address",
        "limitation: interface subnets apart",
        "10.0.0.3/25 overlaps 10.0.0.2/24 of interface[lan]",
    );
    // The same address on both: as much an overlap.
    cfg.interface[1].address = vec!["10.0.0.2/24".parse().unwrap()];
    only_problem(&cfg, "interface[wan].address", "overlaps 10.0.0.2/24");
    // Subnets apart: fine.
    cfg.interface[1].address = vec!["10.1.0.2/24".parse().unwrap()];
    assert_eq!(validate(&cfg), vec![]);
}

fn with_route(to: &str, via: &str) -> Config {
    let mut cfg = base();
    cfg.interface[0].routes.push(Route {
        to: to.parse().unwrap(),
        via: via.parse().unwrap(),
    });
    cfg
}

#[test]
fn routes_go_to_networks_through_a_router() {
    let tag = "limitation: routes to networks through a router";
    assert_eq!(validate(&with_route("10.9.0.0/16", "10.0.0.1")), vec![]);
    only_tagged(
        &with_route("10.9.0.5/16", "10.0.0.1"),
        "interface[lan].routes[10.9.0.5/16].to",
        tag,
        "write the network, 10.9.0.0/16",
    );
    // An IPv6 next hop on the interface's IPv6 subnet, for an IPv4 destination.
    let mut cfg = with_route("10.9.0.0/16", "fd00::1");
    cfg.interface[0].address.push("fd00::2/64".parse().unwrap());
    only_tagged(
        &cfg,
        "interface[lan].routes[10.9.0.0/16].via",
        tag,
        "not of the family of 10.9.0.0/16",
    );
    only_tagged(
        &with_route("10.9.0.0/16", "10.0.0.100"),
        "interface[lan].routes[10.9.0.0/16].via",
        tag,
        "the address of frontend `fe1`",
    );
    only_tagged(
        &with_route("10.9.0.0/16", "10.0.0.2"),
        "interface[lan].routes[10.9.0.0/16].via",
        "limitation: not the appliance's own address",
        "own address of interface[lan]",
    );
    only_tagged(
        &with_route("10.9.0.0/16", "10.0.0.255"),
        "interface[lan].routes[10.9.0.0/16].via",
        "limitation: unicast addresses only",
        "broadcast address",
    );
}

#[test]
fn a_network_takes_one_route() {
    let tag = "limitation: routes to networks through a router";
    let second = "a second route to 10.9.0.0/16, after interface[lan].routes[10.9.0.0/16]";
    // Through two routers of one interface.
    let mut cfg = with_route("10.9.0.0/16", "10.0.0.1");
    let again = Route {
        to: "10.9.0.0/16".parse().unwrap(),
        via: "10.0.0.3".parse().unwrap(),
    };
    cfg.interface[0].routes.push(again);
    only_tagged(&cfg, "interface[lan].routes[10.9.0.0/16].to", tag, second);
    // Through two interfaces.
    let mut cfg = with_route("10.9.0.0/16", "10.0.0.1");
    let mut wan = cfg.interface[0].clone();
    (wan.name, wan.port) = ("wan".into(), 1);
    wan.address = vec!["10.1.0.2/24".parse().unwrap()];
    wan.routes = vec![Route {
        to: again.to,
        via: "10.1.0.1".parse().unwrap(),
    }];
    cfg.interface.push(wan);
    only_tagged(&cfg, "interface[wan].routes[10.9.0.0/16].to", tag, second);
    // Its other routes to other networks, and a longer prefix of the same: fine.
    cfg.interface[1].routes[0].to = "10.9.0.0/24".parse().unwrap();
    cfg.interface[1].routes.push(Route {
        to: "10.8.0.0/16".parse().unwrap(),
        via: "10.1.0.1".parse().unwrap(),
    });
    assert_eq!(validate(&cfg), vec![]);
    // IPv6, the same network once cut to its prefix.
    let mut cfg = with_route("fd09::1/48", "fd00::1");
    cfg.interface[0].address.push("fd00::2/64".parse().unwrap());
    cfg.interface[0].routes.push(Route {
        to: "fd09::/48".parse().unwrap(),
        via: "fd00::3".parse().unwrap(),
    });
    only_tagged(
        &cfg,
        "interface[lan].routes[fd09::/48].to",
        tag,
        "a second route to fd09::/48, after interface[lan].routes[fd09::1/48]",
    );
}

#[test]
fn a_backend_takes_no_frontends_address() {
    let mut cfg = base();
    let mut fe2 = lb(&mut cfg).frontend[0].clone();
    (fe2.name, fe2.address) = ("fe2".into(), "10.0.0.50".parse().unwrap());
    lb(&mut cfg).frontend.push(fe2);
    lb(&mut cfg).backend_pool[0].backends[1] = backend("10.0.0.50");
    only_tagged(
        &cfg,
        "load_balancer[ilb].backend_pool[nvas].backends[10.0.0.50].address",
        "limitation: not the appliance's own address",
        "the address of frontend `fe2`",
    );
}

#[test]
fn a_backend_has_one_mac_in_every_pool() {
    let mac = |m: &str| Some(m.parse().unwrap());
    let mut cfg = base();
    let mut other = lb(&mut cfg).backend_pool[0].clone();
    other.name = "other".into();
    other.backends[0].mac = mac("02:00:00:00:00:11");
    lb(&mut cfg).backend_pool.push(other);
    let mut rule = lb(&mut cfg).rule[0].clone();
    (rule.name, rule.backend_pool) = ("web".into(), "other".into());
    (rule.protocol, rule.frontend_port, rule.backend_port) = (RuleProtocol::Tcp, 80, 80);
    rule.floating_ip = true;
    let mut fe2 = lb(&mut cfg).frontend[0].clone();
    (fe2.name, fe2.address) = ("fe2".into(), "10.0.0.50".parse().unwrap());
    rule.frontend = "fe2".into();
    lb(&mut cfg).frontend.push(fe2);
    lb(&mut cfg).rule.push(rule);
    lb(&mut cfg).rule[0].floating_ip = true;
    // One given, one resolved: the given one is the backend's.
    assert_eq!(validate(&cfg), vec![]);
    lb(&mut cfg).backend_pool[0].backends[0].mac = mac("02:00:00:00:00:99");
    only_tagged(
        &cfg,
        "load_balancer[ilb].backend_pool[other].backends[10.0.0.11].mac",
        "limitation: one MAC per backend",
        "has mac 02:00:00:00:00:11 here but 02:00:00:00:00:99 in load_balancer[ilb].backend_pool[nvas]",
    );
    // The same MAC in both: fine.
    lb(&mut cfg).backend_pool[0].backends[0].mac = mac("02:00:00:00:00:11");
    assert_eq!(validate(&cfg), vec![]);
}

/// VXLAN pools of different VNIs are different overlays: the same inner address may be two
/// hosts there, with their own MACs.
#[test]
fn one_address_in_two_overlays_may_have_two_macs() {
    let text = crate::config::testdata::MINIMAL.replace(
        "address = \"10.0.0.2/24\"",
        "address = \"10.0.0.2/24\"\nroutes = [{ to = \"10.9.0.0/24\", via = \"10.0.0.1\" }]",
    );
    let mut cfg = parse(&text);
    let vxlan = |name: &str, vni, mac: &str| {
        let mut pool = lb(&mut base()).backend_pool[0].clone();
        pool.name = name.into();
        (pool.encap, pool.vni) = (Some(Encap::Vxlan), Some(vni));
        pool.backends = vec![Backend {
            mac: Some(mac.parse().unwrap()),
            ..backend("10.9.0.11")
        }];
        pool
    };
    lb(&mut cfg)
        .backend_pool
        .push(vxlan("a", 100, "02:00:00:00:0a:11"));
    lb(&mut cfg)
        .backend_pool
        .push(vxlan("b", 200, "02:00:00:00:0b:11"));
    let tag = "limitation: one MAC per backend";
    assert!(
        found(&cfg).iter().all(|(_, t)| t != tag),
        "{:#?}",
        validate(&cfg)
    );
    // The same VNI: one host, one MAC.
    lb(&mut cfg).backend_pool[2].vni = Some(100);
    assert!(
        found(&cfg).iter().any(|(_, t)| t == tag),
        "{:#?}",
        validate(&cfg)
    );
}

#[test]
fn an_http_probe_path_fits_the_request_line() {
    for path in ["/health check", "/x\r\nX-Evil: 1", "/tab\there"] {
        let mut cfg = base();
        lb(&mut cfg).probe[0].protocol = ProbeProtocol::Http;
        lb(&mut cfg).probe[0].path = Some(path.into());
        only_tagged(
            &cfg,
            "load_balancer[ilb].probe[tcp22].path",
            "limitation: http probe path",
            "percent-encode it",
        );
    }
    let mut cfg = base();
    lb(&mut cfg).probe[0].protocol = ProbeProtocol::Http;
    lb(&mut cfg).probe[0].path = Some("/health%20check?full=1".into());
    assert_eq!(validate(&cfg), vec![]);
}

#[test]
fn metrics_listen_on_a_known_port() {
    let mut cfg = base();
    cfg.control.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    only_tagged(
        &cfg,
        "control.metrics_listen",
        "limitation: metrics on a known port",
        "port 0",
    );
    cfg.control.metrics_listen = Some("127.0.0.1:9900".parse().unwrap());
    assert_eq!(validate(&cfg), vec![]);
}
