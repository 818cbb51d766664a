//! Network virtual appliances behind HA ports, end to end: spoke A and spoke B route to each
//! other through a frontend of haports (transit), which balances the flows over three NVAs
//! running real nftables stateful firewalls (`scripts/nva-lab.sh`). Real kernel TCP and UDP,
//! real conntrack: a connection only works if both of its directions cross the same NVA, and
//! each NVA's conntrack table tells which flows it carried. Needs root.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use common::{metric, metric_sum, traffic_in, Appliance, Traffic};

const CLIENT: &str = "10.1.0.10";
const SERVER: &str = "10.2.0.10";
const NVAS: [&str; 3] = ["n1", "n2", "n3"];
const HUB_NVAS: [&str; 3] = ["10.0.0.11", "10.0.0.12", "10.0.0.13"];
/// The NVAs behind the router, reached inside VXLAN (vxlan mode).
const VXLAN_NVAS: [&str; 3] = ["10.9.0.11", "10.9.0.12", "10.9.0.13"];
const UNTRUSTED_NVAS: [&str; 3] = ["10.0.10.11", "10.0.10.12", "10.0.10.13"];
const TRUSTED_NVAS: [&str; 3] = ["10.0.20.11", "10.0.20.12", "10.0.20.13"];

static NEXT: AtomicU32 = AtomicU32::new(0);

/// 24 destination ports, 8000-8023 (the servers listen on all of them).
fn ports() -> Vec<u16> {
    (8000..8024).collect()
}

/// One lab of `scripts/nva-lab.sh`, torn down on drop.
struct NvaLab {
    tag: String,
    mode: &'static str,
}

/// A flow as the client ran it: protocol, source port, destination port.
type Flow = (&'static str, u16, u16);

/// One conntrack entry of an NVA, for a flow between the spokes.
#[derive(Debug)]
struct Conn {
    proto: String,
    src: String,
    sport: u16,
    dport: u16,
    /// Packets were seen in the reply direction (no `[UNREPLIED]`).
    replied: bool,
    assured: bool,
}

impl NvaLab {
    fn up(mode: &'static str) -> NvaLab {
        common::need_root();
        let tag = common::lab_tag("hpn", NEXT.fetch_add(1, Ordering::SeqCst));
        let lab = NvaLab { tag, mode };
        lab.script(&["up", &lab.tag, mode]);
        lab
    }

    fn script(&self, args: &[&str]) {
        let out = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/nva-lab.sh"))
            .args(args)
            .output()
            .expect("run scripts/nva-lab.sh");
        assert!(
            out.status.success(),
            "nva-lab.sh {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn dir(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/haports-nva-lab-{}", self.tag))
    }

    fn config(&self) -> PathBuf {
        self.dir().join("haports.toml")
    }

    /// The NVAs' addresses the appliance balances over (both pools in two-nic mode).
    fn backends(&self) -> Vec<&'static str> {
        if self.mode == "two-nic" {
            UNTRUSTED_NVAS
                .iter()
                .chain(&TRUSTED_NVAS)
                .copied()
                .collect()
        } else if self.mode == "vxlan" {
            VXLAN_NVAS.to_vec()
        } else {
            HUB_NVAS.to_vec()
        }
    }

    /// Starts the appliance and waits until every NVA is resolved and healthy.
    fn appliance(&self) -> Appliance {
        Appliance::start_in(&self.tag, &self.dir(), &self.config(), &self.backends())
    }

    fn exec(&self, host: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &format!("{}-{host}", self.tag)])
            .args(args)
            .output()
            .expect("run ip netns exec")
    }

    /// Exchanges from spoke host `from` ("a" or "b") to `dst`.
    fn traffic(&self, from: &str, proto: &str, dst: &str, count: usize, timeout: f64) -> Traffic {
        traffic_in(
            &format!("{}-{from}", self.tag),
            proto,
            dst,
            &ports(),
            count,
            timeout,
        )
    }

    /// NVA `nva`'s conntrack entries of flows between the spokes (not its probe's).
    fn conntrack(&self, nva: &str) -> Vec<Conn> {
        let out = self.exec(nva, &["conntrack", "-L"]);
        assert!(
            out.status.success(),
            "conntrack -L in {nva}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(parse_conntrack)
            .filter(|c| c.src.starts_with("10.1.0.") || c.src.starts_with("10.2.0."))
            .collect()
    }

    /// Which NVAs' conntrack holds each of `flows` (A to B): every NVA that has it.
    fn carriers(&self, flows: &BTreeSet<Flow>) -> BTreeMap<Flow, Vec<&'static str>> {
        let mut found: BTreeMap<Flow, Vec<&'static str>> = BTreeMap::new();
        for nva in NVAS {
            for c in self.conntrack(nva) {
                let Some(flow) = flows
                    .iter()
                    .find(|f| f.0 == c.proto && f.1 == c.sport && f.2 == c.dport)
                else {
                    continue;
                };
                if c.src != CLIENT {
                    continue;
                }
                assert!(
                    c.replied && (c.proto != "tcp" || c.assured),
                    "{nva} saw only one direction of {flow:?}: {c:?}"
                );
                found.entry(*flow).or_default().push(nva);
            }
        }
        found
    }

    /// Packets counted by NVA `nva`'s nftables counter `name` (see scripts/nva-lab.sh).
    fn counter(&self, nva: &str, name: &str) -> u64 {
        let out = self.exec(nva, &["nft", "list", "counter", "inet", "fw", name]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter {name} in {nva}: {text}"))
    }

    /// Packets the NVAs' firewalls refused (their forward chains' final drop).
    fn refused_total(&self) -> u64 {
        NVAS.iter().map(|n| self.counter(n, "refused")).sum()
    }
}

