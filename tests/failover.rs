//! Health probes, failover, active-passive, drain and reload, end to end: real kernel TCP and
//! UDP through haports in network namespaces while backends' services die and come back and
//! the config changes under traffic. Needs root.

mod common;

use serde_json::Value;

use common::{metric, metric_sum, Appliance, Lab, FRONTEND};

const INTERVAL_MS: u64 = 100;
const THRESHOLD: u32 = 2;

fn served_by(t: &common::Traffic) -> Vec<&str> {
    t.served.keys().map(String::as_str).collect()
}

/// UDP flows that were on `except` at the start may lose datagrams; every other flow none.
fn assert_no_loss(report: &Value, except: Option<&str>) {
    let flows = report["udp"].as_array().unwrap();
    let mut checked = 0;
    for flow in flows {
        let backends = flow["backends"].as_object().unwrap();
        if except.is_some_and(|b| backends.contains_key(b)) {
            continue;
        }
        checked += 1;
        assert!(flow["sent"].as_u64().unwrap() > 50, "{flow}");
        assert_eq!(
            flow["missing"], 0,
            "a flow on a healthy backend lost datagrams: {flow}"
        );
        assert_eq!(
            backends.len(),
            1,
            "a flow on a healthy backend moved: {flow}"
        );
    }
    // Some flows were on healthy backends: the check above did check something.
    assert!(checked > 0, "no flow was on a healthy backend: {report}");
}

#[test]
fn a_dead_backend_gets_no_new_flows_once_its_probes_fail() {
    let lab = Lab::up("nat");
    lab.add_probe(INTERVAL_MS, THRESHOLD, THRESHOLD);
    let lb = Appliance::start(&lab, &lab.config());
    let victim = "b2";
    let streams = lab.streams(&[
        "--udp-flows",
        "12",
        "--duration",
        "3",
        "--kill-pid",
        &lab.backend_pid(victim).to_string(),
        "--kill-at",
        "1",
    ]);
    let report = streams.join();
    let kill_at = report["kill_at"].as_f64().unwrap();

    // New TCP connections after the kill: those Maglev still gave the victim fail (reset);
    // the last of them marks when haports stopped sending new flows there. The victim took
    // new flows before the kill, and some failed after it: the kill really cut flows off.
    let tcp = report["tcp"].as_array().unwrap();
    let start = |c: &Value| c[0].as_f64().unwrap();
    assert!(
        tcp.iter().any(|c| start(c) < kill_at && c[1] == victim),
        "the victim served new flows before the kill"
    );
    let failures: Vec<f64> = tcp
        .iter()
        .filter(|c| c[1].is_null() && start(c) >= kill_at)
        .map(start)
        .collect();
    assert!(
        !failures.is_empty(),
        "no connection failed after the kill: the kill did not happen or went unseen"
    );
    let last_failure = failures.iter().copied().fold(kill_at, f64::max);
    let failover_ms = (last_failure - kill_at) * 1000.0;
    // The probes' detection time (interval × (threshold + 1): 144–194 ms measured) plus a
    // second for a busy machine's scheduling: without failover, new flows would keep failing
    // to the end of the run.
    let bound_ms = (INTERVAL_MS * u64::from(THRESHOLD + 1)) as f64 + 1000.0;
    eprintln!("failover: {failover_ms:.0} ms (bound {bound_ms:.0} ms)");
    assert!(
        failover_ms <= bound_ms,
        "new flows reached the dead backend for {failover_ms:.0} ms"
    );
    let after = tcp
        .iter()
        .filter(|c| c[0].as_f64().unwrap() > last_failure + 0.01);
    assert!(
        after.clone().count() > 20,
        "connections kept being opened after the failover"
    );
    assert!(
        after.clone().all(|c| !c[1].is_null()),
        "every connection after the failover succeeds"
    );
    assert!(
        after.clone().all(|c| c[1] != victim),
        "no new flow reaches the dead backend"
    );
    assert_no_loss(&report, Some(victim));
    lb.wait_health("10.0.0.12", false);
}

