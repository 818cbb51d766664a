//! Tests of `lb::decision`.
use super::*;
use crate::config::Config;
use crate::config::Distribution;
use crate::lb::flow_table::FlowTable;
use crate::lb::forwarding::Observations;
use crate::wire::{Ipv4Flow, TcpFlags};
use std::net::IpAddr;

fn config(floating: bool) -> Config {
    Config::from_toml(&config_text(floating), "test").unwrap()
}

fn config_text(floating: bool) -> String {
    format!(
        r#"
[dataplane]
maglev_table_size = 1021
[[interface]]
name = "lan"
port = 0
address = "10.0.0.2/24"
[[load_balancer]]
name = "ilb"
kind = "internal"
  [[load_balancer.frontend]]
  name = "fe"
  address = "10.0.0.100"
  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [{{ address = "10.0.0.11" }}, {{ address = "10.0.0.12" }}, {{ address = "10.0.0.13" }}]
  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = {floating}
  idle_timeout_s = 60
"#
    )
}

fn build(floating: bool, down: &[&str]) -> Forwarding {
    let obs = Observations {
        down: down.iter().map(|a| a.parse().unwrap()).collect(),
        ..Observations::default()
    };
    Forwarding::build(&config(floating), &obs, 1, None)
}

fn flow(fwd: &Forwarding, sport: u16, flags: u8) -> Flow {
    let key: FlowKey = format!("tcp 10.0.0.50:{sport} 10.0.0.100:443")
        .parse()
        .unwrap();
    Flow::new(key, flags, fwd.hash_seed)
}

fn record(fwd: &Forwarding, flows: &mut Flows, f: &Flow, now: u64) -> Decided {
    decide(fwd, flows, 0, Via::Frontend, f, now, Memory::Record).unwrap()
}

#[test]
fn a_full_table_falls_back_to_maglev_and_keeps_its_live_flows() {
    let fwd = build(false, &[]);
    let mut flows = Flows::with_capacity(4);
    let held: Vec<Decided> = (0..4)
        .map(|p| record(&fwd, &mut flows, &flow(&fwd, 1000 + p, TcpFlags::SYN), 0))
        .collect();
    assert_eq!(flows.len(), 4);
    for p in 0..50 {
        let f = flow(&fwd, 2000 + p, TcpFlags::SYN);
        let d = record(&fwd, &mut flows, &f, 10);
        assert_eq!(
            Some(d.backend),
            fwd.pick(0, f.decision_hash(fwd.hash_seed, Distribution::FiveTuple)),
            "the Maglev decision"
        );
        assert!(d.new);
    }
    assert_eq!(flows.len(), 4, "never past its capacity");
    assert_eq!(flows.refused, 50, "each flow it had no room for is counted");
    for (p, before) in held.iter().enumerate() {
        let d = record(
            &fwd,
            &mut flows,
            &flow(&fwd, 1000 + p as u16, TcpFlags::ACK),
            20,
        );
        assert_eq!(
            (d.backend, d.new),
            (before.backend, false),
            "live entries kept"
        );
    }
}

#[test]
fn an_established_flow_keeps_its_backend_until_it_fails() {
    let fwd = build(false, &[]);
    let mut flows = Flows::with_capacity(64);
    let f = flow(&fwd, 1000, TcpFlags::SYN);
    let first = record(&fwd, &mut flows, &f, 0);
    let addr = fwd.backends[first.backend as usize].address.to_string();
    // Another backend fails: the flow stays.
    let other = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
        .into_iter()
        .find(|a| *a != addr)
        .unwrap();
    let fwd2 = build(false, &[other]);
    let kept = record(&fwd2, &mut flows, &f, 1);
    assert_eq!(kept.backend, first.backend);
    assert!(!kept.new, "kept by its entry, not decided again");
    // Its own fails: it moves, and stays on the new one.
    let fwd3 = build(false, &[&addr]);
    let moved = record(&fwd3, &mut flows, &f, 2);
    assert!(moved.new && moved.backend != first.backend);
    assert_eq!(record(&fwd3, &mut flows, &f, 3).backend, moved.backend);
    assert_eq!(flows.len(), 1);
}

