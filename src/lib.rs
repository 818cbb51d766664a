//! haports: a DPDK layer-4 load balancer with HA ports.
//!
//! `config`, `wire` and `lb` are pure Rust (no DPDK): the config contract and its checks,
//! zero-copy packet views, and the forwarding decision (symmetric hash, Maglev, flow table,
//! forwarding state). `dpdk` is the only safe wrapper over `dpdk-sys`; `dataplane` (worker
//! lcores) and `control` (kernel twins, neighbours, metrics, publishing the forwarding
//! state) join the two.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod config;
pub mod control;
pub mod dataplane;
pub mod dpdk;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod lb;
pub mod logs;
pub mod wire;
