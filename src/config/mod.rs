//! The config file (DESIGN §4): its serde model, loading with errors that name file, line
//! and key, and validation that reports every problem (schema-like checks and the seed's
//! rules of DESIGN §7).
//!
//! Pure Rust: this module never imports `dpdk`, so every part of it runs in plain
//! `cargo test`. The rest of the program takes a `Config` that passed [`validate()`].
#![forbid(unsafe_code)]

mod announce;
mod load;
mod model;
mod sizing;
mod validate;

pub use announce::Announce;
pub use load::ConfigError;
pub use model::{
    Backend, BackendPool, Config, Control, Dataplane, Distribution, Dpdk, Encap, Frontend,
    Interface, LbKind, LoadBalancer, Probe, ProbeProtocol, Route, Rule, RuleProtocol,
    MAX_IDLE_TIMEOUT_S, MAX_INTERFACES, MAX_INTERFACE_NAME,
};
pub use validate::{validate, Problem, Severity};

/// Backend slots counted per backend (a pool's backends once per distinct probe of its rules).
pub const MAX_BACKEND_SLOTS: usize = 1 << 16;

#[cfg(test)]
pub(crate) mod testdata;
