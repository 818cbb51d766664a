//! The worker lcores: rx burst → parse → decide → rewrite → tx burst.
//!
//! `process` decides one packet over plain bytes (testable without DPDK); `worker` runs the
//! poll loop over DPDK queues; `counters` are the per-worker statistics. Nothing here
//! allocates, locks, logs or makes a syscall per packet.
#![forbid(unsafe_code)]

pub mod counters;
pub mod process;
pub mod worker;

pub use counters::WorkerCounters;
pub use process::{Action, FlowEntry, Gleaned, WorkerState};
pub use worker::{Glean, Worker};
