//! Tests of `control::metrics`.
use std::collections::HashMap;

use super::*;
use crate::control::probes::{Target, TargetStatus};
use crate::control::stats;
use crate::lb::forwarding::Observations;

/// Two probes of one service that differ in timing are two series, not one twice.
#[test]
fn probes_of_one_service_with_other_timing_are_series_of_their_own() {
    let cfg = crate::config::Config::from_toml(crate::config::testdata::MINIMAL, "t").unwrap();
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    let target = |interval_ms| Target {
        address: "10.0.0.11".parse().unwrap(),
        protocol: crate::config::ProbeProtocol::Tcp,
        port: 22,
        path: "/".into(),
        interval_ms,
        unhealthy_threshold: 2,
        healthy_threshold: 2,
        device: None,
    };
    let up = TargetStatus {
        healthy: Some(true),
        ..TargetStatus::default()
    };
    let board = [(target(100), up.clone()), (target(5000), up)]
        .into_iter()
        .collect();
    let text = exposition(fwd, board);
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("haports_probe_healthy{"))
        .collect();
    assert_eq!(series.len(), 2, "{text}");
    assert_ne!(series[0], series[1]);
    assert!(
        series.iter().any(|l| l.contains("interval_ms=\"5000\"")),
        "{series:?}"
    );
}

/// Probes the appliance could not make are counted per target: its state stays as it was
/// meanwhile, which only this counter shows.
#[test]
fn probes_the_appliance_could_not_make_are_counted() {
    let cfg = crate::config::Config::from_toml(crate::config::testdata::MINIMAL, "t").unwrap();
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    let target = Target {
        address: "10.0.0.11".parse().unwrap(),
        protocol: crate::config::ProbeProtocol::Tcp,
        port: 22,
        path: "/".into(),
        interval_ms: 100,
        unhealthy_threshold: 2,
        healthy_threshold: 2,
        device: None,
    };
    let stuck = TargetStatus {
        healthy: Some(true),
        probes: 7,
        local_errors: 5,
        ..TargetStatus::default()
    };
    let text = exposition(fwd, [(target, stuck)].into_iter().collect());
    let line = text
        .lines()
        .find(|l| l.starts_with("haports_probe_local_errors_total{"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("backend=\"10.0.0.11\"") && line.ends_with(" 5"),
        "{line}"
    );
}

/// The endpoint answers `/metrics` with a query too (a Prometheus job's `params`), and
/// nothing else.
#[test]
fn the_endpoint_answers_metrics_with_or_without_a_query_and_nothing_else() {
    use std::io::{Read, Write};
    let cfg = crate::config::Config::from_toml(crate::config::testdata::MINIMAL, "t").unwrap();
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = serve(addr, source(fwd, HashMap::new()), stop.clone()).unwrap();
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    for path in ["/metrics", "/metrics?job=haports"] {
        let answer = get(path);
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        assert!(
            answer.contains("\nhaports_config_generation{} "),
            "{path}: {answer}"
        );
    }
    assert!(get("/metricsx").starts_with("HTTP/1.1 404"));
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

/// Refused reloads are exported: their count, and whether the last reload was one.
#[test]
fn refused_reloads_are_exported() {
    let cfg = crate::config::Config::from_toml(crate::config::testdata::MINIMAL, "t").unwrap();
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    let s = source(fwd, HashMap::new());
    s.reloads.refused.store(3, Ordering::Relaxed);
    s.reloads.last_refused.store(true, Ordering::Relaxed);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(s));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("\nhaports_config_reloads_refused_total{} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("\nhaports_config_last_reload_successful{} 0\n"),
        "{text}"
    );
}

/// What the metrics of `fwd` and the probes' `board` are read from.
fn source(fwd: Forwarding, board: HashMap<Target, TargetStatus>) -> MetricsSource {
    MetricsSource {
        workers: vec![Arc::new(WorkerCounters::default())],
        control_drops: Arc::default(),
        control_to_kernel: Arc::new(Counter::default()),
        ports: Vec::new(),
        forwarding: Arc::new(ArcSwap::from_pointee(fwd)),
        probes: Arc::new(Mutex::new(board)),
        neighbours: Arc::default(),
        announce: None,
        reloads: Arc::default(),
    }
}

/// The text a scrape of `fwd` and the probes' `board` gets.
fn exposition(fwd: Forwarding, board: HashMap<Target, TargetStatus>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(source(fwd, board)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

/// Names that `haports check` accepts reach label values: a `"`, `\` or newline in one is
/// escaped, so the scrape stays valid, and `haports stats` reads the name back.
#[test]
fn config_names_are_escaped_in_label_values_and_read_back_by_stats() {
    let (rule, pool) = ("h\"a\\b\nc", "nv\"as");
    let text = crate::config::testdata::MINIMAL
        .replace("name = \"ha\"", "name = \"h\\\"a\\\\b\\nc\"")
        .replace("\"nvas\"", "'nv\"as'");
    let cfg = crate::config::Config::from_toml(&text, "t").unwrap();
    assert_eq!(cfg.load_balancer[0].rule[0].name, rule);
    let problems = crate::config::validate(&cfg);
    assert!(problems.iter().all(|p| !p.is_error()), "{problems:?}");
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    let text = exposition(fwd, HashMap::new());
    let info = text
        .lines()
        .find(|l| l.starts_with("haports_rule_info{"))
        .unwrap();
    assert!(
        info.contains(r#"rule="h\"a\\b\nc""#) && info.contains(r#"pool="nv\"as""#),
        "{info}"
    );
    // Every line is a comment or a whole sample: no value broke a line or left its quotes.
    let samples = stats::parse(&text);
    let lines = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(samples.len(), lines, "{text}");
    let labels = &samples
        .iter()
        .find(|s| s.name == "haports_rule_info")
        .unwrap()
        .labels;
    assert_eq!(labels["rule"], rule);
    assert_eq!(labels["pool"], pool);
    assert_eq!(labels["frontend"], "fe1");
    let healthy = samples
        .iter()
        .filter(|s| s.name == "haports_backend_healthy")
        .filter(|s| s.labels["rule"] == rule && s.labels["pool"] == pool)
        .count();
    assert_eq!(healthy, 2, "{text}");
}
