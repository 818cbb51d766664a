//! The fuzz target's body (`fuzz/fuzz_targets/pipeline.rs`): the whole per-packet path of a
//! worker, the burst pipeline and the slow path, over arbitrary frames, with forwarding
//! states built from the shipped example configs (NAT and DSR HA ports, n-active and
//! active-passive NVAs in transit, port translation, public and internal rules on one pool,
//! IPv6, client-IP affinity, NVAs behind VXLAN, with IPv6 inside too through a tunnel
//! narrower than IPv6's minimum MTU). Also run over the committed corpus as an ordinary
//! test, so CI replays every input.
//!
//! An input is: a config selector, an ingress interface (and whether the worker runs its
//! stages a burst apart), a clock step, then frames, each a two-byte big-endian length and
//! its bytes (up to four bursts, the clock moving on between them). The bursts go through
//! the burst pipeline on one worker, as the worker runs it (stages in turn, or a burst
//! apart), and, packet by packet, through the slow path alone on another
//! ([`process_alone`]: `process`, then the tunnel where VXLAN takes the packet): nothing may
//! panic, and both must do the same to every packet (the fast path takes only what the slow
//! path would treat alike), leaving the same bytes and making the same packets beside (a
//! packet split for a tunnel); state (flows, fragments, neighbours) carries from one burst
//! to the next on each worker.

use std::net::IpAddr;

use crate::config::Config;
use crate::dataplane::pipeline::{classify_burst, decide_burst, process_alone, Classified};
use crate::dataplane::{process_burst, Action, NeighbourReports, Spill, WorkerState};
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
    let Some(input) = parse(states, data) else {
        return;
    };
    let fwd = input.fwd;
    let ((pipelined, actions, decided_at, spilled), counted) = through_pipeline(&input);

    // The slow path alone, packet by packet, each at the time the pipeline decided it; the
    // packets made beside a burst's own (a split packet's fragments) the same.
    let mut other = WorkerState::new(4096, NeighbourReports::new_queue());
    let mut spill = Spill::with_capacity(BURST);
    for (k, mut burst) in input.bursts.into_iter().enumerate() {
        for (i, frame) in burst.iter_mut().enumerate() {
            let now = decided_at[k];
            let slow = process_alone(frame, input.ingress, &mut other, fwd, now, &mut spill);
            assert_eq!(
                actions[k][i], slow,
                "burst {k}, packet {i}: the burst pipeline and the slow path"
            );
            assert_eq!(
                pipelined[k][i], *frame,
                "burst {k}, packet {i}: the bytes each path left"
            );
            if let Action::Transmit { interface, backend } = slow {
                assert!((interface as usize) < fwd.interfaces.len());
                assert!(backend.map_or(true, |b| (b as usize) < fwd.backends.len()));
            }
            if let Action::HoldForBackend { backend } = slow {
                assert!((backend as usize) < fwd.backends.len());
            }
        }
        // One spill over the burst, as the worker's: the same room for the same packets.
        let made: Vec<_> = spill.drain().collect();
        assert_eq!(
            spilled[k], made,
            "burst {k}: the packets made beside the burst"
        );
    }
    // The same new flows counted for each backend, and as many refused.
    assert_eq!(
        counted,
        counts(&other, fwd),
        "new flows by backend, and refused"
    );
}

/// A worker's new flows by backend (of `fwd`'s), and the flows its table refused.
fn counts(st: &WorkerState, fwd: &Forwarding) -> (Vec<u64>, u64) {
    let counted = st.new_flows.iter().take(fwd.backends.len());
    (counted.map(|c| c.get()).collect(), st.flows.refused)
}

/// What [`through_pipeline`] leaves: the bursts, each one's actions, when each was decided,
/// and the packets each made beside its own, with their actions.
type Pipelined = (
    Vec<Vec<Vec<u8>>>,
    Vec<[Action; BURST]>,
    Vec<u64>,
    Vec<Vec<(Vec<u8>, Action)>>,
);

/// The input's bursts through the burst pipeline on one worker, as the worker runs it: each
/// burst's stages in turn, or a burst apart (the next burst classified before this one is
/// decided, at the time of the loop that decides it). The bursts as they were left, each
/// one's actions, and when each was decided; and the worker's counts after them
/// ([`counts`]).
fn through_pipeline(input: &Input) -> (Pipelined, (Vec<u64>, u64)) {
    let fwd = input.fwd;
    let mut pipelined = input.bursts.clone();
    let mut spill = Spill::with_capacity(BURST);
    let mut spilled = vec![Vec::new(); pipelined.len()];
    let mut st = WorkerState::new(4096, NeighbourReports::new_queue());
    let mut actions = vec![[Action::Drop(DropReason::Unsupported); BURST]; pipelined.len()];
    let mut decided_at = vec![0; pipelined.len()];
    let mut waiting: Option<(usize, Box<Classified>)> = None;
    for k in 0..=pipelined.len() {
        let now_ms = input.time(k);
        let mut found = Box::<Classified>::default();
        if let Some(burst) = pipelined.get_mut(k).filter(|_| !input.apart) {
            let (time, out) = (now_ms, &mut actions[k]);
            process_burst(burst, input.ingress, &mut st, fwd, time, out, &mut spill);
            decided_at[k] = now_ms;
            spilled[k].extend(spill.drain());
        } else if let Some(burst) = pipelined.get_mut(k) {
            classify_burst(burst, input.ingress, &st, fwd, &mut found);
        }
        if let Some((j, classified)) = waiting.take() {
            decide_burst(
                &mut pipelined[j],
                &classified,
                &mut st,
                fwd,
                now_ms,
                &mut actions[j],
                &mut spill,
            );
            decided_at[j] = now_ms;
            spilled[j].extend(spill.drain());
        }
        waiting = Some((k, found)).filter(|_| input.apart && k < pipelined.len());
        // The worker's housekeeping at the end of each loop, which must change no decision.
        st.flows.expire(now_ms, 8);
        st.fragments.expire(now_ms, 2);
    }
    let counted = counts(&st, fwd);
    ((pipelined, actions, decided_at, spilled), counted)
}

