//! `haports check` as operators run it (DESIGN §5, §7; issue #4): a table of small config
//! files, valid and invalid, one per rule and per limitation, with the exact lines and exit
//! status expected; the seed's own examples of what is and is not allowed each appear as a
//! case. Every case runs twice, plain and `--json`. Then: the examples, parse errors,
//! `run` refusing the same findings, and `run` failing cleanly when a port cannot start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

// ---- building small configs ------------------------------------------------------------

/// One interface on DPDK port 0 of a single af_packet vdev, with PCI off (so the port can be
/// checked), holding 10.0.0.0/24 and fd00::/64.
const LAN: &str = r#"[dpdk]
eal_args = ["--no-pci", "--vdev=net_af_packet0,iface=lb0"]

[[interface]]
name = "lan"
port = 0
address = ["10.0.0.2/24", "fd00::2/64"]
"#;

/// `[[load_balancer]]` NAME of KIND (`internal`, `public`) with `parts` (frontends, pools,
/// probes, rules) after it.
fn lb(name: &str, kind: &str, parts: &[String]) -> String {
    format!(
        "\n[[load_balancer]]\nname = \"{name}\"\nkind = \"{kind}\"\n{}",
        parts.concat()
    )
}

fn fe(name: &str, address: &str) -> String {
    format!("  [[load_balancer.frontend]]\n  name = \"{name}\"\n  address = \"{address}\"\n")
}

fn pool(name: &str, backends: &[&str]) -> String {
    let list: Vec<String> = backends
        .iter()
        .map(|b| format!("{{ address = \"{b}\" }}"))
        .collect();
    format!(
        "  [[load_balancer.backend_pool]]\n  name = \"{name}\"\n  backends = [{}]\n",
        list.join(", ")
    )
}

/// A rule; `ports` is "PROTOCOL FRONTEND_PORT BACKEND_PORT", e.g. "all 0 0" (HA ports).
fn rule(name: &str, frontend: &str, pool: &str, ports: &str, floating_ip: bool) -> String {
    let w: Vec<&str> = ports.split(' ').collect();
    format!(
        "  [[load_balancer.rule]]\n  name = \"{name}\"\n  frontend = \"{frontend}\"\n  \
         backend_pool = \"{pool}\"\n  protocol = \"{}\"\n  frontend_port = {}\n  \
         backend_port = {}\n  floating_ip = {floating_ip}\n",
        w[0], w[1], w[2]
    )
}

/// `[[load_balancer.probe]]` with `extra` key lines.
fn probe(name: &str, protocol: &str, port: u32, extra: &str) -> String {
    format!(
        "  [[load_balancer.probe]]\n  name = \"{name}\"\n  protocol = \"{protocol}\"\n  \
         port = {port}\n{extra}"
    )
}

const NVAS: [&str; 2] = ["10.0.0.11", "10.0.0.12"];

/// LAN and one internal load balancer `ilb`: frontend `fe1` 10.0.0.100, pool `nvas`, and
/// one HA-ports rule `ha` with this `floating_ip`, then `more` parts.
fn ilb_ha(floating_ip: bool, more: &[String]) -> String {
    let mut parts = vec![
        fe("fe1", "10.0.0.100"),
        pool("nvas", &NVAS),
        rule("ha", "fe1", "nvas", "all 0 0", floating_ip),
    ];
    parts.extend_from_slice(more);
    format!("{LAN}{}", lb("ilb", "internal", &parts))
}

/// A load balancer with one frontend `web` at `address` and pool `web` of `backends`, and a
/// tcp rule `web` from port 80 to `backend_port`.
fn web_lb(name: &str, kind: &str, address: &str, backends: &[&str], backend_port: u16) -> String {
    lb(
        name,
        kind,
        &[
            fe("web", address),
            pool("web", backends),
            rule(
                "web",
                "web",
                "web",
                &format!("tcp 80 {backend_port}"),
                false,
            ),
        ],
    )
}

/// LAN, then `[dataplane]` KEY = VALUE before the rest of `ilb_ha(false)`.
fn with_dataplane(key_value: &str) -> String {
    format!("[dataplane]\n{key_value}\n\n{}", ilb_ha(false, &[]))
}

