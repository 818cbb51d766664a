//! One worker lcore's poll loop over its RX/TX queues: a burst in, through the
//! [`pipeline`](super::pipeline), and out: as received where every packet leaves by one port,
//! else each to a TX buffer or a kernel twin, or freed in bulk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use crossbeam::queue::ArrayQueue;

use super::action::Action;
use super::counters::WorkerCounters;
use super::egress::{Egress, ToTwin};
use super::fragmenter::Spill;
use super::neighbours::{NeighbourReports, Report};
use super::pipeline::{classify_burst, decide_burst, prefetch_buckets_again, Classified};
use super::state::{ForwardingCache, WorkerState};
use crate::dpdk::{prefetch, rdtsc, Mbuf, MbufBurst, RxQueue, TxQueue, BURST};
use crate::lb::forwarding::Forwarding;
use crate::lb::verdict::DropReason;

/// Flow-table buckets aged per loop iteration (side-table slots: a quarter as many): a
/// 1M-flow table is swept in 131k loops, a few seconds under full load and far less idle.
const EXPIRE_PER_LOOP: usize = 8;

/// Everything one worker owns. Built by the control thread, moved to the worker's lcore.
pub struct Worker {
    pub index: usize,
    /// RX queue `index` of each interface's port, by interface index.
    pub rx: Vec<RxQueue>,
    /// TX queue `index` of each interface's port.
    pub tx: Vec<TxQueue>,
    /// The hand-off to each interface's kernel twin: the control thread sends on the twin's
    /// one TX queue.
    pub to_twin: Vec<ToTwin>,
    pub state: WorkerState,
    pub forwarding: Arc<ArcSwap<Forwarding>>,
    pub counters: Arc<WorkerCounters>,
    pub stop: Arc<AtomicBool>,
    pub tsc_hz: u64,
    /// Packets from the kernel twins that this worker sends for the control thread, by
    /// interface, where a port has no TX queue to spare for it (AF_PACKET, for one).
    pub kernel_out: Vec<Option<Arc<ArrayQueue<Mbuf>>>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new_reports() -> Arc<ArrayQueue<Report>> {
        NeighbourReports::new_queue()
    }

    /// Polls until `stop` is set. Returns 0 (the lcore's exit code).
    pub fn run(mut self) -> i32 {
        let mut lanes: Vec<Lanes> = self.rx.iter().map(|_| Lanes::default()).collect();
        let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
        // Room for the fragments of a burst's packets split for a tunnel, taken now.
        let mut spill = Spill::with_capacity(BURST);
        let (tx, to_twin) = (
            std::mem::take(&mut self.tx),
            std::mem::take(&mut self.to_twin),
        );
        let mut out = Egress::new(tx, to_twin, self.counters.clone());
        let mut cache = ForwardingCache::new(self.forwarding.clone(), self.counters.clone());
        let ticks_per_ms = (self.tsc_hz / 1000).max(1);
        let counters = self.counters.clone();
        let mut loops: u64 = 0;

        while !self.stop.load(Ordering::Relaxed) {
            // Quiescent point: pick up the newest published state once per iteration (the
            // one before is freed by the control thread, not here).
            let fwd: &Arc<Forwarding> = cache.load();
            let now_ms = rdtsc() / ticks_per_ms;
            // Packets that waited for a neighbour this state now has go first, ahead of their
            // flows' later packets in the bursts below.
            out.release_held(fwd, now_ms);
            for (ifc, (rxq, lanes)) in self.rx.iter_mut().zip(&mut lanes).enumerate() {
                // The burst received now is classified (its buckets requested) before the
                // one received last time, if one waits, is decided: where the flow table is
                // large, a burst's work hides the other's memory latency (`decides_apart`);
                // else each burst is decided as soon as it is classified. With nothing
                // received, the one waiting goes at once.
                let (new, waiting) = lanes.split();
                let n = rxq.burst(&mut new.burst);
                if n > 0 {
                    counters.rx_packets[ifc].add(n as u64);
                    let st = &self.state;
                    classify_burst(new.burst.slots_mut(), ifc as u32, st, fwd, &mut new.found);
                }
                if !waiting.burst.is_empty() {
                    let slots = waiting.burst.slots_mut();
                    let st = &mut self.state;
                    let counted = decide_burst(
                        slots,
                        &waiting.found,
                        st,
                        fwd,
                        now_ms,
                        &mut actions,
                        &mut spill,
                    );
                    out.send(&mut waiting.burst, &actions, counted, now_ms);
                    out.send_spilled(&mut spill, now_ms);
                }
                if n > 0 && decides_apart(&self.state) {
                    // Again, now that the page walks are done (see `prefetch_buckets_again`);
                    // decided next time round.
                    prefetch_buckets_again(&new.found, &self.state);
                    lanes.turn();
                } else if n > 0 {
                    let (new, _) = lanes.split();
                    let slots = new.burst.slots_mut();
                    let st = &mut self.state;
                    let found = &new.found;
                    let counted =
                        decide_burst(slots, found, st, fwd, now_ms, &mut actions, &mut spill);
                    out.send(&mut new.burst, &actions, counted, now_ms);
                    out.send_spilled(&mut spill, now_ms);
                }
            }
            for (i, handoff) in self.kernel_out.iter().enumerate() {
                if let Some(q) = handoff {
                    out.take_from_kernel(i, q);
                }
            }
            out.flush();
            self.state.flows.expire(now_ms, EXPIRE_PER_LOOP);
            // The next sweep's buckets, in while the next bursts are handled (the sweep
            // walks memory that nothing else touches: without this, a miss on each).
            for ahead in 0..EXPIRE_PER_LOOP {
                prefetch(self.state.flows.v4.swept_next(ahead));
            }
            self.state.fragments.expire(now_ms, EXPIRE_PER_LOOP / 4);
            loops += 1;
            if loops % 1024 == 0 {
                counters.flow_entries.set(self.state.flows.len() as u64);
                counters.flows_refused.set(self.state.flows.refused);
                counters.fragments_evicted.set(self.state.fragments.evicted);
                counters
                    .neighbours_ignored
                    .set(self.state.neighbours.ignored);
            }
        }
        0
    }
}

