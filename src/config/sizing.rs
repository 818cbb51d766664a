//! What the rings and queues the appliance sets up take: descriptors, the kernel twins'
//! queues, and the packet buffers that fill them.

use super::Dataplane;

impl Dataplane {
    /// A kernel twin's RX and TX queues, one of each, the control thread's: the workers hand
    /// it their packets for the kernel through a lock-free queue. A worker sending on a twin
    /// queue of its own would make a system call a packet (net_tap `writev`s each), and DPDK
    /// 22.11's net_tap overflows its stack starting a port with more than 8 queues.
    pub const TWIN_QUEUES: u16 = 1;
    /// Descriptors of every RX and TX ring the appliance sets up.
    pub const RING_DESCRIPTORS: u16 = 1024;
    /// Packet buffers each lcore keeps in the pool's cache of its own (DPDK holds up to half
    /// as many again before it gives some back).
    pub const MBUF_CACHE: u32 = 256;

    /// Packet buffers the rings need with `interfaces` and [`Dataplane::workers`]: every ring
    /// full (each port's RX and TX queue per worker, its kernel twin's two, and the control
    /// thread's own TX queue on the port, counted whether or not the port has one to spare,
    /// and the workers' hand-off to the twin, as long as a ring), with 4096 more
    /// for the bursts in flight and the packets held, and each lcore's cache at its fullest
    /// (the workers' and the main one's); rounded up to a power of two less one (DPDK's
    /// mempools are best sized 2^n - 1), never below that sum.
    /// What `mbufs = 0` gives, and the least `check` accepts.
    pub fn mbufs_for_rings(&self, interfaces: usize) -> u32 {
        let twin = usize::from(Self::TWIN_QUEUES) * 2;
        let per_interface = self.workers as usize * 2 + twin + 1 + 1;
        let caches = (self.workers as usize + 1) * Self::MBUF_CACHE as usize * 3 / 2;
        let n = interfaces * per_interface * usize::from(Self::RING_DESCRIPTORS) + 4096 + caches;
        let n = (n + 1).next_power_of_two() - 1;
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}
