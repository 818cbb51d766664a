//! The command line as users run it (DESIGN §5): the built `haports` binary with
//! `std::process::Command`. No root, no DPDK: `check`, `lookup` and `stats` only.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

const FRONTEND: &str = "10.0.0.100";
const BACKENDS: [&str; 3] = ["10.0.0.11", "10.0.0.12", "10.0.0.13"];
/// A client flow to the frontend of `examples/basic.toml`.
const FLOW: &str = "tcp 10.0.1.10:40000 10.0.0.100:80";
/// A flow to an address that is no frontend, nor routed through one.
const NO_FRONTEND: &str = "tcp 10.0.1.10:40000 10.0.0.77:80";
/// A flow between two hosts that are neither frontends nor the appliance (transit).
const TRANSIT: &str = "tcp 10.1.0.5:1000 10.2.0.7:22";

// ---- helpers -------------------------------------------------------------------------

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// stdout and stderr together, for messages whose stream the contract leaves open.
    fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8(o.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(o.stderr).expect("stderr is UTF-8"),
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn basic() -> PathBuf {
    root().join("examples/basic.toml")
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haports"));
    cmd.args(args).env_remove("RUST_LOG");
    // `stats` must reach 127.0.0.1 directly, whatever the environment says.
    for var in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env_remove(var);
    }
    cmd
}

fn haports<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    command(args)
        .stdin(Stdio::null())
        .output()
        .expect("run haports")
        .into()
}

/// Runs haports with `input` on its standard input (written from a thread, so a large input
/// and a large output cannot block each other on full pipes).
fn haports_with_stdin<I, S>(args: I, input: String) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn haports");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("wait for haports");
    writer.join().expect("stdin writer").expect("write stdin");
    out.into()
}

/// `haports lookup --config CONFIG ARGS…`
fn lookup_in(config: &Path, args: &[&str]) -> Run {
    let mut all: Vec<&OsStr> = vec!["lookup".as_ref(), "--config".as_ref(), config.as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    haports(all)
}

/// `haports lookup --config examples/basic.toml ARGS…`
fn lookup(args: &[&str]) -> Run {
    lookup_in(&basic(), args)
}

/// `haports lookup --config CONFIG ARGS… -` with `flows` on standard input, one a line.
fn lookup_stdin_in(config: &Path, args: &[&str], flows: &[String]) -> Run {
    let mut all: Vec<&OsStr> = vec!["lookup".as_ref(), "--config".as_ref(), config.as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    all.push("-".as_ref());
    let input: String = flows.iter().map(|f| format!("{f}\n")).collect();
    haports_with_stdin(all, input)
}

fn lookup_stdin(args: &[&str], flows: &[String]) -> Run {
    lookup_stdin_in(&basic(), args, flows)
}

/// The answer of a `lookup` line for `flow`: what follows `FLOW -> `.
fn answer<'a>(line: &'a str, flow: &str) -> &'a str {
    line.strip_prefix(flow)
        .and_then(|rest| rest.strip_prefix(" -> "))
        .unwrap_or_else(|| panic!("expected `{flow} -> …`, got `{line}`"))
}

/// The only line of a successful lookup of one flow, answered.
fn lookup_one(args: &[&str], flow: &str) -> String {
    let mut all = args.to_vec();
    all.extend(flow.split(' '));
    let run = lookup(&all);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.lines().len(), 1, "one line per flow: {run:?}");
    answer(run.lines()[0], flow).to_owned()
}

/// `n` distinct TCP flows from many clients and source ports to the frontend, many ports.
fn client_flows(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "tcp 10.1.{}.{}:{} {FRONTEND}:{}",
                i / 250,
                i % 250 + 1,
                10_000 + i,
                i % 100 + 1
            )
        })
        .collect()
}

/// The answers of a stdin lookup, checked line by line against `flows`.
fn answers(run: &Run, flows: &[String]) -> Vec<String> {
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines = run.lines();
    assert_eq!(lines.len(), flows.len(), "one line per flow");
    lines
        .iter()
        .zip(flows)
        .map(|(line, flow)| answer(line, flow).to_owned())
        .collect()
}

fn count(answers: &[String]) -> BTreeMap<&str, usize> {
    let mut by_backend = BTreeMap::new();
    for a in answers {
        *by_backend.entry(a.as_str()).or_insert(0) += 1;
    }
    by_backend
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A file under the temp directory with a unique name, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "haports-cli-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).expect("write temp config");
        TempFile(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn shown(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn basic_text() -> String {
    std::fs::read_to_string(basic()).expect("read examples/basic.toml")
}

/// `examples/basic.toml` with each `from` (found exactly once) replaced by its `to`.
fn basic_with(edits: &[(&str, &str)]) -> String {
    let mut text = basic_text();
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "`{from}` once in basic.toml");
        text = text.replacen(from, to, 1);
    }
    text
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).expect("needle in text");
    text[..at].matches('\n').count() + 1
}

