//! What a worker owns.

use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};
use crossbeam::queue::ArrayQueue;

use super::counters::{backend_counters, backend_traffic, Counter, Traffic, WorkerCounters};
use super::datagrams::{Datagrams, FRAGMENT_CAPACITY};
use super::exception::{KernelBudget, TokenBucket};
use super::neighbours::{NeighbourReports, Report};
use crate::dpdk::SocketMemory;
use crate::lb::decision::Flows;
use crate::lb::flow_table::{buckets_for, Bucket, FlowTable};
use crate::lb::forwarding::Forwarding;

/// A worker's own mutable state: never shared, no lock.
#[derive(Debug)]
pub struct WorkerState {
    pub flows: Flows<SocketMemory<Bucket>>,
    /// Where each fragmented datagram's first fragment went, so the later ones (which carry
    /// no ports) follow it.
    pub fragments: Datagrams,
    /// What the worker tells the control thread about neighbours.
    pub neighbours: NeighbourReports,
    /// What the workers may still hand to the kernel twins: three budgets (own addresses,
    /// the backends' side, the segment's neighbour messages) for all of them (the appliance
    /// gives each worker the same).
    pub kernel: Arc<KernelBudget>,
    /// The ICMP errors the worker may still send (RFC 4443 §2.4(f), RFC 1812 §4.3.2.8):
    /// [`vxlan::ERRORS_PER_SECOND`](super::vxlan::ERRORS_PER_SECOND).
    pub icmp_errors: TokenBucket,
    /// The frontends' defences against duplicate-address detection the worker may still
    /// send, each to all nodes:
    /// [`responders::DEFENCES_PER_SECOND`](super::responders::DEFENCES_PER_SECOND).
    pub defences: TokenBucket,
    /// New flows decided for each backend: shared with the worker's
    /// [`WorkerCounters::backend_flows`](super::WorkerCounters), which the metrics read.
    pub new_flows: Arc<[Counter]>,
    /// Packets and bytes sent to each backend: shared with the worker's
    /// [`WorkerCounters::backend_traffic`](super::WorkerCounters). Stage 2 takes it out for
    /// a burst and puts it back (`None` meanwhile): moved, where a clone each burst would
    /// write the reference count, in a line that the metrics' reads share.
    pub traffic: Option<Arc<[Traffic]>>,
}

impl WorkerState {
    /// State with its flow table on the heap (tests, tools).
    pub fn new(flow_capacity: usize, reports: Arc<ArrayQueue<Report>>) -> Self {
        let memory = SocketMemory::heap(buckets_for(flow_capacity));
        Self::with_memory(memory, flow_capacity, reports)
    }

    /// State with its flow table from DPDK's allocator on `socket` (hugepages when EAL has
    /// them); EAL must be initialised.
    pub fn on_socket(
        flow_capacity: usize,
        reports: Arc<ArrayQueue<Report>>,
        socket: i32,
        worker: usize,
    ) -> Self {
        let name = format!("haports_flows_{worker}");
        let memory = SocketMemory::on_socket(buckets_for(flow_capacity), socket, &name);
        let from_dpdk = memory.from_dpdk();
        let state = Self::with_memory(memory, flow_capacity, reports);
        tracing::info!(
            worker,
            socket,
            capacity = flow_capacity,
            bytes = state.flows.v4.bytes(),
            dpdk_memory = from_dpdk,
            "flow table allocated"
        );
        state
    }

    fn with_memory(
        memory: SocketMemory<Bucket>,
        flow_capacity: usize,
        reports: Arc<ArrayQueue<Report>>,
    ) -> Self {
        WorkerState {
            flows: Flows::in_memory(FlowTable::in_memory(memory, flow_capacity), table_secret()),
            fragments: Datagrams::with_capacity(FRAGMENT_CAPACITY),
            neighbours: NeighbourReports::new(reports),
            kernel: Arc::default(),
            icmp_errors: TokenBucket::full(super::vxlan::ERRORS_PER_SECOND),
            defences: TokenBucket::full(super::responders::DEFENCES_PER_SECOND),
            new_flows: backend_counters(OWN_COUNTED_BACKENDS),
            traffic: Some(backend_traffic(OWN_COUNTED_BACKENDS)),
        }
    }
}

/// A worker's copy of the published forwarding state. The worker never frees a state: the
/// control thread keeps each one it replaces until every worker holds a later one (each
/// reports the one it holds in its [`WorkerCounters::generation`]), so the worker's
/// reference is never the last.
pub struct ForwardingCache {
    cache: Cache<Arc<ArcSwap<Forwarding>>, Arc<Forwarding>>,
    /// The state last reported held, by address (compared, never followed).
    reported: *const Forwarding,
    counters: Arc<WorkerCounters>,
}

impl ForwardingCache {
    /// Reports the generation it holds in the worker's `counters`.
    pub fn new(published: Arc<ArcSwap<Forwarding>>, counters: Arc<WorkerCounters>) -> Self {
        ForwardingCache {
            cache: Cache::new(published),
            reported: std::ptr::null(),
            counters,
        }
    }

    /// The newest published state: the worker's quiescent point, once per loop. Letting go
    /// of the state before it only drops a reference (the control thread holds another).
    #[inline]
    pub fn load(&mut self) -> &Arc<Forwarding> {
        let fwd = self.cache.load();
        if !std::ptr::eq(Arc::as_ptr(fwd), self.reported) {
            self.reported = Arc::as_ptr(fwd);
            self.counters.generation.hold(fwd.generation);
        }
        fwd
    }
}

impl std::fmt::Debug for ForwardingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardingCache")
            .field("generation", &self.counters.generation.get())
            .finish_non_exhaustive()
    }
}

/// Backend ids a worker state counts in counters of its own, until the worker's
/// ([`WorkerCounters`], for every id) take their place: tests and
/// tools, which count few.
const OWN_COUNTED_BACKENDS: usize = 4096;

/// A random key for a worker's tables, from the operating system's randomness (through the
/// standard library's randomly keyed hasher).
fn table_secret() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x7ab1e_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_keys_its_tables_with_a_secret_of_its_own() {
        let secrets: std::collections::HashSet<u64> = (0..8)
            .map(|_| {
                WorkerState::new(64, NeighbourReports::new_queue())
                    .flows
                    .secret
            })
            .collect();
        assert_eq!(secrets.len(), 8);
        assert!(!secrets.contains(&0));
    }
}
