//! What an operator drives a running appliance with: the control socket (`haports reload`
//! answering with the outcome, `haports status`), beside SIGHUP.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{metric, Appliance, Lab};

/// `haports ARGS…`: exit code, stdout, stderr.
fn haports(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_haports"))
        .args(args)
        .output()
        .expect("run haports");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status(socket: &str) -> serde_json::Value {
    let (code, out, err) = haports(&["status", "--socket", socket, "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("status --json")
}

#[test]
fn reload_over_the_control_socket_says_applied_or_refused_and_status_describes_the_appliance() {
    let lab = Lab::up("dsr");
    let lb = Appliance::start(&lab, &lab.config());
    let socket = lab.config().with_file_name("haports.sock");
    let socket = socket.to_str().unwrap();
    let mode = std::fs::metadata(socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "root only");

    let s = status(socket);
    assert_eq!(s["state"], "running");
    assert_eq!(s["config_generation"], 1);
    assert_eq!(s["pid"], lb.pid());
    assert_eq!(s["workers"], 1);
    assert_eq!(s["ports"][0]["interface"], "lan");
    assert_eq!(s["ports"][0]["twin"], "hp-lan");
    assert_eq!(s["frontends"][0]["address"], "10.0.0.100");
    assert_eq!(s["frontends"][0]["serving"], true);
    assert!(s["frontends"][0]["announced"].is_null(), "no [announce]");
    let (code, text, _) = haports(&["status", "--socket", socket]);
    assert_eq!(code, 0);
    assert!(text.contains("running for"), "{text}");
    assert!(
        text.contains("frontend ilb/fe1 10.0.0.100  serving"),
        "{text}"
    );

    // An invalid config is refused with the lines `check` prints; the running one stays.
    let good = std::fs::read_to_string(lab.config()).unwrap();
    lab.edit_config(|t| t.replace("[dataplane]", "[dataplane]\nmaglev_table_size = 65536"));
    let (code, text, _) = haports(&["reload", "--socket", socket]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with("refused: the running config (generation 1) stays"),
        "{text}"
    );
    assert!(
        text.contains("dataplane.maglev_table_size: 65536 is not prime"),
        "{text}"
    );
    assert!(text.contains("[seed rule 7]"), "{text}");
    let (_, check, _) = haports(&["check", lab.config().to_str().unwrap()]);
    assert!(
        text.contains(check.lines().next().unwrap()),
        "{text}\nvs check: {check}"
    );

    // A change that takes a restart is refused too, and says which.
    std::fs::write(
        lab.config(),
        good.replace("127.0.0.1:9900", "127.0.0.1:9901"),
    )
    .unwrap();
    let (code, text, _) = haports(&["reload", "--socket", socket]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("changes to [control] take a restart"),
        "{text}"
    );

    // A valid one is applied, and the answer names the new generation. (The largest Maglev
    // tables, which take the control thread a while to build.)
    let larger = good.replace("[dataplane]", "[dataplane]\nmaglev_table_size = 4194301");
    std::fs::write(
        lab.config(),
        larger.replace(
            "floating_ip = true",
            "floating_ip = true\n  idle_timeout_s = 300",
        ),
    )
    .unwrap();
    let (code, text, _) = haports(&["reload", "--socket", socket]);
    assert_eq!((code, text.as_str()), (0, "applied: config generation 2\n"));
    // Answered once in force: the state the workers hold (which the metrics read) is new.
    let generation = |lb: &Appliance| metric(&lb.metrics(), "haports_config_generation", &[]);
    assert_eq!(generation(&lb), Some(2.0));
    let (code, text, _) = haports(&["reload", "--socket", socket, "--json"]);
    assert_eq!(code, 0);
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"outcome": "applied", "generation": 3})
    );
    assert_eq!(generation(&lb), Some(3.0));
    // SIGHUP still works.
    lb.reload();
    lb.wait_generation(4);
    assert_eq!(status(socket)["config_generation"], 4);
    // Ctrl-C stops it as SIGTERM does: a clean exit.
    let mut lb = lb;
    let exit = lb.stop_with("-INT");
    assert_eq!(exit.code(), Some(0), "{exit}: {}", lb.logs());
    assert!(
        !Path::new(socket).exists(),
        "the socket goes with the process"
    );
    let (code, _, err) = haports(&["status", "--socket", socket]);
    assert_eq!(code, 2);
    assert!(err.contains("is haports running"), "{err}");
    let (code, _, err) = haports(&["reload", "--socket", socket]);
    assert_eq!(code, 2, "{err}");
}

/// `haports stats --json` inside the appliance's namespace (where its metrics listen).
fn stats(lab: &Lab, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{}-lb", lab.tag),
            env!("CARGO_BIN_EXE_haports"),
        ])
        .args([
            "stats",
            "--endpoint",
            "http://127.0.0.1:9900/metrics",
            "--interval",
            "1",
        ])
        .args(args)
        .output()
        .expect("run haports stats");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn backends_in(view: &serde_json::Value) -> Vec<serde_json::Value> {
    view["load_balancers"][0]["frontends"][0]["rules"][0]["backends"]
        .as_array()
        .expect("backends")
        .clone()
}

