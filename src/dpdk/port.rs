use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::null;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::error::{check, DpdkError};
use super::mbuf::{Mbuf, MbufBurst, TxBuffer, BURST};
use super::mempool::Mempool;
use super::port_info::{mac_of, spreads_by_itself, spreads_by_the_nics_key};
use crate::wire::MacAddr;

/// A symmetric Toeplitz key (the 0x6d5a pattern): hashing A→B and B→A gives the same
/// value, so both directions of a flow land on the same queue and worker. Its first
/// `hash_key_size` bytes are given to the device (the pattern is symmetric at any even
/// length); room for the longest key a PMD reports (at most 255, a `u8`).
const SYMMETRIC_RSS_KEY: [u8; 256] = {
    let mut k = [0u8; 256];
    let mut i = 0;
    while i < k.len() {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// How to bring a port up.
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// Spread RX over queues with a symmetric RSS key where the PMD supports RSS.
    pub rss: bool,
    /// Set this MAC address before starting.
    pub mac: Option<MacAddr>,
}

/// Counters of one port as its PMD reports them.
#[derive(Debug, Clone, Copy, Default)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Packets the NIC dropped because no RX descriptor was free.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_no_mbuf: u64,
}

#[derive(Debug)]
struct PortInner {
    id: u16,
    /// Whether each RX and TX queue has a handle ([`RxQueue`], [`TxQueue`]): one at a time,
    /// as a PMD's queue may be polled by one thread only.
    rx_taken: Box<[AtomicBool]>,
    tx_taken: Box<[AtomicBool]>,
    /// The RSS key the device's configuration points at (`rte_eth_dev_configure` copies the
    /// pointer, not the bytes, and a PMD may read it again at a restart): freed only after
    /// the port is closed (fields drop after `drop`).
    _rss_key: Box<[u8; 256]>,
    /// The pool the RX queues take buffers from, kept as long as the port (a PMD may
    /// allocate from it in any receive), freed after the port is closed.
    _pool: Mempool,
}

impl Drop for PortInner {
    fn drop(&mut self) {
        // SAFETY: the last handle (port or queue) is gone, so no thread polls the port now.
        let stopped = unsafe { dpdk_sys::rte_eth_dev_stop(self.id) };
        // SAFETY: as above.
        let closed = unsafe { dpdk_sys::rte_eth_dev_close(self.id) };
        if stopped < 0 || closed < 0 {
            // Still started, its queues may hold buffers and it may read its RSS key: both
            // are kept for the process's life, and so is the EAL (never cleaned up under it).
            tracing::error!(port = self.id, stopped, closed, "port not closed");
            Box::leak(std::mem::replace(&mut self._rss_key, Box::new([0; 256])));
            return std::mem::forget(self._pool.clone());
        }
        super::eal::released();
    }
}

/// Closes a port whose start failed half-way (configured, perhaps with queues set up).
struct ClosedUnlessStarted(u16);

impl Drop for ClosedUnlessStarted {
    fn drop(&mut self) {
        // SAFETY: the port was configured by this thread and never started or shared.
        unsafe {
            dpdk_sys::rte_eth_dev_close(self.0);
        }
    }
}

/// A configured, started ethdev port. It is stopped and closed when the port handle and
/// every queue taken from it are dropped.
#[derive(Debug, Clone)]
pub struct Port {
    inner: Arc<PortInner>,
    rx_queues: u16,
    tx_queues: u16,
}

