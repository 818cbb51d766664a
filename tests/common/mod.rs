//! Shared helpers of the integration tests: a lab of network namespaces around one haports
//! appliance (built by `scripts/lab.sh`, torn down on drop), the appliance process itself,
//! and the traffic client. Tests need root; they create everything with a unique tag.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const FRONTEND: &str = "10.0.0.100";
pub const BACKENDS: [&str; 3] = ["10.0.0.11", "10.0.0.12", "10.0.0.13"];
pub const FRONTEND6: &str = "fd00::100";
pub const BACKENDS6: [&str; 3] = ["fd00::11", "fd00::12", "fd00::13"];

/// `ADDRESS:PORT`, IPv6 in brackets, as `haports lookup` reads it.
pub fn endpoint(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A lab's tag (its namespaces' prefix): `kind` (`hpt`, `hpn`, `hps`), the run's own mark
/// where `scripts/test.sh` gives one (`HAPORTS_TEST_RUN`: its teardown, however the run ends,
/// removes that run's labs and no other's), this test process and its `n`th lab.
pub fn lab_tag(kind: &str, n: u32) -> String {
    let run = std::env::var("HAPORTS_TEST_RUN").unwrap_or_default();
    let run: String = run
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    format!("{kind}{run}{}x{n}", std::process::id() % 100_000)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn must_be_root() {
    let uid = Command::new("id").arg("-u").output().expect("run id");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "integration tests build network namespaces and run DPDK: run them as root (scripts/test.sh)"
    );
}

/// Polls `f` every 50 ms until it returns Some, or panics with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The namespaces of one test: see `scripts/lab.sh` for the topology.
pub struct Lab {
    pub tag: String,
    pub mode: &'static str,
}

impl Lab {
    /// `mode`: "nat" (client on 10.0.1.0/24, routed through the appliance) or "dsr".
    pub fn up(mode: &'static str) -> Lab {
        must_be_root();
        let tag = lab_tag("hpt", NEXT.fetch_add(1, Ordering::SeqCst));
        let lab = Lab { tag, mode };
        let out = Command::new("bash")
            .arg(root().join("scripts/lab.sh"))
            .args(["up", &lab.tag, mode])
            .output()
            .expect("run scripts/lab.sh");
        assert!(
            out.status.success(),
            "lab.sh up failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    /// Runs a command in namespace `host` (lb, c, b1, b2, b3).
    pub fn exec(&self, host: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &format!("{}-{host}", self.tag)])
            .args(args)
            .output()
            .expect("run ip netns exec")
    }

