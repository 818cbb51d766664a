//! What a port's device says of itself, started or not: its queues, NUMA socket, MAC.

use super::error::{check, DpdkError};
use crate::wire::MacAddr;

/// The most RX and TX queues port `id` offers.
pub fn max_queues(id: u16) -> Result<(u16, u16), DpdkError> {
    let mut info = dpdk_sys::rte_eth_dev_info::default();
    // SAFETY: out-pointer valid; DPDK checks the port id.
    let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut info) };
    check(
        || format!("port {id}: reading device info (does it exist? check dpdk.eal_args' devices)"),
        ret,
    )?;
    Ok((info.max_rx_queues, info.max_tx_queues))
}

/// The NUMA socket of port `id`'s device; `None` where it has none (a virtual device) or the
/// port does not exist.
pub fn port_socket(id: u16) -> Option<u32> {
    // SAFETY: no preconditions.
    if unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id) } == 0 {
        // DPDK 22.11 reads an unknown port's data without checking it (a crash).
        return None;
    }
    // SAFETY: a port that exists; one without a socket gives -1.
    u32::try_from(unsafe { dpdk_sys::rte_eth_dev_socket_id(id) }).ok()
}

/// How many RX queues a port's device fills whatever is configured, for the PMDs where
/// that is fixed when the device is probed: the AF_PACKET PMD opens a socket per queue pair
/// (`qpairs`) in one kernel fanout group, and the AF_XDP PMD's queues are the NIC's
/// (`queue_count`), which its RSS fills; a queue nobody polls loses its frames. `None` for
/// other PMDs, whose RSS spreads over the queues configured.
pub fn fixed_rx_queues(id: u16) -> Result<Option<u16>, DpdkError> {
    let mut info = dpdk_sys::rte_eth_dev_info::default();
    // SAFETY: out-pointer valid; DPDK checks the port id.
    let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut info) };
    check(|| format!("port {id}: reading device info"), ret)?;
    Ok(spreads_by_itself(&info).then_some(info.max_rx_queues))
}

/// Whether a device's PMD fills its RX queues itself, whatever RSS is configured: AF_PACKET's
/// (a kernel fanout group) and AF_XDP's (the NIC's own queues).
pub(super) fn spreads_by_itself(info: &dpdk_sys::rte_eth_dev_info) -> bool {
    driver_is(info, &[b"net_af_packet", b"net_af_xdp"])
}

/// Whether a device's queues are filled by the NIC's RSS with the NIC's own key, which
/// haports does not set (AF_XDP's), so perhaps not symmetrically.
pub(super) fn spreads_by_the_nics_key(info: &dpdk_sys::rte_eth_dev_info) -> bool {
    driver_is(info, &[b"net_af_xdp"])
}

fn driver_is(info: &dpdk_sys::rte_eth_dev_info, drivers: &[&[u8]]) -> bool {
    if info.driver_name.is_null() {
        return false;
    }
    // SAFETY: DPDK's driver name, a static NUL-terminated string.
    let driver = unsafe { std::ffi::CStr::from_ptr(info.driver_name) };
    drivers.contains(&driver.to_bytes())
}

/// The MAC address of any port, started or not.
pub fn mac_of(id: u16) -> Result<MacAddr, DpdkError> {
    let mut addr = dpdk_sys::rte_ether_addr::default();
    // SAFETY: out-pointer valid; DPDK checks the port id.
    check(|| format!("port {id}: reading MAC"), unsafe {
        dpdk_sys::rte_eth_macaddr_get(id, &mut addr)
    })?;
    Ok(MacAddr(addr.addr_bytes))
}
