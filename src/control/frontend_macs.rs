//! The frames each port receives for the frontends: their own MACs, which frames routed
//! through a frontend carry (by the port's MAC filter, else in promiscuous mode).

use super::Error;
use crate::config::Config;
use crate::dpdk::Port;
use crate::lb::forwarding::frontend_mac;
use crate::wire::MacAddr;

/// Has `port` (interface port `id`) receive the frames addressed to every frontend's own MAC
/// (frames routed through a frontend carry it): by its MAC filter, else in promiscuous mode.
/// A MAC the filter holds already is no error.
pub(super) fn receive_frontend_macs(port: &Port, id: u16, cfg: &Config) -> Result<(), Error> {
    let frontend_macs: Vec<MacAddr> = cfg
        .load_balancer
        .iter()
        .flat_map(|lb| lb.frontend.iter().map(|fe| frontend_mac(fe.address)))
        .collect();
    if let Err(e) = frontend_macs.iter().try_for_each(|m| port.add_mac(*m)) {
        tracing::info!(port = id, reason = %e, "no MAC filter for the frontends; using promiscuous mode");
        port.enable_promiscuous()?;
    }
    Ok(())
}

/// [`receive_frontend_macs`] on every port once a reload applied: frontends it added are
/// received as those at start are (on a NIC that filters by MAC, their frames were dropped).
pub(super) fn frontend_macs_after_reload(ports: &[Port], cfg: &Config) {
    for (ifc, port) in cfg.interface.iter().zip(ports) {
        if let Err(e) = receive_frontend_macs(port, ifc.port, cfg) {
            tracing::error!(port = ifc.port, reason = %e, "cannot receive the frontends' frames after the reload");
        }
    }
}