#[test]
fn fin_or_rst_shortens_the_timeout_for_good() {
    let fwd = build(true, &[]);
    let mut flows = Flows::with_capacity(64);
    let syn = flow(&fwd, 1000, TcpFlags::SYN);
    record(&fwd, &mut flows, &syn, 0);
    record(
        &fwd,
        &mut flows,
        &flow(&fwd, 1000, TcpFlags::FIN | TcpFlags::ACK),
        1_000,
    );
    // A later ACK does not bring the idle timeout (60 s) back.
    record(&fwd, &mut flows, &flow(&fwd, 1000, TcpFlags::ACK), 2_000);
    let gone = 2_000 + CLOSING_TIMEOUT_MS;
    // Alive for the closing timeout from the last packet, not less (nor the SYN's 5 s).
    assert!(flows.live(&syn, gone - 1).is_some(), "alive until then");
    let d = decide(&fwd, &mut flows, 0, Via::Frontend, &syn, gone, Memory::Peek).unwrap();
    assert!(!d.new, "peek sees the expired entry and changes nothing");
    assert!(
        record(&fwd, &mut flows, &syn, gone).new,
        "expired after 10 s"
    );
}

/// A client port whose flow went to 10.0.0.11 with every backend in service, and the state
/// after 10.0.0.11 is set `drain = true` by a reload (the same ids).
fn on_a_backend_then_drained(fwd: &Forwarding) -> (u16, Forwarding) {
    let mut probe = Flows::with_capacity(64);
    let sport = (1000..)
        .find(|&p| {
            let d = record(fwd, &mut probe, &flow(fwd, p, TcpFlags::SYN), 0);
            fwd.backends[d.backend as usize].address.to_string() == "10.0.0.11"
        })
        .unwrap();
    let text = config_text(false).replace(
        "{ address = \"10.0.0.11\" }",
        "{ address = \"10.0.0.11\", drain = true }",
    );
    let drained = Config::from_toml(&text, "test").unwrap();
    let next = Forwarding::build(&drained, &Observations::default(), 2, Some(fwd));
    (sport, next)
}

/// A drained backend keeps its established flows, but a SYN reusing one's five-tuple (a new
/// connection from the same client port) is a new flow, decided among the backends in
/// service: it went on reaching the drained backend for as long as the entry lived. A SYN
/// retransmitted while its flow opens stays.
#[test]
fn a_syn_reusing_a_flow_on_a_drained_backend_is_a_new_flow() {
    let fwd = build(false, &[]);
    let (sport, drained) = on_a_backend_then_drained(&fwd);
    let at = |flags| flow(&fwd, sport, flags);
    let mut flows = Flows::with_capacity(64);
    let first = record(&fwd, &mut flows, &at(TcpFlags::SYN), 0);
    record(&fwd, &mut flows, &at(TcpFlags::ACK), 100);
    let kept = record(&drained, &mut flows, &at(TcpFlags::ACK), 200);
    assert_eq!(
        (kept.backend, kept.new),
        (first.backend, false),
        "drained: kept"
    );
    let reopened = record(&drained, &mut flows, &at(TcpFlags::SYN), 300);
    assert!(
        reopened.new && reopened.backend != first.backend,
        "{reopened:?}"
    );
    assert_eq!(
        record(&drained, &mut flows, &at(TcpFlags::ACK), 400).backend,
        reopened.backend
    );

    // Opening when the backend was drained: its SYN again keeps the backend.
    let mut flows = Flows::with_capacity(64);
    record(&fwd, &mut flows, &at(TcpFlags::SYN), 0);
    let again = record(&drained, &mut flows, &at(TcpFlags::SYN), 1_000);
    assert_eq!((again.backend, again.new), (first.backend, false));
}

/// A closing flow moved off a backend that went down keeps its closing timeout: it took the
/// rule's idle timeout (60 s here) for a connection already closing.
#[test]
fn a_closing_flow_moved_off_a_failed_backend_stays_closing() {
    let fwd = build(false, &[]);
    let (sport, _) = on_a_backend_then_drained(&fwd);
    let at = |flags| flow(&fwd, sport, flags);
    let mut flows = Flows::with_capacity(64);
    record(&fwd, &mut flows, &at(TcpFlags::SYN), 0);
    record(&fwd, &mut flows, &at(TcpFlags::ACK), 100);
    record(&fwd, &mut flows, &at(TcpFlags::FIN | TcpFlags::ACK), 200);
    let down = Forwarding::build(
        &config(false),
        &Observations {
            down: ["10.0.0.11".parse().unwrap()].into_iter().collect(),
            ..Observations::default()
        },
        2,
        Some(&fwd),
    );
    let moved = record(&down, &mut flows, &at(TcpFlags::ACK), 300);
    assert!(moved.new, "moved off the failed backend");
    let gone = 300 + CLOSING_TIMEOUT_MS;
    assert!(flows.live(&at(TcpFlags::ACK), gone - 1).is_some());
    assert!(
        flows.live(&at(TcpFlags::ACK), gone).is_none(),
        "closing: gone 10 s after its last packet"
    );
}