impl Port {
    /// Configures queues (descriptors from `pool`), optionally RSS and the MAC, and starts.
    pub fn start(id: u16, cfg: &PortConfig, pool: &Mempool) -> Result<Port, DpdkError> {
        // SAFETY: plain query of a port id.
        if unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(DpdkError::from_code(
                format!("port {id} does not exist (check dpdk.eal_args' devices)"),
                19,
            ));
        }
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: valid port id and out-pointer.
        check(|| format!("port {id}: reading device info"), unsafe {
            dpdk_sys::rte_eth_dev_info_get(id, &mut info)
        })?;
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(DpdkError::from_code(
                format!(
                    "port {id}: needs {} RX and {} TX queues, the device offers {} and {}",
                    cfg.rx_queues, cfg.tx_queues, info.max_rx_queues, info.max_tx_queues
                ),
                22,
            ));
        }

        // Declared before the guard below, so that a start that fails closes the port first.
        let mut key = Box::new(SYMMETRIC_RSS_KEY);
        let mut conf = dpdk_sys::rte_eth_conf::default();
        // SAFETY: no preconditions; returns a constant.
        let wanted = unsafe { dpdk_sys::haports_rss_hf_l3_l4() } & info.flow_type_rss_offloads;
        if cfg.rss && cfg.rx_queues > 1 && wanted != 0 {
            conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = wanted;
            // The key of exactly the device's length; a device that reports none takes its
            // own (which may not be symmetric: the README says what holds then).
            if info.hash_key_size > 0 {
                conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                conf.rx_adv_conf.rss_conf.rss_key_len = info.hash_key_size;
            } else {
                tracing::warn!(port = id, "the device reports no RSS key size: its own key spreads the flows, perhaps not symmetrically");
            }
        } else if cfg.rss && cfg.rx_queues > 1 && !spreads_by_itself(&info) {
            // Without RSS the device delivers to its first queue alone (unless its PMD fills
            // every queue itself, as AF_PACKET's and AF_XDP's do): one worker takes it all.
            tracing::warn!(
                port = id,
                queues = cfg.rx_queues,
                "the device offers no RSS over IP and TCP/UDP ports: it may deliver every frame to one worker's queue"
            );
        }
        if cfg.rx_queues > 1 && spreads_by_the_nics_key(&info) {
            tracing::warn!(
                port = id,
                queues = cfg.rx_queues,
                "the NIC's own RSS key spreads this port's flows over the workers: unless it \
                 is symmetric (ethtool -X DEV hkey 6d:5a:6d:5a:...), the two directions of a \
                 flow may reach different workers (README, several workers)"
            );
        }
        // The IPv4 header checksum checked by the device where it can: the data plane then
        // trusts a good verdict (`Mbuf::ip_checksum_good`) and checks in software otherwise.
        // SAFETY: no preconditions; returns a constant.
        let ipv4_cksum = unsafe { dpdk_sys::haports_rx_offload_ipv4_cksum() };
        conf.rxmode.offloads |= ipv4_cksum & info.rx_offload_capa;
        // SAFETY: valid port, conf lives across the call; the key it points at lives as long
        // as the port (kept in its `PortInner`, or past the guard that closes it).
        let ret =
            unsafe { dpdk_sys::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf) };
        check(
            || {
                format!(
                    "port {id}: configuring {} RX / {} TX queues",
                    cfg.rx_queues, cfg.tx_queues
                )
            },
            ret,
        )?;
        // From here on the port holds resources (its RX queues take mbufs from `pool`):
        // whatever fails below, this guard closes it on the way out, while the pool still
        // exists (closing it after the pool's end, at EAL cleanup, crashed).
        let guard = ClosedUnlessStarted(id);

        let mut nb_rx = cfg.rx_descriptors;
        let mut nb_tx = cfg.tx_descriptors;
        // SAFETY: valid port and out-pointers.
        let ret = unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nb_rx, &mut nb_tx) };
        check(|| format!("port {id}: adjusting descriptor counts"), ret)?;
        // A device on no socket in particular (a virtual one, or a PCI device whose NUMA node
        // the system does not know) gives SOCKET_ID_ANY (-1), which queue setup takes as it
        // is: its rings wherever EAL has memory, not on socket 0 alone.
        // SAFETY: valid port id.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) } as u32;
        let raw_pool = pool.as_ptr();
        for q in 0..cfg.rx_queues {
            super::memory::on_socket_or_any(id, socket, &format!("RX queue {q}"), |socket| {
                // SAFETY: configured port; the pool outlives the port: the caller's handle
                // until it is started, the port's own after (`PortInner::_pool`).
                unsafe { dpdk_sys::rte_eth_rx_queue_setup(id, q, nb_rx, socket, null(), raw_pool) }
            })?;
        }
        for q in 0..cfg.tx_queues {
            super::memory::on_socket_or_any(id, socket, &format!("TX queue {q}"), |socket| {
                // SAFETY: configured port.
                unsafe { dpdk_sys::rte_eth_tx_queue_setup(id, q, nb_tx, socket, null()) }
            })?;
        }
        if let Some(mac) = cfg.mac {
            let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: mac.0 };
            // SAFETY: valid port and address.
            check(|| format!("port {id}: setting MAC {mac}"), unsafe {
                dpdk_sys::rte_eth_dev_default_mac_addr_set(id, &mut addr)
            })?;
        }
        // SAFETY: configured port.
        check(|| format!("port {id}: starting"), unsafe {
            dpdk_sys::rte_eth_dev_start(id)
        })?;
        // Every multicast frame received: IPv6 neighbour solicitations come to solicited-
        // node groups (33:33:ff:…), which the MAC filter does not hold. A start leaves all-
        // multicast off where it was not asked for, and on Intel NICs (ixgbe, i40e, ice) the
        // device then drops them: IPv6 neighbours could not reach the appliance.
        // SAFETY: a started port.
        match unsafe { dpdk_sys::rte_eth_allmulticast_enable(id) } {
            0 => {}
            // A device that cannot filter multicast receives it all already (null, pcap).
            ret if ret == -libc::ENOTSUP => {
                tracing::debug!(port = id, "all-multicast not supported")
            }
            // A VF its PF does not trust may not (iavf): IPv4 works all the same.
            ret => tracing::warn!(
                port = id,
                error = %DpdkError::from_code(format!("port {id}: enabling all-multicast"), ret),
                "all-multicast refused: IPv6 neighbour solicitations may not reach the \
                 appliance (a VF: `ip link set PF vf N trust on` on its host)"
            ),
        }
        // Started: from now on the port's handles stop and close it.
        std::mem::forget(guard);
        super::eal::held();
        Ok(Port {
            inner: Arc::new(PortInner {
                id,
                rx_taken: (0..cfg.rx_queues).map(|_| AtomicBool::new(false)).collect(),
                tx_taken: (0..cfg.tx_queues).map(|_| AtomicBool::new(false)).collect(),
                _rss_key: key,
                _pool: pool.clone(),
            }),
            rx_queues: cfg.rx_queues,
            tx_queues: cfg.tx_queues,
        })
    }

    pub fn id(&self) -> u16 {
        self.inner.id
    }

    pub fn mac(&self) -> Result<MacAddr, DpdkError> {
        mac_of(self.inner.id)
    }

    /// The port's MTU (the most an IP packet it sends may carry).
    pub fn mtu(&self) -> Result<u16, DpdkError> {
        let id = self.inner.id;
        let mut mtu = 0u16;
        // SAFETY: out-pointer valid; DPDK checks the port id.
        check(|| format!("port {id}: reading MTU"), unsafe {
            dpdk_sys::rte_eth_dev_get_mtu(id, &mut mtu)
        })?;
        Ok(mtu)
    }

    /// The RX queue `q`, for one thread to poll: one handle at a time (a second while the
    /// first lives is a bug, and panics).
    pub fn rx_queue(&self, q: u16) -> RxQueue {
        assert!(q < self.rx_queues, "RX queue {q} not configured");
        let taken = self.inner.rx_taken[usize::from(q)].swap(true, Ordering::AcqRel);
        assert!(!taken, "port {}: RX queue {q} taken twice", self.inner.id);
        RxQueue {
            port: self.inner.clone(),
            queue: q,
            _not_sync: PhantomData,
        }
    }

    /// The TX queue `q`, for one thread to send on: one handle at a time, as RX queues.
    pub fn tx_queue(&self, q: u16) -> TxQueue {
        assert!(q < self.tx_queues, "TX queue {q} not configured");
        let taken = self.inner.tx_taken[usize::from(q)].swap(true, Ordering::AcqRel);
        assert!(!taken, "port {}: TX queue {q} taken twice", self.inner.id);
        TxQueue {
            port: self.inner.clone(),
            queue: q,
            _not_sync: PhantomData,
        }
    }

    /// Makes the port also receive frames for `mac` (a frontend's own address).
    pub fn add_mac(&self, mac: MacAddr) -> Result<(), DpdkError> {
        let _one = one_control_call();
        let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: mac.0 };
        let id = self.inner.id;
        // SAFETY: valid port and address; pool 0 is the default.
        check(|| format!("port {id}: adding MAC {mac}"), unsafe {
            dpdk_sys::rte_eth_dev_mac_addr_add(id, &mut addr, 0)
        })
        .map(|_| ())
    }

    /// Stops receiving frames for `mac`, which [`Port::add_mac`] added.
    pub fn remove_mac(&self, mac: MacAddr) -> Result<(), DpdkError> {
        let _one = one_control_call();
        let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: mac.0 };
        let id = self.inner.id;
        // SAFETY: valid port and address.
        check(|| format!("port {id}: removing MAC {mac}"), unsafe {
            dpdk_sys::rte_eth_dev_mac_addr_remove(id, &mut addr)
        })
        .map(|_| ())
    }

    /// Receives every frame, whatever its destination MAC (`on`), or only what its filter holds.
    pub fn set_promiscuous(&self, on: bool) -> Result<(), DpdkError> {
        let _one = one_control_call();
        let id = self.inner.id;
        let what = if on { "enabling" } else { "disabling" };
        // SAFETY: valid, started port.
        let rc = unsafe {
            if on {
                dpdk_sys::rte_eth_promiscuous_enable(id)
            } else {
                dpdk_sys::rte_eth_promiscuous_disable(id)
            }
        };
        check(|| format!("port {id}: {what} promiscuous mode"), rc).map(|_| ())
    }

    /// The port's counters. Read from several threads (the metrics endpoint, `haports
    /// status`), one at a time: drivers such as ixgbe add the device's clear-on-read
    /// registers into their own totals as they read, and two reads at once lose increments.
    /// None where the device would not say (never zeroes, which would read as a reset).
    pub fn stats(&self) -> Option<PortStats> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        {
            let _one = one_control_call();
            // SAFETY: valid port and out-pointer; no other thread reads stats meanwhile.
            if unsafe { dpdk_sys::rte_eth_stats_get(self.inner.id, &mut s) } != 0 {
                return None;
            }
        }
        Some(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_no_mbuf: s.rx_nombuf,
        })
    }
}