/// Buckets in use from which the worker decides a burst a burst after it classified it
/// ([`decides_apart`]): 2 MiB of them, twice the second-level cache of the machine measured.
/// The labs' tables (65,536 flows, as many buckets) reach it once they hold more than 16,384
/// flows (a level doubles when its buckets hold a flow each): the flood test runs the worker
/// both ways.
const APART_FROM_BUCKETS: usize = 1 << 15;

/// Whether the worker decides each burst a burst after classifying it, so that its buckets,
/// requested in stage 1, come from memory meanwhile: where the flow table is large
/// ([`APART_FROM_BUCKETS`]). Below that they come from the caches within the burst's own
/// classification, and a burst decided at once still has its packets in the first-level
/// cache, where a burst later they had been pushed out by the next burst's (`bench-pps.sh`,
/// 1k flows, four alternating pairs of runs: NAT 0.43–0.48 → 0.48–0.53 of 5tswap, DSR
/// 0.47–0.52 → 0.51–0.58; docs/performance.md). At 64k flows, decided at once in a trial
/// with a 16 MiB threshold, the ratios moved within the runs' spread (NAT 0.42 → 0.43, DSR
/// 0.45 → 0.46): such tables stay apart, so that the labs' tables run both ways.
#[inline]
fn decides_apart(st: &WorkerState) -> bool {
    st.flows.v4.buckets_in_use() >= APART_FROM_BUCKETS
}

/// A burst and what stage 1 found in it.
#[derive(Debug, Default)]
struct Lane {
    burst: MbufBurst,
    found: Classified,
}

/// An interface's two bursts in flight: the one being received and the one received
/// before it, waiting to be decided.
#[derive(Debug, Default)]
struct Lanes {
    lanes: [Lane; 2],
    /// Which lane receives next.
    next: usize,
}

impl Lanes {
    /// The receiving lane and the waiting one.
    fn split(&mut self) -> (&mut Lane, &mut Lane) {
        let [a, b] = &mut self.lanes;
        if self.next == 0 {
            (a, b)
        } else {
            (b, a)
        }
    }

    /// The burst just received waits; the emptied lane receives next.
    fn turn(&mut self) {
        self.next ^= 1;
    }
}
