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

/// Whether `n` is prime (Maglev's table sizes must be), by trial division: at most 32768
/// divisions for a `u32`.
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n & 1 == 0 {
        return n == 2;
    }
    let n = u64::from(n);
    (3..)
        .step_by(2)
        .take_while(|d| d * d <= n)
        .all(|d| n % d != 0)
}

/// The smallest prime at least `n`, if one fits in a `u32`.
pub fn prime_at_least(n: u64) -> Option<u32> {
    let start = u32::try_from(n).ok()?;
    (start..=u32::MAX).find(|&p| is_prime(p))
}

/// A frontend's MAC address, derived from its IP address so that every instance with the
/// same config answers the same: locally administered unicast `02:48:a:b:c:d` for IPv4
/// a.b.c.d, `02:49:` and the last four bytes for IPv6.
pub fn frontend_mac(addr: std::net::IpAddr) -> crate::wire::MacAddr {
    match addr {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            crate::wire::MacAddr([0x02, 0x48, o[0], o[1], o[2], o[3]])
        }
        std::net::IpAddr::V6(a) => {
            let o = a.octets();
            crate::wire::MacAddr([0x02, 0x49, o[12], o[13], o[14], o[15]])
        }
    }
}

#[cfg(test)]
pub(crate) mod testdata;
