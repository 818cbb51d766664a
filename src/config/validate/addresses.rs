//! Frontend and backend addresses: unicast, not the appliance's own, a frontend per
//! address, a backend once per pool, and every backend reachable on a segment or by route.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::{
    backend_key, frontend_key, lb_key, limit, not_own_address, pools, unicast, unicast_mac,
    unicast_on_its_subnet, Problems,
};
use crate::config::model::Config;

pub(super) fn frontends(cfg: &Config, out: &mut Problems) {
    let mut seen: HashMap<IpAddr, String> = HashMap::new();
    let mut mac_tails: HashMap<u32, (IpAddr, String)> = HashMap::new();
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let lb_key = lb_key(l, lb);
        for (f, fe) in lb.frontend.iter().enumerate() {
            let key = format!("{}.address", frontend_key(&lb_key, f, fe));
            unicast(&key, fe.address, "frontend", out);
            unicast_on_its_subnet(&key, fe.address, "frontend", cfg, out);
            not_own_address(&key, fe.address, "frontend", cfg, out);
            if let Some(first) = seen.get(&fe.address) {
                out.error(
                    &key,
                    limit::ONE_FRONTEND_PER_ADDRESS,
                    format!(
                        "{} is already the address of {first}; each frontend needs an address \
                         of its own (one frontend may carry several rules)",
                        fe.address
                    ),
                );
            } else {
                seen.insert(fe.address, frontend_key(&lb_key, f, fe));
            }
            // An IPv6 frontend's MAC (what it answers in neighbour discovery, and what names
            // it as a next hop) is made of its last 32 bits.
            if let IpAddr::V6(v6) = fe.address {
                let tail = u128::from(v6) as u32;
                match mac_tails.get(&tail) {
                    Some((other, first)) if *other != fe.address => out.error(
                        &key,
                        limit::FRONTEND_MAC,
                        format!(
                            "{} ends in the same 32 bits as {other}, the address of {first}; \
                             their MAC addresses (made of those bits) would be the same",
                            fe.address
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        mac_tails.insert(tail, (fe.address, frontend_key(&lb_key, f, fe)));
                    }
                }
            }
        }
    }
}

pub(super) fn backend_pools(cfg: &Config, out: &mut Problems) {
    for (key, pool) in pools(cfg) {
        if pool.backends.is_empty() {
            out.error(
                format!("{key}.backends"),
                limit::POOL_NOT_EMPTY,
                "the pool has no backends; list at least one",
            );
        }
        let mut addresses = HashSet::new();
        let mut instances = HashSet::new();
        for backend in &pool.backends {
            let bkey = backend_key(&key, backend);
            let akey = format!("{bkey}.address");
            unicast(&akey, backend.address, "backend", out);
            unicast_on_its_subnet(&akey, backend.address, "backend", cfg, out);
            not_own_address(&akey, backend.address, "backend", cfg, out);
            unicast_mac(format!("{bkey}.mac"), backend.mac, out);
            let new_address = addresses.insert(backend.address);
            if !new_address {
                out.error(
                    &akey,
                    limit::DISTINCT_BACKENDS,
                    format!(
                        "{} is listed more than once in this pool; list each backend once \
                         (weight gives it a larger share)",
                        backend.address
                    ),
                );
            }
            let instance = backend.instance();
            // A repeated address is reported once, above, not again as its instance.
            if !instances.insert(instance.clone()) && new_address {
                out.error(
                    format!("{bkey}.instance"),
                    limit::DISTINCT_BACKENDS,
                    format!(
                        "instance `{instance}` is named by more than one backend of this pool; \
                         Maglev needs distinct instances"
                    ),
                );
            }
        }
    }
}

pub(super) fn backends_reachable(cfg: &Config, out: &mut Problems) {
    let on_link = |addr: &IpAddr| {
        cfg.interface
            .iter()
            .any(|iface| iface.address.iter().any(|net| net.contains(addr)))
    };
    let routed = |addr: &IpAddr| {
        cfg.interface
            .iter()
            .any(|iface| iface.routes.iter().any(|route| route.to.contains(addr)))
    };
    for (key, pool) in pools(cfg) {
        // VXLAN or not, packets to a backend leave towards its address.
        for backend in &pool.backends {
            let addr = backend.address;
            if !on_link(&addr) && !routed(&addr) {
                out.error(
                    backend_key(&key, backend),
                    limit::BACKEND_REACHABLE,
                    format!(
                        "backend {addr} is on no interface's subnet and no route leads to it; \
                         add a route (interface.routes) or fix the address"
                    ),
                );
            }
        }
    }
}
