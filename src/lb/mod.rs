//! The forwarding decision: symmetric flow hash, Maglev tables, per-worker flow table.
//!
//! Pure Rust, no DPDK and no I/O: everything here runs in plain `cargo test`, and the data
//! plane, the control thread and `haports lookup` share it.
#![forbid(unsafe_code)]

pub mod decision;
pub mod flow;
pub mod flow_table;
pub mod forwarding;
pub mod hash;
pub mod maglev;
pub mod side_table;
#[cfg(test)]
mod testdata;
pub mod v4_index;
pub mod verdict;
