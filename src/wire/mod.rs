//! Zero-copy packet views and builders, in the manner of smoltcp's `wire` module.
//!
//! Each protocol has a `Packet<T: AsRef<[u8]>>` view whose `new_checked` validates lengths
//! once; after that no getter can panic. Setters exist where `T: AsMut<[u8]>`. Errors are a
//! small `Copy` enum so a failed parse feeds a per-reason drop counter directly. This module
//! never imports `dpdk`: it works on any byte slice.
#![forbid(unsafe_code)]

mod mac;

pub use mac::{MacAddr, MacParseError};

/// Why bytes are not a packet we can handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Shorter than its headers say.
    Truncated,
    /// Lengths or fields inconsistent (bad IHL, bad total length, …).
    Malformed,
    /// Well-formed but a protocol or option we do not handle.
    Unsupported,
}
