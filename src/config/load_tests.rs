//! Tests of `config::load`.
use std::net::IpAddr;

use super::*;
use crate::config::testdata::{DESIGN_EXAMPLE, MINIMAL};
use crate::config::{Dataplane, LbKind, ProbeProtocol, RuleProtocol};

fn parse_err(text: &str) -> (usize, usize, String, String) {
    match Config::from_toml(text, "test.toml") {
        Err(err @ ConfigError::Parse { .. }) => {
            let shown = err.to_string();
            let ConfigError::Parse {
                line,
                column,
                message,
                ..
            } = err
            else {
                unreachable!()
            };
            (line, column, message, shown)
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

/// MINIMAL with `line` inserted right after the first line that starts with `after`.
fn minimal_with(after: &str, line: &str) -> String {
    let mut out = String::new();
    let mut done = false;
    for l in MINIMAL.lines() {
        out.push_str(l);
        out.push('\n');
        if !done && l.trim_start().starts_with(after) {
            out.push_str(line);
            out.push('\n');
            done = true;
        }
    }
    assert!(done, "no line starts with {after:?}");
    out
}

fn line_of(text: &str, needle: &str) -> usize {
    let pos = text.find(needle).expect("needle");
    text[..pos].matches('\n').count() + 1
}

#[test]
fn design_example_parses() {
    let cfg = Config::from_toml(DESIGN_EXAMPLE, "DESIGN.md").unwrap();
    assert_eq!(cfg.dpdk.eal_args[3], "--vdev=net_af_packet0,iface=lb0");
    assert_eq!(cfg.dataplane, Dataplane::default());
    assert_eq!(
        cfg.control.metrics_listen,
        Some("127.0.0.1:9900".parse().unwrap())
    );
    let lan = &cfg.interface[0];
    assert_eq!((lan.name.as_str(), lan.port, lan.mac), ("lan", 0, None));
    assert_eq!(lan.address, vec!["10.0.0.2/24".parse().unwrap()]);
    assert_eq!(lan.routes[0].to, "10.9.0.0/16".parse().unwrap());
    assert_eq!(lan.routes[0].via, "10.0.0.1".parse::<IpAddr>().unwrap());
    let lb = &cfg.load_balancer[0];
    assert_eq!(lb.kind, LbKind::Internal);
    assert_eq!(
        lb.frontend[0].address,
        "10.0.0.100".parse::<IpAddr>().unwrap()
    );
    let b = &lb.backend_pool[0].backends;
    assert_eq!(b.len(), 3);
    assert_eq!((b[0].weight, b[0].priority, b[0].drain), (1, 0, false));
    assert_eq!(b[1].weight, 2);
    assert_eq!(b[2].priority, 1);
    assert_eq!(b[2].mac.unwrap().to_string(), "02:00:00:00:00:13");
    assert_eq!(b[0].instance(), "10.0.0.11");
    let probe = &lb.probe[0];
    assert_eq!(probe.protocol, ProbeProtocol::Tcp);
    assert_eq!((probe.port, probe.interval_ms), (22, 200));
    let rule = &lb.rule[0];
    assert_eq!(rule.protocol, RuleProtocol::All);
    assert_eq!(rule.probe.as_deref(), Some("tcp22"));
    assert!(rule.is_ha_ports() && !rule.floating_ip);
    assert!(cfg.check().is_ok(), "{:?}", cfg.check());
}

#[test]
fn omitted_sections_and_keys_take_defaults() {
    let cfg = Config::from_toml(MINIMAL, "minimal.toml").unwrap();
    assert!(cfg.dpdk.eal_args.is_empty());
    assert_eq!(cfg.dataplane.workers, 1);
    assert_eq!(cfg.dataplane.maglev_table_size, 65537);
    assert_eq!(cfg.dataplane.flow_table_capacity, 1_048_576);
    assert_eq!(cfg.dataplane.hash_seed, 0);
    assert_eq!(cfg.control.metrics_listen, None);
    assert!(cfg.interface[0].routes.is_empty());
    let probe = &cfg.load_balancer[0].probe[0];
    assert_eq!((probe.path.as_deref(), probe.interval_ms), (None, 5000));
    assert_eq!((probe.unhealthy_threshold, probe.healthy_threshold), (2, 2));
    let rule = &cfg.load_balancer[0].rule[0];
    assert_eq!((rule.floating_ip, rule.idle_timeout_s), (false, 240));
    assert_eq!(cfg.load_balancer[0].backend_pool[0].encap, None);

    let partial = Config::from_toml("[dataplane]\nworkers = 4\n", "p.toml").unwrap();
    assert_eq!(partial.dataplane.workers, 4);
    assert_eq!(partial.dataplane.maglev_table_size, 65537);
    assert_eq!(partial.dataplane.flow_table_capacity, 1_048_576);
}

#[test]
fn address_is_one_string_or_a_list() {
    let one = Config::from_toml(MINIMAL, "t").unwrap();
    assert_eq!(
        one.interface[0].address,
        vec!["10.0.0.2/24".parse().unwrap()]
    );
    let text = MINIMAL.replace(
        "address = \"10.0.0.2/24\"",
        "address = [\"10.0.0.2/24\", \"fd00::2/64\"]",
    );
    let list = Config::from_toml(&text, "t").unwrap();
    let want: Vec<ipnet::IpNet> = vec![
        "10.0.0.2/24".parse().unwrap(),
        "fd00::2/64".parse().unwrap(),
    ];
    assert_eq!(list.interface[0].address, want);
}

#[test]
fn serialized_config_parses_back_equal() {
    let cfg = Config::from_toml(DESIGN_EXAMPLE, "DESIGN.md").unwrap();
    let text = toml::to_string(&cfg).unwrap();
    assert_eq!(Config::from_toml(&text, "round-trip").unwrap(), cfg);
}

#[test]
fn unknown_top_level_key_is_named_with_its_line() {
    let text = format!("# haports\nworkerz = 2\n{MINIMAL}");
    let (line, column, message, shown) = parse_err(&text);
    assert_eq!((line, column), (2, 1));
    assert!(
        message.starts_with("workerz: unknown key `workerz`"),
        "{message}"
    );
    assert!(
        shown.starts_with(&format!("test.toml:{line}:1: workerz: ")),
        "{shown}"
    );
}

#[test]
fn unknown_key_in_interface_is_named_with_its_line() {
    let text = minimal_with("port = 0", "adress = \"10.0.0.3/24\"");
    let (line, _, message, shown) = parse_err(&text);
    assert_eq!(line, line_of(&text, "adress"));
    assert!(
        message.starts_with("interface[0].adress: unknown key `adress`"),
        "{message}"
    );
    assert!(
        shown.contains(&format!("test.toml:{line}:1: interface[0].adress")),
        "{shown}"
    );
}

#[test]
fn unknown_key_in_rule_is_named_with_its_line() {
    let text = minimal_with("backend_port = 0", "  floating = true");
    let (line, column, message, _) = parse_err(&text);
    assert_eq!((line, column), (line_of(&text, "floating"), 3));
    assert!(
        message.starts_with("load_balancer[0].rule[0].floating: unknown key `floating`"),
        "{message}"
    );
    assert!(
        message.contains("floating_ip"),
        "lists the expected keys: {message}"
    );
}

#[test]
fn unknown_key_in_backend_is_named_with_its_line() {
    let text = MINIMAL.replace(
        "{ address = \"10.0.0.12\" }",
        "{ address = \"10.0.0.12\", wieght = 2 }",
    );
    let (line, _, message, _) = parse_err(&text);
    assert_eq!(line, line_of(&text, "wieght"));
    assert!(
        message.starts_with(
            "load_balancer[0].backend_pool[0].backends[1].wieght: unknown key `wieght`"
        ),
        "{message}"
    );
}

#[test]
fn wrong_type_names_the_key() {
    let text = MINIMAL.replace("port = 22", "port = \"x\"");
    let (line, column, message, _) = parse_err(&text);
    assert_eq!((line, column), (line_of(&text, "\"x\""), 10));
    assert!(
        message.starts_with("load_balancer[0].probe[0].port: invalid type"),
        "{message}"
    );
    assert!(
        message.contains("expected a port number from 0 to 65535"),
        "{message}"
    );
}

#[test]
fn out_of_range_ports_name_the_key_and_the_range() {
    for (from, to, key, range) in [
        (
            "frontend_port = 0",
            "frontend_port = 70000",
            "load_balancer[0].rule[0].frontend_port",
            "a port number from 0 to 65535",
        ),
        (
            "backend_port = 0",
            "backend_port = -1",
            "load_balancer[0].rule[0].backend_port",
            "a port number from 0 to 65535",
        ),
        (
            "port = 22",
            "port = 65536",
            "load_balancer[0].probe[0].port",
            "a port number from 0 to 65535",
        ),
        (
            "port = 0",
            "port = 99999",
            "interface[0].port",
            "a DPDK port id from 0 to 65535",
        ),
    ] {
        let text = MINIMAL.replacen(from, to, 1);
        let (line, _, message, _) = parse_err(&text);
        assert_eq!(line, line_of(&text, to), "{message}");
        let value = to.rsplit(' ').next().unwrap();
        assert_eq!(
            message,
            format!("{key}: invalid value: integer `{value}`, expected {range}")
        );
    }
}

#[test]
fn unknown_enum_value_names_the_key() {
    let text = MINIMAL.replace("protocol = \"all\"", "protocol = \"sctp\"");
    let (_, _, message, _) = parse_err(&text);
    assert!(
        message.starts_with("load_balancer[0].rule[0].protocol: unknown variant `sctp`"),
        "{message}"
    );
}

#[test]
fn bad_addresses_are_quoted_with_their_key() {
    let cases = [
        (
            "\"10.0.0.100\"",
            "\"10.0.0.300\"",
            "load_balancer[0].frontend[0].address",
            "`10.0.0.300` is not an IP address",
        ),
        (
            "\"10.0.0.12\"",
            "\"10.0.0.12x\"",
            "load_balancer[0].backend_pool[0].backends[1].address",
            "`10.0.0.12x` is not an IP address",
        ),
        (
            "\"10.0.0.2/24\"",
            "[\"10.0.0.2/24\", \"fd00::2\"]",
            "interface[0].address[1]",
            "`fd00::2` is not an address with its prefix length",
        ),
        (
            "\"10.0.0.2/24\"",
            "\"10.0.0.2/33\"",
            "interface[0].address",
            "`10.0.0.2/33` is not",
        ),
    ];
    for (from, to, key, what) in cases {
        let text = MINIMAL.replacen(from, to, 1);
        let (line, _, message, _) = parse_err(&text);
        assert_eq!(line, line_of(&text, to), "{message}");
        assert_eq!(message.split(": ").next(), Some(key), "{message}");
        assert!(message.contains(what), "{message}");
    }
    let text = format!("[control]\nmetrics_listen = \"localhost\"\n{MINIMAL}");
    let (line, _, message, _) = parse_err(&text);
    assert_eq!(line, 2);
    assert!(
        message.starts_with("control.metrics_listen: `localhost` is not an address and port"),
        "{message}"
    );
    let text = MINIMAL.replacen("port = 0", "port = 0\nmac = \"02:00:00:00:01\"", 1);
    let (_, _, message, _) = parse_err(&text);
    assert!(
        message.starts_with("interface[0].mac: not a MAC address"),
        "{message}"
    );
}

#[test]
fn missing_key_names_its_table() {
    let text = MINIMAL.replace("  name = \"ha\"\n", "");
    let (line, _, message, _) = parse_err(&text);
    assert_eq!(line, line_of(&text, "[[load_balancer.rule]]"));
    assert_eq!(message, "load_balancer[0].rule[0]: missing key `name`");
}

#[test]
fn syntax_error_has_line_and_column() {
    let text = "[dataplane]\nworkers = 1 2\n";
    let (line, column, message, _) = parse_err(text);
    assert_eq!((line, column), (2, 13));
    // Not TOML at all: no key to name, the place says where.
    assert!(message.starts_with("expected newline"), "{message}");
}

#[test]
fn unreadable_file_names_the_path() {
    let err = Config::load(Path::new("/nonexistent/haports.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/haports.toml: cannot read the config file: "),
        "{err}"
    );
}

#[test]
fn a_reload_refuses_a_fifo_without_waiting_for_a_writer() {
    let dir = std::env::temp_dir().join(format!("haports-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir); // a run killed before its cleanup
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("haports.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success() && fifo.exists());
    // No writer ever opens it: `load` would wait in `open` for ever.
    let err = Config::load_regular(&fifo).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string()
            .ends_with("not a regular file (a reload reads only regular files)"),
        "{err}"
    );
    // A regular file loads as `load` loads it.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/basic.toml");
    assert_eq!(
        Config::load_regular(&example).unwrap(),
        Config::load(&example).unwrap()
    );
}

#[test]
fn examples_load_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            if let Err(problems) = cfg.check() {
                panic!("{}: {problems:#?}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 1, "no examples/*.toml");
}
