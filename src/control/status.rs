//! `haports status`: what a running appliance is, as one JSON object (the control thread
//! builds it; `haports status` prints it).

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};

use super::announce::{self, AnnounceStatus};
use super::shutdown::Shutdown;
use super::twin;
use crate::config::Config;
use crate::dpdk::Port;
use crate::lb::forwarding::Forwarding;

/// What the status is made of.
pub struct StatusInputs<'a> {
    pub started: Instant,
    pub config_path: &'a Path,
    pub cfg: &'a Config,
    /// The generation of `cfg`: configs applied, 1 at start (the published forwarding state
    /// follows within one loop of the control thread).
    pub config_generation: u64,
    pub fwd: &'a Forwarding,
    pub ports: &'a [Port],
    pub announce: Option<&'a AnnounceStatus>,
    pub shutdown: Shutdown,
}

pub fn status(s: &StatusInputs) -> Value {
    let serving = announce::serving_frontends(s.fwd);
    let state = match s.shutdown {
        Shutdown::Running => "running",
        Shutdown::Withdrawing { .. } => "withdrawing",
        Shutdown::Draining { .. } => "draining",
        Shutdown::Stop => "stopping",
    };
    let ports: Vec<Value> = s
        .cfg
        .interface
        .iter()
        .zip(s.ports)
        .map(|(ifc, port)| {
            // A device that would not say shows none (null), not zeroes.
            let st = port.stats();
            json!({
                "interface": ifc.name, "port": port.id(),
                "mac": port.mac().map(|m| m.to_string()).unwrap_or_default(),
                "twin": twin::kernel_name(&ifc.name),
                "addresses": ifc.address.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "rx_packets": st.map(|s| s.rx_packets), "tx_packets": st.map(|s| s.tx_packets),
                "rx_dropped": st.map(|s| s.rx_missed + s.rx_no_mbuf),
            })
        })
        .collect();
    let frontends: Vec<Value> = s
        .fwd
        .frontends
        .iter()
        .map(|fe| {
            json!({
                "load_balancer": fe.load_balancer, "name": fe.name,
                "address": fe.address.to_string(),
                "serving": serving.contains(&fe.address),
                "announced": s.announce.map(|a| a.announced.contains(&fe.address)),
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "state": state,
        "uptime_s": s.started.elapsed().as_secs(),
        "config_file": s.config_path.display().to_string(),
        "config_generation": s.config_generation,
        "forwarding_generation": s.fwd.generation,
        "workers": s.cfg.dataplane.workers,
        "ports": ports,
        "frontends": frontends,
    })
}