#[test]
fn stats_shows_live_rates_and_a_dead_backend_and_the_dashboard_queries_real_metrics() {
    let lab = Lab::up("dsr");
    lab.add_probe(200, 2, 2);
    // With [announce] and no BIRD: the announcement metrics exist (nothing announced).
    lab.edit_config(|t| {
        let dir = lab.config().parent().unwrap().display().to_string();
        t.replace(
            "[[interface]]",
            &format!(
                "[announce]\nbird_socket = \"{dir}/no-bird.ctl\"\nroutes_file = \"{dir}/routes.conf\"\n\n[[interface]]"
            ),
        )
    });
    let lb = Appliance::start(&lab, &lab.config());
    let mut streams = lab.streams(&[
        "--udp-port",
        "8001",
        "--udp-flows",
        "8",
        "--tcp-port",
        "8002",
        "--duration",
        "60",
        "--until-stdin-closes",
    ]);

    let view: serde_json::Value = serde_json::from_str(&stats(&lab, &["--json"])).unwrap();
    assert!(view["ports"][0]["rx_pps"].as_f64().unwrap() > 0.0, "{view}");
    assert!(
        view["workers"][0]["rx_pps"].as_f64().unwrap() > 0.0,
        "{view}"
    );
    let fe = &view["load_balancers"][0]["frontends"][0];
    assert_eq!(fe["address"], "10.0.0.100");
    assert_eq!(fe["announced"], false, "no BIRD: not announced");
    let backends = backends_in(&view);
    assert_eq!(backends.len(), 3, "{view}");
    for b in &backends {
        assert_eq!(b["healthy"], true, "{b}");
        assert!(
            b["pps"].as_f64().unwrap() > 0.0,
            "traffic reaches every backend: {b}"
        );
        assert!(
            b["bps"].as_f64().unwrap() > b["pps"].as_f64().unwrap() * 8.0 * 40.0,
            "{b}"
        );
    }
    let new_flows: f64 = backends
        .iter()
        .map(|b| b["new_flows_per_s"].as_f64().unwrap())
        .sum();
    assert!(new_flows > 0.0, "new TCP connections every second: {view}");
    let shares: f64 = backends
        .iter()
        .filter_map(|b| b["new_flow_share"].as_f64())
        .sum();
    assert!((shares - 1.0).abs() < 1e-9, "{view}");

    // Backend b1 dies: its probe fails, and stats shows it down while the others carry on.
    lab.stop_backend("b1");
    lb.wait_health("10.0.0.11", false);
    let text = stats(&lab, &[]);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("10.0.0.11 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(" DOWN "), "{text}");
    let view: serde_json::Value = serde_json::from_str(&stats(&lab, &["--json"])).unwrap();
    assert!(
        streams.running(),
        "the traffic ended before the last sample: its rates measured nothing"
    );
    assert_eq!(backends_in(&view).len(), 3, "{view}");
    for b in backends_in(&view) {
        let dead = b["address"] == "10.0.0.11";
        assert_eq!(b["healthy"], !dead, "{b}");
        if dead {
            assert_eq!(
                b["new_flows_per_s"], 0.0,
                "no new flow to a dead backend: {b}"
            );
        } else {
            assert!(b["pps"].as_f64().unwrap() > 0.0, "{b}");
        }
    }

    // Every metric the Grafana dashboard queries is one haports serves.
    let metrics = lb.metrics();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/grafana/haports.json"),
        )
        .unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut queried = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("haports_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                queried.push(name);
            }
        }
    }
    queried.sort();
    queried.dedup();
    assert!(queried.len() >= 10, "{queried:?}");
    for name in &queried {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))),
            "the dashboard queries {name}, which /metrics lacks"
        );
    }
    streams.stop();
}

/// The README's first command: `scripts/demo.sh`, in both modes, builds its lab, balances
/// every exchange over the three backends and tears the lab down.
#[test]
fn the_readme_demo_serves_every_exchange_on_all_three_backends_in_both_modes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for mode in ["nat", "dsr"] {
        // This test's haports (nothing installed or built inside a test run), and a lab tag
        // the run's teardown removes should the test be killed.
        let tag = common::lab_tag("hpt", 900 + u32::from(mode == "dsr"));
        let out = Command::new("bash")
            .arg(root.join("scripts/demo.sh"))
            .arg(mode)
            .env("HAPORTS_DEMO_BIN", env!("CARGO_BIN_EXE_haports"))
            .env("HAPORTS_DEMO_TAG", &tag)
            .output()
            .expect("run the demo");
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "demo {mode}: {text}\n{err}");
        // Per protocol: 240 exchanges, each backend's count, none failed.
        for proto in ["tcp", "udp"] {
            let head = format!("== 240 {proto} exchanges");
            let at = text.find(&head).unwrap_or_else(|| panic!("{mode}: {text}"));
            let lines: Vec<&str> = text[at..].lines().skip(1).take(4).collect();
            let mut served = 0;
            for (i, line) in lines[..3].iter().enumerate() {
                let (name, rest) = line
                    .trim()
                    .split_once(':')
                    .unwrap_or_else(|| panic!("{line}"));
                assert_eq!(name, format!("b{}", i + 1), "{mode} {proto}: {text}");
                let n: u32 = rest.split_whitespace().next().unwrap().parse().unwrap();
                assert!(n > 0, "{mode} {proto}: b{} served nothing: {text}", i + 1);
                served += n;
            }
            assert_eq!(lines[3].trim(), "failed: 0", "{mode} {proto}: {text}");
            assert_eq!(served, 240, "{mode} {proto}: {text}");
        }
        // `haports lookup` and `haports stats` ran against it.
        assert!(text.contains("-> drop (no_frontend)"), "{mode}: {text}");
        assert!(text.contains("LOAD BALANCER ilb"), "{mode}: {text}");
        // Torn down: none of its namespaces is left.
        let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let left = String::from_utf8_lossy(&netns.stdout);
        assert!(
            !left.lines().any(|l| l.starts_with(&format!("{tag}-"))),
            "left behind: {left}"
        );
    }
}
