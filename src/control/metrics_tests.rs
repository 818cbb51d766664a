//! Tests of `control::metrics`.
use super::*;
use crate::control::probes::{Target, TargetStatus};
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
    let source = MetricsSource {
        workers: vec![Arc::new(WorkerCounters::default())],
        control_tx_full: Arc::new(Counter::default()),
        ports: Vec::new(),
        forwarding: Arc::new(ArcSwap::from_pointee(fwd)),
        probes: Arc::new(Mutex::new(board)),
        neighbours: Arc::default(),
        announce: None,
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(source));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
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
