//! End to end: distribution modes. Under `client_ip`, every connection of one client reaches
//! one backend whatever its ports, while many clients spread over all. Needs root.

mod common;

use std::collections::BTreeSet;

use common::{Appliance, Lab, FRONTEND};

#[test]
fn under_client_ip_one_client_keeps_one_backend_and_many_clients_spread() {
    let lab = Lab::up("nat");
    lab.edit_config(|t| {
        t.replacen(
            "  name = \"ha\"\n",
            "  name = \"ha\"\n  distribution = \"client_ip\"\n",
            1,
        )
    });
    assert!(std::fs::read_to_string(lab.config())
        .unwrap()
        .contains("distribution = \"client_ip\""));
    // Twenty more clients: addresses of the client's host on its subnet.
    let clients: Vec<String> = (20..40).map(|i| format!("10.0.1.{i}")).collect();
    for c in &clients {
        let added = lab.exec(
            "c",
            &["ip", "addr", "add", &format!("{c}/24"), "dev", "eth0"],
        );
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
    let lb = Appliance::start(&lab, &lab.config());

    let ports: Vec<u16> = (8000..8024).collect();
    let one = lab.traffic("tcp", FRONTEND, &ports, 120, None);
    assert!(one.failures.is_empty(), "{:?}", one.failures.first());
    assert_eq!(one.total(), 120);
    let sports: BTreeSet<u16> = one.flows.iter().map(|f| f.0).collect();
    let dports: BTreeSet<u16> = one.flows.iter().map(|f| f.1).collect();
    assert!(
        sports.len() >= 100 && dports.len() == 24,
        "many ports were used"
    );
    assert_eq!(
        one.served.len(),
        1,
        "one client, one backend: {:?}",
        one.served
    );

    let mut backends = BTreeSet::new();
    for c in &clients {
        let t = lab.traffic_from(c, "tcp", FRONTEND, &ports, 6);
        assert!(t.failures.is_empty(), "{c}: {:?}", t.failures.first());
        assert_eq!(t.served.len(), 1, "{c}: one backend: {:?}", t.served);
        backends.extend(t.served.into_keys());
    }
    assert_eq!(
        backends.len(),
        3,
        "20 clients over all backends: {backends:?}"
    );

    // `haports lookup` decides alike: every flow of the first client names its backend.
    let served = one.served.keys().next().unwrap().clone();
    let input: String = one
        .flows
        .iter()
        .map(|(sport, dport, _)| format!("tcp {}:{sport} {FRONTEND}:{dport}\n", lab.client()))
        .collect();
    let out = common::lookup(&lab.config(), &input);
    let expected = format!("-> 10.0.0.1{}", &served[1..]);
    assert_eq!(out.lines().count(), one.flows.len(), "{out}");
    assert!(
        out.lines().all(|l| l.ends_with(&expected)),
        "lookup names {expected} for every flow:\n{out}"
    );
    drop(lb);
}