#[test]
fn active_passive_fails_over_to_the_passive_tier_and_back() {
    let lab = Lab::up("nat");
    lab.add_probe(INTERVAL_MS, THRESHOLD, THRESHOLD);
    lab.edit_config(|t| {
        t.replace(
            r#"{ address = "10.0.0.12" }"#,
            r#"{ address = "10.0.0.12", priority = 1 }"#,
        )
        .replace(
            r#"{ address = "10.0.0.13" }"#,
            r#"{ address = "10.0.0.13", priority = 1 }"#,
        )
    });
    let lb = Appliance::start(&lab, &lab.config());
    let ports: Vec<u16> = (8000..8010).collect();

    let t = lab.traffic("tcp", FRONTEND, &ports, 60, None);
    assert_eq!(
        (t.total(), served_by(&t)),
        (60, vec!["b1"]),
        "all traffic to the active"
    );

    lab.stop_backend("b1");
    lb.wait_health("10.0.0.11", false);
    let t = lab.traffic("tcp", FRONTEND, &ports, 60, None);
    assert_eq!(t.total(), 60, "{:?}", t.failures);
    assert_eq!(
        served_by(&t),
        vec!["b2", "b3"],
        "the passive tier takes every new flow"
    );

    lab.start_backend("b1");
    lb.wait_health("10.0.0.11", true);
    let t = lab.traffic("tcp", FRONTEND, &ports, 60, None);
    assert_eq!(
        (t.total(), served_by(&t)),
        (60, vec!["b1"]),
        "new flows return to the active"
    );
}

/// Five workers: each kernel twin has one queue of each kind, and the probes' answers reach
/// it through the control thread (the workers hand them over). A killed backend is marked
/// down and gets no new flow; restarted, its probes pass again (two in a row) and it is up.
#[test]
fn with_five_workers_probes_mark_a_dead_backend_down_and_up_again() {
    let lab = Lab::up("nat-5w");
    lab.add_probe(INTERVAL_MS, THRESHOLD, THRESHOLD);
    let lb = Appliance::start(&lab, &lab.config());
    let ports: Vec<u16> = (8000..8010).collect();

    lab.stop_backend("b1");
    lb.wait_health("10.0.0.11", false);
    let t = lab.traffic("tcp", FRONTEND, &ports, 60, None);
    assert_eq!(t.total(), 60, "{:?}", t.failures);
    assert!(!served_by(&t).contains(&"b1"), "{:?}", served_by(&t));

    lab.start_backend("b1");
    lb.wait_health("10.0.0.11", true);
    let t = lab.traffic("tcp", FRONTEND, &ports, 60, None);
    assert_eq!(t.total(), 60, "{:?}", t.failures);
    assert_eq!(
        served_by(&t),
        vec!["b1", "b2", "b3"],
        "the restarted backend takes new flows again"
    );
}

#[test]
fn with_every_backend_down_new_flows_are_dropped_and_counted_then_recover() {
    let lab = Lab::up("nat");
    lab.add_probe(INTERVAL_MS, THRESHOLD, THRESHOLD);
    let lb = Appliance::start(&lab, &lab.config());
    for (b, addr) in [
        ("b1", "10.0.0.11"),
        ("b2", "10.0.0.12"),
        ("b3", "10.0.0.13"),
    ] {
        lab.stop_backend(b);
        lb.wait_health(addr, false);
    }
    let t = lab.traffic_timeout("udp", FRONTEND, &[8000, 8001], 20, None, 0.3);
    assert_eq!(t.total(), 0);
    let m = lb.metrics();
    assert!(
        metric(
            &m,
            "haports_drops_total",
            &[("reason", "no_healthy_backend")]
        )
        .unwrap()
            >= 20.0,
        "{m}"
    );

    for (b, addr) in [
        ("b1", "10.0.0.11"),
        ("b2", "10.0.0.12"),
        ("b3", "10.0.0.13"),
    ] {
        lab.start_backend(b);
        lb.wait_health(addr, true);
    }
    let t = lab.traffic("tcp", FRONTEND, &[8000, 8001, 8002], 60, None);
    assert_eq!(t.total(), 60, "recovered: {:?}", t.failures);
    assert_eq!(t.served.len(), 3);
}

/// Which backend `haports lookup` says serves a flow.
fn lookup(lab: &Lab, flow: &str) -> String {
    let out = common::lookup(&lab.config(), &format!("{flow}\n"));
    let line = out.trim();
    assert_eq!(line.lines().count(), 1, "{out}");
    line.rsplit(' ').next().unwrap().to_owned()
}