/// Holds off every other control-path call on the ports (counters, MAC filter, promiscuous
/// mode) while one runs: `Port` is shared between threads (the metrics endpoint reads the
/// counters while the control thread changes MAC filters on a reload), and DPDK's ethdev
/// control calls are not safe from several threads at once (a VF's one admin channel; a
/// driver's clear-on-read counter registers). Never taken on the data path.
fn one_control_call() -> std::sync::MutexGuard<'static, ()> {
    static CONTROL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CONTROL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One RX queue of a port, polled by one thread (`Send`, not `Sync`).
#[derive(Debug)]
pub struct RxQueue {
    port: Arc<PortInner>,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    /// Receives up to `BURST` packets into `out`; returns how many. Packets `out` still
    /// holds are dropped first (freed, not overwritten).
    #[inline]
    pub fn burst(&mut self, out: &mut MbufBurst) -> usize {
        if out.len != 0 {
            out.clear();
        }
        // SAFETY: `Option<Mbuf>` is a nullable `*mut rte_mbuf` (repr(transparent) over
        // NonNull); the array has BURST slots (a vector PMD may write past the count it
        // returns: `MbufBurst`'s drop leaves those); this queue is polled by this thread only
        // (one handle per queue, `Port::rx_queue`, and `&mut self` on a handle not Sync).
        let n = unsafe {
            dpdk_sys::rte_eth_rx_burst(
                self.port.id,
                self.queue,
                out.slots.as_mut_ptr().cast::<*mut dpdk_sys::rte_mbuf>(),
                BURST as u16,
            )
        };
        out.len = n as usize;
        out.len
    }

