//! Nanoseconds a packet through the pipeline without DPDK, in the two forms it runs in:
//! each burst through both stages in turn (`process_burst`, as the tests and criterion's
//! `nat_udp_burst` run it) and the stages a burst apart with the buckets requested twice (as
//! the worker runs them). The two alternate in slices within one process, so that a machine
//! whose speed drifts (a virtual machine's does) slows both alike; each prints its best and
//! median slice.
//!
//! ```text
//! cargo run --release --example pipeline_ns -- [nat|dsr] [FLOWS] [SLICES]
//! ```
//!
//! UDP flows from random clients to an HA-ports frontend with four backends, every flow in
//! the flow table (1M flows' capacity, on the ordinary heap) before the clock starts.

use std::time::Instant;

use haports::dataplane::pipeline::{
    classify_burst, decide_burst, prefetch_buckets_again, Classified,
};
use haports::dataplane::{process_burst, Action, NeighbourReports, Spill, WorkerState};
use haports::dpdk::BURST;
use haports::lb::forwarding::Forwarding;
use haports::lb::verdict::DropReason;

#[path = "../benches/support/burst.rs"]
mod support;
use support::{forwarding, udp_frame};

/// Bursts a slice.
const SLICE: usize = 20_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let floating = args.next().as_deref() == Some("dsr");
    let flows: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let slices: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let fwd = forwarding(floating);
    let frames: Vec<Vec<u8>> = (0..flows.max(BURST as u32 + 1))
        .map(|n| {
            let x = n.wrapping_mul(2_654_435_761);
            udp_frame(0x0a40_0000 | (x >> 12), 1024 + (x & 0xfff) as u16)
        })
        .collect();
    let mut st = WorkerState::new(1 << 20, NeighbourReports::new_queue());
    let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
    let mut spill = Spill::with_capacity(BURST);
    for chunk in frames.chunks(BURST) {
        process_burst(
            &mut chunk.to_vec(),
            0,
            &mut st,
            &fwd,
            1,
            &mut actions,
            &mut spill,
        );
    }
    let mut times: [Vec<f64>; 2] = Default::default();
    for _ in 0..slices {
        for (form, t) in times.iter_mut().enumerate() {
            let start = Instant::now();
            let sent = if form == 0 {
                in_turn(&frames, &mut st, &fwd)
            } else {
                a_burst_apart(&frames, &mut st, &fwd)
            };
            t.push(start.elapsed().as_nanos() as f64 / (SLICE * BURST) as f64);
            assert!(sent > 0, "nothing was sent: the config is wrong");
        }
    }
    let mode = if floating { "DSR" } else { "NAT" };
    println!(
        "{mode}, {flows} flows, {slices} slices of {SLICE} bursts, ns a packet (best / median):"
    );
    for (name, mut t) in ["in turn", "a burst apart"].into_iter().zip(times) {
        t.sort_by(f64::total_cmp);
        println!("  {name:>14}: {:.1} / {:.1}", t[0], t[t.len() / 2]);
    }
}

/// Each burst through both stages in turn. Returns the packets sent.
fn in_turn(frames: &[Vec<u8>], st: &mut WorkerState, fwd: &Forwarding) -> usize {
    let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
    let mut spill = Spill::with_capacity(BURST);
    let mut burst: Vec<Vec<u8>> = frames[..BURST].to_vec();
    let mut sent = 0;
    for r in 0..SLICE {
        refill(&mut burst, frames, r);
        process_burst(&mut burst, 0, st, fwd, 1, &mut actions, &mut spill);
        sent += transmitted(&actions);
    }
    sent
}

/// The next burst classified, the one before decided, the next one's buckets requested
/// again: the worker's loop.
fn a_burst_apart(frames: &[Vec<u8>], st: &mut WorkerState, fwd: &Forwarding) -> usize {
    let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
    let mut spill = Spill::with_capacity(BURST);
    let mut lanes = [frames[..BURST].to_vec(), frames[..BURST].to_vec()];
    let mut found = [Classified::default(), Classified::default()];
    let mut sent = 0;
    for r in 0..SLICE {
        let [a, b] = &mut lanes;
        let [fa, fb] = &mut found;
        let ((new, found_new), (waiting, found_waiting)) = if r % 2 == 0 {
            ((a, fa), (b, fb))
        } else {
            ((b, fb), (a, fa))
        };
        refill(new, frames, r);
        classify_burst(new, 0, st, fwd, found_new);
        if r > 0 {
            decide_burst(waiting, found_waiting, st, fwd, 1, &mut actions, &mut spill);
            sent += transmitted(&actions);
        }
        prefetch_buckets_again(found_new, st);
    }
    sent
}

/// Burst `r`'s frames, as received.
fn refill(burst: &mut [Vec<u8>], frames: &[Vec<u8>], r: usize) {
    let at = (r * BURST) % (frames.len() - BURST);
    for (d, s) in burst.iter_mut().zip(&frames[at..at + BURST]) {
        d.copy_from_slice(s);
    }
}

fn transmitted(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Transmit { .. }))
        .count()
}