#[test]
fn a_drained_backend_keeps_its_connections_and_gets_no_new_ones() {
    let lab = Lab::up("nat");
    let lb = Appliance::start(&lab, &lab.config());
    // A long-lived session from a known five-tuple, so its backend is known: drain that one.
    let session_backend = lookup(&lab, &format!("tcp {}:45000 {FRONTEND}:8002", lab.client()));
    let name = format!("b{}", &session_backend[session_backend.len() - 1..]);
    let mut streams = lab.streams(&[
        "--udp-flows",
        "0",
        "--session-port",
        "8002",
        "--session-sport",
        "45000",
        "--duration",
        "60",
        "--until-stdin-closes",
        "--at-least",
        "3",
    ]);
    common::wait_for(
        "the session to carry traffic",
        std::time::Duration::from_secs(5),
        || {
            let m = lb.metrics();
            (metric(
                &m,
                "haports_backend_packets_total",
                &[("backend", &session_backend)],
            )
            .unwrap_or(0.0)
                > 10.0)
                .then_some(())
        },
    );
    lab.edit_config(|t| {
        let plain = format!(r#"{{ address = "{session_backend}" }}"#);
        let drained = format!(r#"{{ address = "{session_backend}", drain = true }}"#);
        t.replace(&plain, &drained)
    });
    lb.reload();
    lb.wait_generation(2);
    assert!(
        streams.running(),
        "the session ended before the drain applied: it did not run through it"
    );
    let t = lab.traffic("tcp", FRONTEND, &(8003..8013).collect::<Vec<_>>(), 60, None);
    assert_eq!(t.total(), 60, "{:?}", t.failures);
    assert!(
        !t.served.contains_key(&name),
        "the drained backend got new flows: {:?}",
        t.served
    );

    let report = streams.stop();
    common::assert_every_connection_served(&report);
    let session = &report["session"];
    assert_eq!(session["errors"].as_array().unwrap().len(), 0, "{session}");
    assert!(
        session["sent"].as_u64().unwrap() > 10,
        "the session ran through the reload: {session}"
    );
    assert_eq!(
        session["sent"], session["answered"],
        "every line of the live session answered: {session}"
    );
    assert_eq!(
        session["backends"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec![&name],
        "{session}"
    );
}

#[test]
fn reload_adds_a_backend_without_losing_a_packet_and_an_invalid_reload_changes_nothing() {
    let lab = Lab::up("nat");
    lab.edit_config(|t| t.replace(r#", { address = "10.0.0.13" }"#, ""));
    let lb = Appliance::start(&lab, &lab.config());
    let mut streams = lab.streams(&[
        "--udp-flows",
        "16",
        "--duration",
        "60",
        "--until-stdin-closes",
        "--at-least",
        "3",
    ]);
    // The reload goes in while the streams run: once their datagrams reach the backends,
    // and the streams are still sending once it applied.
    lb.wait_backend_traffic(100.0);

    lab.edit_config(|t| {
        t.replace(
            r#"{ address = "10.0.0.12" }"#,
            r#"{ address = "10.0.0.12" }, { address = "10.0.0.13" }"#,
        )
    });
    lb.reload();
    lb.wait_generation(2);
    assert!(
        streams.running(),
        "the streams ended before the reload applied: it did not happen under traffic"
    );
    // Traffic after it too (half a second's worth of the 16 flows' datagrams at least).
    lb.wait_backend_traffic(800.0);
    let report = streams.stop();
    common::assert_every_connection_served(&report);
    assert_no_loss(&report, None);
    let t = lab.traffic("tcp", FRONTEND, &(8000..8024).collect::<Vec<_>>(), 90, None);
    assert_eq!(t.total(), 90);
    assert!(
        t.served.contains_key("b3"),
        "the new backend takes new flows: {:?}",
        t.served
    );

    // An invalid file is refused, the running config stays.
    let good = std::fs::read_to_string(lab.config()).unwrap();
    lab.edit_config(|t| t.replace("protocol = \"all\"", "protocol = \"sctp\""));
    lb.reload();
    common::wait_for(
        "the refusal to be logged",
        std::time::Duration::from_secs(10),
        || lb.logs().contains("reload refused").then_some(()),
    );
    assert_eq!(
        metric(&lb.metrics(), "haports_config_generation", &[]),
        Some(2.0)
    );
    let t = lab.traffic("udp", FRONTEND, &[8000, 8001], 30, None);
    assert_eq!(
        t.total(),
        30,
        "service goes on after a refused reload: {:?}",
        t.failures
    );

    // A new hash seed would re-decide every established flow: refused as needing a restart.
    std::fs::write(lab.config(), &good).unwrap();
    lab.edit_config(|t| t.replace("[dataplane]\n", "[dataplane]\nhash_seed = 7\n"));
    assert!(std::fs::read_to_string(lab.config())
        .unwrap()
        .contains("hash_seed = 7"));
    lb.reload();
    common::wait_for(
        "the hash seed's refusal to be logged",
        std::time::Duration::from_secs(10),
        || lb.logs().contains("dataplane.hash_seed").then_some(()),
    );
    assert_eq!(
        metric(&lb.metrics(), "haports_config_generation", &[]),
        Some(2.0)
    );
    // The file made right again is taken, and serves.
    std::fs::write(lab.config(), good).unwrap();
    lb.reload();
    lb.wait_generation(3);
    let t = lab.traffic("tcp", FRONTEND, &(8000..8010).collect::<Vec<_>>(), 30, None);
    assert_eq!(t.total(), 30, "after the good reload: {:?}", t.failures);
}

/// The sum of `name`'s series whose labels include `label`.
fn sum_with(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_flood_at_the_appliance_is_held_to_its_kernel_rate_and_the_probes_keep_their_results() {
    let lab = Lab::up("nat");
    lab.add_probe(INTERVAL_MS, THRESHOLD, THRESHOLD);
    lab.edit_config(|t| t.replacen("[dataplane]\n", "[dataplane]\nkernel_pps = 200\n", 1));
    let lb = Appliance::start(&lab, &lab.config());

    // UDP datagrams as fast as the client can send them at the appliance's own address, for
    // 3 s: 30 probe rounds of the three backends meanwhile.
    let flooder = "import socket, time\n\
                   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                   end, n = time.time() + 3, 0\n\
                   while time.time() < end:\n    s.sendto(b'flood', ('10.0.1.2', 9)); n += 1\n\
                   print(n)";
    let probes = |m: &str| metric_sum(m, "haports_probes_total");
    let failed = |m: &str| metric_sum(m, "haports_probe_failures_total");
    let kernel = |m: &str| metric(m, "haports_kernel_packets_total", &[]).unwrap_or(0.0);
    let started = std::time::Instant::now();
    let before = lb.metrics();
    let flood = lab.exec("c", &["python3", "-c", flooder]);
    let summary = String::from_utf8_lossy(&flood.stdout);
    let sent: f64 = summary.trim().parse().unwrap_or(0.0);
    assert!(
        sent > 3000.0,
        "sent {summary}{}",
        String::from_utf8_lossy(&flood.stderr)
    );

    let m = lb.metrics();
    let over = metric(&m, "haports_drops_total", &[("reason", "kernel_limit")]).unwrap_or(0.0);
    assert!(
        over >= 1000.0,
        "the flood went over the rate: {over}\n{summary}"
    );
    // And the kernel got no more than the rate over the time it took (a second's burst more),
    // besides the probes' answers, which have a budget of their own (a few packets a probe).
    let ran = probes(&m) - probes(&before);
    let to_kernel = kernel(&m) - kernel(&before);
    let bound = 200.0 * (started.elapsed().as_secs_f64() + 1.0) + 6.0 * ran + 50.0;
    assert!(
        to_kernel <= bound && 2.0 * bound < sent,
        "{to_kernel} packets to the kernel of {sent} sent, bound {bound}\n{m}"
    );
    assert_eq!(
        sum_with(&m, "haports_probe_transitions_total", "to=\"down\""),
        0.0,
        "no backend was marked down:\n{m}"
    );
    assert_eq!(metric_sum(&m, "haports_backend_healthy"), 3.0, "{m}");
    // The probes went on through the flood (30 rounds of three backends in 3 s; half of
    // them at least, on a busy machine), and passed: their answers have a budget of their
    // own, so that none would pass if the flood spent it. A few may time out (100 ms) where
    // the flood takes both CPUs of a small test machine (seen: 8 of about 100, a round of
    // all three backends at once), never two in a row (no backend went down, above).
    assert!(ran >= 45.0, "{ran} probes during the flood:\n{m}");
    let lost = failed(&m) - failed(&before);
    assert!(
        lost * 4.0 <= ran,
        "{lost} of {ran} probes failed in the flood:\n{m}"
    );
    let t = lab.traffic("tcp", FRONTEND, &(8000..8010).collect::<Vec<_>>(), 30, None);
    assert_eq!(t.total(), 30, "service goes on: {:?}", t.failures);
}

/// A reload that gives the rule a probe, under traffic: the backends were serving and stay up
/// until the probe says otherwise (they pass), so no flow loses a datagram or moves. Before,
/// every backend counted as down until its first result and the established flows were cut.
#[test]
fn a_reload_that_gives_the_rule_a_probe_loses_no_packet_of_established_flows() {
    let lab = Lab::up("nat");
    let lb = Appliance::start(&lab, &lab.config());
    let mut streams = lab.streams(&[
        "--udp-flows",
        "16",
        "--duration",
        "60",
        "--until-stdin-closes",
        "--at-least",
        "3",
    ]);
    lb.wait_backend_traffic(100.0);
    lab.add_probe(500, THRESHOLD, THRESHOLD);
    lb.reload();
    lb.wait_generation(2);
    assert!(
        streams.running(),
        "the streams ended before the reload applied: it did not happen under traffic"
    );
    // The probe really runs: its first results come in (all pass) while the streams go on.
    common::wait_for(
        "the probe's first results",
        std::time::Duration::from_secs(5),
        || {
            let m = lb.metrics();
            let healthy = metric_sum(&m, "haports_probe_healthy");
            (healthy >= 3.0).then_some(())
        },
    );
    assert!(
        streams.running(),
        "the streams ended before the probe's results: the test saw no probed traffic"
    );
    let report = streams.stop();
    common::assert_every_connection_served(&report);
    assert_no_loss(&report, None);
}

/// A public load balancer over the lab's backends: TCP 8002 on its own frontend.
const PUBLIC_8002: &str = r#"
[[load_balancer]]
name = "plb"
kind = "public"

  [[load_balancer.frontend]]
  name = "www"
  address = "10.0.0.101"

  [[load_balancer.backend_pool]]
  name = "servers"
  backends = [{ address = "10.0.0.11" }, { address = "10.0.0.12" }, { address = "10.0.0.13" }]

  [[load_balancer.rule]]
  name = "web"
  frontend = "www"
  backend_pool = "servers"
  protocol = "tcp"
  frontend_port = 8002
  backend_port = 8002
"#;

/// A reload that puts a public rule on the HA-ports rule's backends, on the port a live session
/// through the internal frontend is on (TCP 8002): the rules now give replies from that
/// port to the public frontend, but the session's replies are its flow's and keep coming from
/// the internal one, while connections to the public frontend get theirs from there. Before,
/// the session had recorded nothing for its replies, which the rules then sent out from the
/// public frontend, and it broke.
#[test]
fn a_reload_that_makes_a_session_s_replies_ambiguous_keeps_the_session() {
    let lab = Lab::up("nat");
    let lb = Appliance::start(&lab, &lab.config());
    let mut streams = lab.streams(&[
        "--udp-flows",
        "0",
        "--session-port",
        "8002",
        "--duration",
        "60",
        "--until-stdin-closes",
        "--at-least",
        "3",
    ]);
    common::wait_for(
        "the session to carry traffic",
        std::time::Duration::from_secs(5),
        || (metric_sum(&lb.metrics(), "haports_backend_packets_total") > 10.0).then_some(()),
    );
    lab.edit_config(|t| format!("{t}{PUBLIC_8002}"));
    lb.reload();
    lb.wait_generation(2);
    assert!(
        streams.running(),
        "the session ended before the reload applied: it did not run through it"
    );
    let public = lab.traffic("tcp", "10.0.0.101", &[8002], 10, None);
    assert_eq!(public.total(), 10, "{:?}", public.failures);
    assert!(
        streams.running(),
        "the session ended before the public frontend's traffic: it did not run beside it"
    );

    let report = streams.stop();
    common::assert_every_connection_served(&report);
    let session = &report["session"];
    assert_eq!(session["errors"].as_array().unwrap().len(), 0, "{session}");
    assert!(session["sent"].as_u64().unwrap() > 10, "{session}");
    assert_eq!(
        session["sent"], session["answered"],
        "every line of the session answered: {session}"
    );
}

/// Every backend's probe fails (the backends' services stay up: their probes dropped, as
/// when probing fails on the appliance's side), then all pass again. Going down one probe at
/// a time, each backend's flows move to those still up, and with none up they keep going
/// where they are; coming back, one probe at a time again, they stay there (the first back
/// used to take the flows of every backend still down, for good): each backend's share of
/// the traffic is the same after as while none was up.
#[test]
fn flows_stay_put_when_every_probe_fails_and_the_backends_come_back_one_probe_at_a_time() {
    let lab = Lab::up("nat");
    // Up at the first probe passed. The backend holding the flows is let through once
    // another is seen back, and is back within an interval of that (a probe under way when
    // let through still fails) and the delay of seeing it: within the hold, twice the interval.
    lab.add_probe(1000, THRESHOLD, 1);
    let lb = Appliance::start(&lab, &lab.config());
    let (names, addresses) = (["b1", "b2", "b3"], lab.backends());
    for addr in addresses {
        lb.wait_health(addr, true);
    }
    let streams = lab.streams(&[
        "--udp-flows",
        "24",
        "--tcp-port",
        "0",
        "--duration",
        "60",
        "--until-stdin-closes",
        "--at-least",
        "3",
    ]);
    lb.wait_backend_traffic(500.0);
    // The probes (TCP to port 8000; the flows are UDP) dropped at every backend, or not.
    let probes = |b: &str, pass: bool| {
        let rule = "add table inet probes { chain input { type filter hook input priority 0; \
                    tcp dport 8000 drop; }; }";
        let args: &[&str] = if pass {
            &["nft", "delete table inet probes"]
        } else {
            &["nft", rule]
        };
        let out = lab.exec(b, args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Each backend's share of the packets sent to backends over a few thousand of them.
    let shares = || {
        let count = |m: &str| {
            addresses
                .map(|a| metric(m, "haports_backend_packets_total", &[("backend", a)]).unwrap())
        };
        let before = count(&lb.metrics());
        lb.wait_backend_traffic(3000.0);
        let after = count(&lb.metrics());
        let sent: Vec<f64> = (0..3).map(|i| after[i] - before[i]).collect();
        let all: f64 = sent.iter().sum();
        sent.iter().map(|s| s / all).collect::<Vec<f64>>()
    };
    for b in names {
        probes(b, false);
    }
    for addr in addresses {
        lb.wait_health(addr, false);
    }
    // None up: the established flows still reach their backends, which going down one at a
    // time moved to the last one down, or some of them.
    let while_down = shares();
    let holder = (0..3)
        .max_by(|&a, &b| while_down[a].total_cmp(&while_down[b]))
        .unwrap();
    // The others come back first: the holder's flows stay on it until it is back too.
    for i in (0..3).filter(|&i| i != holder) {
        probes(names[i], true);
    }
    common::wait_for(
        "another backend to come back",
        std::time::Duration::from_secs(15),
        || {
            let m = lb.try_metrics()?;
            let up =
                |a: &str| metric(&m, "haports_backend_healthy", &[("backend", a)]) == Some(1.0);
            (0..3)
                .any(|i| i != holder && up(addresses[i]))
                .then_some(())
        },
    );
    probes(names[holder], true);
    for addr in addresses {
        lb.wait_health(addr, true);
    }
    let logs = lb.logs();
    assert!(
        logs.contains("the pool's backends still down keep their flows while it settles"),
        "the pool held its flows: {logs}"
    );
    let after = shares();
    for i in 0..3 {
        assert!(
            // One flow of 24 moved would shift about 0.04.
            (after[i] - while_down[i]).abs() < 0.03,
            "flows moved as the backends came back: shares {while_down:?} while none was up, \
             {after:?} after"
        );
    }
    let report = streams.stop();
    for flow in report["udp"].as_array().unwrap() {
        assert_eq!(flow["missing"], 0, "{flow}");
    }
}
