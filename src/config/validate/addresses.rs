//! Frontend and backend addresses: unicast, not the appliance's own, a frontend per
//! address, a backend once per pool, every backend reachable on a segment or by route, and
//! a floating-IP (DSR) rule's backends on a segment unless VXLAN carries the packets there.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::{
    backend_key, frontend_key, interface_key, lb_key, limit, pools, rules, unicast, unicast_mac,
    Problems, SEED_RULE_7,
};
use crate::config::frontend_mac;
use crate::config::model::Config;
use crate::wire::MacAddr;

pub(super) fn frontends(cfg: &Config, out: &mut Problems) {
    let mut seen: HashMap<IpAddr, String> = HashMap::new();
    let mut mac_tails: HashMap<u32, (IpAddr, String)> = HashMap::new();
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let lb_key = lb_key(l, lb);
        for (f, fe) in lb.frontend.iter().enumerate() {
            let key = format!("{}.address", frontend_key(&lb_key, f, fe));
            unicast(&key, fe.address, "frontend", out);
            not_link_local(&key, fe.address, "frontend", out);
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

/// The appliance's own MACs (each interface's given `mac`, each frontend's derived one) are
/// no backend's, and no interface's is a frontend's: frames to a backend given one would
/// come back to the appliance and be lost uncounted, and an interface answering with a
/// frontend's MAC would have its own frames taken for transit through that frontend.
pub(super) fn appliance_macs_apart(cfg: &Config, out: &mut Problems) {
    let mut own: HashMap<MacAddr, String> = HashMap::new();
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        for (f, fe) in lb.frontend.iter().enumerate() {
            let name = format!("the MAC of {}", frontend_key(&lb_key(l, lb), f, fe));
            own.entry(frontend_mac(fe.address)).or_insert(name);
        }
    }
    // (Two interfaces on segments of their own may share a MAC: checked against frontends'.)
    let mut interfaces = Vec::new();
    for (i, iface) in cfg.interface.iter().enumerate() {
        let Some(mac) = iface.mac else { continue };
        let key = interface_key(i, iface);
        if let Some(first) = own.get(&mac) {
            out.error(
                format!("{key}.mac"),
                limit::OWN_MACS,
                format!("{mac} is {first}; give the interface another mac"),
            );
        }
        interfaces.push((mac, format!("the mac of {key}")));
    }
    for (mac, name) in interfaces {
        own.entry(mac).or_insert(name);
    }
    for (key, pool) in pools(cfg) {
        for backend in &pool.backends {
            let Some(first) = backend.mac.and_then(|mac| own.get(&mac)) else {
                continue;
            };
            out.error(
                format!("{}.mac", backend_key(&key, backend)),
                limit::OWN_MACS,
                format!(
                    "{} is {first}: the appliance's own, never a backend's",
                    backend.mac.map(|m| m.to_string()).unwrap_or_default()
                ),
            );
        }
    }
}

pub(super) fn backend_pools(cfg: &Config, out: &mut Problems) {
    let frontends: HashMap<IpAddr, &str> = cfg
        .load_balancer
        .iter()
        .flat_map(|lb| lb.frontend.iter().map(|fe| (fe.address, fe.name.as_str())))
        .collect();
    // Each backend's MAC by its address (and VNI: one overlay's host is not another's), as
    // the first pool giving one says.
    let mut macs: HashMap<(IpAddr, Option<u32>), (MacAddr, String)> = HashMap::new();
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
            not_link_local(&akey, backend.address, "backend", out);
            unicast_on_its_subnet(&akey, backend.address, "backend", cfg, out);
            not_own_address(&akey, backend.address, "backend", cfg, out);
            unicast_mac(format!("{bkey}.mac"), backend.mac, out);
            // The data plane drops a frontend's address as a packet's source (the appliance
            // answers for it), so such a backend's replies and probe answers never arrive.
            if let Some(name) = frontends.get(&backend.address) {
                out.error(
                    &akey,
                    limit::NOT_OWN_ADDRESS,
                    format!(
                        "{} is the address of frontend `{name}`, which the appliance answers \
                         for; a backend needs another address",
                        backend.address
                    ),
                );
            }
            // Two MACs given for one backend: one pool's packets would go elsewhere than
            // another's. (One given and one resolved: the given one is the backend's, as ARP
            // will say.)
            let vni = pool.encap.and(pool.vni);
            if let Some(mac) = backend.mac {
                match macs.get(&(backend.address, vni)) {
                    Some((first_mac, first)) if *first_mac != mac => out.error(
                        format!("{bkey}.mac"),
                        limit::ONE_MAC_PER_BACKEND,
                        format!(
                            "backend {} has mac {mac} here but {first_mac} in {first}; give \
                             one backend the same mac in every pool",
                            backend.address,
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        macs.insert((backend.address, vni), (mac, key.clone()));
                    }
                }
            }
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
            if backend.instance.as_deref() == Some("") {
                out.error(
                    format!("{bkey}.instance"),
                    SEED_RULE_7,
                    "an instance needs a name, and it must not be empty (left out, it is the \
                     backend's address)",
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

/// `addr` is on the subnet of one of the interfaces' own addresses.
fn on_link(cfg: &Config, addr: IpAddr) -> bool {
    cfg.interface
        .iter()
        .any(|iface| iface.address.iter().any(|net| net.contains(&addr)))
}

/// A route of one of the interfaces leads to `addr`.
fn routed(cfg: &Config, addr: IpAddr) -> bool {
    cfg.interface
        .iter()
        .any(|iface| iface.routes.iter().any(|route| route.to.contains(&addr)))
}

/// Packets to `addr` leave through a route's gateway rather than straight onto a segment:
/// the longest prefix covering it is a route's, as the forwarding state picks (an
/// interface's subnet wins a tie).
fn behind_route(cfg: &Config, addr: IpAddr) -> bool {
    let subnets = cfg.interface.iter().flat_map(|i| &i.address);
    let subnet = subnets
        .filter(|n| n.contains(&addr))
        .map(|n| n.prefix_len())
        .max();
    let routes = cfg.interface.iter().flat_map(|i| &i.routes);
    let route = routes
        .filter(|r| r.to.contains(&addr))
        .map(|r| r.to.prefix_len())
        .max();
    route.is_some_and(|r| subnet.map_or(true, |s| r > s))
}

pub(super) fn backends_reachable(cfg: &Config, out: &mut Problems) {
    for (key, pool) in pools(cfg) {
        // VXLAN or not, packets to a backend leave towards its address.
        for backend in &pool.backends {
            let addr = backend.address;
            if !on_link(cfg, addr) && !routed(cfg, addr) {
                out.error(
                    backend_key(&key, backend),
                    limit::BACKEND_REACHABLE,
                    format!(
                        "backend {addr} is on no interface's subnet and no route leads to it; \
                         add a route (interface.routes) or fix the address"
                    ),
                );
            }
            // A configured MAC is where the backend's frames go: right on its segment (and
            // inside VXLAN, its device's), wrong behind a router, whose MAC is resolved.
            if let Some(mac) = backend.mac.filter(|_| pool.encap.is_none()) {
                if behind_route(cfg, addr) {
                    out.error(
                        format!("{}.mac", backend_key(&key, backend)),
                        limit::BACKEND_MAC_ON_LINK,
                        format!(
                            "backend {addr} is behind a route, where its packets go to the \
                             router's MAC (resolved), but `mac` would send them to {mac} on \
                             the segment; drop `mac`, or put the backend on an interface's \
                             subnet"
                        ),
                    );
                }
            }
        }
    }
}

/// DSR keeps the IP packet and rewrites only the destination MAC (DESIGN §6), so its
/// backends must be on a segment: a router would get the frontend's own address and send
/// the packet back. VXLAN (`encap`) carries it to a routed backend inside; NAT rewrites the
/// address, so its backends may be routed, but an HA-ports rule's transit is MAC-only too:
/// with such backends its frontend takes none, which a warning says.
pub(super) fn dsr_backends_on_link(cfg: &Config, out: &mut Problems) {
    for view in rules(cfg) {
        let Some(pool) = view.pool else { continue };
        let transit = view.rule.is_ha_ports();
        if !(view.rule.floating_ip || transit) || pool.encap.is_some() {
            continue;
        }
        // A backend that no route reaches either is reported by `backends_reachable`.
        let behind_routes: Vec<String> = pool
            .backends
            .iter()
            .filter(|b| behind_route(cfg, b.address))
            .map(|b| b.address.to_string())
            .collect();
        let (which, are) = match behind_routes.len() {
            0 => continue,
            1 => ("backend", "is"),
            _ => ("backends", "are"),
        };
        if !view.rule.floating_ip {
            // NAT reaches them, but transit through the frontend leaves with its MAC header
            // changed alone: the data plane takes none (`no_frontend`).
            out.warning(
                format!("{}.backend_pool", view.key),
                limit::TRANSIT_ON_LINK,
                format!(
                    "frames routed through frontend `{}` (transit) would leave for {which} {} \
                     of pool `{}` with only their MAC header changed, which {are} behind a \
                     route: the router would get them still addressed to their destination, so \
                     the frontend takes no transit (dropped as no_frontend); put the backends on \
                     a segment or give the pool encap = \"vxlan\"",
                    view.rule.frontend,
                    behind_routes.join(", "),
                    view.rule.backend_pool,
                ),
            );
            continue;
        }
        out.error(
            format!("{}.floating_ip", view.key),
            limit::DSR_ON_LINK,
            format!(
                "floating IP (DSR) rewrites only the destination MAC, but {which} {} of pool \
                 `{}` {are} on no interface's subnet, only behind a route: the router would \
                 get packets still addressed to the frontend and send them back; put the \
                 backends on a segment, give the pool encap = \"vxlan\", or set floating_ip = \
                 false",
                behind_routes.join(", "),
                view.rule.backend_pool,
            ),
        );
    }
}

/// A frontend or backend is not the network or broadcast address of an interface's IPv4
/// subnet (where the subnet has those: up to /30).
pub(super) fn unicast_on_its_subnet(
    key: &str,
    addr: IpAddr,
    role: &str,
    cfg: &Config,
    out: &mut Problems,
) {
    for (i, iface) in cfg.interface.iter().enumerate() {
        for net in &iface.address {
            let IpNet::V4(v4) = net else { continue };
            if v4.prefix_len() > 30 {
                continue;
            }
            let which = if addr == IpAddr::V4(v4.network()) {
                "network"
            } else if addr == IpAddr::V4(v4.broadcast()) {
                "broadcast"
            } else {
                continue;
            };
            out.error(
                key,
                limit::UNICAST,
                format!(
                    "{addr} is the {which} address of {}'s subnet {}; a {role} needs a \
                     unicast address",
                    interface_key(i, iface),
                    v4.trunc()
                ),
            );
        }
    }
}

/// A frontend or backend must not take the appliance's own address: traffic to it goes to
/// the interface's kernel twin.
pub(super) fn not_own_address(
    key: &str,
    addr: IpAddr,
    role: &str,
    cfg: &Config,
    out: &mut Problems,
) {
    for (i, iface) in cfg.interface.iter().enumerate() {
        if iface.address.iter().any(|net| net.addr() == addr) {
            out.error(
                key,
                limit::NOT_OWN_ADDRESS,
                format!(
                    "{addr} is the own address of {} (its kernel twin's); a {role} needs \
                     another address",
                    interface_key(i, iface)
                ),
            );
        }
    }
}

/// A frontend or backend is not link-local (169.254/16, fe80::/10): the data plane forwards
/// nothing to such an address (`martian_destination`) nor from it (`martian_source`: no
/// router carries a link-local packet off its link), so its flows would never get through.
fn not_link_local(key: &str, addr: IpAddr, role: &str, out: &mut Problems) {
    let link_local = match addr {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    };
    if link_local {
        out.error(
            key,
            limit::LINK_LOCAL,
            format!(
                "{addr} is link-local, which the data plane never forwards to or from: give \
                 the {role} a routable address"
            ),
        );
    }
}
