//! Rules one by one and in pairs, beyond the seed's: idle timeouts, one rule per frontend
//! port, NAT within one address family, and backend ports that keep the reverse rewrite
//! unambiguous.

use std::collections::HashMap;

use super::{family, lb_key, limit, rule_key, rules, shared_backend, Problems, RuleView};
use crate::config::model::{Config, RuleProtocol, MAX_IDLE_TIMEOUT_S};

pub(super) fn timeouts(cfg: &Config, out: &mut Problems) {
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let lb_key = lb_key(l, lb);
        for (r, rule) in lb.rule.iter().enumerate() {
            let s = rule.idle_timeout_s;
            if !(1..=MAX_IDLE_TIMEOUT_S).contains(&s) {
                out.error(
                    format!("{}.idle_timeout_s", rule_key(&lb_key, r, rule)),
                    limit::IDLE_TIMEOUT,
                    format!(
                        "{s} s is out of range; give 1 to {MAX_IDLE_TIMEOUT_S} seconds (24 h): \
                         how long an idle flow keeps its backend"
                    ),
                );
            }
        }
    }
    // A flow through two frontends of one load balancer (a two-NIC appliance's two sides)
    // has one entry, which each packet's rule gives its own timeout: under another rule's
    // shorter one it may expire, and be moved to another backend, while its own still runs.
    let views = rules(cfg);
    let ha: Vec<&RuleView> = views.iter().filter(|v| v.rule.is_ha_ports()).collect();
    for (i, a) in ha.iter().enumerate() {
        let shorter = ha[..i].iter().find(|b| {
            b.lb == a.lb
                && b.rule.idle_timeout_s != a.rule.idle_timeout_s
                && a.pool
                    .zip(b.pool)
                    .is_some_and(|(p, q)| shared_backend(p, q).is_some())
        });
        if let Some(b) = shorter {
            out.warning(
                format!("{}.idle_timeout_s", a.key),
                limit::SHARED_TIMEOUT,
                format!(
                    "{} s here but {} s on {}, over the same backends: a flow through both \
                     frontends lives as long as its last packet's rule says, so give the \
                     rules one idle_timeout_s",
                    a.rule.idle_timeout_s, b.rule.idle_timeout_s, b.key
                ),
            );
        }
    }
}

/// A tcp or udp rule with real ports (rule 2 reports the others).
fn is_port_rule(view: &RuleView) -> bool {
    let r = view.rule;
    r.protocol != RuleProtocol::All && r.frontend_port != 0 && r.backend_port != 0
}

/// Two rules may not take the same protocol and port of one frontend: a packet would match
/// both. (Two HA-ports rules on one frontend break seed rule 5, reported there.)
pub(super) fn one_rule_per_frontend_port(cfg: &Config, out: &mut Problems) {
    let mut seen: HashMap<(usize, &str, RuleProtocol, u16), &str> = HashMap::new();
    for view in rules(cfg).iter().filter(|v| is_port_rule(v)) {
        let r = view.rule;
        let slot = (view.lb, r.frontend.as_str(), r.protocol, r.frontend_port);
        if let Some(first) = seen.get(&slot) {
            out.error(
                format!("{}.frontend_port", view.key),
                limit::ONE_RULE_PER_PORT,
                format!(
                    "rules `{first}` and `{}` both take {} port {} of frontend `{}`; a \
                     frontend's protocol and port can have one rule only",
                    r.name, r.protocol, r.frontend_port, r.frontend
                ),
            );
        } else {
            seen.insert(slot, &r.name);
        }
    }
}

/// Without floating IP the frontend address is rewritten to the backend's and back, which
/// cannot cross between IPv4 and IPv6.
pub(super) fn nat_keeps_the_address_family(cfg: &Config, out: &mut Problems) {
    for view in rules(cfg) {
        let (Some(fe), Some(pool)) = (view.frontend, view.pool) else {
            continue;
        };
        if view.rule.floating_ip {
            continue;
        }
        let other: Vec<_> = pool
            .backends
            .iter()
            .filter(|b| b.address.is_ipv4() != fe.address.is_ipv4())
            .collect();
        let Some(first) = other.first() else {
            continue;
        };
        let more = match other.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        out.error(
            view.key,
            limit::NAT_FAMILY,
            format!(
                "without floating IP the rule rewrites frontend `{}` ({}, {}) to its backends, \
                 but backend_pool `{}` has {} backend {}{more}; NAT cannot change the address \
                 family: give the rule a pool of {} backends, or set floating_ip = true",
                fe.name,
                fe.address,
                family(fe.address),
                pool.name,
                family(first.address),
                first.address,
                family(fe.address)
            ),
        );
    }
}

