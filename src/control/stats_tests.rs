//! The operator's view from two synthetic scrapes: rates over the interval, the tree of
//! load balancer, frontend, rule and backend, shares of new flows, drops.

use super::*;

const BEFORE: &str = r#"# HELP haports_port_rx_packets_total Packets received.
# TYPE haports_port_rx_packets_total counter
haports_port_rx_packets_total{port="0",interface="lan"} 1000
haports_port_tx_packets_total{port="0",interface="lan"} 900
haports_port_rx_dropped_total{port="0",interface="lan"} 0
haports_worker_rx_packets_total{worker="0"} 1000
haports_worker_drops_total{worker="0"} 10
haports_flow_table_entries{worker="0"} 40
haports_rule_info{lb="ilb",frontend="fe1",address="10.0.0.100",rule="ha",pool="nvas",probe="tcp22"} 1
haports_backend_healthy{lb="ilb",rule="ha",pool="nvas",backend="10.0.0.11"} 1
haports_backend_healthy{lb="ilb",rule="ha",pool="nvas",backend="10.0.0.12"} 1
haports_backend_resolved{lb="ilb",rule="ha",pool="nvas",backend="10.0.0.11"} 1
haports_backend_resolved{lb="ilb",rule="ha",pool="nvas",backend="10.0.0.12"} 1
haports_backend_packets_total{lb="ilb",pool="nvas",probe="tcp22",backend="10.0.0.11"} 500
haports_backend_packets_total{lb="ilb",pool="nvas",probe="tcp22",backend="10.0.0.12"} 400
haports_backend_bytes_total{lb="ilb",pool="nvas",probe="tcp22",backend="10.0.0.11"} 50000
haports_backend_bytes_total{lb="ilb",pool="nvas",probe="tcp22",backend="10.0.0.12"} 40000
haports_backend_flows_total{lb="ilb",pool="nvas",probe="tcp22",backend="10.0.0.11"} 20
haports_backend_flows_total{lb="ilb",pool="nvas",probe="tcp22",backend="10.0.0.12"} 20
haports_drops_total{reason="no_rule"} 10
haports_drops_total{reason="ttl"} 0
haports_config_generation 2
# EOF
"#;

/// Two seconds later: 10.0.0.11 took 3 of the 4 new flows and went down.
fn after() -> String {
    BEFORE
        .replace("interface=\"lan\"} 1000", "interface=\"lan\"} 3000")
        .replace("interface=\"lan\"} 900", "interface=\"lan\"} 2900")
        .replace("worker=\"0\"} 1000", "worker=\"0\"} 3000")
        .replace("worker=\"0\"} 10", "worker=\"0\"} 30")
        .replace("backend=\"10.0.0.11\"} 500", "backend=\"10.0.0.11\"} 1700")
        .replace("backend=\"10.0.0.12\"} 400", "backend=\"10.0.0.12\"} 1200")
        .replace(
            "backend=\"10.0.0.11\"} 50000",
            "backend=\"10.0.0.11\"} 170000",
        )
        .replace("backend=\"10.0.0.11\"} 20", "backend=\"10.0.0.11\"} 26")
        .replace("backend=\"10.0.0.12\"} 20", "backend=\"10.0.0.12\"} 22")
        .replace(
            "haports_backend_healthy{lb=\"ilb\",rule=\"ha\",pool=\"nvas\",backend=\"10.0.0.11\"} 1",
            "haports_backend_healthy{lb=\"ilb\",rule=\"ha\",pool=\"nvas\",backend=\"10.0.0.11\"} 0",
        )
        .replace("reason=\"no_rule\"} 10", "reason=\"no_rule\"} 30")
}

#[test]
fn samples_keep_their_labels_and_skip_comments() {
    let s = parse("# HELP x y\nx_total{a=\"1\",b=\"q\\\"uote\"} 5\nplain 2.5\nbroken{ x\n");
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[0].name, "x_total");
    assert_eq!(s[0].label("a"), "1");
    assert_eq!(s[0].label("b"), "q\"uote");
    assert_eq!(s[1].value, 2.5);
}

