//! Scale-out (DESIGN §10): three haports instances behind a Linux router that spreads flows over
//! them by ECMP, each announcing the frontend by BGP through its own BIRD
//! (`scripts/scale-out-lab.sh`). One lab, in phases. While 300 long-lived TCP connections from 50
//! client addresses send data continuously and check every byte that comes back: the flows spread
//! over all three; a reload that drops a frontend withdraws it first; `kill -9` of an instance
//! takes its path off the router at once (its twin goes with it, and BIRD withdraws the route
//! through it; the test allows 5 s, where BGP's hold time is 240 s, and prints the time taken);
//! SIGTERM withdraws before the instance stops forwarding. No connection breaks, and each reached
//! the backend `haports lookup` names for it, the same on every instance. Then, with the killed
//! instance restarted: an instance whose probes are cut withdraws while the others keep the route,
//! and rejoins once its health has settled; last, an instance whose machine falls silent is dropped
//! by the router's BFD (100 ms × 5; again 5 s allowed, and the time printed).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{metric_sum, need_root, wait_for, Appliance};

const FRONTEND: &str = "10.0.0.100";
/// A second frontend, which a reload of instance 1 drops.
const FRONTEND2: &str = "10.0.0.101";
const BACKENDS: [&str; 3] = ["10.1.0.11", "10.1.0.12", "10.1.0.13"];
/// Instance N's data-plane address: the router's next hop for it.
const NEXT_HOPS: [&str; 3] = ["10.1.0.2", "10.1.0.3", "10.1.0.4"];

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/scale-out-lab.sh")
}

struct ScaleLab {
    tag: String,
}

impl ScaleLab {
    fn up() -> ScaleLab {
        need_root();
        let lab = ScaleLab {
            tag: common::lab_tag("hps", 0),
        };
        let out = Command::new("bash")
            .arg(script())
            .args(["up", &lab.tag])
            .output()
            .expect("run scale-out-lab.sh");
        assert!(
            out.status.success(),
            "scale-out-lab.sh up failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    fn dir(&self, instance: usize) -> PathBuf {
        PathBuf::from(format!("/tmp/haports-scale-lab-{}/lb{instance}", self.tag))
    }

    fn config(&self, instance: usize) -> PathBuf {
        self.dir(instance).join("haports.toml")
    }

    fn start(&self, instance: usize) -> Appliance {
        Appliance::start_in_namespace(
            &format!("{}-lb{instance}", self.tag),
            &self.dir(instance),
            &self.config(instance),
            &BACKENDS,
        )
    }

    /// The router's next hops for the frontend.
    fn paths(&self) -> Vec<String> {
        self.paths_to(FRONTEND)
    }

    /// The router's next hops for `address`.
    fn paths_to(&self, address: &str) -> Vec<String> {
        let out = Command::new("ip")
            .args([
                "-n",
                &format!("{}-r", self.tag),
                "-j",
                "route",
                "show",
                address,
            ])
            .output()
            .expect("run ip route");
        let routes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let mut hops: Vec<String> = routes
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| match r["nexthops"].as_array() {
                Some(hops) => hops.clone(),
                None => vec![r.clone()],
            })
            .filter_map(|h| h["gateway"].as_str().map(str::to_owned))
            .collect();
        hops.sort();
        hops
    }

    /// Polls the router every few milliseconds until `f(paths)` holds; how long it took.
    fn until_paths(&self, what: &str, limit: Duration, f: impl Fn(&[String]) -> bool) -> Duration {
        self.until_paths_to(FRONTEND, what, limit, f)
    }

    /// As `until_paths`, for `address`.
    fn until_paths_to(
        &self,
        address: &str,
        what: &str,
        limit: Duration,
        f: impl Fn(&[String]) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let paths = self.paths_to(address);
            if f(&paths) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for the router to {what}; its paths: {paths:?}"
            );
            // Each look starts a process: often enough to time a change to 10 ms, not so often
            // that the looking starves the BIRDs beside it of the CPU.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn nft(&self, instance: usize, script: &str) {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{}-lb{instance}", self.tag),
                "nft",
                "-f",
                "-",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run nft");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "nft: {script}");
    }
}

impl Drop for ScaleLab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["down", &self.tag])
            .output();
    }
}