/// A reply from a backend of a non-floating rule is rewritten back to the frontend by its
/// (backend address, protocol, backend port), so two such rules may not send the same
/// backend port to different frontend addresses or ports. With floating IP a backend
/// answers from the frontend address itself and nothing is rewritten back, so the reuse is
/// allowed. (Non-floating HA-ports rules on shared backends break seed rules 3 to 5.)
pub(super) fn backend_port_reuse_needs_floating_ip(cfg: &Config, out: &mut Problems) {
    let views: Vec<RuleView> = rules(cfg)
        .into_iter()
        .filter(|v| is_port_rule(v) && !v.rule.floating_ip)
        .filter(|v| v.frontend.is_some() && v.pool.is_some())
        .collect();
    for (j, later) in views.iter().enumerate() {
        for earlier in &views[..j] {
            let (a, b) = (earlier.rule, later.rule);
            if a.protocol != b.protocol || a.backend_port != b.backend_port {
                continue;
            }
            let (fa, fb) = (earlier.frontend.unwrap(), later.frontend.unwrap());
            if (fa.address, a.frontend_port) == (fb.address, b.frontend_port) {
                continue; // one rule per frontend port reports it
            }
            let shared = later.pool.unwrap().backends.iter().find(|x| {
                earlier
                    .pool
                    .unwrap()
                    .backends
                    .iter()
                    .any(|y| x.address == y.address)
            });
            let Some(backend) = shared else {
                continue;
            };
            let target = |addr, port| match addr {
                std::net::IpAddr::V6(_) => format!("[{addr}]:{port}"),
                std::net::IpAddr::V4(_) => format!("{addr}:{port}"),
            };
            out.error(
                later.key.clone(),
                limit::BACKEND_PORT_REUSE,
                format!(
                    "the rule sends {} to port {} of backend {}, as {} does, from frontend {} \
                     here and {} there, both without floating IP: a reply from that backend \
                     port cannot be rewritten back to the right frontend; use another \
                     backend_port, or set floating_ip = true (the backend then gets the \
                     packet at its frontend port)",
                    b.protocol,
                    b.backend_port,
                    backend.address,
                    earlier.key,
                    target(fb.address, b.frontend_port),
                    target(fa.address, a.frontend_port),
                ),
            );
        }
    }
}

/// A floating rule delivers the packet as it came (only its MAC header changes), so the
/// backend gets it at the frontend port: a different `backend_port` would be ignored.
pub(super) fn floating_keeps_the_port(cfg: &Config, out: &mut Problems) {
    for view in rules(cfg).iter().filter(|v| is_port_rule(v)) {
        let r = view.rule;
        if r.floating_ip && r.backend_port != r.frontend_port {
            out.error(
                format!("{}.backend_port", view.key),
                limit::FLOATING_PORT,
                format!(
                    "with floating IP the packet reaches the backend unchanged, at port {}, so \
                     backend_port {} cannot apply: set backend_port = {}, or floating_ip = \
                     false to translate the port",
                    r.frontend_port, r.backend_port, r.frontend_port
                ),
            );
        }
    }
}

/// With several workers, or several instances (`[announce]`), a backend's reply under NAT
/// may reach a worker or an instance that did not see its flow, and that maps it back to a
/// frontend by the rules alone (backend address, protocol, backend port). They cannot tell
/// where a backend serves a non-floating HA-ports rule and a non-floating port rule of
/// another frontend or port: a reply from the port rule's backend port may answer either.
/// One worker of one instance remembers each flow's frontend.
pub(super) fn nat_replies_mapped_on_any_worker(cfg: &Config, out: &mut Problems) {
    let workers = cfg.dataplane.workers;
    let elsewhere = match (workers, &cfg.announce) {
        (_, Some(_)) => "with [announce] (several instances) a reply may reach an instance",
        (2.., None) => "with several workers a reply may reach a worker",
        _ => return,
    };
    let nat: Vec<RuleView> = rules(cfg)
        .into_iter()
        .filter(|v| !v.rule.floating_ip && v.frontend.is_some() && v.pool.is_some())
        .collect();
    let ha_ports = nat.iter().filter(|v| v.rule.is_ha_ports());
    for ha in ha_ports {
        let (ha_fe, ha_pool) = (ha.frontend.unwrap(), ha.pool.unwrap());
        for p in nat.iter().filter(|v| is_port_rule(v)) {
            let (fe, r) = (p.frontend.unwrap(), p.rule);
            // A reply from the backend port restores the same frontend address and port
            // either way.
            if (fe.address, r.frontend_port) == (ha_fe.address, r.backend_port) {
                continue;
            }
            let shared = p
                .pool
                .unwrap()
                .backends
                .iter()
                .find(|x| ha_pool.backends.iter().any(|y| x.address == y.address));
            let Some(backend) = shared else {
                continue;
            };
            out.error(
                p.key.clone(),
                limit::REPLIES_ON_ANY_WORKER,
                format!(
                    "backend {} answers this rule from {} port {} and the HA-ports rule {} from \
                     any port; {elsewhere} that did not see its flow, and the rules cannot \
                     tell which frontend it answers: set floating_ip = true on one of the \
                     rules, give them different backends, or run one worker without \
                     [announce]",
                    backend.address, r.protocol, r.backend_port, ha.key
                ),
            );
        }
    }
}

/// Several instances (`[announce]`) share each frontend, but a NAT backend sends its replies
/// to its gateway, one of them (or wherever its route leads), not to the instance that took
/// the flow: that one carries every reply, its loss breaks every NAT flow, and it restores
/// the frontend by the rules alone. README: scale out with floating (DSR) rules.
pub(super) fn nat_not_scaled_out(cfg: &Config, out: &mut Problems) {
    if cfg.announce.is_none() {
        return;
    }
    for v in rules(cfg).into_iter().filter(|v| !v.rule.floating_ip) {
        out.warning(
            v.key,
            limit::NAT_SCALE_OUT,
            "with [announce], several instances share the frontend, but a NAT backend sends its \
             replies to its gateway, not to the instance that took the flow: that instance \
             carries every reply, and its loss breaks every NAT flow; scale out with \
             floating_ip = true (the backends answer the clients directly)",
        );
    }
}
