//! The control thread (the main lcore): brings DPDK and the kernel twins up, launches the
//! workers, relays the twins' traffic, resolves neighbours, publishes new forwarding
//! states (RCU-style, through `ArcSwap`) and serves metrics. Never on the per-packet path.

#![forbid(unsafe_code)]

mod announce;
mod appliance;
mod bird;
mod frontend_groups;
mod frontend_macs;
mod http;
mod metrics;
mod neighbours;
mod notify;
mod plane;
pub mod probes;
mod retired;
mod shutdown;
pub mod socket;
mod status;
pub mod twin;
mod twin_egress;

pub use appliance::run;

/// Why the appliance could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Dpdk(#[from] crate::dpdk::DpdkError),
    #[error("config: {0}")]
    Config(String),
    #[error("kernel twin: {0}")]
    Twin(String),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("control socket: {0}")]
    Control(String),
    #[error("announce: {0}")]
    Announce(String),
}

pub mod stats;