/// scripts/long-flows.py in the client namespace.
struct Flows {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Flows {
    fn start(lab: &ScaleLab) -> Flows {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &format!("{}-c", lab.tag), "python3"])
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/long-flows.py"))
            .args([
                FRONTEND,
                "8000",
                "--sources",
                "10.8.0.10-59",
                "--per-source",
                "6",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start long-flows.py");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let flows = Flows { child, lines };
        let ready = flows
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("long-flows.py says ready");
        assert_eq!(ready, "ready 300");
        flows
    }

    /// Stops sending and returns each connection's record.
    fn finish(mut self) -> Vec<serde_json::Value> {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(b"stop\n").unwrap();
        drop(stdin);
        let report = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("long-flows.py reports");
        assert!(self.child.wait().unwrap().success());
        let v: serde_json::Value = serde_json::from_str(&report).expect("JSON report");
        v["connections"].as_array().unwrap().clone()
    }
}

/// Packets each instance has sent to the backends so far.
fn frontend_packets(instances: &[&Appliance]) -> Vec<f64> {
    instances
        .iter()
        .map(|a| metric_sum(&a.metrics(), "haports_backend_packets_total"))
        .collect()
}

/// Waits until `instances` together have sent `more` packets to the backends: the
/// connections' traffic goes on through them after a change.
fn until_carried(what: &str, instances: &[&Appliance], more: f64) {
    let total = || frontend_packets(instances).iter().sum::<f64>();
    let start = total();
    wait_for(what, Duration::from_secs(15), || {
        (total() - start >= more).then_some(())
    });
}

fn announced(a: &Appliance) -> Option<f64> {
    common::metric(
        &a.metrics(),
        "haports_frontend_announced",
        &[("address", FRONTEND)],
    )
}

/// `haports lookup` over `flows` (one a line) with instance N's config.
fn lookup(lab: &ScaleLab, instance: usize, flows: &str) -> String {
    common::lookup(&lab.config(instance), flows)
}

/// 10,000 flows from random clients and ports, TCP and UDP, to the frontend.
fn random_flows() -> String {
    let mut x: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..10_000)
        .map(|_| {
            let r = next();
            let proto = if r & 1 == 0 { "tcp" } else { "udp" };
            format!(
                "{proto} 10.{}.{}.{}:{} {FRONTEND}:{}\n",
                (r >> 8) % 256,
                (r >> 16) % 256,
                (r >> 24) % 254 + 1,
                (r >> 32) % 64_000 + 1024,
                (r >> 48) % 65_535 + 1
            )
        })
        .collect()
}

