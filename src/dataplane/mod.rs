//! The worker lcores: rx burst → parse → decide → rewrite → tx burst.
//!
//! `pipeline` takes a burst through its stages (fast path for plain IPv4 TCP/UDP to a
//! frontend, everything else through `slow`); `slow` decides one packet of any kind;
//! `responders`, `icmp_error`, `fragments` and `nat` are its concerns; `neighbours` is what a
//! worker reports about neighbours and the packets it holds for them; `state` is what a worker owns; `worker` runs the poll loop over DPDK
//! queues; `counters` are the per-worker statistics. All but `worker` work on plain bytes and
//! are tested without DPDK. Nothing here allocates, locks, logs or makes a syscall per packet.
#![forbid(unsafe_code)]

pub mod counters;
mod exception;
mod fragments;
mod icmp_error;
mod nat;
pub mod neighbours;
pub mod pipeline;
mod responders;
pub mod slow;
pub mod state;
mod vxlan;
pub mod worker;

pub use counters::WorkerCounters;
pub use fragments::Fragment;
pub use neighbours::{Held, NeighbourReports, Report};
pub use pipeline::{process_burst, PacketBuffer};
pub use slow::process;
pub use state::{Action, WorkerState};
pub use worker::Worker;

#[cfg(test)]
#[path = "process_tests/mod.rs"]
mod tests;