/// basic.toml whose rule names a missing pool and says protocol "tcp" with frontend port 0:
/// exactly two problems.
fn two_problems() -> TempFile {
    TempFile::new(&basic_with(&[
        ("backend_pool = \"nvas\"", "backend_pool = \"missing\""),
        ("protocol = \"all\"", "protocol = \"tcp\""),
        ("backend_port = 0", "backend_port = 80"),
    ]))
}

/// Serves `status` and `body` to one HTTP request on 127.0.0.1; returns its URL.
fn serve_once(status: &'static str, body: &'static str) -> (String, std::thread::JoinHandle<()>) {
    serve_sequence(status, vec![body.to_owned()])
}

/// Serves `bodies` one a request, in order, then stops.
fn serve_sequence(
    status: &'static str,
    bodies: Vec<String>,
) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        for body in bodies {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).expect("read request");
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(response.as_bytes()).expect("write response");
        }
    });
    (url, server)
}

// ---- version and help ----------------------------------------------------------------

#[test]
fn version_prints_the_package_version() {
    let run = haports(["--version"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let want = format!("haports {} (", env!("CARGO_PKG_VERSION"));
    assert!(run.stdout.starts_with(&want), "{:?}", run.stdout);
    assert!(run.stdout.trim_end().ends_with(')'), "{:?}", run.stdout);
    assert_eq!(run.lines().len(), 1, "{:?}", run.stdout);
}

#[test]
fn help_lists_run_check_lookup_and_stats() {
    let run = haports(["--help"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let commands: BTreeSet<&str> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for name in ["run", "check", "lookup", "stats"] {
        assert!(
            commands.contains(name),
            "`{name}` in --help: {}",
            run.stdout
        );
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let run = haports(["frobnicate"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("frobnicate"), "{:?}", run.stderr);
}

// ---- check ---------------------------------------------------------------------------

#[test]
fn check_prints_ok_for_the_basic_example() {
    let run = haports([OsStr::new("check"), basic().as_os_str()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "ok\n");
}

#[test]
fn check_accepts_every_example_and_fixture() {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [root().join("examples"), root().join("tests/fixtures")] {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.extension() == Some(OsStr::new("toml")) {
                files.push(path);
            }
        }
    }
    assert!(files.contains(&basic()), "{files:?}");
    for file in files {
        let run = haports([OsStr::new("check"), file.as_os_str()]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "ok\n"),
            "{}: {run:?}",
            file.display()
        );
    }
}

#[test]
fn check_names_file_line_and_key_of_an_unknown_key_and_exits_2() {
    let text = basic_with(&[("hash_seed = 0", "hash_seed = 0\nbogus_key = 1")]);
    let line = line_of(&text, "bogus_key");
    let file = TempFile::new(&text);
    let run = haports([OsStr::new("check"), file.path().as_os_str()]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let out = run.all_output();
    assert!(
        out.contains(&format!("{}:{line}:", file.shown())),
        "FILE:LINE in {out:?}"
    );
    assert!(
        out.contains("dataplane.bogus_key"),
        "the key path in {out:?}"
    );
    assert!(out.contains("unknown key"), "{out:?}");
}

#[test]
fn check_names_an_unknown_key_inside_an_inline_backend() {
    let text = basic_with(&[(
        "{ address = \"10.0.0.12\" }",
        "{ address = \"10.0.0.12\", wieght = 2 }",
    )]);
    let line = line_of(&text, "wieght");
    let file = TempFile::new(&text);
    let run = haports([OsStr::new("check"), file.path().as_os_str()]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let out = run.all_output();
    assert!(
        out.contains(&format!("{}:{line}:", file.shown())),
        "{out:?}"
    );
    assert!(out.contains("backends[1].wieght"), "{out:?}");
    assert!(out.contains("weight"), "names the keys allowed: {out:?}");
}

#[test]
fn check_json_gives_the_line_of_a_parse_error() {
    let text = basic_with(&[("hash_seed = 0", "hash_seed = 0\nbogus_key = 1")]);
    let line = line_of(&text, "bogus_key");
    let file = TempFile::new(&text);
    let run = haports([
        OsStr::new("check"),
        OsStr::new("--json"),
        file.path().as_os_str(),
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let lines = run.lines();
    assert_eq!(lines.len(), 1, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("one JSON object");
    assert_eq!(v["file"], file.shown());
    assert_eq!(v["line"], line);
    assert_eq!(v["key"], "dataplane.bogus_key", "{v}");
    assert_eq!(v["tag"], "parse error", "{v}");
    assert!(v["message"].as_str().unwrap().contains("bogus_key"), "{v}");
    assert!(
        !v["message"].as_str().unwrap().starts_with("dataplane:"),
        "{v}"
    );
}

#[test]
fn check_exits_2_when_the_file_cannot_be_read() {
    let missing =
        std::env::temp_dir().join(format!("haports-cli-{}-missing.toml", std::process::id()));
    let dir = std::env::temp_dir();
    for path in [missing, dir] {
        let run = haports([OsStr::new("check"), path.as_os_str()]);
        assert_eq!(run.code, Some(2), "{}: {run:?}", path.display());
        let out = run.all_output();
        assert!(
            out.contains(&path.display().to_string()),
            "names the file: {out:?}"
        );
        assert!(out.contains("cannot read"), "{out:?}");
        assert!(!run.stdout.contains("ok\n"), "{out:?}");
    }
}

/// A path to a device without end is refused once past any real config's size (16 MiB),
/// not read until memory runs out.
#[test]
fn check_refuses_a_file_without_end() {
    let run = haports([OsStr::new("check"), OsStr::new("/dev/zero")]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let out = run.all_output();
    assert!(
        out.contains("/dev/zero") && out.contains("longer than 16 MiB"),
        "{out:?}"
    );
}

#[test]
fn check_prints_one_line_per_problem_each_starting_with_the_file() {
    let file = two_problems();
    let run = haports([OsStr::new("check"), file.path().as_os_str()]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "two problems, two lines: {run:?}");
    let prefix = format!("{}: ", file.shown());
    for line in &lines {
        assert!(line.starts_with(&prefix), "{line:?}");
        assert!(line.contains("rule[ha]"), "names the rule: {line:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains(".backend_pool") && l.contains("`missing`")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(".frontend_port") && l.contains("[seed rule 2]")),
        "{lines:?}"
    );
}

#[test]
fn check_json_prints_one_object_per_problem_with_key_and_message() {
    let file = two_problems();
    let run = haports([
        OsStr::new("check"),
        OsStr::new("--json"),
        file.path().as_os_str(),
    ]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let objects: Vec<serde_json::Value> = run
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(objects.len(), 2, "{run:?}");
    let keys: BTreeSet<&str> = objects
        .iter()
        .map(|o| o["key"].as_str().expect("key"))
        .collect();
    let want: BTreeSet<&str> = [
        "load_balancer[ilb].rule[ha].backend_pool",
        "load_balancer[ilb].rule[ha].frontend_port",
    ]
    .into();
    assert_eq!(keys, want);
    for o in &objects {
        let message = o["message"].as_str().expect("message");
        assert!(!message.is_empty(), "{o}");
        assert!(
            !message.starts_with(&file.shown()),
            "message without the file: {o}"
        );
    }
}

#[test]
fn check_json_on_a_valid_config_exits_0() {
    let run = haports([
        OsStr::new("check"),
        OsStr::new("--json"),
        basic().as_os_str(),
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.lines().is_empty(), "nothing to report: {run:?}");
}

// ---- lookup: answers -----------------------------------------------------------------

#[test]
fn lookup_balances_a_flow_to_the_frontend_onto_a_pool_backend() {
    let run = lookup(&FLOW.split(' ').collect::<Vec<_>>());
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.lines().len(), 1, "exactly one line: {run:?}");
    let backend = answer(run.lines()[0], FLOW);
    assert!(BACKENDS.contains(&backend), "{backend}");
    assert!(run.stderr.is_empty(), "{:?}", run.stderr);
}

#[test]
fn lookup_drops_a_flow_to_no_frontend_and_the_frontends_own_answer() {
    assert_eq!(lookup_one(&[], NO_FRONTEND), "drop (no_frontend)");
    // The frontend's own answer, as the data plane sees it: from an address only the
    // appliance may use (a martian source).
    let answer = "tcp 10.0.0.100:80 10.0.1.10:40000";
    assert_eq!(lookup_one(&[], answer), "drop (martian_source)");
}

#[test]
fn lookup_answers_several_flows_in_order() {
    let flows = [
        FLOW,
        "udp 10.0.1.10:5353 10.0.0.100:53",
        NO_FRONTEND,
        "icmp 10.0.1.10 10.0.0.100",
    ];
    let words: Vec<&str> = flows.iter().flat_map(|f| f.split(' ')).collect();
    let run = lookup(&words);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines = run.lines();
    assert_eq!(lines.len(), flows.len(), "{run:?}");
    for (line, flow) in lines.iter().zip(flows) {
        let got = answer(line, flow);
        assert_eq!(got, lookup_one(&[], flow), "alone and in a batch: {flow}");
    }
}

#[test]
fn lookup_reads_flows_from_stdin_one_a_line() {
    let flows = client_flows(20);
    let run = lookup_stdin(&[], &flows);
    let from_stdin = answers(&run, &flows);
    let words: Vec<&str> = flows.iter().flat_map(|f| f.split(' ')).collect();
    let run = lookup(&words);
    assert_eq!(
        from_stdin,
        answers(&run, &flows),
        "stdin and arguments agree"
    );
}

#[test]
fn lookup_stdin_skips_blank_lines_and_surrounding_space() {
    let input = format!("\n  {FLOW}  \r\n\n\t{NO_FRONTEND}\n\n");
    let mut args: Vec<&OsStr> = vec!["lookup".as_ref(), "--config".as_ref()];
    let config = basic();
    args.push(config.as_os_str());
    args.push("-".as_ref());
    let run = haports_with_stdin(args, input);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert_eq!(answer(lines[0], FLOW), lookup_one(&[], FLOW));
    assert_eq!(answer(lines[1], NO_FRONTEND), "drop (no_frontend)");
}

#[test]
fn a_reader_that_goes_away_ends_lookup_quietly() {
    let config = basic();
    let args = [
        "lookup".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "-".as_ref(),
    ];
    let mut child = command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn haports");
    // The reader is gone before the first answer (as `| head -1` is after the first).
    drop(child.stdout.take());
    let input: String = (0..1000)
        .map(|i| format!("tcp 10.0.1.10:{} 10.0.0.100:80\n", 20_000 + i))
        .collect();
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write the flows");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for haports");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "128 + SIGPIPE: {out:?}");
    assert!(stderr.is_empty(), "no panic, no message: {stderr}");
}

#[test]
fn lookup_json_names_flow_backend_frontend_rule_and_pool() {
    let words: Vec<&str> = ["--json", FLOW, NO_FRONTEND]
        .iter()
        .flat_map(|f| f.split(' '))
        .collect();
    let run = lookup(&words);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "{run:?}");

    let hit: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON");
    assert_eq!(hit["flow"], FLOW);
    assert_eq!(
        hit["backend"],
        lookup_one(&[], FLOW),
        "same answer as the text form"
    );
    assert_eq!(hit["frontend"], "fe1");
    assert_eq!(hit["rule"], "ha");
    assert_eq!(hit["pool"], "nvas");
    assert!(hit.get("drop").is_none(), "{hit}");

    let miss: serde_json::Value = serde_json::from_str(lines[1]).expect("JSON");
    assert_eq!(miss["flow"], NO_FRONTEND);
    assert_eq!(miss["drop"], "no_frontend");
    assert!(miss.get("backend").is_none(), "{miss}");
}

#[test]
fn lookup_gives_the_same_answers_on_every_run() {
    let flows = client_flows(300);
    let first = answers(&lookup_stdin(&[], &flows), &flows);
    for _ in 0..2 {
        assert_eq!(first, answers(&lookup_stdin(&[], &flows), &flows));
    }
}

#[test]
fn lookup_balances_icmp_and_other_protocols_by_ha_ports() {
    for flow in [
        "icmp 10.0.1.10 10.0.0.100",
        "47 10.0.1.10 10.0.0.100",
        "udp 10.0.1.10:4500 10.0.0.100:4500",
    ] {
        let got = lookup_one(&[], flow);
        assert!(BACKENDS.contains(&got.as_str()), "{flow} -> {got}");
    }
}

#[test]
fn lookup_balances_ipv6_flows_written_in_brackets() {
    let config = fixture("ipv6.toml");
    let backends = ["fd00::11", "fd00::12"];
    for flow in [
        "tcp [fd00::1:10]:40000 [fd00::100]:443",
        "udp [fd00::1:10]:5353 [fd00::100]:53",
        "icmpv6 fd00::1:10 fd00::100",
    ] {
        let run = lookup_in(&config, &flow.split(' ').collect::<Vec<_>>());
        assert_eq!(run.code, Some(0), "{run:?}");
        assert_eq!(run.lines().len(), 1, "{run:?}");
        let got = answer(run.lines()[0], flow);
        assert!(backends.contains(&got), "{flow} -> {got}");
    }
}

// ---- lookup: health, tiers and balance -------------------------------------------------

#[test]
fn lookup_moves_a_flow_off_its_backend_when_that_backend_is_down() {
    let chosen = lookup_one(&[], FLOW);
    let moved = lookup_one(&["--down", &chosen], FLOW);
    assert_ne!(moved, chosen);
    assert!(BACKENDS.contains(&moved.as_str()), "{moved}");
}

#[test]
fn lookup_with_a_backend_down_moves_only_its_flows() {
    let flows = client_flows(3000);
    let before = answers(&lookup_stdin(&[], &flows), &flows);
    let down = BACKENDS[0];
    let after = answers(&lookup_stdin(&["--down", down], &flows), &flows);
    assert!(
        after.iter().all(|a| a != down),
        "no flow on the down backend"
    );
    assert!(
        after.iter().all(|a| BACKENDS.contains(&a.as_str())),
        "{:?}",
        count(&after)
    );
    let (mut others, mut kept) = (0, 0);
    for (b, a) in before.iter().zip(&after) {
        if b != down {
            others += 1;
            kept += usize::from(a == b);
        }
    }
    assert!(
        kept * 100 >= others * 95,
        "Maglev keeps flows of healthy backends: {kept} of {others}"
    );
}

#[test]
fn lookup_drops_with_no_healthy_backend_when_every_backend_is_down() {
    let mut args = Vec::new();
    for b in BACKENDS {
        args.extend(["--down", b]);
    }
    assert_eq!(lookup_one(&args, FLOW), "drop (no_healthy_backend)");
    args.push("--json");
    args.extend(FLOW.split(' '));
    let run = lookup(&args);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.lines().len(), 1, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(run.lines()[0]).expect("JSON");
    assert_eq!(v["flow"], FLOW);
    assert_eq!(v["drop"], "no_healthy_backend");
}

#[test]
fn lookup_spreads_3000_flows_over_the_three_backends() {
    let flows = client_flows(3000);
    let got = answers(&lookup_stdin(&[], &flows), &flows);
    let by_backend = count(&got);
    assert_eq!(
        by_backend.keys().copied().collect::<Vec<_>>(),
        BACKENDS,
        "{by_backend:?}"
    );
    for (backend, n) in &by_backend {
        let share = *n as f64 / flows.len() as f64;
        assert!(
            (0.25..=0.42).contains(&share),
            "{backend}: {:.1}% {by_backend:?}",
            share * 100.0
        );
    }
}

#[test]
fn lookup_honours_weight_and_keeps_the_backup_tier_idle() {
    // tiers.toml: .11 weight 1, .12 weight 2, .13 priority 1 (backup).
    let config = fixture("tiers.toml");
    let flows = client_flows(3000);
    let got = answers(&lookup_stdin_in(&config, &[], &flows), &flows);
    let by_backend = count(&got);
    assert_eq!(
        by_backend.get("10.0.0.13"),
        None,
        "backup tier idle: {by_backend:?}"
    );
    let heavy = by_backend.get("10.0.0.12").copied().unwrap_or(0) as f64 / 3000.0;
    assert!(
        (0.58..=0.75).contains(&heavy),
        "weight 2 of 3: {:.1}% {by_backend:?}",
        heavy * 100.0
    );

    let failover = ["--down", "10.0.0.11", "--down", "10.0.0.12"];
    let got = answers(&lookup_stdin_in(&config, &failover, &flows), &flows);
    assert!(
        got.iter().all(|a| a == "10.0.0.13"),
        "backup takes over: {:?}",
        count(&got)
    );
}

// ---- lookup: transit via a frontend ----------------------------------------------------

#[test]
fn lookup_via_a_frontend_balances_a_transit_flow() {
    assert_eq!(
        lookup_one(&[], TRANSIT),
        "drop (no_frontend)",
        "not without --via"
    );
    let by_name = lookup_one(&["--via", "fe1"], TRANSIT);
    assert!(BACKENDS.contains(&by_name.as_str()), "{by_name}");
    assert_eq!(
        lookup_one(&["--via", FRONTEND], TRANSIT),
        by_name,
        "by address"
    );
    assert_eq!(
        lookup_one(&["--via", "ilb/fe1"], TRANSIT),
        by_name,
        "by lb/name"
    );
}

#[test]
fn lookup_via_gives_both_directions_of_a_transit_flow_the_same_backend() {
    let mut flows = Vec::new();
    for i in 0..60u32 {
        let (a, b) = (format!("10.1.0.{}", i + 1), format!("10.2.{}.7", i % 7));
        let (pa, pb) = (20_000 + i, 1 + i * 37);
        flows.push(format!("tcp {a}:{pa} {b}:{pb}"));
        flows.push(format!("tcp {b}:{pb} {a}:{pa}"));
        flows.push(format!("udp {a}:{pa} {b}:{pb}"));
        flows.push(format!("udp {b}:{pb} {a}:{pa}"));
        flows.push(format!("icmp {a} {b}"));
        flows.push(format!("icmp {b} {a}"));
    }
    let got = answers(&lookup_stdin(&["--via", "fe1"], &flows), &flows);
    for (pair, flow) in got.chunks(2).zip(flows.chunks(2)) {
        assert!(BACKENDS.contains(&pair[0].as_str()), "{flow:?} -> {pair:?}");
        assert_eq!(pair[0], pair[1], "symmetric: {flow:?}");
    }
    assert_eq!(count(&got).len(), 3, "transit flows use every backend");
}

#[test]
fn lookup_via_an_unknown_frontend_exits_2() {
    let mut args = vec!["--via", "nosuch"];
    args.extend(TRANSIT.split(' '));
    let run = lookup(&args);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.contains("--via nosuch"), "{:?}", run.stderr);
}

// ---- lookup: errors ------------------------------------------------------------------

#[test]
fn lookup_rejects_a_tcp_flow_without_ports_with_exit_2() {
    let run = lookup(&["tcp", "1.2.3.4", "5.6.7.8"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr.starts_with("tcp 1.2.3.4 5.6.7.8: "),
        "names the flow: {:?}",
        run.stderr
    );
    assert!(
        run.stderr.contains("ADDRESS:PORT"),
        "says what to write: {:?}",
        run.stderr
    );
}

#[test]
fn lookup_rejects_an_unknown_protocol_with_exit_2() {
    let run = lookup(&["foo", "a", "b"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr.contains("unknown protocol `foo`"),
        "{:?}",
        run.stderr
    );
}

#[test]
fn lookup_rejects_flows_of_mixed_ip_versions() {
    let run = lookup(&["tcp", "[2001:db8::1]:1000", "10.0.0.100:80"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("not the same IP version"),
        "{:?}",
        run.stderr
    );
}

#[test]
fn lookup_rejects_a_word_count_that_is_not_a_multiple_of_three() {
    let run = lookup(&["tcp", "10.0.1.10:40000"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.contains("three words"), "{:?}", run.stderr);
}

#[test]
fn lookup_answers_good_flows_around_a_bad_one_and_exits_2() {
    let flows = [
        FLOW.to_owned(),
        "foo a b".to_owned(),
        NO_FRONTEND.to_owned(),
    ];
    let run = lookup_stdin(&[], &flows);
    assert_eq!(run.code, Some(2), "{run:?}");
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert_eq!(answer(lines[0], FLOW), lookup_one(&[], FLOW));
    assert_eq!(answer(lines[1], NO_FRONTEND), "drop (no_frontend)");
    assert!(run.stderr.starts_with("foo a b: "), "{:?}", run.stderr);
}

#[test]
fn lookup_rejects_a_down_that_is_not_an_address() {
    let mut args = vec!["--down", "nope"];
    args.extend(FLOW.split(' '));
    let run = lookup(&args);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("nope"), "{:?}", run.stderr);
}

/// A `--down` that is no backend's address (a typo) would change nothing: refused, naming it.
#[test]
fn lookup_rejects_a_down_that_is_no_backend() {
    let mut args = vec!["--down", "10.0.0.111"];
    args.extend(FLOW.split(' '));
    let run = lookup(&args);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("--down 10.0.0.111: no backend"),
        "{:?}",
        run.stderr
    );
}

#[test]
fn lookup_needs_at_least_one_flow() {
    let run = lookup(&[]);
    assert_eq!(run.code, Some(2), "{run:?}");
}

#[test]
fn lookup_refuses_an_invalid_config_naming_each_problem() {
    let file = two_problems();
    let run = lookup_in(file.path(), &FLOW.split(' ').collect::<Vec<_>>());
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.is_empty(),
        "no answers from a bad config: {run:?}"
    );
    let problems: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(problems.len(), 2, "{:?}", run.stderr);
    assert!(
        problems
            .iter()
            .all(|l| l.starts_with(&format!("{}: ", file.shown()))),
        "{problems:?}"
    );
}

#[test]
fn lookup_exits_2_when_the_config_cannot_be_read() {
    let missing =
        std::env::temp_dir().join(format!("haports-cli-{}-nothere.toml", std::process::id()));
    let run = lookup_in(&missing, &FLOW.split(' ').collect::<Vec<_>>());
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr.contains(&missing.display().to_string()),
        "{:?}",
        run.stderr
    );
}

// ---- stats ---------------------------------------------------------------------------

#[test]
fn stats_without_a_running_instance_exits_1_with_a_clear_message() {
    let endpoint = "http://127.0.0.1:1/metrics";
    let run = haports(["stats", "--endpoint", endpoint]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr.contains(endpoint),
        "names the endpoint: {:?}",
        run.stderr
    );
    assert!(
        run.stderr.contains("is haports running"),
        "says why: {:?}",
        run.stderr
    );
}

#[test]
fn stats_shows_rates_over_the_interval_by_load_balancer_rule_and_backend() {
    const BEFORE: &str = "# TYPE haports_port_rx_packets_total counter\n\
        haports_port_rx_packets_total{port=\"0\",interface=\"lan\"} 1000\n\
        haports_rule_info{lb=\"ilb\",frontend=\"fe1\",address=\"10.0.0.100\",rule=\"ha\",pool=\"nvas\",probe=\"\"} 1\n\
        haports_backend_healthy{lb=\"ilb\",rule=\"ha\",pool=\"nvas\",backend=\"10.0.0.11\"} 1\n\
        haports_backend_resolved{lb=\"ilb\",rule=\"ha\",pool=\"nvas\",backend=\"10.0.0.11\"} 1\n\
        haports_backend_packets_total{lb=\"ilb\",pool=\"nvas\",probe=\"\",backend=\"10.0.0.11\"} 100\n\
        haports_drops_total{reason=\"no_rule\"} 0\n\
        haports_drops_total{reason=\"no_frontend\"} 7\n\
        # EOF\n";
    let after = BEFORE
        .replace("interface=\"lan\"} 1000", "interface=\"lan\"} 1500")
        .replace("backend=\"10.0.0.11\"} 100", "backend=\"10.0.0.11\"} 350");
    let (url, server) = serve_sequence("200 OK", vec![BEFORE.to_owned(), after.clone()]);
    let run = haports(["stats", "--endpoint", &url, "--interval", "0.5", "--json"]);
    server.join().expect("server");
    assert_eq!(run.code, Some(0), "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    let interval = v["interval_s"].as_f64().unwrap();
    assert!(interval >= 0.5, "{v}");
    let pps = v["ports"][0]["rx_pps"].as_f64().unwrap();
    assert!((pps - 500.0 / interval).abs() < 1e-6, "{v}");
    let backend = &v["load_balancers"][0]["frontends"][0]["rules"][0]["backends"][0];
    assert_eq!(backend["address"], "10.0.0.11");
    assert_eq!(backend["healthy"], true);
    assert!(
        (backend["pps"].as_f64().unwrap() - 250.0 / interval).abs() < 1e-6,
        "{v}"
    );
    assert_eq!(v["drops"][0]["reason"], "no_frontend");
    assert_eq!(
        v["drops"].as_array().unwrap().len(),
        1,
        "zero counters left out: {v}"
    );

    let (url, server) = serve_sequence("200 OK", vec![BEFORE.to_owned(), after]);
    let run = haports(["stats", "--endpoint", &url, "--interval", "0.1"]);
    server.join().expect("server");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("LOAD BALANCER ilb"), "{}", run.stdout);
    assert!(
        run.stdout.contains("  frontend fe1 10.0.0.100"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("10.0.0.11") && l.contains(" up ")),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains('#'),
        "comments left out: {}",
        run.stdout
    );
}

#[test]
fn stats_exits_1_when_the_endpoint_answers_an_error() {
    let (url, server) = serve_once("500 Internal Server Error", "broken\n");
    let run = haports(["stats", "--endpoint", &url]);
    server.join().expect("server");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.contains(&url), "{:?}", run.stderr);
}

/// An endpoint that takes the connection and never answers is one that does not answer.
#[test]
fn stats_exits_1_when_the_endpoint_never_answers() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    // Holds the connection, reading nothing back, until the client gives up and closes it.
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
    });
    let run = haports(["stats", "--endpoint", &url]);
    server.join().expect("server");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains(&url), "{:?}", run.stderr);
}

#[test]
fn stats_watch_redraws_every_interval_until_the_endpoint_goes() {
    const BODY: &str = "haports_port_rx_packets_total{port=\"0\",interface=\"lan\"} 5\n# EOF\n";
    // Three scrapes: two redraws, then the endpoint is gone and --watch ends with exit 1.
    let (url, server) = serve_sequence("200 OK", vec![BODY.to_owned(); 3]);
    let run = haports(["stats", "--endpoint", &url, "--interval", "0.1", "--watch"]);
    server.join().expect("server");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stdout.matches("\x1b[H\x1b[2J").count(), 2, "{run:?}");
    assert_eq!(run.stdout.matches("PORT ").count(), 2, "{run:?}");
    assert!(run.stderr.contains(&url), "{run:?}");
}

/// Options may follow the flows, as the audit's `lookup … udp SRC DST --json` wrote them
/// (they were once taken for flow words: exit 2, "got 4"); `-` still reads standard input,
/// with options after it too.
#[test]
fn lookup_takes_options_after_the_flows() {
    let flow = "udp 10.1.0.5:53 10.9.9.9:53";
    let words: Vec<&str> = flow.split(' ').collect();
    let before = lookup(&[&["--via", "fe1", "--json"][..], &words].concat());
    assert_eq!(before.code, Some(0), "{before:?}");
    let after = lookup(&[&["--via", "fe1"][..], &words, &["--json"]].concat());
    assert_eq!(after.code, Some(0), "{after:?}");
    assert_eq!(after.stdout, before.stdout);
    let json: serde_json::Value = serde_json::from_str(after.lines()[0]).expect("JSON");
    assert_eq!(json["flow"], flow);
    let down = lookup(&[&words[..], &["--via", "fe1", "--down", "10.0.0.11"]].concat());
    assert_eq!(down.code, Some(0), "{down:?}");
    assert_eq!(
        down.stdout,
        lookup(&[&["--via", "fe1", "--down", "10.0.0.11"][..], &words].concat()).stdout
    );

    let flows = vec![FLOW.to_owned()];
    let mut args: Vec<&OsStr> = vec!["lookup".as_ref(), "--config".as_ref()];
    let config = basic();
    args.extend([config.as_os_str(), "-".as_ref(), "--json".as_ref()]);
    let run = haports_with_stdin(args, format!("{FLOW}\n"));
    assert_eq!(run.code, Some(0), "{run:?}");
    let json: serde_json::Value = serde_json::from_str(run.lines()[0]).expect("JSON");
    assert_eq!(
        json["backend"],
        answers(&lookup_stdin(&[], &flows), &flows)[0]
    );
}

/// Under systemd, stderr is journald's stream (`JOURNAL_STREAM` names its device and
/// inode): each line of a refused config's problems then begins with its syslog priority
/// (`<3>` an error, `<4>` a warning), which journald keeps as the entry's, so that
/// `journalctl -p err` finds them; elsewhere the lines are as `check` prints them.
#[test]
fn a_refused_configs_problems_carry_their_priority_to_journald() {
    use std::os::unix::fs::MetadataExt;
    let text = std::fs::read_to_string(basic()).unwrap();
    let bad = TempFile::new(&text.replacen("workers = 1 ", "workers = 0 ", 1));
    let err_path = bad.path().with_extension("err");
    for journal in [true, false] {
        let err = std::fs::File::create(&err_path).unwrap();
        let meta = err.metadata().unwrap();
        let mut cmd = command(["run", "--config", &bad.shown()]);
        cmd.env_remove("JOURNAL_STREAM");
        if journal {
            cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        let status = cmd.stdin(Stdio::null()).stderr(err).status().unwrap();
        assert_eq!(status.code(), Some(1));
        let said = std::fs::read_to_string(&err_path).unwrap();
        let lines: Vec<&str> = said.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines.iter().any(|l| l.contains("worker")), "{said}");
        if journal {
            assert!(
                lines
                    .iter()
                    .all(|l| l.starts_with("<3>") || l.starts_with("<4>")),
                "{said}"
            );
            assert!(lines.iter().any(|l| l.starts_with("<3>")), "{said}");
        } else {
            assert!(lines.iter().all(|l| !l.starts_with('<')), "{said}");
        }
    }
    // `check`, as the unit's ExecStartPre runs it, writes its problems to stdout: the same.
    let out = std::fs::File::create(&err_path).unwrap();
    let meta = out.metadata().unwrap();
    let status = command(["check", &bad.shown()])
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdin(Stdio::null())
        .stdout(out)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let said = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        said.lines()
            .any(|l| l.starts_with("<3>") && l.contains("worker")),
        "{said}"
    );
    let _ = std::fs::remove_file(&err_path);
}