    /// The client's address as the appliance sees it.
    pub fn client(&self) -> &'static str {
        match self.mode {
            "dsr" => "10.0.0.50",
            "nat6" => "fd00:1::10",
            "dsr6" => "fd00::50",
            "vxlan" => "10.0.0.50",
            "vxlan6" => "fd00::50",
            _ => "10.0.1.10",
        }
    }

    /// The frontend address of this lab's mode.
    pub fn frontend(&self) -> &'static str {
        if self.mode.ends_with('6') {
            FRONTEND6
        } else {
            FRONTEND
        }
    }

    /// The backends' addresses of this lab's mode (b1, b2, b3).
    pub fn backends(&self) -> [&'static str; 3] {
        if self.mode.starts_with("vxlan") {
            ["10.9.0.11", "10.9.0.12", "10.9.0.13"]
        } else if self.mode.ends_with('6') {
            BACKENDS6
        } else {
            BACKENDS
        }
    }

    /// Real kernel TCP or UDP exchanges from the client (scripts/traffic.py).
    pub fn traffic(
        &self,
        proto: &str,
        dst: &str,
        ports: &[u16],
        count: usize,
        sport: Option<u16>,
    ) -> Traffic {
        self.traffic_timeout(proto, dst, ports, count, sport, 2.0)
    }

    /// As `traffic`, waiting at most `timeout` seconds for each answer.
    pub fn traffic_timeout(
        &self,
        proto: &str,
        dst: &str,
        ports: &[u16],
        count: usize,
        sport: Option<u16>,
        timeout: f64,
    ) -> Traffic {
        self.traffic_with(proto, dst, ports, count, sport, timeout, &[])
    }

    /// As `traffic`, from `source` (an address of the client's host).
    pub fn traffic_from(
        &self,
        source: &str,
        proto: &str,
        dst: &str,
        ports: &[u16],
        count: usize,
    ) -> Traffic {
        self.traffic_with(proto, dst, ports, count, None, 2.0, &["--source", source])
    }

    #[allow(clippy::too_many_arguments)]
    fn traffic_with(
        &self,
        proto: &str,
        dst: &str,
        ports: &[u16],
        count: usize,
        sport: Option<u16>,
        timeout: f64,
        extra: &[&str],
    ) -> Traffic {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let script = root().join("scripts/traffic.py");
        let count = count.to_string();
        let sport = sport.unwrap_or(0).to_string();
        let mut args = vec!["python3", script.to_str().unwrap(), proto, dst, "--ports"];
        let joined = ports.join(",");
        let timeout = timeout.to_string();
        args.extend([
            joined.as_str(),
            "--count",
            &count,
            "--sport",
            &sport,
            "--timeout",
            &timeout,
        ]);
        args.extend_from_slice(extra);
        let out = self.exec("c", &args);
        assert!(
            out.status.success(),
            "traffic.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("traffic.py prints JSON")
    }

    /// Rewrites the lab's config with `f` (e.g. to add a probe, before or between runs).
    pub fn edit_config(&self, f: impl FnOnce(String) -> String) {
        let path = self.config();
        let text = std::fs::read_to_string(&path).expect("read lab config");
        std::fs::write(&path, f(text)).expect("write lab config");
    }

    /// Adds a tcp probe of port 8000 to the HA-ports rule.
    pub fn add_probe(&self, interval_ms: u64, unhealthy: u32, healthy: u32) {
        self.edit_config(|t| {
            let probe = format!(
                "  [[load_balancer.probe]]\n  name = \"svc\"\n  protocol = \"tcp\"\n  port = 8000\n  \
                 interval_ms = {interval_ms}\n  unhealthy_threshold = {unhealthy}\n  \
                 healthy_threshold = {healthy}\n\n  [[load_balancer.rule]]"
            );
            t.replacen("  [[load_balancer.rule]]", &probe, 1)
                .replacen("  name = \"ha\"\n", "  name = \"ha\"\n  probe = \"svc\"\n", 1)
        });
    }

    /// Kills backend `b`'s service (b1, b2, b3).
    pub fn stop_backend(&self, b: &str) {
        self.lab_sh(&["stop-backend", &self.tag, b]);
    }

    /// Starts backend `b`'s service again and waits until it listens.
    pub fn start_backend(&self, b: &str) {
        self.lab_sh(&["start-backend", &self.tag, b]);
    }

    /// The pid of backend `b`'s service.
    pub fn backend_pid(&self, b: &str) -> u32 {
        let path = format!("/tmp/haports-lab-{}/{b}.pid", self.tag);
        std::fs::read_to_string(&path)
            .expect("backend pid file")
            .trim()
            .parse()
            .expect("a pid")
    }

    fn lab_sh(&self, args: &[&str]) {
        let out = Command::new("bash")
            .arg(root().join("scripts/lab.sh"))
            .args(args)
            .output()
            .expect("run lab.sh");
        assert!(
            out.status.success(),
            "lab.sh {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts scripts/streams.py in the client (see there); `join` returns its report.
    pub fn streams(&self, args: &[&str]) -> Streams {
        let script = root().join("scripts/streams.py");
        let child = Command::new("ip")
            .args(["netns", "exec", &format!("{}-c", self.tag), "python3"])
            .arg(script)
            .arg(FRONTEND)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start streams.py");
        let flow_count = args.iter().position(|a| *a == "--udp-flows");
        let udp_flows = flow_count.map_or(STREAMS_UDP_FLOWS, |i| {
            args[i + 1].parse().expect("--udp-flows takes a number")
        });
        Streams { child, udp_flows }
    }

    /// The appliance's config `lab.sh` wrote: HA ports, non-floating in nat mode and
    /// floating in dsr mode.
    pub fn config(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/haports-lab-{}/haports.toml", self.tag))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/lab.sh"))
            .args(["down", &self.tag])
            .output();
    }
}