/// A SYN after a flow's RST opens its five-tuple again: the new connection, once its
/// handshake is done, keeps the idle timeout (60 s here), not the closing one (10 s) it
/// would otherwise inherit, and so its backend through a pause longer than that.
#[test]
fn a_syn_after_a_reset_starts_a_connection_with_the_idle_timeout() {
    let fwd = build(true, &[]);
    let mut flows = Flows::with_capacity(64);
    let at = |flags| flow(&fwd, 1000, flags);
    record(&fwd, &mut flows, &at(TcpFlags::SYN), 0);
    record(&fwd, &mut flows, &at(TcpFlags::ACK), 100);
    record(&fwd, &mut flows, &at(TcpFlags::RST), 1_000);
    let again = record(&fwd, &mut flows, &at(TcpFlags::SYN), 2_000);
    assert!(!again.new, "the entry was still there");
    record(&fwd, &mut flows, &at(TcpFlags::ACK), 2_100);
    let idle = 2_100 + 3 * CLOSING_TIMEOUT_MS;
    assert!(
        !record(&fwd, &mut flows, &at(TcpFlags::ACK), idle).new,
        "the new connection kept its entry past the closing timeout"
    );
}

proptest::proptest! {
    /// A flow knows its packet's five-tuple back, and the fast path's constructor builds
    /// the same flow as the general one.
    #[test]
    fn a_flow_gives_back_its_packet(key in crate::lb::flow::tests::arb_flow_key(), flags in proptest::prelude::any::<u8>()) {
        let f = Flow::new(key, flags, 7);
        proptest::prop_assert_eq!(f.packet(), key);
        proptest::prop_assert_eq!((f.proto(), f.dst_port()), (key.proto, key.dst_port));
        if let (IpAddr::V4(s), IpAddr::V4(d)) = (key.src, key.dst) {
            let p = Ipv4Flow::new(s.into(), d.into(), key.src_port, key.dst_port, key.proto, flags);
            let TableKey::V4(k) = f.key else { unreachable!("an IPv4 key") };
            let (ordered, reversed) = Flow::v4_order(&p);
            proptest::prop_assert_eq!(ordered, k);
            proptest::prop_assert_eq!(Flow::v4(&p, k, crate::lb::hash::table_hash_v4(&k, 7), reversed), f);
        }
    }
}

#[test]
fn peek_never_remembers() {
    let fwd = build(false, &[]);
    let mut flows = Flows::with_capacity(64);
    let f = flow(&fwd, 1000, 0);
    let d = decide(&fwd, &mut flows, 0, Via::Frontend, &f, 0, Memory::Peek).unwrap();
    assert_eq!(
        Some(d.backend),
        fwd.pick(0, f.decision_hash(fwd.hash_seed, Distribution::FiveTuple))
    );
    assert!(flows.is_empty());
}

#[test]
fn transit_uses_the_ha_ports_rule_and_never_nats() {
    let fwd = build(false, &[]);
    let mut flows = Flows::with_capacity(64);
    let key: FlowKey = "udp 10.1.0.5:5000 10.2.0.9:53".parse().unwrap();
    let f = Flow::new(key, 0, fwd.hash_seed);
    let d = decide(&fwd, &mut flows, 0, Via::Transit, &f, 0, Memory::Record).unwrap();
    assert!(!d.nat);
    assert_eq!(Some(d.decision()), lookup(&fwd, &key, Some(0)).ok());
    // The other direction is the same flow.
    let back = Flow::new(key.reversed(), 0, fwd.hash_seed);
    let d2 = decide(&fwd, &mut flows, 0, Via::Transit, &back, 1, Memory::Record).unwrap();
    assert_eq!((d2.backend, d2.new), (d.backend, false));
}