#[test]
fn rates_are_taken_over_the_interval_and_grouped_by_rule() {
    let v = view(&parse(BEFORE), &parse(&after()), 2.0);
    assert_eq!(v["config_generation"], 2.0);
    assert_eq!(v["ports"][0]["interface"], "lan");
    assert_eq!(v["ports"][0]["rx_pps"], 1000.0);
    assert_eq!(v["workers"][0]["drops_per_s"], 10.0);
    assert_eq!(v["workers"][0]["flows"], 40.0);
    let lb = &v["load_balancers"][0];
    assert_eq!(lb["name"], "ilb");
    let fe = &lb["frontends"][0];
    assert_eq!(
        (fe["name"].as_str(), fe["address"].as_str()),
        (Some("fe1"), Some("10.0.0.100"))
    );
    assert!(fe["announced"].is_null(), "no [announce]: nothing said");
    let rule = &fe["rules"][0];
    assert_eq!(
        (rule["name"].as_str(), rule["probe"].as_str()),
        (Some("ha"), Some("tcp22"))
    );
    let b = &rule["backends"];
    assert_eq!(b[0]["address"], "10.0.0.11");
    assert_eq!(b[0]["healthy"], false);
    assert_eq!(b[0]["pps"], 600.0);
    assert_eq!(b[0]["bps"], 480_000.0);
    assert_eq!(b[0]["new_flows_per_s"], 3.0);
    assert_eq!(b[0]["new_flow_share"], 0.75);
    assert_eq!(b[1]["new_flow_share"], 0.25);
    assert_eq!(b[1]["healthy"], true);
    // Only reasons that dropped anything, with their rate.
    assert_eq!(
        v["drops"],
        serde_json::json!([{"reason": "no_rule", "per_s": 10.0, "total": 30}])
    );
    // Counts are whole numbers in the JSON, for typed readers.
    assert!(v["config_generation"].is_u64() && v["workers"][0]["flows"].is_u64());
    assert!(
        b[0]["packets"].is_u64() && b[0]["flows"].is_u64() && v["ports"][0]["rx_packets"].is_u64()
    );
}

#[test]
fn the_text_shows_the_tree_the_rates_and_the_down_backend() {
    let text = render(&view(&parse(BEFORE), &parse(&after()), 2.0));
    assert!(text.contains("LOAD BALANCER ilb"), "{text}");
    assert!(text.contains("  frontend fe1 10.0.0.100\n"), "{text}");
    assert!(
        text.contains("    rule ha: pool nvas, probe tcp22"),
        "{text}"
    );
    let line = text.lines().find(|l| l.contains("10.0.0.11 ")).unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols,
        ["10.0.0.11", "DOWN", "600", "480.0k", "3.0", "75%", "1700"],
        "{line}"
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["no_rule", "10", "30"]),
        "{text}"
    );
    assert!(!text.contains("ttl"), "{text}");
}

#[test]
fn counters_that_went_back_count_as_no_traffic() {
    // A restart between the samples: counters start again from 0.
    let v = view(&parse(&after()), &parse(BEFORE), 1.0);
    assert_eq!(v["ports"][0]["rx_pps"], 0.0);
    assert!(
        v["load_balancers"][0]["frontends"][0]["rules"][0]["backends"][0]["new_flow_share"]
            .is_null()
    );
}

/// A backend whose series the first scrape lacks (a reload brought it back into its old
/// slot, with its old counts) has no rate in the interval, not its lifetime's counts as one.
#[test]
fn a_backend_absent_from_the_first_scrape_has_no_rate() {
    let without: String = BEFORE
        .lines()
        .filter(|l| !(l.contains("10.0.0.12") && l.starts_with("haports_backend_")))
        .map(|l| format!("{l}\n"))
        .collect();
    let v = view(&parse(&without), &parse(&after()), 2.0);
    let b = &v["load_balancers"][0]["frontends"][0]["rules"][0]["backends"];
    assert_eq!(b[1]["address"], "10.0.0.12");
    for key in ["pps", "bps", "new_flows_per_s", "new_flow_share"] {
        assert!(b[1][key].is_null(), "{key}: {}", b[1][key]);
    }
    assert_eq!(b[1]["packets"], 1200.0);
    // The other's share is of the new flows that have a rate.
    assert_eq!(b[0]["new_flow_share"], 1.0);
    let text = render(&v);
    let line = text.lines().find(|l| l.contains("10.0.0.12 ")).unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols,
        ["10.0.0.12", "up", "-", "-", "-", "-", "1200"],
        "{line}"
    );
}
