//! What an operator drives a running appliance with: the control socket (`haports reload`
//! answering with the outcome, `haports status`), beside SIGHUP.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{Appliance, Lab};

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

    // A valid one is applied, and the answer names the new generation.
    std::fs::write(
        lab.config(),
        good.replace(
            "floating_ip = true",
            "floating_ip = true\n  idle_timeout_s = 300",
        ),
    )
    .unwrap();
    let (code, text, _) = haports(&["reload", "--socket", socket]);
    assert_eq!((code, text.as_str()), (0, "applied: config generation 2\n"));
    lb.wait_generation(2);
    let (code, text, _) = haports(&["reload", "--socket", socket, "--json"]);
    assert_eq!(code, 0);
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"outcome": "applied", "generation": 3})
    );
    // SIGHUP still works.
    lb.reload();
    lb.wait_generation(4);
    assert_eq!(status(socket)["config_generation"], 4);
    drop(lb);
    assert!(
        !Path::new(socket).exists(),
        "the socket goes with the process"
    );
    let (code, _, err) = haports(&["status", "--socket", socket]);
    assert_eq!(code, 2);
    assert!(err.contains("is haports running"), "{err}");
}