/// `haports lookup` refuses what the data plane drops by its addresses alone, for the same
/// reason, before any rule is looked at.
#[test]
fn lookup_drops_what_the_data_plane_drops_by_its_addresses() {
    let fwd = build(false, &[]);
    for (flow, via, reason) in [
        (
            "tcp 127.0.0.1:5 10.0.0.100:80",
            None,
            DropReason::MartianSource,
        ),
        (
            "tcp 10.0.0.2:5 10.0.0.100:80",
            None,
            DropReason::MartianSource,
        ),
        (
            "tcp 10.0.0.100:5 10.0.0.100:80",
            None,
            DropReason::MartianSource,
        ),
        (
            "tcp 169.254.1.1:5 10.0.0.100:80",
            None,
            DropReason::MartianSource,
        ),
        (
            "tcp [fe80::1]:5 [fd00::100]:80",
            None,
            DropReason::MartianSource,
        ),
        (
            "udp 10.0.0.50:5 224.0.0.9:520",
            Some(0),
            DropReason::NotForUs,
        ),
        (
            "tcp 10.0.0.50:5 127.0.0.1:80",
            Some(0),
            DropReason::MartianDestination,
        ),
        (
            "tcp 10.0.0.50:5 10.0.0.255:80",
            Some(0),
            DropReason::MartianDestination,
        ),
    ] {
        let key: FlowKey = flow.parse().unwrap();
        assert_eq!(
            lookup(&fwd, &key, via).map(|d| d.backend),
            Err(reason),
            "{flow}"
        );
    }
    // Their neighbours are ordinary flows.
    let key: FlowKey = "tcp 10.0.0.50:5 10.0.0.100:80".parse().unwrap();
    assert!(lookup(&fwd, &key, None).is_ok());
    let key: FlowKey = "tcp 10.0.0.50:5 10.0.0.254:80".parse().unwrap();
    assert!(lookup(&fwd, &key, Some(0)).is_ok());
}

#[test]
fn with_every_backend_down_a_new_flow_has_nowhere_to_go() {
    let fwd = build(false, &["10.0.0.11", "10.0.0.12", "10.0.0.13"]);
    let mut flows = Flows::with_capacity(64);
    let f = flow(&fwd, 1000, TcpFlags::SYN);
    assert_eq!(
        decide(&fwd, &mut flows, 0, Via::Frontend, &f, 0, Memory::Record),
        Err(DropReason::NoHealthyBackend)
    );
    assert!(flows.is_empty());
}

#[test]
fn a_lone_syn_is_forgotten_soon_and_the_handshake_earns_the_idle_timeout() {
    let fwd = build(true, &[]);
    let mut flows = Flows::with_capacity(64);
    let syn = flow(&fwd, 1000, TcpFlags::SYN);
    let first = record(&fwd, &mut flows, &syn, 0);
    assert!(first.new);
    // Retransmitted SYNs keep it alive, but only for the SYN timeout each.
    assert!(!record(&fwd, &mut flows, &syn, 3_000).new);
    assert!(
        record(&fwd, &mut flows, &syn, 3_000 + SYN_TIMEOUT_MS).new,
        "a lone SYN's entry expires after {SYN_TIMEOUT_MS} ms"
    );

    // The client's ACK (or a SYN-ACK, in transit) brings the rule's idle timeout (60 s).
    let ack = flow(&fwd, 2000, TcpFlags::ACK);
    record(&fwd, &mut flows, &flow(&fwd, 2000, TcpFlags::SYN), 0);
    record(&fwd, &mut flows, &ack, 1_000);
    assert!(!record(&fwd, &mut flows, &ack, 1_000 + 30_000).new);
    // and a SYN retransmitted late does not take it back to the short timeout.
    record(&fwd, &mut flows, &flow(&fwd, 2000, TcpFlags::SYN), 31_000);
    assert!(!record(&fwd, &mut flows, &ack, 31_000 + 30_000).new);

    // UDP has no handshake: the idle timeout from its second datagram.
    let key: FlowKey = "udp 10.0.0.50:3000 10.0.0.100:53".parse().unwrap();
    let udp = Flow::new(key, 0, fwd.hash_seed);
    record(&fwd, &mut flows, &udp, 0);
    record(&fwd, &mut flows, &udp, 1_000);
    assert!(!record(&fwd, &mut flows, &udp, 1_000 + 30_000).new);
}

