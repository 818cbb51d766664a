//! The worker lcores: rx burst → parse → decide → rewrite → tx burst.
//!
//! `pipeline` takes a burst through its stages: `classify` picks the fast path's packets
//! (plain TCP/UDP to a frontend), `slow` decides one packet of any kind; `responders`,
//! `icmp_error`, `fragments` (over the worker's `datagrams`), `nat` and `vxlan` (with
//! `fragmenter`, which splits what is too big for a tunnel) are their concerns. Every stage
//! is given a `ctx` and says an `action`; a packet is any `packet_buffer`. `neighbours` is
//! what a worker reports about neighbours and the packets it holds for them (`asking`: the
//! neighbours whose answers the control thread waits for); `state` is what a worker owns;
//! `worker` runs the poll loop over DPDK queues and `egress` takes its decided packets out;
//! `counters` are the per-worker statistics. All but `worker` and `egress` work on plain
//! bytes and are tested without DPDK. Nothing here allocates, locks, logs or makes a syscall
//! per packet (a packet split for a tunnel takes mbufs for its fragments from its own pool,
//! as a PMD takes them for what it receives).
#![forbid(unsafe_code)]

mod action;
pub mod asking;
mod classify;
pub mod counters;
mod ctx;
mod datagrams;
mod egress;
mod exception;
mod fragmenter;
mod fragments;
mod icmp_error;
mod nat;
pub mod neighbours;
mod packet_buffer;
pub mod pipeline;
mod responders;
pub mod slow;
pub mod state;
mod vxlan;
pub mod worker;

pub use action::Action;
pub use asking::Asking;
pub use counters::WorkerCounters;
pub use datagrams::Fragment;
pub use egress::ToTwin;
pub use exception::KernelBudget;
pub use fragmenter::Spill;
pub use neighbours::{Held, NeighbourReports, Report, Wait, REPORTS};
pub use packet_buffer::PacketBuffer;
pub use pipeline::process_burst;
pub use slow::process;
pub use state::WorkerState;
pub use worker::Worker;

#[cfg(test)]
#[path = "process_tests/mod.rs"]
mod tests;