    pub fn port_id(&self) -> u16 {
        self.port.id
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.port.rx_taken[usize::from(self.queue)].store(false, Ordering::Release);
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        self.port.tx_taken[usize::from(self.queue)].store(false, Ordering::Release);
    }
}

/// One TX queue of a port, used by one thread (`Send`, not `Sync`).
#[derive(Debug)]
pub struct TxQueue {
    port: Arc<PortInner>,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl TxQueue {
    /// Sends what `buf` holds; packets the NIC did not take are freed. Returns
    /// `(sent, dropped)`.
    #[inline]
    pub fn flush(&mut self, buf: &mut TxBuffer) -> (usize, usize) {
        let len = std::mem::take(&mut buf.len);
        if len == 0 {
            return (0, 0);
        }
        // SAFETY: the first `len` slots are Some (pushed by TxBuffer::push).
        unsafe { self.transmit_all(&mut buf.slots[..len]) }
    }

    /// Sends a received burst as it lies, without copying it into a [`TxBuffer`]; packets
    /// the NIC did not take are freed and the burst is left empty. Returns `(sent, dropped)`,
    /// or `None` (nothing sent, nothing taken) where a slot is empty.
    #[inline]
    pub fn send(&mut self, burst: &mut MbufBurst) -> Option<(usize, usize)> {
        let slots = &mut burst.slots[..burst.len];
        // Every slot looked at, without a branch each: the compiler tests them several at a
        // time.
        let gap = slots.iter().fold(false, |gap, slot| gap | slot.is_none());
        if slots.is_empty() || gap {
            return None;
        }
        // SAFETY: every slot is Some, checked just now; a burst holds at most BURST.
        let sent = unsafe { self.transmit_all(slots) };
        burst.len = 0;
        Some(sent)
    }

    /// # Safety
    /// Every slot of `slots` (at most 65535) is Some.
    #[inline]
    unsafe fn transmit_all(&mut self, slots: &mut [Option<Mbuf>]) -> (usize, usize) {
        let len = slots.len();
        // SAFETY: `Option<Mbuf>` is a nullable `*mut rte_mbuf` (repr(transparent) over
        // NonNull), and the caller promises each is Some; the PMD takes ownership of the
        // first `sent` of them; this queue is used by this thread only (one handle per queue,
        // `Port::tx_queue`, and `&mut self` on a handle that is not Sync).
        let sent = unsafe {
            dpdk_sys::rte_eth_tx_burst(
                self.port.id,
                self.queue,
                slots.as_mut_ptr().cast::<*mut dpdk_sys::rte_mbuf>(),
                len as u16,
            )
        } as usize;
        for slot in &mut slots[..sent] {
            // The PMD owns these now: forget without freeing.
            std::mem::forget(slot.take());
        }
        for slot in &mut slots[sent..] {
            *slot = None; // frees
        }
        (sent, len - sent)
    }

    pub fn port_id(&self) -> u16 {
        self.port.id
    }
}
