//! End to end: health is per rule. An HA-ports rule (internal load balancer) and a public
//! rule over the same backends, each with its own probe; the public probe's service is
//! refused on one backend: the public rule stops sending it new flows while the HA-ports rule
//! keeps using it. Needs root.

mod common;

use std::time::Duration;

use common::{metric, wait_for, Appliance, Lab, FRONTEND};

const PUBLIC: &str = "10.0.0.101";

/// A public load balancer over the lab's backends: TCP 8010 on its own frontend, probed on
/// port 8010.
const PUBLIC_LB: &str = r#"
[[load_balancer]]
name = "plb"
kind = "public"

  [[load_balancer.frontend]]
  name = "www"
  address = "10.0.0.101"

  [[load_balancer.backend_pool]]
  name = "nvas"
  backends = [{ address = "10.0.0.11" }, { address = "10.0.0.12" }, { address = "10.0.0.13" }]

  [[load_balancer.probe]]
  name = "web"
  protocol = "tcp"
  port = 8010
  interval_ms = 100
  unhealthy_threshold = 2
  healthy_threshold = 2

  [[load_balancer.rule]]
  name = "web"
  frontend = "www"
  backend_pool = "nvas"
  probe = "web"
  protocol = "tcp"
  frontend_port = 8010
  backend_port = 8010
"#;

fn healthy(lb: &Appliance, rule: &str, backend: &str) -> Option<f64> {
    metric(
        &lb.metrics(),
        "haports_backend_healthy",
        &[("rule", rule), ("backend", backend)],
    )
}

#[test]
fn a_backend_failing_the_public_probe_leaves_the_public_rule_only() {
    let lab = Lab::up("nat");
    lab.add_probe(100, 2, 2); // the HA-ports rule: tcp 8000
    lab.edit_config(|t| format!("{t}{PUBLIC_LB}"));
    let lb = Appliance::start(&lab, &lab.config());
    let b1 = lab.backends()[0];
    for rule in ["ha", "web"] {
        wait_for(
            &format!("{b1} healthy for {rule}"),
            Duration::from_secs(10),
            || (healthy(&lb, rule, b1) == Some(1.0)).then_some(()),
        );
    }
    let public = lab.traffic("tcp", PUBLIC, &[8010], 30, None);
    assert!(public.failures.is_empty(), "{:?}", public.failures.first());
    assert_eq!(public.served.len(), 3, "before: {:?}", public.served);

    // b1 refuses port 8010 only (nftables): its public probe fails, the HA-ports one passes.
    for rule in [
        "add table inet t",
        "add chain inet t in { type filter hook input priority 0 ; }",
        "add rule inet t in tcp dport 8010 reject with tcp reset",
    ] {
        let out = lab.exec("b1", &["sh", "-c", &format!("nft '{rule}'")]);
        assert!(
            out.status.success(),
            "nft {rule}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_for(
        "b1 down for the public rule",
        Duration::from_secs(10),
        || (healthy(&lb, "web", b1) == Some(0.0)).then_some(()),
    );
    assert_eq!(
        healthy(&lb, "ha", b1),
        Some(1.0),
        "still up for the HA-ports rule"
    );

    let public = lab.traffic("tcp", PUBLIC, &[8010], 60, None);
    assert!(public.failures.is_empty(), "{:?}", public.failures.first());
    assert!(
        !public.served.contains_key("b1"),
        "public: {:?}",
        public.served
    );
    assert_eq!(public.served.len(), 2);
    let ports: Vec<u16> = (8000..8024).filter(|&p| p != 8010).collect();
    let internal = lab.traffic("tcp", FRONTEND, &ports, 69, None);
    assert!(
        internal.failures.is_empty(),
        "{:?}",
        internal.failures.first()
    );
    assert!(
        internal.served.contains_key("b1"),
        "HA ports: {:?}",
        internal.served
    );
    assert_eq!(internal.served.len(), 3);
}