#[test]
fn a_flows_first_packet_of_any_kind_earns_the_idle_timeout_only_with_its_next() {
    let fwd = build(true, &[]);
    let mut flows = Flows::with_capacity(64);
    let key: FlowKey = "udp 10.0.0.50:3000 10.0.0.100:53".parse().unwrap();
    let udp = Flow::new(key, 0, fwd.hash_seed);
    // A lone packet (an ACK picked up mid-connection, a datagram), as a forged source sends
    // them, is forgotten as soon as a lone SYN,
    for (lone, at) in [(flow(&fwd, 1000, TcpFlags::ACK), 0), (udp, 10_000)] {
        assert!(record(&fwd, &mut flows, &lone, at).new);
        assert!(
            record(&fwd, &mut flows, &lone, at + SYN_TIMEOUT_MS).new,
            "a lone packet's entry expires after {SYN_TIMEOUT_MS} ms"
        );
        // and its next packet (a second chance at the same flow) earns the idle timeout.
        assert!(!record(&fwd, &mut flows, &lone, at + SYN_TIMEOUT_MS + 1_000).new);
        assert!(!record(&fwd, &mut flows, &lone, at + SYN_TIMEOUT_MS + 31_000).new);
    }
    // A flow whose first packet closes it keeps the closing timeout.
    let rst = flow(&fwd, 3000, TcpFlags::RST | TcpFlags::ACK);
    record(&fwd, &mut flows, &rst, 0);
    assert!(!record(&fwd, &mut flows, &rst, SYN_TIMEOUT_MS + 1_000).new);
    assert!(
        record(
            &fwd,
            &mut flows,
            &rst,
            SYN_TIMEOUT_MS + 1_000 + CLOSING_TIMEOUT_MS
        )
        .new
    );
}

#[test]
fn a_flood_of_lone_acks_and_datagrams_leaves_room_once_its_entries_expire() {
    let fwd = build(true, &[]);
    let mut flows = Flows::with_capacity(4);
    for sport in 0..32 {
        record(
            &fwd,
            &mut flows,
            &flow(&fwd, 1000 + sport, TcpFlags::ACK),
            0,
        );
        let key = FlowKey {
            proto: 17,
            ..flow(&fwd, 1000 + sport, 0).packet()
        };
        record(&fwd, &mut flows, &Flow::new(key, 0, fwd.hash_seed), 0);
    }
    assert_eq!(flows.len(), 4, "the table is full of the flood's entries");
    flows.expire(SYN_TIMEOUT_MS, 64);
    assert_eq!(
        flows.len(),
        0,
        "the flood's entries are gone within the SYN timeout"
    );
}

#[test]
fn a_syn_flood_leaves_room_for_new_flows_once_its_entries_expire() {
    let fwd = build(true, &[]);
    let mut flows = Flows::with_capacity(4);
    for sport in 0..64 {
        record(
            &fwd,
            &mut flows,
            &flow(&fwd, 1000 + sport, TcpFlags::SYN),
            0,
        );
    }
    assert_eq!(flows.len(), 4, "the table is full of lone SYNs");
    // The worker's sweep reclaims them once expired (a few seconds for a 1M-flow table under
    // load), and a real connection is remembered again.
    flows.expire(SYN_TIMEOUT_MS, 64);
    assert_eq!(flows.len(), 0, "the flood's entries are gone");
    let real = flow(&fwd, 5000, TcpFlags::SYN);
    record(&fwd, &mut flows, &real, SYN_TIMEOUT_MS);
    record(
        &fwd,
        &mut flows,
        &flow(&fwd, 5000, TcpFlags::ACK),
        SYN_TIMEOUT_MS + 10,
    );
    assert!(!record(&fwd, &mut flows, &real, SYN_TIMEOUT_MS + 30_000).new);
}

#[test]
fn the_tables_are_keyed_by_their_secret_and_the_decision_by_the_hash_seed_alone() {
    let fwd = build(true, &[]);
    let mut a = Flows::in_memory(FlowTable::with_capacity(1024), 1);
    let mut b = Flows::in_memory(FlowTable::with_capacity(1024), 2);
    for sport in 1000..1256 {
        let key: FlowKey = format!("tcp 10.0.0.50:{sport} 10.0.0.100:443")
            .parse()
            .unwrap();
        let (fa, fb) = (
            Flow::new(key, TcpFlags::SYN, 1),
            Flow::new(key, TcpFlags::SYN, 2),
        );
        // Where the flow lives differs with the secret; the Maglev input does not.
        assert_ne!(fa.table_hash, fb.table_hash);
        assert_eq!(
            fa.decision_hash(fwd.hash_seed, Distribution::FiveTuple),
            fb.decision_hash(fwd.hash_seed, Distribution::FiveTuple)
        );
        let (da, db) = (record(&fwd, &mut a, &fa, 0), record(&fwd, &mut b, &fb, 0));
        assert_eq!(da.backend, db.backend);
        assert_eq!(da.backend, lookup(&fwd, &key, None).unwrap().backend);
        // Each table finds its own entry again.
        assert!(!record(&fwd, &mut a, &fa, 1).new && !record(&fwd, &mut b, &fb, 1).new);
    }
}