#[test]
fn three_instances_behind_ecmp_lose_no_connection_when_one_dies_drains_or_loses_its_backends() {
    let lab = ScaleLab::up();
    let start = Instant::now();
    let mut i1 = lab.start(1);
    let mut i2 = lab.start(2);
    let mut i3 = lab.start(3);
    let installed = lab.until_paths("install three paths", Duration::from_secs(30), |p| {
        p == NEXT_HOPS
    });
    eprintln!(
        "three-way ECMP route installed {:?} after the first instance started ({installed:?} \
         after the last one was serving)",
        start.elapsed()
    );

    // Every instance decides alike: the same answer for 10,000 random flows.
    let flows = random_flows();
    let decided = lookup(&lab, 1, &flows);
    assert_eq!(decided.lines().count(), 10_000);
    assert!(
        decided.lines().all(|l| l.contains(" -> 10.1.0.1")),
        "{decided:.300}"
    );
    for instance in [2, 3] {
        assert!(
            lookup(&lab, instance, &flows) == decided,
            "instance {instance} decides differently from instance 1"
        );
    }

    // 300 connections, spread over the three instances.
    let flows = Flows::start(&lab);
    let flowing = Instant::now();
    let before = frontend_packets(&[&i1, &i2, &i3]);
    let carried =
        |now: Vec<f64>| -> Vec<f64> { now.iter().zip(&before).map(|(a, b)| a - b).collect() };
    // Once 6000 packets went through (about 2 s of the connections' traffic).
    let carried = wait_for(
        "6000 packets through the instances",
        Duration::from_secs(30),
        || {
            let c = carried(frontend_packets(&[&i1, &i2, &i3]));
            (c.iter().sum::<f64>() >= 6000.0).then_some(c)
        },
    );
    let total: f64 = carried.iter().sum();
    eprintln!("packets to the backends per instance: {carried:?}");
    for (i, c) in carried.iter().enumerate() {
        assert!(
            *c >= total * 0.15,
            "instance {} carried {c} of {total} packets",
            i + 1
        );
    }

    // A reload that drops a frontend withdraws it first; the other stays announced.
    lab.until_paths_to(FRONTEND2, "install fe2", Duration::from_secs(5), |p| {
        p == NEXT_HOPS
    });
    std::fs::copy(lab.dir(1).join("haports-fe1.toml"), lab.config(1)).unwrap();
    i1.reload();
    lab.until_paths_to(
        FRONTEND2,
        "drop fe2 of instance 1",
        Duration::from_secs(10),
        |p| p == &NEXT_HOPS[1..],
    );
    i1.wait_generation(2);
    assert_eq!(lab.paths(), NEXT_HOPS);
    let logs = i1.logs();
    let withdrawn = logs
        .lines()
        .position(|l| l.contains("withdrawn") && l.contains(FRONTEND2));
    let reloaded = logs.lines().position(|l| l.contains("config reloaded"));
    assert!(
        matches!((withdrawn, reloaded), (Some(w), Some(r)) if w < r),
        "fe2 must be withdrawn before the reload applies: {logs}"
    );

    // kill -9: the twin goes with the process, BIRD withdraws, the router drops the path.
    let killed_at = Instant::now();
    let status = i1.kill();
    assert!(!status.success(), "haports was killed: {status}");
    lab.until_paths("drop the killed instance", Duration::from_secs(5), |p| {
        !p.iter().any(|h| h == NEXT_HOPS[0])
    });
    eprintln!(
        "kill -9: the router dropped the path {:?} after the kill",
        killed_at.elapsed()
    );
    // Within `until_paths`' 5 s: BGP alone (BIRD's hold time, 240 s) would take minutes, so
    // the twin's going did it. How long it took is printed, not held to a bound here.
    assert_eq!(lab.paths(), &NEXT_HOPS[1..]);
    // 300 connections send 1500 lines a second: two seconds' worth through the survivors.
    until_carried("traffic through instances 2 and 3", &[&i2, &i3], 3000.0);

    // SIGTERM: withdrawn while the instance still forwards, which it does for drain_s = 2.
    let terminated_at = Instant::now();
    i2.terminate();
    lab.until_paths("drop the draining instance", Duration::from_secs(5), |p| {
        p == [NEXT_HOPS[2]]
    });
    let withdrawn = terminated_at.elapsed();
    assert!(
        i2.running(),
        "instance 2 stopped before the router dropped its path: {}",
        i2.logs()
    );
    // What it says of itself meanwhile: on its way out (BIRD's confirmation turns
    // withdrawing into draining), nothing announced.
    let out = Command::new(env!("CARGO_BIN_EXE_haports"))
        .args(["status", "--json", "--socket"])
        .arg(lab.dir(2).join("haports.sock"))
        .output()
        .expect("run haports status");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert!(
        status["state"] == "draining" || status["state"] == "withdrawing",
        "{status}"
    );
    assert_eq!(status["frontends"][0]["announced"], false, "{status}");
    let status = i2.wait(Duration::from_secs(10)).expect("instance 2 stops");
    let stopped = terminated_at.elapsed();
    assert!(status.success(), "{status}: {}", i2.logs());
    eprintln!("SIGTERM: path withdrawn after {withdrawn:?}, process gone after {stopped:?}");
    // It forwarded for drain_s (2 s) once BIRD had taken the withdrawal, so it stopped no
    // sooner than that after the signal (a bound from below: a slow machine only adds to it).
    assert!(
        stopped >= Duration::from_secs(2),
        "stopped {stopped:?} after SIGTERM: it did not drain"
    );
    assert!(i2.logs().contains("drained"), "{}", i2.logs());
    until_carried("traffic through instance 3 alone", &[&i3], 1500.0);

    // Not one connection broke or lost a byte, and each is on the backend lookup names.
    let ran = flowing.elapsed();
    let conns = flows.finish();
    assert_eq!(conns.len(), 300);
    let broken: Vec<_> = conns.iter().filter(|c| !c["error"].is_null()).collect();
    assert!(
        broken.is_empty(),
        "{} of 300 connections broke, e.g. {:?}",
        broken.len(),
        broken.first()
    );
    let bytes: u64 = conns.iter().map(|c| c["bytes"].as_u64().unwrap()).sum();
    eprintln!("0 of 300 connections broke; {bytes} bytes echoed and checked");
    let asked: String = conns
        .iter()
        .map(|c| {
            format!(
                "tcp {}:{} {FRONTEND}:8000\n",
                c["src"].as_str().unwrap(),
                c["sport"]
            )
        })
        .collect();
    let decided = lookup(&lab, 3, &asked);
    // Each connection sent a line every 0.2 s through all of the above (a fixed count, 40,
    // failed a run whose events simply went faster): at least half of the ticks it ran for.
    let ticks = (ran.as_secs_f64() / 0.2) as u64;
    assert_eq!(decided.lines().count(), conns.len(), "{decided}");
    for (c, line) in conns.iter().zip(decided.lines()) {
        let backend = c["backend"].as_str().unwrap();
        let address = format!("10.1.0.1{}", &backend[1..]);
        assert!(
            line.ends_with(&format!("-> {address}")),
            "{c} reached {backend}, lookup says {line}"
        );
        assert!(
            c["sent"].as_u64().unwrap() * 2 >= ticks,
            "{c}: {ticks} ticks in {ran:?}"
        );
    }

    // Instance 3 loses its backends (its probes are cut): it withdraws, the others keep the
    // route. Apart from the connections: while its probes fail one by one, its view moves the
    // flows of backends it already counts down, as failover does for a backend really down.
    let i1 = lab.start(1);
    lab.until_paths(
        "take the restarted instance 1",
        Duration::from_secs(30),
        |p| p == [NEXT_HOPS[0], NEXT_HOPS[2]],
    );
    lab.nft(
        3,
        "table inet cut {\n  chain out {\n    type filter hook output priority 0;\n    tcp dport 9000 drop\n  }\n}\n",
    );
    let cut = lab.until_paths("drop instance 3", Duration::from_secs(10), |p| {
        p == [NEXT_HOPS[0]]
    });
    assert_eq!(announced(&i3), Some(0.0));
    assert_eq!(announced(&i1), Some(1.0));
    assert!(i3.running());
    eprintln!("probes cut on instance 3: its path left the router after {cut:?}");
    lab.nft(3, "delete table inet cut");
    let back = lab.until_paths("take instance 3 back", Duration::from_secs(10), |p| {
        p == [NEXT_HOPS[0], NEXT_HOPS[2]]
    });
    eprintln!(
        "probes restored on instance 3: its path was back after {back:?} (health settles first)"
    );

    // A dead machine says nothing: the router's BFD notices it missing (100 ms x 5).
    lab.nft(
        3,
        "table inet dead {\n  chain in {\n    type filter hook input priority 0;\n    iifname \"mgmt\" drop\n  }\n  chain out {\n    type filter hook output priority 0;\n    oifname \"mgmt\" drop\n  }\n}\n",
    );
    let silent = lab.until_paths("drop the silent instance", Duration::from_secs(5), |p| {
        p == [NEXT_HOPS[0]]
    });
    // Within `until_paths`' 5 s, where the hold time (240 s) would take minutes: BFD did it.
    eprintln!("management link of instance 3 cut: BFD took its path off after {silent:?}");
    assert!(i3.running());
}

/// The commented BIRD configs in examples/bird parse (`bird -p`), with the routes file
/// haports writes for a frontend of each family.
#[test]
fn the_example_bird_configs_parse() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("haports-bird-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let routes = dir.join("routes.conf");
    std::fs::write(
        &routes,
        "protocol static haports4 {\n  ipv4;\n  route 10.0.0.100/32 via \"hp-lan\";\n}\n\
         protocol static haports6 {\n  ipv6;\n  route fd00::100/128 via \"hp-lan\";\n}\n",
    )
    .unwrap();
    for name in ["instance.conf", "router.conf"] {
        let text = std::fs::read_to_string(root.join("examples/bird").join(name)).unwrap();
        assert!(text.starts_with("# "), "{name} opens with a comment");
        let conf = dir.join(name);
        std::fs::write(
            &conf,
            text.replace("/run/haports/bird-routes.conf", routes.to_str().unwrap()),
        )
        .unwrap();
        let out = Command::new("bird")
            .args(["-p", "-c"])
            .arg(&conf)
            .output()
            .expect("run bird (Debian package bird2)");
        assert!(
            out.status.success(),
            "examples/bird/{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
