//! Distribution modes: which fields of a new flow choose its backend.
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::config::{Config, Distribution};
use crate::lb::forwarding::Observations;

const MODES: [Distribution; 3] = [
    Distribution::FiveTuple,
    Distribution::ClientIpProtocol,
    Distribution::ClientIp,
];

/// An HA-ports rule over `backends` backends (10.0.0.11…), floating, in `mode`, on an IPv4
/// frontend (id 0) and an IPv6 one (id 1).
fn forwarding(mode: Distribution, backends: u8) -> Forwarding {
    let pool: Vec<String> = (0..backends)
        .map(|i| format!("{{ address = \"10.0.0.{}\" }}", 11 + i))
        .collect();
    let mode = match mode {
        Distribution::FiveTuple => "five_tuple",
        Distribution::ClientIpProtocol => "client_ip_protocol",
        Distribution::ClientIp => "client_ip",
    };
    let text = format!(
        r#"
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
  [[load_balancer.frontend]]
  name = "fe6"
  address = "fd00::100"
  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [{}]
  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = true
  distribution = "{mode}"
  [[load_balancer.rule]]
  name = "ha6"
  frontend = "fe6"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = true
  distribution = "{mode}"
"#,
        pool.join(", ")
    );
    let cfg = Config::from_toml(&text, "test").unwrap();
    Forwarding::build(&cfg, &Observations::default(), 1, None)
}

/// The backend a new flow `key` gets, arrived `via` the frontend of its family.
fn backend(fwd: &Forwarding, key: FlowKey, via: Via) -> BackendId {
    let mut flows = Flows::with_capacity(16);
    let flow = Flow::new(key, 0, 0);
    let fe = if key.src.is_ipv4() { 0 } else { 1 };
    decide(fwd, &mut flows, fe, via, &flow, 0, Memory::Record)
        .unwrap()
        .backend
}

fn key(proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> FlowKey {
    FlowKey {
        proto,
        src,
        dst,
        src_port: sport,
        dst_port: dport,
    }
}

const TCP: u8 = 6;
const UDP: u8 = 17;

#[test]
fn each_mode_ignores_exactly_the_fields_it_should() {
    let client: IpAddr = "192.0.2.7".parse().unwrap();
    let frontend: IpAddr = "10.0.0.100".parse().unwrap();
    for mode in MODES {
        let fwd = forwarding(mode, 10);
        let mut by_proto: HashMap<u8, BTreeSet<BackendId>> = HashMap::new();
        for proto in [TCP, UDP] {
            for sport in (1024..61_024u16).step_by(600) {
                let dport = sport.wrapping_mul(7);
                let b = backend(
                    &fwd,
                    key(proto, client, sport, frontend, dport),
                    Via::Frontend,
                );
                by_proto.entry(proto).or_default().insert(b);
            }
        }
        let all: BTreeSet<_> = by_proto.values().flatten().collect();
        match mode {
            // 100 flows per protocol over 10 backends: all of them used.
            Distribution::FiveTuple => assert_eq!(all.len(), 10, "{mode:?}"),
            // One backend per protocol, whatever the ports.
            Distribution::ClientIpProtocol => {
                assert!(
                    by_proto.values().all(|b| b.len() == 1),
                    "{mode:?}: {by_proto:?}"
                );
                // And the protocol counts: over fifty clients, some get another backend for
                // UDP than for TCP (one in ten would not, by chance).
                let differs = (1..=50u8).any(|n| {
                    let c = IpAddr::V4(Ipv4Addr::new(192, 0, 2, n));
                    let of =
                        |proto| backend(&fwd, key(proto, c, 1000, frontend, 80), Via::Frontend);
                    of(TCP) != of(UDP)
                });
                assert!(
                    differs,
                    "{mode:?}: the protocol changes no client's backend"
                );
            }
            // One backend for the client, whatever the protocol and ports.
            Distribution::ClientIp => assert_eq!(all.len(), 1, "{mode:?}: {by_proto:?}"),
        }
    }
}

#[test]
fn every_mode_balances_many_clients_within_ten_percent_of_the_mean() {
    for mode in MODES {
        let fwd = forwarding(mode, 10);
        let frontend: IpAddr = "10.0.0.100".parse().unwrap();
        let mut count = [0u32; 10];
        let clients = 100_000u32;
        for i in 0..clients {
            // Clients across a /8, each with its own port.
            let client = IpAddr::V4(Ipv4Addr::from(
                0x0b00_0000 + i.wrapping_mul(2_654_435_761) % (1 << 24),
            ));
            let b = backend(
                &fwd,
                key(TCP, client, 40_000 + (i % 20_000) as u16, frontend, 443),
                Via::Frontend,
            );
            count[b as usize] += 1;
        }
        let mean = f64::from(clients) / 10.0;
        let max = f64::from(*count.iter().max().unwrap());
        assert!(max / mean <= 1.1, "{mode:?}: {count:?}");
    }
}

proptest::proptest! {
    /// In transit, both directions of a flow meet one backend in every mode, IPv4 and IPv6.
    #[test]
    fn every_mode_is_symmetric_in_transit(flow in crate::lb::flow::tests::arb_flow_key()) {
        for mode in MODES {
            let fwd = forwarding(mode, 10);
            let there = backend(&fwd, flow, Via::Transit);
            let back = backend(&fwd, flow.reversed(), Via::Transit);
            proptest::prop_assert_eq!(there, back, "{:?} {:?}", mode, flow);
        }
    }
}
