//! Where a worker's decided packets go: out of a port's TX queue (a whole burst at once where
//! every packet leaves by one port), to a kernel twin, held for a neighbour, or freed in bulk;
//! each counted.

use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use super::action::Action;
use super::counters::{count_backend, WorkerCounters};
use super::fragmenter::Spill;
use super::neighbours::{Held, Wait};
use crate::dpdk::{free_bulk, Mbuf, MbufBurst, TxBuffer, TxQueue, BURST};
use crate::lb::forwarding::{Forwarding, InterfaceId};
use crate::lb::verdict::DropReason;

/// Where a worker's packets for one kernel twin go: a hand-off to the control thread, which
/// sends them on the twin's one TX queue (net_tap makes a system call for each).
pub type ToTwin = Arc<ArrayQueue<Mbuf>>;

/// Where decided packets go: TX buffers of the ports, the way to each kernel twin, packets
/// held for a neighbour, and drops freed in bulk.
pub(super) struct Egress {
    tx: Vec<TxQueue>,
    to_twin: Vec<ToTwin>,
    tx_bufs: Vec<TxBuffer>,
    held: Held<Option<Mbuf>>,
    drops: [Option<Mbuf>; BURST],
    counters: Arc<WorkerCounters>,
}

impl Egress {
    /// Over a worker's TX queues of the ports and its ways to their kernel twins, by
    /// interface.
    pub(super) fn new(
        tx: Vec<TxQueue>,
        to_twin: Vec<ToTwin>,
        counters: Arc<WorkerCounters>,
    ) -> Egress {
        Egress {
            tx_bufs: tx.iter().map(|_| TxBuffer::default()).collect(),
            tx,
            to_twin,
            held: Held::new(),
            drops: std::array::from_fn(|_| None),
            counters,
        }
    }

    /// Takes each packet of a decided burst where its action says, leaving the burst empty;
    /// counts the packets to backends unless stage 2 `counted` them.
    #[inline]
    pub(super) fn send(
        &mut self,
        burst: &mut MbufBurst,
        actions: &[Action],
        counted: bool,
        now_ms: u64,
    ) {
        let (one_port, counted) = if counted {
            let n = burst.slots_mut().len();
            (one_port(&actions[..n.min(actions.len())]), n)
        } else {
            count_backends(&self.counters, burst.slots_mut(), actions)
        };
        if let Some(interface) = one_port.filter(|&i| (i as usize) < self.tx.len()) {
            let i = interface as usize;
            // What waits in the buffer (another queue's packets, held ones released) goes
            // first, so that no flow's packets overtake one another.
            flush(&mut self.tx[i], &mut self.tx_bufs[i], &self.counters);
            if let Some((_, lost)) = self.tx[i].send(burst) {
                self.counters.drops[DropReason::TxFull.index()].add(lost as u64);
                return;
            }
        }
        self.send_each(burst.slots_mut(), actions, counted, now_ms);
        burst.clear();
    }

    /// The packets made beside a burst (the later fragments of packets split for a
    /// tunnel), after it, their backends counted; leaves `spill` empty.
    #[inline]
    pub(super) fn send_spilled(&mut self, spill: &mut Spill<Option<Mbuf>>, now_ms: u64) {
        if !spill.is_empty() {
            let (packets, actions) = spill.parts();
            self.send_each(packets, actions, 0, now_ms);
            spill.clear();
        }
    }

    /// [`Egress::send`] packet by packet, into the TX buffers; the first `counted` packets'
    /// backends are counted already.
    fn send_each(
        &mut self,
        slots: &mut [Option<Mbuf>],
        actions: &[Action],
        counted: usize,
        now_ms: u64,
    ) {
        let counters = &*self.counters;
        let mut dropped = 0;
        for (k, (slot, action)) in slots.iter_mut().zip(actions).enumerate() {
            let Some(m) = slot.take() else {
                continue;
            };
            match *action {
                Action::Transmit { interface, backend } => {
                    if let Some(b) = backend.filter(|_| k >= counted) {
                        counters.backend(b, m.len() as u64);
                    }
                    let i = interface as usize;
                    transmit(&mut self.tx[i], &mut self.tx_bufs[i], counters, m);
                }
                // Counted by the control thread as it sends. Full: the control thread is behind;
                // dropped as by a full TX ring.
                Action::ToKernel { interface } => {
                    if let Err(m) = self.to_twin[interface as usize].push(m) {
                        counters.drop_packet(DropReason::TxFull);
                        self.drops[dropped] = Some(m);
                        dropped += 1;
                    }
                }
                Action::Hold { interface } => {
                    if let Err(m) = self.held.hold(Some(m), Wait::NextHop(interface), now_ms) {
                        counters.drop_packet(DropReason::NoNeighbour);
                        self.drops[dropped] = m;
                        dropped += 1;
                    }
                }
                Action::HoldForBackend { backend } => {
                    if let Err(m) = self.held.hold(Some(m), Wait::Backend(backend), now_ms) {
                        counters.drop_packet(DropReason::NoNeighbour);
                        self.drops[dropped] = m;
                        dropped += 1;
                    }
                }
                Action::Drop(reason) => {
                    counters.drop_packet(reason);
                    self.drops[dropped] = Some(m);
                    dropped += 1;
                }
            }
        }
        free_bulk(&mut self.drops[..dropped]);
    }