/// The most bursts one input holds.
const MAX_BURSTS: usize = 4;

/// An input's parts.
struct Input<'a> {
    /// The forwarding state it picks.
    fwd: &'a Forwarding,
    ingress: u32,
    /// The worker runs the stages a burst apart (as it does for large flow tables).
    apart: bool,
    /// The time of the first burst, and between one burst and the next.
    start_ms: u64,
    gap_ms: u64,
    /// At most [`MAX_BURSTS`] bursts of at most [`BURST`] frames.
    bursts: Vec<Vec<Vec<u8>>>,
}

impl Input<'_> {
    /// The time of the worker's `k`th loop (the one that receives burst `k`).
    fn time(&self, k: usize) -> u64 {
        self.start_ms + k as u64 * self.gap_ms
    }
}

/// An input's parts: byte 0 picks the state, byte 1 the ingress (bit 7: the stages a burst
/// apart), byte 2 the time (the first burst at 1 s + that many seconds, each further one
/// that many quarter seconds later), then frames, each a two-byte big-endian length and
/// its bytes, [`BURST`] to a burst. `None` for an input too short to pick.
fn parse<'a>(states: &'a [Forwarding], data: &[u8]) -> Option<Input<'a>> {
    let [pick, ingress, step, rest @ ..] = data else {
        return None;
    };
    let fwd = &states[usize::from(*pick) % states.len()];
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut rest = rest;
    while frames.len() < MAX_BURSTS * BURST {
        let [hi, lo, tail @ ..] = rest else { break };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        frames.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    let bursts = frames.chunks(BURST).map(<[Vec<u8>]>::to_vec).collect();
    Some(Input {
        fwd,
        ingress: u32::from(ingress & 0x7f) % fwd.interfaces.len() as u32,
        apart: ingress & 0x80 != 0,
        start_ms: 1_000 + u64::from(*step) * 1_000,
        gap_ms: u64::from(*step) * 250,
        bursts,
    })
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

    /// The seeds of several bursts carry state from one burst to the next, with the stages in
    /// turn and a burst apart: a TCP flow's next segment and a datagram's later fragments,
    /// a burst after their first, go where it went; 6 s later, the fragments' datagram is
    /// forgotten (5 s) and they are dropped.
    #[test]
    fn the_burst_seeds_carry_state_from_one_burst_to_the_next() {
        let states = states();
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/pipeline");
        let backend = |a: Action| match a {
            Action::Transmit {
                backend: Some(b), ..
            } => b,
            other => panic!("{other:?}"),
        };
        for (seed, apart, forgotten) in [
            ("seed-bursts-apart", true, false),
            ("seed-bursts-in-turn", false, true),
        ] {
            let data = std::fs::read(corpus.join(seed)).expect("a seed");
            let input = parse(&states, &data).expect("an input");
            assert_eq!((input.bursts.len(), input.apart), (2, apart), "{seed}");
            let ((_, actions, _, _), _) = through_pipeline(&input);
            assert_eq!(
                backend(actions[1][0]),
                backend(actions[0][0]),
                "{seed}: the flow stays"
            );
            let first = backend(actions[0][1]);
            for later in &actions[1][1..3] {
                if forgotten {
                    assert_eq!(*later, Action::Drop(DropReason::Fragment), "{seed}");
                } else {
                    assert_eq!(
                        backend(*later),
                        first,
                        "{seed}: fragments follow their first"
                    );
                }
            }
        }
    }

    /// The VXLAN seeds reach the tunnel in the fuzz states (its next hop resolved): a packet
    /// that fits leaves inside it, 50 bytes longer, one too big is answered with an ICMP
    /// error (IPv4 with DF, and IPv6 through a tunnel narrower than 1280 bytes) or split
    /// (IPv4 without DF).
    #[test]
    fn the_vxlan_seeds_reach_the_tunnel() {
        let states = states();
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/pipeline");
        let through = |seed: &str| {
            let data = std::fs::read(corpus.join(seed)).expect("a seed");
            let input = parse(&states, &data).expect("an input");
            let frames = &input.bursts[0];
            let mut out = frames.clone();
            let mut st = WorkerState::new(4096, NeighbourReports::new_queue());
            let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
            let (fwd, now_ms) = (input.fwd, input.time(0));
            let mut spill = Spill::with_capacity(BURST);
            let ingress = input.ingress;
            process_burst(
                &mut out,
                ingress,
                &mut st,
                fwd,
                now_ms,
                &mut actions,
                &mut spill,
            );
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
        assert!(
            matches!(
                v4[2].0,
                Action::Transmit {
                    backend: Some(_),
                    ..
                }
            ),
            "too big without DF, split for the tunnel: {v4:?}"
        );
        let small = through("seed-vxlan-small-mtu");
        assert!(inside(small[1]), "{small:?}");
        assert!(answered(small[2]), "IPv6 too big: {small:?}");
    }
}