/// How many UDP flows streams.py runs unless told (its `--udp-flows` default).
const STREAMS_UDP_FLOWS: usize = 8;

/// A running scripts/streams.py.
pub struct Streams {
    child: Child,
    /// The UDP flows it was asked for: its report must account for each.
    udp_flows: usize,
}

impl Streams {
    /// Whether streams.py is still sending.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Ends a run started with `--until-stdin-closes` now, and returns its report.
    pub fn stop(mut self) -> serde_json::Value {
        drop(self.child.stdin.take());
        self.join()
    }

    pub fn join(self) -> serde_json::Value {
        let out = self.child.wait_with_output().expect("wait streams.py");
        assert!(
            out.status.success(),
            "streams.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("streams.py prints JSON");
        let udp = report["udp"].as_array().map_or(0, Vec::len);
        assert_eq!(
            udp, self.udp_flows,
            "streams.py reported {udp} UDP flows: {report}"
        );
        report
    }
}

/// Every new TCP connection streams.py opened during its run was answered by a backend, and
/// there were at least ten (new flows went on throughout, not only the established ones).
pub fn assert_every_connection_served(report: &serde_json::Value) {
    let tcp = report["tcp"]
        .as_array()
        .expect("streams.py reports its connections");
    assert!(
        tcp.len() >= 10,
        "only {} new connections: {report}",
        tcp.len()
    );
    let failed: Vec<_> = tcp.iter().filter(|c| c[1].is_null()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} new connections failed, the first: {}",
        failed.len(),
        tcp.len(),
        failed[0]
    );
}

/// Every exchange answered, and by all three backends (a few exchanges say nothing of the
/// backends' shares: a test of balance wants hundreds).
pub fn assert_all_served(what: &str, t: &Traffic, expected: usize) {
    assert!(
        t.failures.is_empty() && t.total() == expected,
        "{what}: {} of {expected} answered, failures {:?}",
        t.total(),
        t.failures.first()
    );
    assert_eq!(
        t.served.len(),
        3,
        "{what}: all three backends: {:?}",
        t.served
    );
}

#[derive(Debug, serde::Deserialize)]
pub struct Traffic {
    pub served: BTreeMap<String, usize>,
    pub failures: Vec<String>,
    /// (source port, destination port, backend name)
    pub flows: Vec<(u16, u16, String)>,
}

impl Traffic {
    pub fn total(&self) -> usize {
        self.served.values().sum()
    }
}

/// A running `haports run` inside the lab's appliance namespace.
pub struct Appliance {
    child: Option<Child>,
    /// The network namespace it runs in.
    namespace: String,
    log: PathBuf,
}

