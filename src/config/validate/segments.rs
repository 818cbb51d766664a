//! The interfaces' own addresses and routes, beyond what `dataplane::interfaces` checks:
//! each interface's subnets its own, an own address that is no subnet's network or
//! broadcast address, and routes the kernel twin takes as written and whose next hop is a
//! host the appliance can resolve.

use std::net::IpAddr;

use ipnet::IpNet;

use super::addresses::{not_own_address, unicast_on_its_subnet};
use super::{interface_key, limit, unicast, Problems};
use crate::config::model::Config;

/// Subnets apart across interfaces: the data plane sends to a segment by the subnet that
/// holds the destination, and keeps one interface per own address, so two interfaces on one
/// subnet would leave one of them without its replies. And an interface's IPv4 address is
/// no network or broadcast address of its own subnet.
pub(super) fn interface_addresses(cfg: &Config, out: &mut Problems) {
    for (i, iface) in cfg.interface.iter().enumerate() {
        let key = format!("{}.address", interface_key(i, iface));
        for net in &iface.address {
            if let IpNet::V4(v4) = net {
                let edge = if v4.prefix_len() > 30 {
                    None
                } else if v4.addr() == v4.network() {
                    Some("network")
                } else if v4.addr() == v4.broadcast() {
                    Some("broadcast")
                } else {
                    None
                };
                if let Some(which) = edge {
                    out.error(
                        &key,
                        limit::UNICAST,
                        format!(
                            "{} is the {which} address of its subnet {}; an interface needs a \
                             unicast address",
                            v4.addr(),
                            v4.trunc()
                        ),
                    );
                }
            }
            let earlier = cfg.interface[..i]
                .iter()
                .enumerate()
                .flat_map(|(e, other)| other.address.iter().map(move |n| (e, other, n)));
            for (e, other, theirs) in earlier {
                if overlap(net, theirs) {
                    out.error(
                        &key,
                        limit::SUBNETS_APART,
                        format!(
                            "{net} overlaps {theirs} of {}; each interface needs subnets of \
                             its own",
                            interface_key(e, other)
                        ),
                    );
                }
            }
        }
    }
}

/// Whether two subnets (of one family) share an address.
fn overlap(a: &IpNet, b: &IpNet) -> bool {
    let (a, b) = (a.trunc(), b.trunc());
    a.contains(&b.network()) || b.contains(&a.network())
}

/// A route's IPv4 destination is written as its network (the kernel refuses one with host bits; an
/// IPv6 one it cuts to its prefix, as the data plane does), its next hop is of its family, unicast,
/// and neither the appliance's own address nor a frontend's (no other host would answer for it, and
/// every backend behind it would stay unresolved). That the next hop is on the interface's subnet
/// is `dataplane::interfaces`' check.
pub(super) fn routes(cfg: &Config, out: &mut Problems) {
    let frontends: Vec<(IpAddr, &str)> = cfg
        .load_balancer
        .iter()
        .flat_map(|lb| lb.frontend.iter().map(|fe| (fe.address, fe.name.as_str())))
        .collect();
    // Each destination network once over every interface: the data plane follows the first
    // route to it, while each `ip route replace` on the kernel twins replaces the one before,
    // so the twins (and the probes through them) would keep the last.
    let mut seen: Vec<(IpNet, String)> = Vec::new();
    for (i, iface) in cfg.interface.iter().enumerate() {
        for route in &iface.routes {
            let key = format!("{}.routes[{}]", interface_key(i, iface), route.to);
            match seen.iter().find(|(to, _)| *to == route.to.trunc()) {
                Some((_, first)) => out.error(
                    format!("{key}.to"),
                    limit::ROUTES,
                    format!(
                        "a second route to {}, after {first}; the data plane would follow the \
                         first and the kernel twins (and the probes through them) the last: \
                         one route a network",
                        route.to.trunc()
                    ),
                ),
                None => seen.push((route.to.trunc(), key.clone())),
            }
            // IPv6 routes are cut to their prefix by the kernel itself.
            if route.to.addr().is_ipv4() && route.to != route.to.trunc() {
                out.error(
                    format!("{key}.to"),
                    limit::ROUTES,
                    format!(
                        "{} has bits set beyond its prefix length; write the network, {}",
                        route.to,
                        route.to.trunc()
                    ),
                );
            }
            let via_key = format!("{key}.via");
            if route.to.addr().is_ipv4() != route.via.is_ipv4() {
                out.error(
                    &via_key,
                    limit::ROUTES,
                    format!(
                        "next hop {} is not of the family of {}; a route's next hop is an \
                         address of its destination's family",
                        route.via, route.to
                    ),
                );
                continue;
            }
            unicast(&via_key, route.via, "next hop", out);
            unicast_on_its_subnet(&via_key, route.via, "next hop", cfg, out);
            not_own_address(&via_key, route.via, "next hop", cfg, out);
            if let Some((_, name)) = frontends.iter().find(|(a, _)| *a == route.via) {
                out.error(
                    &via_key,
                    limit::ROUTES,
                    format!(
                        "next hop {} is the address of frontend `{name}`, which only the \
                         appliance answers for; a next hop is a router on the segment",
                        route.via
                    ),
                );
            }
        }
    }
}