    /// Packets from interface `i`'s kernel twin that this worker sends for the control
    /// thread, as many as its TX buffer has room for.
    pub(super) fn take_from_kernel(&mut self, i: usize, from: &ArrayQueue<Mbuf>) {
        while !self.tx_bufs[i].is_full() {
            let Some(m) = from.pop() else { break };
            let _ = self.tx_bufs[i].push(m);
        }
    }

    /// Packets that waited for a neighbour: out once it is published, else in time dropped.
    pub(super) fn release_held(&mut self, fwd: &Forwarding, now_ms: u64) {
        let (tx, bufs, counters) = (&mut self.tx, &mut self.tx_bufs, &*self.counters);
        self.held
            .release(fwd, now_ms, |m, action| match (m, action) {
                (Some(m), Action::Transmit { interface, backend }) => {
                    if let Some(b) = backend {
                        counters.backend(b, m.len() as u64);
                    }
                    let i = interface as usize;
                    transmit(&mut tx[i], &mut bufs[i], counters, m);
                }
                (_, action) => {
                    if let Action::Drop(reason) = action {
                        counters.drop_packet(reason);
                    }
                }
            });
    }

    /// Every buffered packet to its queue.
    pub(super) fn flush(&mut self) {
        for (i, buf) in self.tx_bufs.iter_mut().enumerate() {
            flush(&mut self.tx[i], buf, &self.counters);
        }
    }
}

/// Counts the packets of a decided burst that go to backends, from its first packet on for
/// as long as every one goes out of the same interface's port (the usual burst: all to
/// backends behind one port, or all back to clients). Returns that interface if the whole
/// burst does, and how many packets were counted.
#[inline]
fn count_backends(
    counters: &WorkerCounters,
    slots: &[Option<Mbuf>],
    actions: &[Action],
) -> (Option<InterfaceId>, usize) {
    let Some(&Action::Transmit { interface, .. }) = actions.first() else {
        return (None, 0);
    };
    let traffic = &counters.backend_traffic[..];
    for (k, (slot, action)) in slots.iter().zip(actions).enumerate() {
        match (slot, *action) {
            (
                Some(m),
                Action::Transmit {
                    interface: i,
                    backend,
                },
            ) if i == interface => {
                if let Some(b) = backend {
                    count_backend(traffic, b, m.len() as u64);
                }
            }
            _ => return (None, k),
        }
    }
    (Some(interface), slots.len().min(actions.len()))
}

/// The interface every packet of a decided burst leaves by, where they all leave by one (the
/// usual burst: all to backends behind one port, or all back to clients).
#[inline]
fn one_port(actions: &[Action]) -> Option<InterfaceId> {
    let Some(&Action::Transmit { interface, .. }) = actions.first() else {
        return None;
    };
    actions
        .iter()
        .all(|a| matches!(*a, Action::Transmit { interface: i, .. } if i == interface))
        .then_some(interface)
}

/// Queues `m` for a port's TX queue, flushing the buffer first when it is full.
#[inline]
fn transmit(txq: &mut TxQueue, buf: &mut TxBuffer, counters: &WorkerCounters, m: Mbuf) {
    if buf.is_full() {
        flush(txq, buf, counters);
    }
    let _ = buf.push(m);
}

#[inline]
fn flush(txq: &mut TxQueue, buf: &mut TxBuffer, counters: &WorkerCounters) {
    let (_, lost) = txq.flush(buf);
    counters.drops[DropReason::TxFull.index()].add(lost as u64);
}