impl Drop for NvaLab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/nva-lab.sh"))
            .args(["down", &self.tag])
            .output();
    }
}

/// `tcp 6 117 TIME_WAIT src=A dst=B sport=P dport=Q src=B dst=A sport=Q dport=P [ASSURED] …`
fn parse_conntrack(line: &str) -> Option<Conn> {
    let proto = line.split_whitespace().next()?.to_owned();
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key).map(str::to_owned))
    };
    Some(Conn {
        proto,
        src: field("src=")?,
        sport: field("sport=")?.parse().ok()?,
        dport: field("dport=")?.parse().ok()?,
        replied: !line.contains("[UNREPLIED]"),
        assured: line.contains("[ASSURED]"),
    })
}

/// Every exchange answered, from the server, on 20+ destination ports.
fn assert_all_answered(what: &str, t: &Traffic, expected: usize) {
    assert!(
        t.failures.is_empty(),
        "{what}: {} of {expected} failed, first: {:?}",
        t.failures.len(),
        t.failures.first()
    );
    assert_eq!(t.total(), expected, "{what}: every exchange answered");
    let dports: BTreeSet<u16> = t.flows.iter().map(|f| f.1).collect();
    assert!(dports.len() >= 20, "{what}: {} ports", dports.len());
}

fn flows(proto: &'static str, t: &Traffic) -> BTreeSet<Flow> {
    t.flows.iter().map(|f| (proto, f.0, f.1)).collect()
}

/// Each flow was carried by exactly one NVA; returns the NVA of each flow.
fn carried_by_one(lab: &NvaLab, flows: &BTreeSet<Flow>) -> BTreeMap<Flow, &'static str> {
    let found = lab.carriers(flows);
    flows
        .iter()
        .map(|f| match found.get(f).map(Vec::as_slice) {
            Some([nva]) => (*f, *nva),
            other => panic!("flow {f:?} is in the conntrack of {other:?}, not of exactly one NVA"),
        })
        .collect()
}

