//! The fuzz target's body (`fuzz/fuzz_targets/pipeline.rs`): the whole per-packet path of a
//! worker, the burst pipeline and the slow path, over arbitrary frames, with forwarding
//! states built from the shipped example configs (NAT and DSR HA ports, n-active and
//! active-passive NVAs in transit, port translation, public and internal rules on one pool,
//! IPv6, client-IP affinity, NVAs behind VXLAN, with IPv6 inside too through a tunnel
//! narrower than IPv6's minimum MTU). Also run over the committed corpus as an ordinary
//! test, so CI replays every input.
//!
//! An input is: a config selector, an ingress interface, a clock step, then frames, each a
//! two-byte big-endian length and its bytes (at most a burst). The burst goes through
//! [`process_burst`] on one worker and, packet by packet, through the slow path alone on
//! another ([`process_alone`]: `process`, then the tunnel where VXLAN takes the packet):
//! nothing may panic, and both must do the same to every packet (the fast path takes only
//! what the slow path would treat alike), leaving the same bytes.

use std::net::IpAddr;

use crate::config::Config;
use crate::dataplane::pipeline::process_alone;
use crate::dataplane::{process_burst, Action, NeighbourReports, WorkerState};
use crate::dpdk::BURST;
use crate::lb::forwarding::{Forwarding, Neighbour, Observations};
use crate::lb::verdict::DropReason;
use crate::wire::MacAddr;

/// The configs inputs pick from, each with its interfaces' MTU.
const CONFIGS: [(&str, u16); 10] = [
    (include_str!("../examples/basic.toml"), 1500),
    (include_str!("../examples/ha-ports-plus-public.toml"), 1500),
    (
        include_str!("../examples/multi-frontend-floating.toml"),
        1500,
    ),
    (include_str!("../examples/nva-active-passive.toml"), 1500),
    (include_str!("../examples/nva-n-active.toml"), 1500),
    (include_str!("../examples/port-translation.toml"), 1500),
    (include_str!("../tests/fixtures/ipv6.toml"), 1500),
    (include_str!("../examples/client-ip-affinity.toml"), 1500),
    (include_str!("../examples/nva-over-vxlan.toml"), 1500),
    (include_str!("../tests/fixtures/vxlan-small-mtu.toml"), 1280),
];

/// The forwarding states of [`CONFIGS`], built once: interface `i` has MAC
/// `02:00:00:00:00:0(i+1)`; backends and a few clients and gateways are resolved.
pub fn states() -> Vec<Forwarding> {
    CONFIGS
        .iter()
        .map(|&(text, mtu)| {
            let cfg = Config::from_toml(text, "fuzz").expect("example configs parse");
            // Clients and gateways (10.0.0.1: the VXLAN configs' router) at 02:00:00:00:c1:10; each backend at 02:00:00:00:0b:NN,
            // NN its address's last byte.
            let clients = [
                "10.0.0.1",
                "10.0.0.50",
                "10.0.1.10",
                "10.1.0.1",
                "fd00::50",
                "fd00:1::10",
            ]
            .iter()
            .map(|a| {
                (
                    a.parse().expect("an address"),
                    MacAddr([2, 0, 0, 0, 0xc1, 0x10]),
                )
            });
            let backends = cfg
                .load_balancer
                .iter()
                .flat_map(|lb| &lb.backend_pool)
                .flat_map(|pool| &pool.backends)
                .map(|b| (b.address, backend_mac(b.address)));
            let neighbours = clients
                .chain(backends)
                .map(|(addr, mac): (IpAddr, MacAddr)| (addr, Neighbour::fresh(mac)))
                .collect();
            let obs = Observations {
                interface_macs: (0..cfg.interface.len() as u8)
                    .map(|i| MacAddr([2, 0, 0, 0, 0, i + 1]))
                    .collect(),
                interface_mtus: vec![mtu; cfg.interface.len()],
                neighbours,
                ..Observations::default()
            };
            Forwarding::build(&cfg, &obs, 1, None)
        })
        .collect()
}

/// The MAC the fuzz states give a backend: `02:00:00:00:0b:NN`, NN its address's last byte.
pub fn backend_mac(addr: IpAddr) -> MacAddr {
    let last = match addr {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15],
    };
    MacAddr([2, 0, 0, 0, 0x0b, last])
}

