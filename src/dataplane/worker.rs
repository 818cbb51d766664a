//! One worker lcore's poll loop over its RX/TX queues: a burst in, through the
//! [`pipeline`](super::pipeline), out to TX buffers, the kernel twins or freed in bulk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};
use crossbeam::queue::ArrayQueue;

use super::counters::WorkerCounters;
use super::neighbours::{Held, NeighbourReports, Report};
use super::pipeline::process_burst;
use super::state::{Action, WorkerState};
use crate::dpdk::{free_bulk, prefetch, rdtsc, Mbuf, MbufBurst, RxQueue, TxBuffer, TxQueue, BURST};
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
    /// TX queue `index` of each interface's kernel twin.
    pub twin_tx: Vec<TxQueue>,
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
        let mut burst = MbufBurst::default();
        let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
        let mut drops: [Option<Mbuf>; BURST] = std::array::from_fn(|_| None);
        let mut tx_bufs: Vec<TxBuffer> = self.tx.iter().map(|_| TxBuffer::default()).collect();
        let mut twin_bufs: Vec<TxBuffer> =
            self.twin_tx.iter().map(|_| TxBuffer::default()).collect();
        let mut held: Held<Option<Mbuf>> = Held::new();
        let mut cache = Cache::new(self.forwarding.clone());
        let ticks_per_ms = (self.tsc_hz / 1000).max(1);
        let counters = self.counters.clone();
        let mut loops: u64 = 0;

        while !self.stop.load(Ordering::Relaxed) {
            // Quiescent point: pick up the newest published state once per iteration.
            let fwd: &Arc<Forwarding> = cache.load();
            let now_ms = rdtsc() / ticks_per_ms;
            for (ifc, rxq) in self.rx.iter_mut().enumerate() {
                let n = rxq.burst(&mut burst);
                if n == 0 {
                    continue;
                }
                counters.rx_packets[ifc].add(n as u64);
                let slots = burst.slots_mut();
                process_burst(
                    slots,
                    ifc as u32,
                    &mut self.state,
                    fwd,
                    now_ms,
                    &mut actions,
                );
                let mut dropped = 0;
                for (slot, action) in slots.iter_mut().zip(actions) {
                    let Some(m) = slot.take() else {
                        continue;
                    };
                    match action {
                        Action::Transmit { interface, backend } => {
                            if let Some(b) = backend {
                                counters.backend(b, m.len() as u64);
                            }
                            let buf = &mut tx_bufs[interface as usize];
                            if buf.is_full() {
                                flush(&mut self.tx[interface as usize], buf, &counters, interface);
                            }
                            let _ = buf.push(m);
                        }
                        Action::ToKernel { interface } => {
                            let buf = &mut twin_bufs[interface as usize];
                            if buf.is_full() {
                                let (_, lost) = self.twin_tx[interface as usize].flush(buf);
                                counters.drops[DropReason::TxFull.index()].add(lost as u64);
                            }
                            counters.to_kernel.add(1);
                            let _ = buf.push(m);
                        }
                        Action::Hold { interface } => {
                            if let Err(m) = held.hold(Some(m), interface, now_ms) {
                                counters.drop_packet(DropReason::NoNeighbour);
                                drops[dropped] = m;
                                dropped += 1;
                            }
                        }
                        Action::Drop(reason) => {
                            counters.drop_packet(reason);
                            drops[dropped] = Some(m);
                            dropped += 1;
                        }
                    }
                }
                free_bulk(&mut drops[..dropped]);
                burst.clear();
            }
            for (i, handoff) in self.kernel_out.iter().enumerate() {
                if let Some(q) = handoff {
                    while !tx_bufs[i].is_full() {
                        let Some(m) = q.pop() else { break };
                        let _ = tx_bufs[i].push(m);
                    }
                }
            }
            // Packets that waited for a neighbour: out once it is published, else in time dropped.
            held.release(fwd, now_ms, |m, action| match (m, action) {
                (Some(m), Action::Transmit { interface, .. }) => {
                    let buf = &mut tx_bufs[interface as usize];
                    if buf.is_full() {
                        flush(&mut self.tx[interface as usize], buf, &counters, interface);
                    }
                    let _ = buf.push(m);
                }
                (_, action) => {
                    if let Action::Drop(reason) = action {
                        counters.drop_packet(reason);
                    }
                }
            });
            for (i, buf) in tx_bufs.iter_mut().enumerate() {
                flush(&mut self.tx[i], buf, &counters, i as u32);
            }
            for (i, buf) in twin_bufs.iter_mut().enumerate() {
                let (_, lost) = self.twin_tx[i].flush(buf);
                counters.drops[DropReason::TxFull.index()].add(lost as u64);
            }
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
                counters.fragments_refused.set(self.state.fragments_refused);
                counters.generation.set(fwd.generation);
                counters.loops.set(loops);
            }
        }
        0
    }
}

#[inline]
fn flush(txq: &mut TxQueue, buf: &mut TxBuffer, counters: &WorkerCounters, interface: u32) {
    let (sent, lost) = txq.flush(buf);
    counters.tx_packets[interface as usize].add(sent as u64);
    counters.drops[DropReason::TxFull.index()].add(lost as u64);
}