// ---- running the binary -----------------------------------------------------------------

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A config file under the temporary directory, removed on drop.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(text: &str) -> TempConfig {
        let path = std::env::temp_dir().join(format!(
            "haports-check-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).expect("write temp config");
        TempConfig(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Exit status, stdout and stderr of `haports ARGS…`.
fn haports(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    outcome(Command::new(env!("CARGO_BIN_EXE_haports")).args(args))
}

/// A network namespace of the test's own, deleted on drop, with its loopback up.
struct Namespace(String);

impl Namespace {
    fn new(name: &str) -> Namespace {
        let ip = |args: &[&str]| Command::new("ip").args(args).status().expect("ip");
        // One left by a test killed before its teardown (a pid the same) goes first.
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        assert!(ip(&["netns", "add", name]).success(), "ip netns add {name}");
        let ns = Namespace(name.to_owned());
        assert!(ip(&["-n", name, "link", "set", "lo", "up"]).success());
        ns
    }

    /// `program ARGS…` in the namespace.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Exit status, stdout and stderr of `command` (RUST_LOG not passed on).
fn outcome(command: &mut Command) -> (Option<i32>, String, String) {
    let out = command
        .env_remove("RUST_LOG")
        .output()
        .expect("run haports");
    (
        out.status.code(),
        String::from_utf8(out.stdout).expect("UTF-8"),
        String::from_utf8(out.stderr).expect("UTF-8"),
    )
}

/// `haports check [--json] FILE` over `text`; stdout with the file's path shown as `{file}`.
fn check(text: &str, json: bool) -> (Option<i32>, Vec<String>) {
    let file = TempConfig::new(text);
    let mut args = vec!["check".as_ref()];
    if json {
        args.push("--json".as_ref());
    }
    args.push(file.path().as_os_str());
    let (code, stdout, _) = haports(&args);
    let shown = file.path().display().to_string();
    let lines = stdout
        .lines()
        .map(|l| l.replace(&shown, "{file}"))
        .collect();
    (code, lines)
}

/// A case: a config, the exit status and the exact lines `check` prints (`{file}` for the
/// config's path).
struct Case {
    name: &'static str,
    config: String,
    code: i32,
    lines: Vec<&'static str>,
}

fn ok(name: &'static str, config: String) -> Case {
    Case {
        name,
        config,
        code: 0,
        lines: vec!["ok"],
    }
}

fn fails(name: &'static str, config: String, lines: &[&'static str]) -> Case {
    Case {
        name,
        config,
        code: 1,
        lines: lines.to_vec(),
    }
}

/// Warnings only: printed, then `ok`, exit 0.
fn warns(name: &'static str, config: String, lines: &[&'static str]) -> Case {
    let mut lines = lines.to_vec();
    lines.push("ok");
    Case {
        name,
        config,
        code: 0,
        lines,
    }
}

/// Runs every case plain and as `--json`; collects every mismatch, then fails once.
fn run_cases(cases: Vec<Case>) {
    let mut wrong = Vec::new();
    let mut names = std::collections::HashSet::new();
    for case in &cases {
        assert!(names.insert(case.name), "two cases named {}", case.name);
        let (code, lines) = check(&case.config, false);
        if (code, &lines)
            != (
                Some(case.code),
                &case.lines.iter().map(|l| l.to_string()).collect(),
            )
        {
            wrong.push(format!(
                "case {}: expected exit {} and\n  {}\ngot exit {code:?} and\n  {}\nconfig:\n{}",
                case.name,
                case.code,
                case.lines.join("\n  "),
                lines.join("\n  "),
                case.config
            ));
            continue;
        }
        let (code, objects) = check(&case.config, true);
        let want: Vec<String> = case
            .lines
            .iter()
            .filter(|l| **l != "ok")
            .map(|l| l.to_string())
            .collect();
        let got: Vec<String> = objects.iter().map(|o| json_as_line(o)).collect();
        if code != Some(case.code) || got != want {
            wrong.push(format!(
                "case {} --json: exit {code:?}, objects read as\n  {}",
                case.name,
                got.join("\n  ")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n\n")
    );
}

/// A `--json` object as the plain line it stands for, after checking its fields.
fn json_as_line(line: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let text = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("no {k} in {v}"))
            .to_owned()
    };
    let (severity, key, message, tag) =
        (text("severity"), text("key"), text("message"), text("tag"));
    assert!(message.ends_with(&format!(" [{tag}]")), "{v}");
    assert_eq!(text("file"), "{file}", "{v}");
    match severity.as_str() {
        "error" => format!("{{file}}: {key}: {message}"),
        "warning" => format!("{{file}}: warning: {key}: {message}"),
        other => panic!("severity {other:?} in {v}"),
    }
}

// ---- the seed's supported configurations and limitations (DESIGN §7 rules 1-6) ----------

#[test]
fn the_seeds_examples_of_what_is_and_is_not_allowed() {
    let two_frontends = |rules: &[String]| {
        let mut parts = vec![
            fe("fe1", "10.0.0.100"),
            fe("fe2", "10.0.0.101"),
            pool("nvas", &NVAS),
        ];
        parts.extend_from_slice(rules);
        format!("{LAN}{}", lb("ilb", "internal", &parts))
    };
    run_cases(vec![
        // "A single, nonfloating IP HA-ports configuration on an internal standard load
        // balancer" ...
        ok("single non-floating HA-ports rule", ilb_ha(false, &[])),
        // ... "doesn't allow any other load-balancing rule configuration on the current load
        // balancer resource."
        fails(
            "non-floating HA-ports rule and another rule on its load balancer",
            ilb_ha(
                false,
                &[
                    fe("fe2", "10.0.0.101"),
                    pool("web", &["10.0.0.21"]),
                    rule("web", "fe2", "web", "tcp 80 80", false),
                ],
            ),
            &["{file}: load_balancer[ilb].rule[ha]: a non-floating HA-ports rule must be the only rule on its load balancer, but rule `web` is on load_balancer[ilb] too; set floating_ip = true on `ha`, or move `web` to a public load balancer [seed rule 3]"],
        ),
        // "It also allows no other internal load balancer resource configuration for the
        // given set of backend instances."
        fails(
            "non-floating HA-ports rule and another internal load balancer on its backends",
            format!(
                "{}{}",
                ilb_ha(false, &[]),
                web_lb("ilb2", "internal", "10.0.0.101", &["10.0.0.12", "10.0.0.13"], 80)
            ),
            &["{file}: load_balancer[ilb].rule[ha]: a non-floating HA-ports rule allows no other internal load balancer on its backends, but load_balancer[ilb2].backend_pool[web] also has backend 10.0.0.12; set floating_ip = true on `ha`, or give the other load balancer other backends (a public load balancer may share them) [seed rule 3]"],
        ),
        ok(
            "non-floating HA-ports rule and another internal load balancer on other backends",
            format!(
                "{}{}",
                ilb_ha(false, &[]),
                web_lb("ilb2", "internal", "10.0.0.101", &["10.0.0.21"], 80)
            ),
        ),
        // "However, you can configure a public Standard Load Balancer for the backend
        // instances in addition to this HA ports rule."
        ok(
            "non-floating HA-ports rule and one public load balancer on its backends",
            format!(
                "{}{}",
                ilb_ha(false, &[]),
                web_lb("plb", "public", "10.0.0.200", &NVAS, 8080)
            ),
        ),
        // "You can configure **one** public standard load balancer resource for the backend
        // resources with a single internal standard load balancer with HA ports."
        fails(
            "non-floating HA-ports rule and two public load balancers on its backends",
            format!(
                "{}{}{}",
                ilb_ha(false, &[]),
                web_lb("plb1", "public", "10.0.0.201", &["10.0.0.11"], 8080),
                web_lb("plb2", "public", "10.0.0.202", &["10.0.0.12"], 8080)
            ),
            &["{file}: load_balancer[ilb]: only one public load balancer may share the backends of an internal load balancer's HA-ports rules (`ha`), but 2 public load balancers do: load_balancer[plb1] (backend 10.0.0.11), load_balancer[plb2] (backend 10.0.0.12); keep one of them on these backends [seed rule 3]"],
        ),
        // "A single, floating IP HA-ports configuration": "you can add more floating IP
        // load-balancing rules and/or a public load balancer."
        ok("single floating HA-ports rule", ilb_ha(true, &[])),
        ok(
            "floating HA-ports rule, more floating rules and a public load balancer",
            format!(
                "{}{}",
                two_frontends(&[
                    rule("ha", "fe1", "nvas", "all 0 0", true),
                    rule("web", "fe2", "nvas", "tcp 80 80", true),
                    rule("dns", "fe1", "nvas", "udp 53 53", true),
                ]),
                web_lb("plb", "public", "10.0.0.200", &NVAS, 8080)
            ),
        ),
        fails(
            "floating HA-ports rule and two public load balancers",
            format!(
                "{}{}{}",
                ilb_ha(true, &[]),
                web_lb("plb1", "public", "10.0.0.201", &NVAS, 8080),
                web_lb("plb2", "public", "10.0.0.202", &NVAS, 8081)
            ),
            &["{file}: load_balancer[ilb]: only one public load balancer may share the backends of an internal load balancer's HA-ports rules (`ha`), but 2 public load balancers do: load_balancer[plb1] (backend 10.0.0.11), load_balancer[plb2] (backend 10.0.0.11); keep one of them on these backends [seed rule 4]"],
        ),
        // "However, you can't use a nonfloating IP, HA-ports load-balancing configuration on
        // top of this configuration."
        fails(
            "floating HA-ports rule and a non-floating HA-ports rule on its load balancer",
            two_frontends(&[
                rule("ha", "fe1", "nvas", "all 0 0", true),
                rule("ha2", "fe2", "nvas", "all 0 0", false),
            ]),
            &["{file}: load_balancer[ilb].rule[ha2].floating_ip: several HA-ports rules on one load balancer (here also `ha`) all need floating IP, and a non-floating HA-ports rule cannot be added beside a floating one (`ha`); set floating_ip = true on `ha2` [seed rules 4 and 5]"],
        ),
        fails(
            "floating HA-ports rule and a non-floating HA-ports rule of another internal load balancer on its backends",
            format!(
                "{}{}",
                ilb_ha(true, &[]),
                lb(
                    "ilb2",
                    "internal",
                    &[
                        fe("fe9", "10.0.0.109"),
                        pool("nvas", &NVAS),
                        rule("ha", "fe9", "nvas", "all 0 0", false),
                    ]
                )
            ),
            &["{file}: load_balancer[ilb2].rule[ha]: a non-floating HA-ports rule allows no other internal load balancer on its backends, but load_balancer[ilb].backend_pool[nvas] also has backend 10.0.0.11, behind a floating HA-ports rule; put `ha` on load_balancer[ilb] beside its HA-ports rule (HA-ports rules over shared backends belong to one internal load balancer, each on a frontend of its own and floating), or give the other load balancer other backends (a public load balancer may share them) [seed rules 3 and 4]"],
        ),
        // "Multiple HA-ports configurations on an internal standard load balancer": each rule
        // its own frontend, floating IP enabled for all of them.
        ok(
            "several HA-ports frontends, all floating",
            two_frontends(&[
                rule("ha1", "fe1", "nvas", "all 0 0", true),
                rule("ha2", "fe2", "nvas", "all 0 0", true),
            ]),
        ),
        fails(
            "several HA-ports frontends, none floating",
            two_frontends(&[
                rule("ha1", "fe1", "nvas", "all 0 0", false),
                rule("ha2", "fe2", "nvas", "all 0 0", false),
            ]),
            &[
                "{file}: load_balancer[ilb].rule[ha1].floating_ip: several HA-ports rules on one load balancer (here also `ha2`) all need floating IP; set floating_ip = true on `ha1` [seed rule 5]",
                "{file}: load_balancer[ilb].rule[ha2].floating_ip: several HA-ports rules on one load balancer (here also `ha1`) all need floating IP; set floating_ip = true on `ha2` [seed rule 5]",
            ],
        ),
        fails(
            "several HA-ports rules on one frontend",
            two_frontends(&[
                rule("ha1", "fe1", "nvas", "all 0 0", true),
                rule("ha2", "fe1", "nvas", "all 0 0", true),
            ]),
            &["{file}: load_balancer[ilb].rule[ha2].frontend: HA-ports rules `ha1` and `ha2` both take frontend `fe1`; several HA-ports rules on one load balancer need a frontend each [seed rule 5]"],
        ),
        // Limitations: "HA ports load-balancing rules are available only for an internal
        // standard load balancer."
        fails(
            "HA-ports rule on a public load balancer",
            format!(
                "{LAN}{}",
                lb(
                    "plb",
                    "public",
                    &[
                        fe("fe1", "10.0.0.100"),
                        pool("nvas", &NVAS),
                        rule("ha", "fe1", "nvas", "all 0 0", false),
                    ]
                )
            ),
            &["{file}: load_balancer[plb].rule[ha]: HA ports (protocol \"all\", ports 0) are available only on an internal load balancer, and load_balancer[plb] is public; put the rule on a kind = \"internal\" load balancer, or give it protocol \"tcp\" or \"udp\" and ports [seed rule 1]"],
        ),
        // "The combining of an HA ports load-balancing rule and a non-HA ports load-balancing
        // rule pointing to the same backend ipconfiguration(s) isn't supported on a single
        // frontend IP configuration unless both have Floating IP enabled."
        ok(
            "HA-ports and port rule on one frontend and its backends, both floating",
            ilb_ha(true, &[rule("web", "fe1", "nvas", "tcp 80 80", true)]),
        ),
        fails(
            "floating HA-ports rule and a non-floating port rule on its frontend and backends",
            ilb_ha(true, &[rule("web", "fe1", "nvas", "tcp 80 80", false)]),
            &["{file}: load_balancer[ilb].rule[web].floating_ip: the rule shares frontend `fe1` and backend 10.0.0.11 with floating HA-ports rule `ha`; an HA-ports rule and another rule on the same frontend and backends both need floating IP: set floating_ip = true on `web`, or give it other backends [seed rule 6]"],
        ),
        // Floating, a port-translating rule would break another rule: the advice says both.
        fails(
            "floating HA-ports rule and a non-floating translating rule on its frontend and backends",
            ilb_ha(true, &[rule("web", "fe1", "nvas", "tcp 80 8080", false)]),
            &["{file}: load_balancer[ilb].rule[web].floating_ip: the rule shares frontend `fe1` and backend 10.0.0.11 with floating HA-ports rule `ha`; an HA-ports rule and another rule on the same frontend and backends both need floating IP: set floating_ip = true and backend_port = 80 (floating IP keeps the port) on `web`, or give it other backends [seed rule 6]"],
        ),
        fails(
            "non-floating HA-ports rule and a floating port rule on its frontend and backends",
            ilb_ha(false, &[rule("web", "fe1", "nvas", "tcp 80 80", true)]),
            &["{file}: load_balancer[ilb].rule[ha]: a non-floating HA-ports rule must be the only rule on its load balancer, but rule `web` is on load_balancer[ilb] too, on the same frontend `fe1` and backend 10.0.0.11, where both rules would need floating IP; set floating_ip = true on both [seed rules 3 and 6]"],
        ),
        ok(
            "floating HA-ports rule and a non-floating port rule on its frontend, other backends",
            ilb_ha(
                true,
                &[
                    pool("web", &["10.0.0.21"]),
                    rule("web", "fe1", "web", "tcp 80 80", false),
                ],
            ),
        ),
        // "Backends shared" counts instances, not only addresses.
        fails(
            "non-floating HA-ports rule and another internal load balancer on the same instance",
            format!(
                "{}{}",
                ilb_ha(false, &[]).replace(
                    "{ address = \"10.0.0.11\" }",
                    "{ address = \"10.0.0.11\", instance = \"nva1\" }"
                ),
                lb(
                    "ilb2",
                    "internal",
                    &[
                        fe("web", "fd00::100"),
                        "  [[load_balancer.backend_pool]]\n  name = \"v6\"\n  backends = [{ address = \"fd00::11\", instance = \"nva1\" }]\n".to_owned(),
                        rule("ha", "web", "v6", "all 0 0", true),
                    ]
                )
            ),
            &["{file}: load_balancer[ilb].rule[ha]: a non-floating HA-ports rule allows no other internal load balancer on its backends, but load_balancer[ilb2].backend_pool[v6] also has instance `nva1` (10.0.0.11 and fd00::11), behind a floating HA-ports rule; put `ha` on load_balancer[ilb2] beside its HA-ports rule (HA-ports rules over shared backends belong to one internal load balancer, each on a frontend of its own and floating), or give the other load balancer other backends (a public load balancer may share them) [seed rules 3 and 4]"],
        ),
        // Rule 2: protocol "all" exactly with ports 0.
        fails(
            "protocol all with a port",
            ilb_ha(false, &[]).replacen("frontend_port = 0", "frontend_port = 80", 1),
            &["{file}: load_balancer[ilb].rule[ha].frontend_port: protocol \"all\" (HA ports) takes every port, so frontend_port must be 0, not 80; for one port use protocol \"tcp\" or \"udp\" [seed rule 2]"],
        ),
        fails(
            "port 0 with protocol tcp",
            format!(
                "{LAN}{}",
                lb(
                    "plb",
                    "public",
                    &[
                        fe("fe1", "10.0.0.100"),
                        pool("nvas", &NVAS),
                        rule("web", "fe1", "nvas", "tcp 0 8080", false),
                    ]
                )
            ),
            &["{file}: load_balancer[plb].rule[web].frontend_port: port 0 means every port and needs protocol \"all\" (HA ports); with protocol \"tcp\" give a port from 1 to 65535 [seed rule 2]"],
        ),
    ]);
}

// ---- the issue's rules beyond DESIGN §7 ------------------------------------------------

#[test]
fn rules_and_addresses() {
    let public = |parts: &[String]| format!("{LAN}{}", lb("plb", "public", parts));
    let two_web_rules = |second: &str, floating: bool| {
        public(&[
            fe("fe1", "10.0.0.100"),
            fe("fe2", "10.0.0.101"),
            pool("a", &["10.0.0.21", "10.0.0.22"]),
            pool("b", &["10.0.0.22", "10.0.0.23"]),
            rule("one", "fe1", "a", "tcp 80 8080", floating),
            rule("two", second, "b", "tcp 443 8080", floating),
        ])
    };
    run_cases(vec![
        fails(
            "backend port reused by two non-floating rules of two frontends",
            two_web_rules("fe2", false),
            &["{file}: load_balancer[plb].rule[two]: the rule sends tcp to port 8080 of backend 10.0.0.22, as load_balancer[plb].rule[one] does, from frontend 10.0.0.101:443 here and 10.0.0.100:80 there, both without floating IP: a reply from that backend port cannot be rewritten back to the right frontend; use another backend_port, or set floating_ip = true (the backend then gets the packet at its frontend port) [limitation: backend port reuse needs floating IP]"],
        ),
        fails(
            "backend port reused by two non-floating rules of one frontend",
            two_web_rules("fe1", false),
            &["{file}: load_balancer[plb].rule[two]: the rule sends tcp to port 8080 of backend 10.0.0.22, as load_balancer[plb].rule[one] does, from frontend 10.0.0.100:443 here and 10.0.0.100:80 there, both without floating IP: a reply from that backend port cannot be rewritten back to the right frontend; use another backend_port, or set floating_ip = true (the backend then gets the packet at its frontend port) [limitation: backend port reuse needs floating IP]"],
        ),
        ok(
            "backend port reused by floating rules",
            public(&[
                fe("fe1", "10.0.0.100"),
                fe("fe2", "10.0.0.101"),
                pool("a", &["10.0.0.21", "10.0.0.22"]),
                pool("b", &["10.0.0.22", "10.0.0.23"]),
                rule("one", "fe1", "a", "tcp 8080 8080", true),
                rule("two", "fe2", "b", "tcp 8080 8080", true),
            ]),
        ),
        fails(
            "a floating rule translating its port",
            public(&[
                fe("fe1", "10.0.0.100"),
                pool("a", &["10.0.0.21", "10.0.0.22"]),
                rule("one", "fe1", "a", "tcp 80 8080", true),
            ]),
            &["{file}: load_balancer[plb].rule[one].backend_port: with floating IP the packet reaches the backend unchanged, at port 80, so backend_port 8080 cannot apply: set backend_port = 80, or floating_ip = false to translate the port [limitation: floating IP keeps the port]"],
        ),
        fails(
            "two rules on one frontend port",
            public(&[
                fe("fe1", "10.0.0.100"),
                pool("a", &["10.0.0.21"]),
                rule("one", "fe1", "a", "udp 53 53", false),
                rule("two", "fe1", "a", "udp 53 5353", false),
            ]),
            &["{file}: load_balancer[plb].rule[two].frontend_port: rules `one` and `two` both take udp port 53 of frontend `fe1`; a frontend's protocol and port can have one rule only [limitation: one rule per frontend port]"],
        ),
        fails(
            "NAT between IPv4 and IPv6",
            ilb_ha(false, &[]).replace("10.0.0.12", "fd00::12"),
            &["{file}: load_balancer[ilb].rule[ha]: without floating IP the rule rewrites frontend `fe1` (10.0.0.100, IPv4) to its backends, but backend_pool `nvas` has IPv6 backend fd00::12; NAT cannot change the address family: give the rule a pool of IPv4 backends, or set floating_ip = true [limitation: NAT keeps the address family]"],
        ),
        ok(
            "floating IP across address families",
            ilb_ha(true, &[]).replace("10.0.0.12", "fd00::12"),
        ),
        ok("IPv6 end to end", ilb_ha(false, &[]).replace("\"10.0.0.1", "\"fd00::1")),
        fails(
            "frontend not unicast",
            ilb_ha(true, &[]).replace("10.0.0.100", "224.0.0.5"),
            &["{file}: load_balancer[ilb].frontend[fe1].address: 224.0.0.5 is a multicast address; a frontend needs a unicast address [limitation: unicast addresses only]"],
        ),
        fails(
            "frontend on the appliance's own address",
            ilb_ha(false, &[]).replace("10.0.0.100", "10.0.0.2"),
            &["{file}: load_balancer[ilb].frontend[fe1].address: 10.0.0.2 is the own address of interface[lan] (its kernel twin's); a frontend needs another address [limitation: not the appliance's own address]"],
        ),
        fails(
            "backend on the appliance's own address",
            ilb_ha(false, &[]).replace("10.0.0.12", "10.0.0.2"),
            &["{file}: load_balancer[ilb].backend_pool[nvas].backends[10.0.0.2].address: 10.0.0.2 is the own address of interface[lan] (its kernel twin's); a backend needs another address [limitation: not the appliance's own address]"],
        ),
        fails(
            "backend not unicast",
            ilb_ha(false, &[]).replace("10.0.0.12", "10.0.0.255"),
            &["{file}: load_balancer[ilb].backend_pool[nvas].backends[10.0.0.255].address: 10.0.0.255 is the broadcast address of interface[lan]'s subnet 10.0.0.0/24; a backend needs a unicast address [limitation: unicast addresses only]"],
        ),
        fails(
            "two frontends on one address",
            format!("{}{}", ilb_ha(false, &[]), web_lb("plb", "public", "10.0.0.100", &["10.0.0.21"], 80)),
            &["{file}: load_balancer[plb].frontend[web].address: 10.0.0.100 is already the address of load_balancer[ilb].frontend[fe1]; each frontend needs an address of its own (one frontend may carry several rules) [limitation: one frontend per address]"],
        ),
        fails(
            "backend off every segment and route",
            ilb_ha(false, &[]).replace("10.0.0.12", "10.9.0.12"),
            &["{file}: load_balancer[ilb].backend_pool[nvas].backends[10.9.0.12]: backend 10.9.0.12 is on no interface's subnet and no route leads to it; add a route (interface.routes) or fix the address [limitation: backend reachable]"],
        ),
        ok(
            "weight 0 and drain are allowed",
            ilb_ha(false, &[]).replace(
                "[{ address = \"10.0.0.11\" }, { address = \"10.0.0.12\" }]",
                "[{ address = \"10.0.0.11\", weight = 0 }, { address = \"10.0.0.12\", drain = true }]",
            ),
        ),
        fails(
            "idle timeout 0",
            ilb_ha(false, &[]).replace("floating_ip = false\n", "floating_ip = false\n  idle_timeout_s = 0\n"),
            &["{file}: load_balancer[ilb].rule[ha].idle_timeout_s: 0 s is out of range; give 1 to 86400 seconds (24 h): how long an idle flow keeps its backend [limitation: idle timeout 1 s to 24 h]"],
        ),
        fails(
            "idle timeout over a day",
            ilb_ha(false, &[]).replace("floating_ip = false\n", "floating_ip = false\n  idle_timeout_s = 86401\n"),
            &["{file}: load_balancer[ilb].rule[ha].idle_timeout_s: 86401 s is out of range; give 1 to 86400 seconds (24 h): how long an idle flow keeps its backend [limitation: idle timeout 1 s to 24 h]"],
        ),
    ]);
}

#[test]
fn probes() {
    let with_probe = |protocol: &str, port: u32, extra: &str| {
        ilb_ha(false, &[probe("p", protocol, port, extra)]).replace(
            "  floating_ip = false\n",
            "  floating_ip = false\n  probe = \"p\"\n",
        )
    };
    run_cases(vec![
        ok("tcp probe", with_probe("tcp", 22, "  interval_ms = 50\n")),
        ok(
            "http probe",
            with_probe("http", 8080, "  path = \"/healthz\"\n  interval_ms = 3600000\n"),
        ),
        fails(
            "http probe without a path",
            with_probe("http", 8080, ""),
            &["{file}: load_balancer[ilb].probe[p].path: an http probe needs a path to GET, e.g. \"/\" [limitation: http probe path]"],
        ),
        fails(
            "http probe path without a slash",
            with_probe("http", 8080, "  path = \"healthz\"\n"),
            &["{file}: load_balancer[ilb].probe[p].path: `healthz` must start with \"/\", e.g. \"/healthz\" [limitation: http probe path]"],
        ),
        ok(
            "http probe path with a query and escapes",
            with_probe("http", 8080, "  path = \"/health%20check?full=1&x=a:b@c\"\n"),
        ),
        fails(
            "http probe path with a space",
            with_probe("http", 8080, "  path = \"/health check\"\n"),
            &["{file}: load_balancer[ilb].probe[p].path: `/health check` holds ` `, which a request target cannot carry (RFC 3986: letters, digits, -._~!$&'()*+,;=:@/? and %HH escapes); percent-encode it (a space is %20) [limitation: http probe path]"],
        ),
        fails(
            "http probe path with a fragment",
            with_probe("http", 8080, "  path = \"/status#top\"\n"),
            &["{file}: load_balancer[ilb].probe[p].path: `/status#top` holds `#`, which a request target cannot carry (RFC 3986: letters, digits, -._~!$&'()*+,;=:@/? and %HH escapes); percent-encode it (a space is %20) [limitation: http probe path]"],
        ),
        fails(
            "http probe path with a broken escape",
            with_probe("http", 8080, "  path = \"/a%2\"\n"),
            &["{file}: load_balancer[ilb].probe[p].path: `/a%2` holds a `%` without two hex digits behind it, which a request target cannot carry (RFC 3986: letters, digits, -._~!$&'()*+,;=:@/? and %HH escapes); percent-encode it (a space is %20) [limitation: http probe path]"],
        ),
        warns(
            "tcp probe with a path",
            with_probe("tcp", 22, "  path = \"/\"\n"),
            &["{file}: warning: load_balancer[ilb].probe[p].path: a tcp probe only connects, so path `/` has no effect; remove it, or use protocol \"http\" to GET it [limitation: path is for http probes]"],
        ),
        fails(
            "probe port 0",
            with_probe("tcp", 0, ""),
            &["{file}: load_balancer[ilb].probe[p].port: 0 is not a port to probe; give a port from 1 to 65535 [limitation: probe port 1 to 65535]"],
        ),
        fails(
            "probe interval under 50 ms",
            with_probe("tcp", 22, "  interval_ms = 10\n"),
            &["{file}: load_balancer[ilb].probe[p].interval_ms: 10 ms is too short: probes that often load the backends; give 50 to 3600000 (50 ms to 1 h) [limitation: probe interval 50 ms to 1 h]"],
        ),
        fails(
            "probe interval over an hour",
            with_probe("tcp", 22, "  interval_ms = 7200000\n"),
            &["{file}: load_balancer[ilb].probe[p].interval_ms: 7200000 ms is too long: a failed backend would go unnoticed for hours; give 50 to 3600000 (50 ms to 1 h) [limitation: probe interval 50 ms to 1 h]"],
        ),
        fails(
            "probe thresholds 0",
            with_probe("tcp", 22, "  unhealthy_threshold = 0\n  healthy_threshold = 0\n"),
            &[
                "{file}: load_balancer[ilb].probe[p].unhealthy_threshold: must be at least 1 (consecutive probe results before a backend's state changes) [limitation: probe thresholds at least 1]",
                "{file}: load_balancer[ilb].probe[p].healthy_threshold: must be at least 1 (consecutive probe results before a backend's state changes) [limitation: probe thresholds at least 1]",
            ],
        ),
        fails(
            "rule names a missing probe",
            ilb_ha(false, &[]).replace("  floating_ip = false\n", "  floating_ip = false\n  probe = \"ssh\"\n"),
            &["{file}: load_balancer[ilb].rule[ha].probe: no probe named `ssh` in load_balancer[ilb] (it has none); a rule names a probe of its own load balancer, or none [seed rule 7]"],
        ),
    ]);
}

#[test]
fn data_plane_and_interfaces() {
    let eal = |args: &str| {
        ilb_ha(false, &[]).replace(
            "eal_args = [\"--no-pci\", \"--vdev=net_af_packet0,iface=lb0\"]",
            &format!("eal_args = [{args}]"),
        )
    };
    run_cases(vec![
        fails(
            "Maglev table size not prime",
            with_dataplane("maglev_table_size = 65536"),
            &["{file}: dataplane.maglev_table_size: 65536 is not prime; Maglev needs a prime table size such as 65537 (default 65537) [seed rule 7]"],
        ),
        fails(
            "Maglev table no larger than a pool",
            with_dataplane("maglev_table_size = 2"),
            &["{file}: dataplane.maglev_table_size: 2 must be larger than the 2 backends of load_balancer[ilb].backend_pool[nvas]; every backend needs entries of its own [seed rule 7]"],
        ),
        warns(
            "Maglev table under 100 entries per backend",
            with_dataplane("maglev_table_size = 101"),
            &["{file}: warning: dataplane.maglev_table_size: 101 is less than 100 × the 2 backends of load_balancer[ilb].backend_pool[nvas] = 200; Maglev balances flows evenly only with a table that large: choose a prime of at least 200 (the smallest prime at least that is 211) [limitation: Maglev table of 100 × backends]"],
        ),
        ok("Maglev table of 100 entries per backend", with_dataplane("maglev_table_size = 211")),
        fails(
            "no workers",
            with_dataplane("workers = 0"),
            &["{file}: dataplane.workers: must be at least 1: the worker lcores, one RX/TX queue pair each, are what forward packets [limitation: at least one worker]"],
        ),
        fails(
            "no flow table",
            with_dataplane("flow_table_capacity = 0"),
            &["{file}: dataplane.flow_table_capacity: must be at least 1 (flow-table entries per worker; 1048576 by default) [limitation: flow table capacity above 0]"],
        ),
        fails(
            "interface port not among the vdevs",
            ilb_ha(false, &[]).replacen("\nport = 0\n", "\nport = 1\n", 1),
            &["{file}: interface[lan].port: DPDK port 1 does not exist: with --no-pci the ports are the --vdev devices of the EAL arguments in order, and there are 1 (port 0: net_af_packet0); add a --vdev to dpdk.eal_args or fix the port (`haports run` also counts the EAL arguments given after `--`) [limitation: DPDK port must exist]"],
        ),
        ok(
            "interface port unknowable with PCI devices",
            eal("\"--vdev=net_af_packet0,iface=lb0\"").replacen("\nport = 0\n", "\nport = 1\n", 1),
        ),
        ok(
            "interface port unknowable with an allow list",
            eal("\"--no-pci\", \"-a\", \"0000:01:00.0\"").replacen("\nport = 0\n", "\nport = 3\n", 1),
        ),
        ok(
            "second interface on the second vdev",
            eal("\"--no-pci\", \"--vdev=net_af_packet0,iface=lb0\", \"--vdev\", \"net_tap1,iface=x\"")
                + "\n[[interface]]\nname = \"wan\"\nport = 1\naddress = \"192.0.2.2/24\"\n",
        ),
        fails(
            "two interfaces on one port",
            eal("\"--no-pci\", \"--vdev=net_af_packet0,iface=lb0\", \"--vdev=net_af_packet1,iface=lb1\"")
                + "\n[[interface]]\nname = \"wan\"\nport = 0\naddress = \"192.0.2.2/24\"\n",
            &["{file}: interface[wan].port: DPDK port 0 is already used by interface[lan]; each interface needs a port of its own [limitation: one interface per DPDK port]"],
        ),
        fails(
            "route via an off-link next hop",
            ilb_ha(false, &[]).replace(
                "address = [\"10.0.0.2/24\", \"fd00::2/64\"]\n",
                "address = [\"10.0.0.2/24\", \"fd00::2/64\"]\nroutes = [{ to = \"10.9.0.0/16\", via = \"10.1.0.1\" }]\n",
            ),
            &["{file}: interface[lan].routes[10.9.0.0/16].via: next hop 10.1.0.1 is not on a subnet of this interface (10.0.0.2/24, fd00::2/64); a next hop must be on-link [limitation: next hop on-link]"],
        ),
    ]);
}

#[test]
fn names_and_references() {
    run_cases(vec![
        fails(
            "rule names a missing pool",
            ilb_ha(false, &[]).replace("backend_pool = \"nvas\"", "backend_pool = \"fws\""),
            &["{file}: load_balancer[ilb].rule[ha].backend_pool: no backend_pool named `fws` in load_balancer[ilb] (it has `nvas`); a rule names a pool of its own load balancer [seed rule 7]"],
        ),
        fails(
            "rule names a missing frontend",
            ilb_ha(false, &[]).replace("frontend = \"fe1\"", "frontend = \"fe2\""),
            &["{file}: load_balancer[ilb].rule[ha].frontend: no frontend named `fe2` in load_balancer[ilb] (it has `fe1`); a rule names a frontend of its own load balancer [seed rule 7]"],
        ),
        fails(
            "two pools of one name",
            ilb_ha(false, &[pool("nvas", &["10.0.0.13"])]),
            &["{file}: load_balancer[ilb].backend_pool[nvas]: the name `nvas` is used by more than one backend_pool of load_balancer[ilb]; names must be unique [seed rule 7]"],
        ),
    ]);
}

#[test]
fn interfaces_pools_and_backends() {
    run_cases(vec![
        fails(
            "no interface",
            ilb_ha(true, &[])
                .replace("[[interface]]\nname = \"lan\"\nport = 0\naddress = [\"10.0.0.2/24\", \"fd00::2/64\"]\n", ""),
            &[
                "{file}: interface: no [[interface]]: the appliance needs at least one DPDK port [limitation: at least one interface]",
                "{file}: load_balancer[ilb].backend_pool[nvas].backends[10.0.0.11]: backend 10.0.0.11 is on no interface's subnet and no route leads to it; add a route (interface.routes) or fix the address [limitation: backend reachable]",
                "{file}: load_balancer[ilb].backend_pool[nvas].backends[10.0.0.12]: backend 10.0.0.12 is on no interface's subnet and no route leads to it; add a route (interface.routes) or fix the address [limitation: backend reachable]",
            ],
        ),
        fails(
            "interface without an address",
            format!("{}{}", ilb_ha(false, &[]), "\n[[interface]]\nname = \"wan\"\nport = 0\naddress = []\n"),
            &[
                "{file}: interface[wan].port: DPDK port 0 is already used by interface[lan]; each interface needs a port of its own [limitation: one interface per DPDK port]",
                "{file}: interface[wan].address: needs at least one address with its prefix length, e.g. 10.0.0.2/24 [limitation: interface needs an address]",
            ],
        ),
        fails(
            "multicast MAC address",
            ilb_ha(false, &[]).replace("{ address = \"10.0.0.12\" }", "{ address = \"10.0.0.12\", mac = \"01:00:5e:00:00:01\" }"),
            &["{file}: load_balancer[ilb].backend_pool[nvas].backends[10.0.0.12].mac: 01:00:5e:00:00:01 is not a unicast MAC address (group bit set, or all zero) [limitation: unicast addresses only]"],
        ),
        fails(
            "empty pool",
            ilb_ha(false, &[]).replace("backends = [{ address = \"10.0.0.11\" }, { address = \"10.0.0.12\" }]", "backends = []"),
            &["{file}: load_balancer[ilb].backend_pool[nvas].backends: the pool has no backends; list at least one [limitation: pool needs backends]"],
        ),
        fails(
            "backend listed twice",
            ilb_ha(false, &[]).replace("10.0.0.12", "10.0.0.11"),
            &["{file}: load_balancer[ilb].backend_pool[nvas].backends[10.0.0.11].address: 10.0.0.11 is listed more than once in this pool; list each backend once (weight gives it a larger share) [limitation: distinct backends in a pool]"],
        ),
        fails(
            "one instance twice in a pool",
            ilb_ha(false, &[]).replace("{ address = \"10.0.0.12\" }", "{ address = \"10.0.0.12\", instance = \"10.0.0.11\" }"),
            &["{file}: load_balancer[ilb].backend_pool[nvas].backends[10.0.0.12].instance: instance `10.0.0.11` is named by more than one backend of this pool; Maglev needs distinct instances [limitation: distinct backends in a pool]"],
        ),
    ]);
}

/// Every problem of a config in one run, one line each, in a stable order.
#[test]
fn every_problem_in_one_run() {
    let config = format!(
        "[dataplane]\nworkers = 0\n\n{}{}",
        ilb_ha(false, &[rule("web", "fe1", "nvas", "tcp 80 80", false)])
            .replace("10.0.0.12", "fd00::12"),
        web_lb("plb", "public", "10.0.0.100", &["10.0.0.13"], 80)
    );
    run_cases(vec![fails(
        "several problems",
        config,
        &[
            "{file}: dataplane.workers: must be at least 1: the worker lcores, one RX/TX queue pair each, are what forward packets [limitation: at least one worker]",
            "{file}: load_balancer[plb].frontend[web].address: 10.0.0.100 is already the address of load_balancer[ilb].frontend[fe1]; each frontend needs an address of its own (one frontend may carry several rules) [limitation: one frontend per address]",
            "{file}: load_balancer[ilb].rule[ha]: without floating IP the rule rewrites frontend `fe1` (10.0.0.100, IPv4) to its backends, but backend_pool `nvas` has IPv6 backend fd00::12; NAT cannot change the address family: give the rule a pool of IPv4 backends, or set floating_ip = true [limitation: NAT keeps the address family]",
            "{file}: load_balancer[ilb].rule[web]: without floating IP the rule rewrites frontend `fe1` (10.0.0.100, IPv4) to its backends, but backend_pool `nvas` has IPv6 backend fd00::12; NAT cannot change the address family: give the rule a pool of IPv4 backends, or set floating_ip = true [limitation: NAT keeps the address family]",
            "{file}: load_balancer[ilb].rule[ha]: a non-floating HA-ports rule must be the only rule on its load balancer, but rule `web` is on load_balancer[ilb] too, on the same frontend `fe1` and backend 10.0.0.11, where both rules would need floating IP; set floating_ip = true on both [seed rules 3 and 6]",
        ],
    )]);
}

// ---- the examples, parse errors, and run ------------------------------------------------

/// Each scenario of the seed has a commented example, and every example passes `check`
/// with no problem at all, not even a warning.
#[test]
fn every_example_passes_check_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    for scenario in [
        "basic.toml",
        "ha-ports-plus-public.toml",
        "multi-frontend-floating.toml",
        "nva-active-passive.toml",
        "nva-n-active.toml",
        "port-translation.toml",
    ] {
        assert!(
            names.iter().any(|n| n == scenario),
            "examples/{scenario} is missing"
        );
    }
    for name in names {
        let path = dir.join(&name);
        let (code, stdout, stderr) = haports(&["check".as_ref(), path.as_os_str()]);
        assert_eq!(
            (code, stdout.as_str()),
            (Some(0), "ok\n"),
            "examples/{name}: {stderr}"
        );
        let text = std::fs::read_to_string(&path).expect("read example");
        assert!(
            text.starts_with("# "),
            "examples/{name} opens with a comment"
        );
    }
}

#[test]
fn a_file_that_cannot_be_parsed_exits_2_with_its_line() {
    for (edit, line, what) in [
        (
            "frontend_port = 0",
            "frontend_port = 70000",
            "invalid value: integer `70000`, expected a port number from 0 to 65535",
        ),
        (
            "floating_ip = false",
            "floating = false",
            "unknown key `floating`",
        ),
    ] {
        let text = ilb_ha(false, &[]).replacen(edit, line, 1);
        let at = text[..text.find(line).unwrap()].matches('\n').count() + 1;
        let (code, lines) = check(&text, false);
        assert_eq!(code, Some(2), "{lines:?}");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(&format!("{{file}}:{at}:")),
            "{lines:?}"
        );
        assert!(lines[0].contains(what), "{lines:?}");
    }
}

/// `run` refuses a config on the same findings, before touching DPDK, and counts the EAL
/// arguments it was given after `--`. (The config also has no worker, so `run` stops at the
/// check either way and never starts DPDK here.)
#[test]
fn run_refuses_what_check_rejects_and_counts_its_own_eal_arguments() {
    let file = TempConfig::new(&format!(
        "[dataplane]\nworkers = 0\n\n{}",
        ilb_ha(false, &[]).replacen("\nport = 0\n", "\nport = 1\n", 1)
    ));
    let run = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> =
            vec!["run".as_ref(), "--config".as_ref(), file.path().as_os_str()];
        if !extra.is_empty() {
            args.push("--".as_ref());
            args.extend(extra.iter().map(std::ffi::OsStr::new));
        }
        haports(&args)
    };
    let shown = file.path().display().to_string();
    let workers = format!("{shown}: dataplane.workers: must be at least 1");
    let port = format!("{shown}: interface[lan].port: DPDK port 1 does not exist");

    let (code, stdout, stderr) = run(&[]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with(&workers), "{stderr}");
    assert!(lines[1].starts_with(&port), "{stderr}");

    let (code, stdout, stderr) = run(&["--vdev=net_null1"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "port 1 is the vdev given to run: {stderr}");
    assert!(lines[0].starts_with(&workers), "{stderr}");
}

/// Free 2 MB hugepages (0 when the pool does not exist).
fn free_hugepages() -> u64 {
    std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Start-up errors, with hugepages and without: a clear message and exit 1, never a crash.
/// A port that fails half-way through its start (net_pcap cannot take a configured MAC,
/// after its RX queues already hold mbufs of the pool) used to end in SIGSEGV at EAL cleanup
/// with hugepages, the message lost (the pool was freed before the device holding its mbufs
/// was closed). Also a device that cannot be created, too few lcores and a metrics address
/// already taken. Needs root (DPDK).
#[test]
fn start_up_errors_are_clear_and_exit_1_never_a_crash() {
    let dir = std::env::temp_dir().join(format!("haports-badport-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("in.pcap");
    // A pcap of four 60-byte frames, replayed forever: the PMD fills its queue at setup.
    let mut bytes = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65535, 1] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    for _ in 0..4 {
        for word in [0u32, 0, 60, 60] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.extend_from_slice(&[0u8; 60]);
    }
    std::fs::write(&pcap, bytes).unwrap();
    let vdev = format!(
        "--vdev=net_pcap0,rx_pcap={},infinite_rx=1,tx_pcap={}",
        pcap.display(),
        dir.join("out.pcap").display()
    );
    // With hugepages above all (the crash happened only with them): never skipped unless
    // asked, and the test runs apart from the labs, which take hugepages too.
    let mut memories = vec![r#""--no-huge", "--no-shconf", "-m", "512", "--no-telemetry""#];
    if free_hugepages() >= 256 {
        memories.push(r#""--in-memory", "--no-telemetry""#);
    } else {
        assert!(
            std::env::var_os("HAPORTS_TEST_WITHOUT_HUGEPAGES").is_some(),
            "fewer than 256 free 2 MB hugepages: reserve them (scripts/test.sh does), or set \
             HAPORTS_TEST_WITHOUT_HUGEPAGES=1 to test start-up without them"
        );
    }
    let mac = "\nport = 0\nmac = \"02:00:00:00:00:aa\"\n";
    // The runs in a network namespace of the test's own: one gets as far as the kernel
    // twin, whose addresses (10.0.0.2/24, fd00::2/64) have no place among the host's.
    let ns = Namespace::new(&format!("hpchk{}", std::process::id()));
    // A metrics address already taken there (its failure once came after the workers were
    // launched, and they went on polling ports that were closed under them).
    let taker = "import socket, sys\n\
        s = socket.socket()\n\
        s.bind(('127.0.0.1', 0))\n\
        s.listen()\n\
        print(s.getsockname()[1], flush=True)\n\
        sys.stdin.read()\n";
    let mut taken = ns
        .command("/usr/bin/python3")
        .args(["-c", taker])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the address's taker");
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(taken.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    let taken_at = format!("127.0.0.1:{}", port.trim());
    let metrics = format!("[control]\nmetrics_listen = \"{taken_at}\"\n\n[dpdk]");
    let in_use = format!("listening on {taken_at}: Address already in use");
    // A running instance (its control socket answers) announcing through BIRD: a second
    // start with its config must leave its routes alone.
    let live = dir.join("live.sock");
    let _live = std::os::unix::net::UnixListener::bind(&live).unwrap();
    let routes = dir.join("routes.conf");
    let announced = "route 10.0.0.100/32 via \"hp-lan\";\n";
    std::fs::write(&routes, announced).unwrap();
    let second = format!(
        "[control]\nsocket = \"{}\"\n\n[announce]\nbird_socket = \"{}\"\nroutes_file = \"{}\"\n\n[dpdk]",
        live.display(),
        dir.join("bird.ctl").display(),
        routes.display()
    );
    let another_runs = format!("{} is in use: another haports runs", live.display());
    let cases = [
        // (what, device, config edit, what stderr says)
        (
            "unsettable MAC",
            vdev.clone(),
            ("\nport = 0\n", mac),
            "port 0: setting MAC 02:00:00:00:00:aa: Operation not supported",
        ),
        (
            "missing device",
            "--vdev=net_af_packet0,iface=haports-none0".to_owned(),
            ("", ""),
            "port 0: reading device info (does it exist?",
        ),
        (
            "a mempool handler of one thread",
            vdev.clone(),
            (
                "\"--no-pci\"",
                "\"--no-pci\", \"--mbuf-pool-ops-name\", \"ring_sp_sc\"",
            ),
            "its handler ring_sp_sc is not safe for several threads",
        ),
        (
            "too few lcores",
            vdev.clone(),
            ("[dpdk]", "[dataplane]\nworkers = 2\n\n[dpdk]"),
            "dataplane.workers: 2 worker(s) need 3 EAL lcores",
        ),
        (
            "metrics address taken",
            vdev.clone(),
            ("[dpdk]", metrics.as_str()),
            in_use.as_str(),
        ),
        (
            "another instance runs",
            vdev.clone(),
            ("[dpdk]", second.as_str()),
            another_runs.as_str(),
        ),
    ];
    for memory in memories {
        for (what, device, (from, to), says) in &cases {
            let eal = format!("eal_args = [\"-l\", \"0-1\", \"--no-pci\", {memory}, \"{device}\"]");
            let mut text = ilb_ha(false, &[]).replacen(
                "eal_args = [\"--no-pci\", \"--vdev=net_af_packet0,iface=lb0\"]",
                &eal,
                1,
            );
            if !from.is_empty() {
                text = text.replacen(from, to, 1);
            }
            let file = TempConfig::new(&text);
            let (code, stdout, stderr) = outcome(ns.command(env!("CARGO_BIN_EXE_haports")).args([
                "run".as_ref(),
                "--config".as_ref(),
                file.path().as_os_str(),
            ]));
            assert_eq!(
                code,
                Some(1),
                "{what}, {memory}: exit 1, not a signal\n{stdout}{stderr}"
            );
            assert!(
                stderr.contains(says),
                "{what}, {memory}: the reason is told\n{stderr}"
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(&routes).unwrap(),
        announced,
        "the running instance's routes were left alone"
    );
    drop(taken.stdin.take());
    let _ = taken.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- what check accepts does what it says (audit) --------------------------------------

/// Each case once passed `check` and then did not work: DSR towards a router, addresses the
/// data plane drops as martian sources, more workers than EAL lcores, a probe that never runs.
#[test]
fn accepted_configs_work_as_written() {
    let routed = |config: String| {
        config.replace(
            "address = [\"10.0.0.2/24\", \"fd00::2/64\"]\n",
            "address = [\"10.0.0.2/24\", \"fd00::2/64\"]\nroutes = [{ to = \"10.9.0.0/16\", via = \"10.0.0.1\" }]\n",
        )
    };
    // (Each worker polls a queue of its own: the AF_PACKET device fills as many.)
    let lcores = |eal: &str, workers: u32| {
        format!("[dataplane]\nworkers = {workers}\n\n{}", ilb_ha(false, &[]))
            .replace(
                "eal_args = [\"--no-pci\",",
                &format!("eal_args = [{eal}, \"--no-pci\","),
            )
            .replace("iface=lb0\"", &format!("iface=lb0,qpairs={workers}\""))
    };
    run_cases(vec![
        fails(
            "DSR to a routed backend",
            routed(ilb_ha(true, &[]).replace("10.0.0.12", "10.9.0.12")),
            &["{file}: load_balancer[ilb].rule[ha].floating_ip: floating IP (DSR) rewrites only the destination MAC, but backend 10.9.0.12 of pool `nvas` is on no interface's subnet, only behind a route: the router would get packets still addressed to the frontend and send them back; put the backends on a segment, give the pool encap = \"vxlan\", or set floating_ip = false [limitation: DSR backends on-link or VXLAN]"],
        ),
        warns(
            "NAT to a routed backend",
            routed(ilb_ha(false, &[]).replace("10.0.0.12", "10.9.0.12")),
            &["{file}: warning: load_balancer[ilb].rule[ha].backend_pool: frames routed through frontend `fe1` (transit) would leave for backend 10.9.0.12 of pool `nvas` with only their MAC header changed, which is behind a route: the router would get them still addressed to their destination, so the frontend takes no transit (dropped as no_frontend); put the backends on a segment or give the pool encap = \"vxlan\" [limitation: transit backends on-link or VXLAN]"],
        ),
        ok(
            "DSR to routed backends inside VXLAN",
            routed(ilb_ha(true, &[])).replace(
                "  backends = [{ address = \"10.0.0.11\" }, { address = \"10.0.0.12\" }]\n",
                "  encap = \"vxlan\"\n  vni = 100\n  backends = [{ address = \"10.9.0.11\", mac = \"02:00:00:00:00:11\" }, { address = \"10.9.0.12\", mac = \"02:00:00:00:00:12\" }]\n",
            ),
        ),
        fails(
            "frontend in 240.0.0.0/4",
            ilb_ha(true, &[]).replace("10.0.0.100", "240.0.0.100"),
            &["{file}: load_balancer[ilb].frontend[fe1].address: 240.0.0.100 is in the reserved 240.0.0.0/4; a frontend needs a unicast address [limitation: unicast addresses only]"],
        ),
        fails(
            "frontend in 0.0.0.0/8",
            ilb_ha(true, &[]).replace("10.0.0.100", "0.1.2.3"),
            &["{file}: load_balancer[ilb].frontend[fe1].address: 0.1.2.3 is in 0.0.0.0/8 (\"this network\"); a frontend needs a unicast address [limitation: unicast addresses only]"],
        ),
        fails(
            "interface and backend in 240.0.0.0/4",
            ilb_ha(false, &[])
                .replace("\"fd00::2/64\"]", "\"240.0.0.2/24\"]")
                .replace("10.0.0.12", "240.0.0.12"),
            &[
                "{file}: interface[lan].address: 240.0.0.2 is in the reserved 240.0.0.0/4; an interface needs a unicast address [limitation: unicast addresses only]",
                "{file}: load_balancer[ilb].backend_pool[nvas].backends[240.0.0.12].address: 240.0.0.12 is in the reserved 240.0.0.0/4; a backend needs a unicast address [limitation: unicast addresses only]",
            ],
        ),
        fails(
            "more workers than -l lcores",
            lcores("\"-l\", \"0-1\"", 4),
            &["{file}: dataplane.workers: 4 worker(s) need 5 EAL lcores (one each, and the main lcore for the control thread), but dpdk.eal_args give 2 (`-l 0-1`); give more, e.g. `-l 0-4`, or set workers to at most 1 [limitation: an lcore per worker, and one more]"],
        ),
        fails(
            "as many workers as -c lcores",
            lcores("\"-c\", \"0x3\"", 2),
            &["{file}: dataplane.workers: 2 worker(s) need 3 EAL lcores (one each, and the main lcore for the control thread), but dpdk.eal_args give 2 (`-c 0x3`); give more, e.g. `-l 0-2`, or set workers to at most 1 [limitation: an lcore per worker, and one more]"],
        ),
        fails(
            "a worker and a single lcore",
            lcores("\"--lcores=0@(0-1)\"", 1),
            &["{file}: dataplane.workers: 1 worker(s) need 2 EAL lcores (one each, and the main lcore for the control thread), but dpdk.eal_args give 1 (`--lcores=0@(0-1)`); give more, e.g. `-l 0-1` [limitation: an lcore per worker, and one more]"],
        ),
        ok("workers and -l lcores to match", lcores("\"-l\", \"0,2-3\"", 2)),
        ok("workers and --lcores to match", lcores("\"--lcores=0@(0-1),1@0,2@1\"", 2)),
        ok("workers and no lcore option", lcores("\"--in-memory\"", 4)),
        warns(
            "probe no rule names",
            ilb_ha(false, &[probe("p", "tcp", 22, "")]),
            &["{file}: warning: load_balancer[ilb].probe[p]: no rule of load_balancer[ilb] names this probe, so it never runs and marks no backend down; name it in a rule (probe = \"p\") or remove it [limitation: probe named by a rule]"],
        ),
    ]);
}
