//! The one owner of a worker's neighbour knowledge: MACs learnt from traffic, consulted before
//! the published state, and reported to the control thread, which resolves, verifies and
//! publishes neighbours for every worker.

use std::net::IpAddr;
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use hashbrown::HashMap;

use crate::lb::forwarding::Forwarding;
use crate::wire::MacAddr;

/// A neighbour learnt from traffic, reported to the control thread.
pub type Glean = (IpAddr, MacAddr);

/// Neighbours one worker remembers from traffic before the control thread publishes them.
const GLEAN_CAPACITY: usize = 16_384;

/// Neighbours this worker learnt from traffic, so replies find a client's MAC before the
/// control thread has published it. Bounded; never grows past its capacity.
#[derive(Debug)]
pub struct Gleaned {
    map: HashMap<IpAddr, MacAddr>,
    reports: Arc<ArrayQueue<Glean>>,
}

impl Gleaned {
    pub fn new(reports: Arc<ArrayQueue<Glean>>) -> Self {
        Gleaned {
            map: HashMap::with_capacity(GLEAN_CAPACITY),
            reports,
        }
    }

    /// A queue for workers' reports to the control thread.
    pub fn new_reports() -> Arc<ArrayQueue<Glean>> {
        Arc::new(ArrayQueue::new(4096))
    }

    /// The MAC of neighbour `addr`, from this worker's own observations or the published state.
    #[inline]
    pub fn lookup(&self, fwd: &Forwarding, addr: IpAddr) -> Option<MacAddr> {
        self.map.get(&addr).copied().or_else(|| fwd.neighbour(addr))
    }

    /// Notes that `addr` is at `mac`; reports news to the control thread.
    #[inline]
    pub fn learn(&mut self, fwd: &Forwarding, addr: IpAddr, mac: MacAddr) {
        if !mac.is_unicast()
            || fwd.neighbour(addr) == Some(mac)
            || self.map.get(&addr) == Some(&mac)
        {
            return;
        }
        if self.map.len() < GLEAN_CAPACITY || self.map.contains_key(&addr) {
            self.map.insert(addr, mac);
        }
        // A full queue only delays publication; the local entry already serves this worker.
        let _ = self.reports.push((addr, mac));
    }
}