/// One input through both paths; panics (the fuzzer's finding) if they disagree.
pub fn run(states: &[Forwarding], data: &[u8]) {
    let Some((fwd, ingress, now_ms, frames)) = parse(states, data) else {
        return;
    };

    let mut pipelined = frames.clone();
    let mut st = WorkerState::new(4096, NeighbourReports::new_queue());
    let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
    process_burst(&mut pipelined, ingress, &mut st, fwd, now_ms, &mut actions);

    let mut one_by_one = frames;
    let mut other = WorkerState::new(4096, NeighbourReports::new_queue());
    for (i, frame) in one_by_one.iter_mut().enumerate() {
        let slow = process_alone(frame, ingress, &mut other, fwd, now_ms);
        assert_eq!(
            actions[i], slow,
            "packet {i}: the burst pipeline and the slow path"
        );
        assert_eq!(pipelined[i], *frame, "packet {i}: the bytes each path left");
        if let Action::Transmit { interface, backend } = slow {
            assert!((interface as usize) < fwd.interfaces.len());
            assert!(backend.map_or(true, |b| (b as usize) < fwd.backends.len()));
        }
    }
}

/// An input's parts: the state it picks, its ingress, the time and its frames (at most a
/// burst); `None` for an input too short to pick.
fn parse<'a>(states: &'a [Forwarding], data: &[u8]) -> Option<Input<'a>> {
    let [pick, ingress, step, rest @ ..] = data else {
        return None;
    };
    let fwd = &states[usize::from(*pick) % states.len()];
    let ingress = u32::from(*ingress) % fwd.interfaces.len() as u32;
    let now_ms = 1_000 + u64::from(*step) * 1_000;
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(BURST);
    let mut rest = rest;
    while frames.len() < BURST {
        let [hi, lo, tail @ ..] = rest else { break };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        frames.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    Some((fwd, ingress, now_ms, frames))
}

/// What [`parse`] makes of an input.
type Input<'a> = (&'a Forwarding, u32, u64, Vec<Vec<u8>>);

/// An input from its parts (for the seed corpus).
pub fn input(pick: u8, ingress: u8, step: u8, frames: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![pick, ingress, step];
    for f in frames {
        out.extend_from_slice(&(f.len() as u16).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input of the committed corpus (`fuzz/corpus/pipeline`) through the target.
    #[test]
    fn the_fuzz_corpus_replays_without_a_finding() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/pipeline");
        let states = states();
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("the committed corpus") {
            let path = entry.expect("a corpus entry").path();
            run(&states, &std::fs::read(&path).expect("a corpus file"));
            n += 1;
        }
        assert!(n >= 10, "only {n} inputs in {}", dir.display());
    }

    /// The VXLAN seeds reach the tunnel in the fuzz states (its next hop resolved): a packet
    /// that fits leaves inside it, 50 bytes longer, one too big is answered with an ICMP
    /// error (IPv4 with DF, and IPv6 through a tunnel narrower than 1280 bytes) or dropped.
    #[test]
    fn the_vxlan_seeds_reach_the_tunnel() {
        let states = states();
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/pipeline");
        let through = |seed: &str| {
            let data = std::fs::read(corpus.join(seed)).expect("a seed");
            let (fwd, ingress, now_ms, frames) = parse(&states, &data).expect("an input");
            let mut out = frames.clone();
            let mut st = WorkerState::new(4096, NeighbourReports::new_queue());
            let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
            process_burst(&mut out, ingress, &mut st, fwd, now_ms, &mut actions);
            let grew = |i: usize| out[i].len() as isize - frames[i].len() as isize;
            (0..frames.len())
                .map(|i| (actions[i], grew(i)))
                .collect::<Vec<_>>()
        };
        let inside = |(a, grew): (Action, isize)| {
            matches!(
                a,
                Action::Transmit {
                    backend: Some(_),
                    ..
                }
            ) && grew == 50
        };
        let answered = |(a, _): (Action, isize)| {
            matches!(
                a,
                Action::Transmit {
                    interface: 0,
                    backend: None
                }
            )
        };
        let v4 = through("seed-vxlan");
        assert!(inside(v4[0]), "{v4:?}");
        assert!(answered(v4[1]), "too big with DF: {v4:?}");
        assert_eq!(
            v4[2].0,
            Action::Drop(DropReason::TooBig),
            "too big without DF"
        );
        let small = through("seed-vxlan-small-mtu");
        assert!(inside(small[1]), "{small:?}");
        assert!(answered(small[2]), "IPv6 too big: {small:?}");
    }
}
