//! `[announce]`: defaults, and each check with the key and tag it reports.

use super::*;
use crate::config::Announce;

/// [`base`] with its rule floating (DSR): the rules to scale out with.
fn dsr() -> Config {
    let mut cfg = base();
    lb(&mut cfg).rule[0].floating_ip = true;
    cfg
}

/// A NAT rule's backends send their replies to one instance, their gateway: a warning.
#[test]
fn nat_rules_announced_are_warned_of() {
    let mut cfg = base();
    cfg.announce = Some(Announce::default());
    let problems = validate(&cfg);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(
        (p.severity, p.key.as_str(), p.tag.as_str()),
        (
            Severity::Warning,
            "load_balancer[ilb].rule[ha]",
            "limitation: NAT replies come to one instance"
        )
    );
    assert!(
        p.message.contains("scale out with floating_ip = true"),
        "{p:#?}"
    );
    assert_eq!(validate(&dsr()), vec![]);
    cfg.announce = None;
    assert_eq!(validate(&cfg), vec![], "one instance");
}

#[test]
fn an_empty_announce_table_takes_every_default() {
    let mut cfg = parse(&format!("{MINIMAL}\n[announce]\n"));
    lb(&mut cfg).rule[0].floating_ip = true;
    let a = cfg.announce.clone().expect("[announce] present");
    assert_eq!(a, Announce::default());
    assert_eq!(a.bird_socket.to_str(), Some("/run/bird/bird.ctl"));
    assert_eq!(a.drain_s, 5);
    assert_eq!(validate(&cfg), vec![]);
    assert_eq!(base().announce, None);
}

#[test]
fn announce_paths_are_absolute_files() {
    let mut cfg = dsr();
    cfg.announce = Some(Announce {
        routes_file: "routes.conf".into(),
        ..Announce::default()
    });
    only_tagged(
        &cfg,
        "announce.routes_file",
        "limitation: announce paths absolute",
        "\"routes.conf\" is not an absolute path to a file",
    );
    cfg.announce = Some(Announce {
        bird_socket: "/".into(),
        ..Announce::default()
    });
    only_tagged(
        &cfg,
        "announce.bird_socket",
        "limitation: announce paths absolute",
        "not an absolute path",
    );
}

#[test]
fn drain_time_is_bounded() {
    let mut cfg = dsr();
    let mut a = Announce {
        drain_s: 3600,
        ..Announce::default()
    };
    cfg.announce = Some(a.clone());
    assert_eq!(validate(&cfg), vec![]);
    a.drain_s = 3601;
    cfg.announce = Some(a);
    only_tagged(
        &cfg,
        "announce.drain_s",
        "limitation: drain time up to 1 h",
        "3601 s is more than 3600 s",
    );
}

#[test]
fn routes_go_through_a_configured_interface() {
    let mut cfg = dsr();
    let mut a = Announce {
        interface: Some(cfg.interface[0].name.clone()),
        ..Announce::default()
    };
    cfg.announce = Some(a.clone());
    assert_eq!(validate(&cfg), vec![]);
    a.interface = Some("wan".into());
    cfg.announce = Some(a);
    only_tagged(
        &cfg,
        "announce.interface",
        "limitation: announce through an interface",
        "no interface is named \"wan\"",
    );
}

#[test]
fn unknown_announce_keys_are_errors() {
    let text = format!("{MINIMAL}\n[announce]\ndrain = 3\n");
    let e = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
    assert!(e.contains("drain"), "{e}");
}

#[test]
fn the_control_socket_is_an_absolute_path() {
    let mut cfg = dsr();
    cfg.control.socket = Some("/run/haports/haports.sock".into());
    assert_eq!(validate(&cfg), vec![]);
    cfg.control.socket = Some("haports.sock".into());
    only_tagged(
        &cfg,
        "control.socket",
        "limitation: control socket path absolute",
        "\"haports.sock\" is not an absolute path",
    );
}

#[test]
fn socket_paths_fit_a_unix_socket_address() {
    let mut cfg = dsr();
    let longest = format!("/run/{}", "s".repeat(107 - "/run/".len()));
    cfg.control.socket = Some(longest.clone().into());
    cfg.announce = Some(Announce {
        bird_socket: longest.clone().into(),
        // Not a socket: any length the system takes.
        routes_file: format!("/etc/bird/{}", "r".repeat(200)).into(),
        ..Announce::default()
    });
    assert_eq!(validate(&cfg), vec![]);
    let long = format!("{longest}s");
    cfg.control.socket = Some(long.clone().into());
    only_tagged(
        &cfg,
        "control.socket",
        "limitation: control socket path absolute",
        "is 108 bytes long: a Unix socket's path takes at most 107",
    );
    cfg.control.socket = None;
    cfg.announce.as_mut().unwrap().bird_socket = long.into();
    only_tagged(
        &cfg,
        "announce.bird_socket",
        "limitation: announce paths absolute",
        "is 108 bytes long: a Unix socket's path takes at most 107",
    );
}
