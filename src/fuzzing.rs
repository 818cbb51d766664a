//! The fuzz target's body (`fuzz/fuzz_targets/pipeline.rs`): the whole per-packet path of a
//! worker, the burst pipeline and the slow path, over arbitrary frames, with forwarding
//! states built from the shipped example configs (NAT and DSR HA ports, n-active and
//! active-passive NVAs in transit, port translation, public and internal rules on one pool,
//! IPv6, client-IP affinity). Also run over the committed corpus as an ordinary test, so CI
//! replays every input.
//!
//! An input is: a config selector, an ingress interface, a clock step, then frames, each a
//! two-byte big-endian length and its bytes (at most a burst). The burst goes through
//! [`process_burst`] on one worker and, packet by packet, through [`process`] on another:
//! nothing may panic, and both must do the same to every packet (the fast path takes only
//! what the slow path would treat alike), leaving the same bytes.

use std::net::IpAddr;

use crate::config::Config;
use crate::dataplane::{process, process_burst, Action, NeighbourReports, WorkerState};
use crate::dpdk::BURST;
use crate::lb::forwarding::{Forwarding, Neighbour, Observations};
use crate::lb::verdict::DropReason;
use crate::wire::MacAddr;

/// The configs inputs pick from.
const CONFIGS: [&str; 8] = [
    include_str!("../examples/basic.toml"),
    include_str!("../examples/ha-ports-plus-public.toml"),
    include_str!("../examples/multi-frontend-floating.toml"),
    include_str!("../examples/nva-active-passive.toml"),
    include_str!("../examples/nva-n-active.toml"),
    include_str!("../examples/port-translation.toml"),
    include_str!("../tests/fixtures/ipv6.toml"),
    include_str!("../examples/client-ip-affinity.toml"),
];

/// The forwarding states of [`CONFIGS`], built once: interface `i` has MAC
/// `02:00:00:00:00:0(i+1)`; backends and a few clients and gateways are resolved.
pub fn states() -> Vec<Forwarding> {
    CONFIGS
        .iter()
        .map(|text| {
            let cfg = Config::from_toml(text, "fuzz").expect("example configs parse");
            // Clients and gateways at 02:00:00:00:c1:10; each backend at 02:00:00:00:0b:NN,
            // NN its address's last byte.
            let clients = [
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
    let [pick, ingress, step, rest @ ..] = data else {
        return;
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

    let mut pipelined = frames.clone();
    let mut st = WorkerState::new(4096, NeighbourReports::new_queue());
    let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
    process_burst(&mut pipelined, ingress, &mut st, fwd, now_ms, &mut actions);

    let mut one_by_one = frames;
    let mut other = WorkerState::new(4096, NeighbourReports::new_queue());
    for (i, frame) in one_by_one.iter_mut().enumerate() {
        let slow = process(frame, ingress, &mut other, fwd, now_ms);
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
}