impl Appliance {
    pub fn start(lab: &Lab, config: &Path) -> Appliance {
        let log = PathBuf::from(format!("/tmp/haports-lab-{}/haports.log", lab.tag));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{}-lb", lab.tag),
                // Stopped if the test dies without its `Drop` (killed at nextest's timeout),
                // rather than polling on through the tests after it.
                "setpriv",
                "--pdeathsig",
                "TERM",
                env!("CARGO_BIN_EXE_haports"),
                "run",
                "--config",
            ])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .expect("start haports");
        let mut a = Appliance {
            child: Some(child),
            namespace: format!("{}-lb", lab.tag),
            log,
        };
        if lab.mode.ends_with('6') || lab.mode.starts_with("vxlan") {
            a.wait_backends(&lab.backends());
        } else {
            a.wait_ready();
        }
        a
    }

    /// SIGHUP: reload the config file.
    pub fn reload(&self) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let _ = Command::new("kill").args(["-HUP", &pid]).status();
    }

    /// Waits until backend `address`'s health, as published, is `healthy`.
    pub fn wait_health(&self, address: &str, healthy: bool) {
        let want = if healthy { 1.0 } else { 0.0 };
        wait_for(
            &format!("{address} to be {}", if healthy { "up" } else { "down" }),
            Duration::from_secs(15),
            || {
                (metric(
                    &self.try_metrics()?,
                    "haports_backend_healthy",
                    &[("backend", address)],
                ) == Some(want))
                .then_some(())
            },
        );
    }

    /// Waits until the backends have been sent more than `packets` packets from now on:
    /// traffic started by the caller is flowing.
    pub fn wait_backend_traffic(&self, packets: f64) {
        let before = metric_sum(&self.metrics(), "haports_backend_packets_total");
        wait_for(
            "traffic to reach the backends",
            Duration::from_secs(10),
            || {
                let now = metric_sum(&self.try_metrics()?, "haports_backend_packets_total");
                (now - before > packets).then_some(())
            },
        );
    }

    /// Waits until `haports_config_generation` is `n`.
    pub fn wait_generation(&self, n: u64) {
        wait_for(
            &format!("config generation {n}"),
            Duration::from_secs(15),
            || {
                (metric(&self.try_metrics()?, "haports_config_generation", &[]) == Some(n as f64))
                    .then_some(())
            },
        );
    }

    /// Waits until metrics answer and every backend is resolved and healthy.
    fn wait_ready(&mut self) {
        wait_for(
            "haports to serve metrics with every backend resolved",
            Duration::from_secs(30),
            || {
                if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                    panic!("haports exited early with {status}: {}", self.logs());
                }
                let m = self.try_metrics()?;
                // Every configured backend resolved and healthy (unprobed ones always are).
                let resolved = BACKENDS.iter().all(|b| {
                    let configured = m.contains(&format!("backend=\"{b}\""));
                    !configured
                        || (metric(&m, "haports_backend_resolved", &[("backend", b)]) == Some(1.0)
                            && metric(&m, "haports_backend_healthy", &[("backend", b)])
                                == Some(1.0))
                });
                resolved.then_some(())
            },
        );
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default()
    }

    /// The metrics text, or None when the endpoint did not answer this time.
    pub fn try_metrics(&self) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.namespace, "python3", "-c"])
            .arg("import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9900/metrics',timeout=2).read().decode())")
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// SIGKILL, and its exit status once reaped.
    pub fn kill(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill haports");
        child.wait().expect("wait haports")
    }

    /// Sends SIGTERM and returns at once; `wait` reaps it.
    pub fn terminate(&self) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
    }

    /// Waits up to `limit` for the process to exit; its status.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// haports' process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The metrics text; a scrape that failed (its 2 s passed on a loaded machine) is tried
    /// once more before the test fails.
    pub fn metrics(&self) -> String {
        self.try_metrics()
            .or_else(|| self.try_metrics())
            .unwrap_or_else(|| panic!("metrics endpoint did not answer: {}", self.logs()))
    }

    /// SIGTERM, then the exit status (SIGKILL after 20 s).
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with("-TERM")
    }

    /// `signal` (`kill`'s option: `-INT`), then the exit status (SIGKILL after 20 s).
    pub fn stop_with(&mut self, signal: &str) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // `ip netns exec` execs haports, so the child's pid is haports' own.
        let _ = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                return child.wait().expect("wait haports");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

/// The value of series `name` whose labels include every one of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        if n != name {
            return None;
        }
        labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.parse().ok())?
    })
}

/// Sum of every series of `name` (all label sets).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let n = series.split('{').next()?;
            (n == name).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// Panics unless the tests run as root (for test files with labs of their own).
pub fn need_root() {
    must_be_root();
}