/// [`config`]'s NAT rule with probe `p` defined, and used by the rule when `probe` says so.
fn probed_config(probe: Option<&str>) -> Config {
    let used = probe
        .map(|p| format!("probe = \"{p}\""))
        .unwrap_or_default();
    let text = config_text(false).replace(
        "[[load_balancer.rule]]",
        "[[load_balancer.probe]]\nname = \"p\"\nprotocol = \"tcp\"\nport = 22\n\n[[load_balancer.rule]]",
    );
    let text = text.replace(
        "floating_ip = false",
        &format!("floating_ip = false\n{used}"),
    );
    Config::from_toml(&text, "test").unwrap()
}

/// A reload that gives a rule a probe, or takes it away, puts the rule on another state of
/// its pool (backend ids are per probe): its established flows stay on their backends, as
/// established flows, where the new state lets them; those of a backend down by the new
/// probe move.
#[test]
fn established_flows_keep_their_backends_when_a_reload_changes_their_rules_probe() {
    for (before, after) in [(None, Some("p")), (Some("p"), None)] {
        let f1 = Forwarding::build(&probed_config(before), &Observations::default(), 1, None);
        let mut flows = Flows::with_capacity(4096);
        let address = |f: &Forwarding, d: &Decided| f.backends[d.backend as usize].address;
        let held: Vec<(Flow, IpAddr)> = (0..300)
            .map(|p| {
                let f = flow(&f1, 3000 + p, TcpFlags::ACK);
                let d = record(&f1, &mut flows, &f, 0);
                (f, address(&f1, &d))
            })
            .collect();
        // The new state: 10.0.0.12 fails probe `p` (where the rule uses it now).
        let down: IpAddr = "10.0.0.12".parse().unwrap();
        let obs = Observations {
            down_probes: [(down, "ilb".to_owned(), "p".to_owned())].into(),
            ..Observations::default()
        };
        let f2 = Forwarding::build(&probed_config(after), &obs, 2, Some(&f1));
        assert_ne!(
            f2.frontends[0].rules[0].pool, f1.frontends[0].rules[0].pool,
            "{before:?} -> {after:?}: the rule is on another state of the pool"
        );
        let mut moved = 0;
        for (f, was) in &held {
            let d = record(&f2, &mut flows, f, 10);
            if after.is_some() && *was == down {
                assert_ne!(address(&f2, &d), down, "off the backend down by the probe");
                moved += 1;
            } else {
                assert_eq!(address(&f2, &d), *was, "{before:?} -> {after:?}: {f:?}");
                assert!(
                    !d.new,
                    "{before:?} -> {after:?}: established, not decided again"
                );
            }
            // Remembered under the new state: the next packet is a plain hit.
            assert_eq!(record(&f2, &mut flows, f, 20).backend, d.backend);
        }
        assert_eq!(
            moved > 0,
            after.is_some(),
            "{before:?} -> {after:?}: the down backend had flows"
        );
    }
}

/// A flow table of fewer flows than the side table's share still remembers an IPv6 flow.
#[test]
fn a_tiny_flow_table_still_remembers_an_ipv6_flow() {
    let text = config_text(false)
        .replace("10.0.0.2/24", "fd00::2/64")
        .replace("10.0.0.", "fd00::");
    let fwd = Forwarding::build(
        &Config::from_toml(&text, "test").unwrap(),
        &Observations::default(),
        1,
        None,
    );
    let mut flows = Flows::with_capacity(3);
    let key: FlowKey = "tcp [fd00::50]:1000 [fd00::100]:443".parse().unwrap();
    let f = Flow::new(key, TcpFlags::ACK, fwd.hash_seed);
    assert!(record(&fwd, &mut flows, &f, 0).new);
    assert!(!record(&fwd, &mut flows, &f, 1).new, "remembered");
}

#[path = "decision_transit_tests.rs"]
mod transit;
