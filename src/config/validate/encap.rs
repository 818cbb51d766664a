//! Pools with `encap = "vxlan"`: what their backends need for the data plane to reach them
//! inside VXLAN (DESIGN §4).

use std::net::IpAddr;

use super::{backend_key, limit, pools, rules, Problems};
use crate::config::model::{Config, Encap};

/// The largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

pub(super) fn vxlan_pools(cfg: &Config, out: &mut Problems) {
    for (key, pool) in pools(cfg) {
        match (pool.encap, pool.vni) {
            (None, Some(_)) => out.error(
                format!("{key}.vni"),
                limit::VXLAN,
                "vni is for encap = \"vxlan\"; add that, or remove vni",
            ),
            (Some(Encap::Vxlan), None) => out.error(
                format!("{key}.vni"),
                limit::VXLAN,
                format!("encap = \"vxlan\" needs a vni (0 to {MAX_VNI}), as the backends' VXLAN devices use"),
            ),
            (_, Some(vni)) if vni > MAX_VNI => out.error(
                format!("{key}.vni"),
                limit::VXLAN,
                format!("{vni} does not fit VXLAN's 24 bits (0 to {MAX_VNI})"),
            ),
            _ => {}
        }
        if pool.encap.is_none() {
            continue;
        }
        for backend in &pool.backends {
            let bkey = backend_key(&key, backend);
            if matches!(backend.address, IpAddr::V6(_)) {
                out.error(
                    format!("{bkey}.address"),
                    limit::VXLAN,
                    format!(
                        "{} is IPv6; VXLAN reaches IPv4 backends (the packets inside may be either)",
                        backend.address
                    ),
                );
            }
            if backend.mac.is_none() {
                out.error(
                    format!("{bkey}.mac"),
                    limit::VXLAN,
                    "a VXLAN backend needs its `mac`: its VXLAN device's, the inner frames' destination",
                );
            }
        }
    }
    // DSR only: a backend beyond VXLAN answers its clients directly, never back through the
    // appliance, so destination NAT (whose replies must come back) cannot reach it.
    for view in rules(cfg) {
        let vxlan = view.pool.is_some_and(|p| p.encap.is_some());
        if vxlan && !view.rule.floating_ip {
            out.error(
                format!("{}.floating_ip", view.key),
                limit::VXLAN,
                format!(
                    "pool `{}` is reached by VXLAN, which carries DSR only: set floating_ip = true",
                    view.rule.backend_pool
                ),
            );
        }
    }
}