/// Real kernel TCP or UDP exchanges (scripts/traffic.py) from network namespace `namespace`
/// to `dst`, waiting at most `timeout` seconds for each answer.
pub fn traffic_in(
    namespace: &str,
    proto: &str,
    dst: &str,
    ports: &[u16],
    count: usize,
    timeout: f64,
) -> Traffic {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let out = Command::new("ip")
        .args(["netns", "exec", namespace, "python3"])
        .arg(root().join("scripts/traffic.py"))
        .args([proto, dst, "--ports", &ports.join(",")])
        .args([
            "--count",
            &count.to_string(),
            "--timeout",
            &timeout.to_string(),
        ])
        .output()
        .expect("run traffic.py");
    assert!(
        out.status.success(),
        "traffic.py in {namespace} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("traffic.py prints JSON")
}

impl Appliance {
    /// Starts `haports run --config CONFIG` in namespace `{tag}-lb` (logs in `dir`:
    /// haports.log, haports.err) and waits until its metrics answer with every address of
    /// `backends` resolved and healthy.
    pub fn start_in(tag: &str, dir: &Path, config: &Path, backends: &[&str]) -> Appliance {
        Appliance::start_in_namespace(&format!("{tag}-lb"), dir, config, backends)
    }

    /// As `start_in`, in network namespace `namespace`.
    pub fn start_in_namespace(
        namespace: &str,
        dir: &Path,
        config: &Path,
        backends: &[&str],
    ) -> Appliance {
        let log = dir.join("haports.log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                namespace,
                // As in `start`.
                "setpriv",
                "--pdeathsig",
                "TERM",
                env!("CARGO_BIN_EXE_haports"),
                "run",
                "--config",
            ])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .expect("start haports");
        let mut a = Appliance {
            child: Some(child),
            namespace: namespace.to_owned(),
            log,
        };
        a.wait_backends(backends);
        a
    }

    /// Waits until metrics answer and each of `backends` is resolved and healthy.
    pub fn wait_backends(&mut self, backends: &[&str]) {
        wait_for(
            &format!("haports to serve metrics with {backends:?} resolved and healthy"),
            Duration::from_secs(30),
            || {
                if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                    panic!("haports exited early with {status}: {}", self.logs());
                }
                let m = self.try_metrics()?;
                backends
                    .iter()
                    .all(|b| {
                        metric(&m, "haports_backend_resolved", &[("backend", b)]) == Some(1.0)
                            && metric(&m, "haports_backend_healthy", &[("backend", b)]) == Some(1.0)
                    })
                    .then_some(())
            },
        );
    }
}

/// tcpdump in a lab host's namespace, on its eth0: what matched `filter` while it ran.
pub struct Capture {
    child: Child,
    /// Where tcpdump writes (a file: a pipe read only at the end would fill and stall it,
    /// and the kernel would drop what it could not deliver).
    out: PathBuf,
}

impl Capture {
    /// Starts the capture and waits until tcpdump listens.
    pub fn start(lab: &Lab, host: &str, filter: &str) -> Capture {
        Capture::start_on(lab, host, "eth0", filter)
    }

    /// As `start`, on interface `dev` of the host.
    pub fn start_on(lab: &Lab, host: &str, dev: &str, filter: &str) -> Capture {
        use std::io::BufRead;
        let out = PathBuf::from(format!(
            "/tmp/haports-lab-{}/capture-{host}-{dev}.txt",
            lab.tag
        ));
        let mut child = Command::new("ip")
            .args(["netns", "exec", &format!("{}-{host}", lab.tag)])
            // --immediate-mode: each packet handed over as it comes. Without it the kernel
            // hands them over in blocks, a block once full or a second old, and the packets
            // of the block in hand when the capture is stopped were never read: a test whose
            // traffic took under two seconds saw 83 of its 1,200 (the VXLAN test, under load).
            .args(["tcpdump", "-i", dev, "-n", "-l", "-U", "--immediate-mode"])
            .args(filter.split(' '))
            .stdout(std::fs::File::create(&out).expect("capture file"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump");
        let stderr = child.stderr.take().expect("tcpdump's stderr");
        let mut lines = std::io::BufReader::new(stderr).lines();
        let listening = lines.any(|l| l.is_ok_and(|l| l.contains("listening on")));
        assert!(listening, "tcpdump in {host} did not start");
        Capture { child, out }
    }

    /// The packets it printed so far.
    pub fn seen(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Stops the capture; the packets it printed.
    pub fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// `haports lookup --config CONFIG -` over `input` (one flow a line): its output.
pub fn lookup(config: &Path, input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_haports"))
        .args(["lookup", "--config"])
        .arg(config)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start haports lookup");
    child
        .stdin
        .take()
        .expect("lookup's stdin")
        .write_all(input.as_bytes())
        .expect("write flows");
    let out = child.wait_with_output().expect("haports lookup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
