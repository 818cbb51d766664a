//! Per-worker counters: written by one worker, read by the control thread.
//!
//! Each counter has a single writer, so an increment is a relaxed load and store (no
//! locked read-modify-write on the hot path); readers see a recent value, never a torn one.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::lb::verdict::DropReason;

/// The most backend ids (over all pools) whose packets are counted per backend. An id goes to
/// another backend only 25 hours after its own left the config (a removed backend keeps its
/// retired slot, and takes it back when it returns; see `lb::forwarding`'s ids), so only the
/// backends in the config and those that left it within 25 hours hold ids: room for 65,536 of
/// them (per worker 1.5 MiB of counters, of which the data plane touches only the lines of
/// the ids in use). `haports check` refuses a config whose own slots are more.
pub const MAX_COUNTED_BACKENDS: usize = crate::config::MAX_BACKEND_SLOTS;
/// The most interfaces one appliance serves (`haports check` refuses more).
pub use crate::config::MAX_INTERFACES;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`; only the owning worker calls this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Packets, and their bytes (frames as sent, Ethernet header included), sent one way.
#[derive(Debug, Default)]
pub struct Traffic {
    pub packets: Counter,
    pub bytes: Counter,
}

/// One worker's counters, cache-line aligned so workers never share a line.
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerCounters {
    /// Packets received, by interface index.
    pub rx_packets: [Counter; MAX_INTERFACES],
    pub drops: [Counter; DropReason::COUNT],
    /// Packets and bytes forwarded to each backend, by `BackendId` of the current
    /// forwarding state: both of a backend in one line, written together for every packet.
    /// The worker's state holds the other reference and counts them where packets are
    /// decided (stage 2), or as they are sent where stage 2 cannot.
    pub backend_traffic: Arc<[Traffic]>,
    /// New flows decided for each backend (Maglev's pick on a flow-table miss); the worker's
    /// state holds the other reference and counts them where flows are decided.
    pub backend_flows: Arc<[Counter]>,
    pub flow_entries: Counter,
    /// Packets of new flows the flow tables had no room for (each decided by Maglev alone).
    pub flows_refused: Counter,
    /// Datagrams still followed in fragments that left the fragment table for newer ones.
    pub fragments_evicted: Counter,
    /// Answers about neighbours the worker did not report as answers (`NeighbourReports`).
    pub neighbours_ignored: Counter,
    /// The generation of the forwarding state the worker holds: the control thread frees
    /// the states it replaced once every worker holds a later one.
    pub generation: HeldGeneration,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            rx_packets: Default::default(),
            drops: Default::default(),
            backend_traffic: backend_traffic(MAX_COUNTED_BACKENDS),
            backend_flows: backend_counters(MAX_COUNTED_BACKENDS),
            flow_entries: Counter::default(),
            flows_refused: Counter::default(),
            fragments_evicted: Counter::default(),
            neighbours_ignored: Counter::default(),
            generation: HeldGeneration::default(),
        }
    }
}

impl WorkerCounters {
    #[inline]
    pub fn drop_packet(&self, reason: DropReason) {
        self.drops[reason.index()].add(1);
    }

    /// A packet of `bytes` sent to backend `id`.
    #[inline]
    pub fn backend(&self, id: u32, bytes: u64) {
        count_backend(&self.backend_traffic, id, bytes);
    }
}

/// The generation of the forwarding state a worker holds (0 before it holds one). Written
/// after the worker let go of the state before (release), read before the control thread
/// drops its own reference to that state (acquire): the control thread's drop is then the
/// last, and the state is freed there rather than in the worker's loop.
#[derive(Debug, Default)]
pub struct HeldGeneration(AtomicU64);

impl HeldGeneration {
    /// The worker now holds `generation` and no older state; only the owning worker calls this.
    pub fn hold(&self, generation: u64) {
        self.0.store(generation, Ordering::Release);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// A packet of `bytes` sent to backend `id`, in `traffic` ([`WorkerCounters::backend_traffic`]
/// held by a loop over a burst: the slice's place and length stay in registers, where through
/// the counters they were read again after each packet's counts were written).
#[inline]
pub fn count_backend(traffic: &[Traffic], id: u32, bytes: u64) {
    if let Some(t) = traffic.get(id as usize) {
        t.packets.add(1);
        t.bytes.add(bytes);
    }
}

/// Packets and bytes for each of the first `ids` backend ids.
pub fn backend_traffic(ids: usize) -> Arc<[Traffic]> {
    (0..ids).map(|_| Traffic::default()).collect()
}

/// One counter for each of the first `ids` backend ids.
pub fn backend_counters(ids: usize) -> Arc<[Counter]> {
    (0..ids).map(|_| Counter::default()).collect()
}