fn spread(carried: &BTreeMap<Flow, &'static str>) -> BTreeMap<&'static str, usize> {
    let mut per: BTreeMap<&'static str, usize> = BTreeMap::new();
    for nva in carried.values() {
        *per.entry(nva).or_default() += 1;
    }
    per
}

/// Every NVA carried at least 15% of the flows.
fn assert_spread(what: &str, carried: &BTreeMap<Flow, &'static str>) {
    let per = spread(carried);
    eprintln!("{what}: {} flows, per NVA {per:?}", carried.len());
    for nva in NVAS {
        let n = per.get(nva).copied().unwrap_or(0);
        assert!(
            n * 100 >= carried.len() * 15,
            "{what}: {nva} carried {n} of {} flows: {per:?}",
            carried.len()
        );
    }
}

/// `haports lookup --config … --via VIA [--down …] --json -`: the instance and address it
/// names for each flow (or panics on a drop).
fn lookup(lab: &NvaLab, via: &str, down: &[&str], flows: &[String]) -> Vec<(String, String)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haports"));
    cmd.args(["lookup", "--config"]).arg(lab.config());
    cmd.args(["--via", via, "--json"]);
    for d in down {
        cmd.args(["--down", d]);
    }
    let mut child = cmd
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run haports lookup");
    let input: String = flows.iter().map(|f| format!("{f}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "haports lookup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("lookup --json line");
            assert!(v.get("drop").is_none(), "lookup drops a flow: {v}");
            (
                v["instance"].as_str().unwrap().to_owned(),
                v["backend"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(answers.len(), flows.len(), "one answer per flow");
    answers
}

/// `haports lookup --via` names, for each flow, the NVA whose conntrack holds it: through
/// `via` for the client's direction (A to B) and through `reply_via` for the server's.
/// `addresses[i]`/`reply_addresses[i]` are NVA n(i+1)'s addresses on those sides.
fn assert_lookup_agrees(
    lab: &NvaLab,
    carried: &BTreeMap<Flow, &'static str>,
    (via, addresses): (&str, &[&str; 3]),
    (reply_via, reply_addresses): (&str, &[&str; 3]),
    down: &[&str],
) {
    let forward: Vec<String> = carried
        .keys()
        .map(|(p, s, d)| format!("{p} {CLIENT}:{s} {SERVER}:{d}"))
        .collect();
    let reverse: Vec<String> = carried
        .keys()
        .map(|(p, s, d)| format!("{p} {SERVER}:{d} {CLIENT}:{s}"))
        .collect();
    let there = lookup(lab, via, down, &forward);
    let back = lookup(lab, reply_via, down, &reverse);
    for (((flow, nva), (inst, addr)), (rinst, raddr)) in carried.iter().zip(there).zip(back) {
        let i = NVAS.iter().position(|n| n == nva).unwrap();
        assert_eq!(
            addr, addresses[i],
            "lookup --via {via} sends {flow:?} to {addr} ({inst}), but it went through {nva}"
        );
        assert_eq!(
            raddr, reply_addresses[i],
            "lookup --via {reply_via} sends the reply of {flow:?} to {raddr} ({rinst}), \
             but it went through {nva}"
        );
        assert_eq!(inst, rinst, "both directions of {flow:?}: one instance");
    }
}

/// Nothing of the test traffic was dropped by the appliance.
fn assert_no_drops(lb: &Appliance) {
    let m = lb.metrics();
    for reason in [
        "truncated",
        "malformed",
        "no_rule",
        "no_frontend",
        "no_healthy_backend",
        "no_neighbour",
        "ttl",
        "tx_full",
        "martian_source",
        "tcp_flags",
        "ip_checksum",
    ] {
        let n = metric(&m, "haports_drops_total", &[("reason", reason)]).unwrap_or(0.0);
        assert_eq!(n, 0.0, "drops for {reason}:\n{m}");
    }
}

/// `count` TCP connections and `count` UDP exchanges from spoke A to spoke B, every one
/// answered; the flows they made (but those of `earlier`, whose five-tuples the kernel may
/// have used again), and the NVA that carried each.
fn a_to_b(
    lab: &NvaLab,
    count: usize,
    earlier: &BTreeMap<Flow, &'static str>,
) -> BTreeMap<Flow, &'static str> {
    let tcp = lab.traffic("a", "tcp", SERVER, count, 2.0);
    assert_all_answered("tcp A to B", &tcp, count);
    let udp = lab.traffic("a", "udp", SERVER, count, 2.0);
    assert_all_answered("udp A to B", &udp, count);
    let mut all = flows("tcp", &tcp);
    all.extend(flows("udp", &udp));
    all.retain(|f| !earlier.contains_key(f));
    carried_by_one(lab, &all)
}

/// Sends one more UDP exchange from spoke A on each of `flows` (UDP, A to B), from the same
/// source port to the same destination port: the same five-tuple, every exchange answered.
fn udp_again(lab: &NvaLab, flows: &BTreeSet<Flow>) {
    for &(proto, sport, dport) in flows {
        assert_eq!(proto, "udp");
        let out = lab.exec(
            "a",
            &[
                "python3",
                concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/traffic.py"),
                "udp",
                SERVER,
                "--ports",
                &dport.to_string(),
                "--sport",
                &sport.to_string(),
                "--count",
                "1",
                "--timeout",
                "2",
            ],
        );
        assert!(
            out.status.success(),
            "traffic.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t: Traffic = serde_json::from_slice(&out.stdout).expect("traffic.py prints JSON");
        assert!(
            t.failures.is_empty() && t.flows.iter().map(|f| (f.0, f.1)).eq([(sport, dport)]),
            "udp {sport} to {dport} again: {t:?}"
        );
    }
}

#[test]
fn one_nic_nvas_carry_spoke_to_spoke_flows_symmetrically_and_filter() {
    let lab = NvaLab::up("one-nic");
    let lb = lab.appliance();

    let carried = a_to_b(&lab, 240, &BTreeMap::new());
    assert_spread("one-nic", &carried);
    assert_lookup_agrees(&lab, &carried, ("fe1", &HUB_NVAS), ("fe1", &HUB_NVAS), &[]);
    assert_no_drops(&lb);
    // The appliance forwarded the packets unchanged but for layer 2: conntrack's tuples hold
    // the real endpoints (no NAT), and the TTL the spoke router left is still there.
    let per = spread(&carried);
    for nva in NVAS {
        let (kept, changed) = (lab.counter(nva, "ttl_63"), lab.counter(nva, "ttl_other"));
        // At least a request and its answer per flow.
        assert!(
            kept >= 2 * per[nva] as u64 && changed == 0,
            "{nva}: {kept} spoke packets arrived with TTL 63, {changed} with another"
        );
    }
    let m = lb.metrics();
    for nva in HUB_NVAS {
        let n = metric(&m, "haports_backend_packets_total", &[("backend", nva)]).unwrap_or(0.0);
        assert!(n >= 200.0, "{nva} got {n} packets");
    }

    // B to A: the appliance balances these too, and the firewalls refuse them (the client in
    // spoke A listens on every port, so nothing else would stop them).
    let refused_before = lab.refused_total();
    let delivered_before = metric_sum(&m, "haports_backend_packets_total");
    for proto in ["tcp", "udp"] {
        let t = lab.traffic("b", proto, CLIENT, 8, 0.3);
        assert_eq!(
            t.total(),
            0,
            "{proto} from B to A got through: {:?}",
            t.served
        );
    }
    let refused = lab.refused_total() - refused_before;
    let delivered = metric_sum(&lb.metrics(), "haports_backend_packets_total") - delivered_before;
    eprintln!("B to A: {delivered} packets delivered to NVAs, {refused} refused");
    assert!(refused >= 16, "the firewalls refused {refused} packets");
    assert!(
        delivered >= 16.0,
        "the appliance delivered {delivered} packets"
    );
    for nva in NVAS {
        assert!(
            lab.conntrack(nva).iter().all(|c| c.src != SERVER),
            "{nva} let a connection from B to A in"
        );
    }
}

#[test]
fn two_nic_nvas_see_both_directions_through_two_frontends() {
    let lab = NvaLab::up("two-nic");
    let lb = lab.appliance();

    // carried_by_one asserts that the NVA holding each flow saw its replies.
    let carried = a_to_b(&lab, 240, &BTreeMap::new());
    assert_spread("two-nic", &carried);
    // Client to server through fe-u and the untrusted pool; server to client through fe-t
    // and the trusted pool: the same instance.
    assert_lookup_agrees(
        &lab,
        &carried,
        ("fe-u", &UNTRUSTED_NVAS),
        ("fe-t", &TRUSTED_NVAS),
        &[],
    );
    assert_no_drops(&lb);
    let m = lb.metrics();
    for nva in UNTRUSTED_NVAS.iter().chain(&TRUSTED_NVAS) {
        let n = metric(&m, "haports_backend_packets_total", &[("backend", nva)]).unwrap_or(0.0);
        assert!(n >= 200.0, "{nva} got {n} packets");
    }
    for port in ["0", "1"] {
        let rx = metric(&m, "haports_port_rx_packets_total", &[("port", port)]).unwrap_or(0.0);
        assert!(rx >= 1000.0, "port {port} received {rx}");
    }
    // The firewalls let new connections in only from the untrusted NIC.
    let refused_before = lab.refused_total();
    let t = lab.traffic("b", "tcp", CLIENT, 6, 0.3);
    assert_eq!(
        t.total(),
        0,
        "a connection from the trusted side was let in"
    );
    assert!(lab.refused_total() > refused_before);

    // nva2's trusted NIC alone fails its probe: the whole instance is out of both pools (were
    // it still chosen from the untrusted side, the replies would cross another firewall,
    // which drops them), and every new connection still works.
    let cut = lab.exec(
        "n2",
        &[
            "nft",
            "add table inet cut; add chain inet cut input { type filter hook input priority 0; }; \
             add rule inet cut input iifname \"eth1\" tcp dport 9000 drop",
        ],
    );
    assert!(
        cut.status.success(),
        "{}",
        String::from_utf8_lossy(&cut.stderr)
    );
    lb.wait_health(TRUSTED_NVAS[1], false);
    let after = a_to_b(&lab, 120, &carried);
    let per = spread(&after);
    eprintln!("two-nic, nva2's trusted NIC down: {per:?}");
    assert!(
        !per.contains_key("n2"),
        "a new flow went through n2: {per:?}"
    );
    assert_eq!(per.len(), 2, "{per:?}");
    assert_lookup_agrees(
        &lab,
        &after,
        ("fe-u", &UNTRUSTED_NVAS),
        ("fe-t", &TRUSTED_NVAS),
        &[TRUSTED_NVAS[1]],
    );
}

#[test]
fn one_nic_nvas_with_two_workers() {
    let lab = NvaLab::up("one-nic-2w");
    let lb = lab.appliance();

    let carried = a_to_b(&lab, 240, &BTreeMap::new());
    assert_spread("one-nic, 2 workers", &carried);
    assert_lookup_agrees(&lab, &carried, ("fe1", &HUB_NVAS), ("fe1", &HUB_NVAS), &[]);
    assert_no_drops(&lb);
    let m = lb.metrics();
    let entries: Vec<f64> = ["0", "1"]
        .iter()
        .map(|w| metric(&m, "haports_flow_table_entries", &[("worker", w)]).unwrap_or(0.0))
        .collect();
    eprintln!("flow table entries per worker: {entries:?}");
    for (w, n) in entries.iter().enumerate() {
        assert!(*n >= 20.0, "worker {w} holds {n} flows: {entries:?}");
    }
}

#[test]
fn active_passive_nvas_fail_over_to_the_passive() {
    let lab = NvaLab::up("active-passive");
    let lb = lab.appliance();

    let carried = a_to_b(&lab, 60, &BTreeMap::new());
    assert_eq!(
        spread(&carried),
        BTreeMap::from([("n1", carried.len())]),
        "every flow through the active"
    );
    assert_lookup_agrees(&lab, &carried, ("fe1", &HUB_NVAS), ("fe1", &HUB_NVAS), &[]);

    // The active fails its probe: new flows go through the passive tier (n2 and n3).
    lab.script(&["stop-service", &lab.tag, "n1"]);
    lb.wait_health(HUB_NVAS[0], false);
    let carried = a_to_b(&lab, 60, &carried);
    let per = spread(&carried);
    eprintln!("after failover: {per:?}");
    assert!(
        !per.contains_key("n1"),
        "a new flow went through n1: {per:?}"
    );
    assert_eq!(per.len(), 2, "both passive NVAs take flows: {per:?}");
    assert_lookup_agrees(
        &lab,
        &carried,
        ("fe1", &HUB_NVAS),
        ("fe1", &HUB_NVAS),
        &[HUB_NVAS[0]],
    );
    assert_no_drops(&lb);
}

#[test]
fn lookup_via_names_the_nva_each_flow_went_through_before_and_after_one_fails() {
    let lab = NvaLab::up("one-nic");
    let lb = lab.appliance();

    let carried = a_to_b(&lab, 120, &BTreeMap::new());
    assert_lookup_agrees(
        &lab,
        &carried,
        ("10.0.0.100", &HUB_NVAS),
        ("fe1", &HUB_NVAS),
        &[],
    );
    let before = spread(&carried);
    assert_eq!(before.len(), 3, "{before:?}");

    // n-active: n2 fails its probe; its share moves to n1 and n3, the others' flows stay.
    lab.script(&["stop-service", &lab.tag, "n2"]);
    lb.wait_health(HUB_NVAS[1], false);
    // Each UDP flow n1 or n3 carried, sent again on its five-tuple: it still goes through the
    // NVA that holds its state. Moved, it would show in the other's conntrack too.
    let others: BTreeMap<Flow, &'static str> = carried
        .iter()
        .filter(|(f, nva)| f.0 == "udp" && **nva != "n2")
        .map(|(f, nva)| (*f, *nva))
        .collect();
    assert!(others.len() >= 40, "n1 and n3 carried {others:?}");
    let again: BTreeSet<Flow> = others.keys().copied().collect();
    udp_again(&lab, &again);
    let now = lab.carriers(&again);
    for (flow, nva) in &others {
        assert_eq!(
            now.get(flow).map(Vec::as_slice),
            Some(&[*nva][..]),
            "{flow:?} went through {nva} before n2 failed"
        );
    }
    let after = a_to_b(&lab, 120, &carried);
    assert!(
        !spread(&after).contains_key("n2"),
        "a new flow went through the failed NVA: {:?}",
        spread(&after)
    );
    assert_lookup_agrees(
        &lab,
        &after,
        ("fe1", &HUB_NVAS),
        ("fe1", &HUB_NVAS),
        &[HUB_NVAS[1]],
    );
}

#[test]
fn nvas_behind_vxlan_see_both_directions_of_each_flow() {
    let lab = NvaLab::up("vxlan");
    let lb = lab.appliance();

    // Each flow's both directions went through one NVA's conntrack, reached inside VXLAN.
    let carried = a_to_b(&lab, 120, &BTreeMap::new());
    assert_spread("vxlan", &carried);
    assert_lookup_agrees(
        &lab,
        &carried,
        ("fe1", &VXLAN_NVAS),
        ("fe1", &VXLAN_NVAS),
        &[],
    );
    assert_no_drops(&lb);
    let per = spread(&carried);
    for nva in NVAS {
        let vxlan = lab.exec(nva, &["ip", "-s", "-j", "link", "show", "vx0"]);
        let stats: serde_json::Value = serde_json::from_slice(&vxlan.stdout).expect("ip -j");
        let received = stats[0]["stats64"]["rx"]["packets"].as_u64().unwrap_or(0);
        assert!(
            received >= 2 * per[nva] as u64,
            "{nva}: {received} packets came out of its VXLAN device for {} flows",
            per[nva]
        );
    }
    // B to A still refused by the firewalls behind the tunnel.
    let refused_before = lab.refused_total();
    let t = lab.traffic("b", "tcp", CLIENT, 8, 0.3);
    assert_eq!(t.total(), 0, "tcp from B to A got through: {:?}", t.served);
    assert!(lab.refused_total() - refused_before >= 8);
}
