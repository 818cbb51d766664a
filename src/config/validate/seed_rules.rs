//! The seed's rules on which rules, frontends and load balancers may be combined
//! (DESIGN §7, rules 1-6, from the seed's "Supported configurations" and "Limitations"),
//! one function each, named `rule<N>_…`; every message ends in `[seed rule N]`.
//!
//! One situation is reported once, by the rule that speaks of it most precisely, and tagged
//! with every rule it breaks (`[seed rules 3 and 6]`):
//! - several HA-ports rules on one load balancer: rule 5 (with 4 when one of them floats);
//! - a non-floating HA-ports rule beside other rules of its load balancer: rule 3 (with 6
//!   when they share its frontend and backends);
//! - an internal load balancer beside a non-floating HA-ports rule's backends: rule 3 (with
//!   4 when it holds a floating HA-ports rule on them);
//! - a floating HA-ports rule and a non-floating rule on its frontend and backends: rule 6;
//! - floating HA-ports rules of two internal load balancers on shared backends: rule 5.
//!
//! HA-ports rules of a public load balancer break rule 1 and take part in nothing else.
//! "Backends shared" means the same address or the same instance (the seed speaks of
//! backend instances; DESIGN §4's `instance` names one appliance across its addresses),
//! except in rule 6, which speaks of backend ipconfigurations: there, the same address (two
//! NICs of one appliance are two ipconfigurations).

use super::{describe_shared, lb_key, rule_key, rules, shared_backend, Broken, Problems, RuleView};
use crate::config::model::{Backend, Config, LbKind, RuleProtocol};

/// Runs every seed rule over `cfg`, in order.
pub(super) fn check(cfg: &Config, out: &mut Problems) {
    rule1_ha_ports_only_on_internal(cfg, out);
    rule2_all_protocol_iff_all_ports(cfg, out);
    let views = rules(cfg);
    let internal_ha: Vec<&RuleView> = views
        .iter()
        .filter(|v| v.rule.is_ha_ports() && cfg.load_balancer[v.lb].kind == LbKind::Internal)
        .collect();
    rule3_non_floating_ha_ports_alone_on_its_load_balancer(cfg, &views, &internal_ha, out);
    rule3_no_other_internal_load_balancer_on_its_backends(cfg, &internal_ha, out);
    rule3_4_one_public_load_balancer_on_the_backends(cfg, &internal_ha, out);
    rule5_several_ha_ports_frontends_all_floating(&internal_ha, out);
    rule5_one_internal_load_balancer_of_ha_ports_on_the_backends(cfg, &internal_ha, out);
    rule6_ha_ports_and_other_rule_on_one_frontend_both_floating(&views, &internal_ha, out);
}

/// Rule 1: HA-ports rules only on an internal load balancer.
fn rule1_ha_ports_only_on_internal(cfg: &Config, out: &mut Problems) {
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        if lb.kind != LbKind::Public {
            continue;
        }
        let lb_key = lb_key(l, lb);
        for (r, rule) in lb.rule.iter().enumerate() {
            if rule.is_ha_ports() {
                out.error(
                    rule_key(&lb_key, r, rule),
                    Broken::Seed(&[1]),
                    format!(
                        "HA ports (protocol \"all\", ports 0) are available only on an internal \
                         load balancer, and {lb_key} is public; put the rule on a \
                         kind = \"internal\" load balancer, or give it protocol \"tcp\" or \
                         \"udp\" and ports"
                    ),
                );
            }
        }
    }
}

/// Rule 2: `protocol = "all"` only with both ports 0, and port 0 only with protocol all.
fn rule2_all_protocol_iff_all_ports(cfg: &Config, out: &mut Problems) {
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let lb_key = lb_key(l, lb);
        for (r, rule) in lb.rule.iter().enumerate() {
            let key = rule_key(&lb_key, r, rule);
            for (name, port) in [
                ("frontend_port", rule.frontend_port),
                ("backend_port", rule.backend_port),
            ] {
                match (rule.protocol, port) {
                    (RuleProtocol::All, 0) => {}
                    (RuleProtocol::All, _) => out.error(
                        format!("{key}.{name}"),
                        Broken::Seed(&[2]),
                        format!(
                            "protocol \"all\" (HA ports) takes every port, so {name} must be 0, \
                             not {port}; for one port use protocol \"tcp\" or \"udp\""
                        ),
                    ),
                    (protocol, 0) => out.error(
                        format!("{key}.{name}"),
                        Broken::Seed(&[2]),
                        format!(
                            "port 0 means every port and needs protocol \"all\" (HA ports); \
                             with protocol \"{protocol}\" give a port from 1 to 65535"
                        ),
                    ),
                    _ => {}
                }
            }
        }
    }
}

/// Whether two rules' pools share a backend address (rule 6's "backend ipconfiguration": one
/// address, not the whole instance), and which.
fn shared_address<'a>(a: &RuleView<'a>, b: &RuleView<'a>) -> Option<String> {
    let (a, b) = (a.pool?, b.pool?);
    let same = |x: &&Backend| b.backends.iter().any(|y| y.address == x.address);
    a.backends
        .iter()
        .find(same)
        .map(|x| format!("backend {}", x.address))
}

/// Rule 3, first half: a non-floating HA-ports rule is the only rule on its load balancer.
/// (Other HA-ports rules beside it are rule 5's.)
fn rule3_non_floating_ha_ports_alone_on_its_load_balancer(
    cfg: &Config,
    views: &[RuleView],
    internal_ha: &[&RuleView],
    out: &mut Problems,
) {
    for ha in internal_ha.iter().filter(|v| !v.rule.floating_ip) {
        let lb_key = lb_key(ha.lb, &cfg.load_balancer[ha.lb]);
        let others = views
            .iter()
            .filter(|v| v.lb == ha.lb && !v.rule.is_ha_ports());
        for other in others {
            let same_frontend = other.rule.frontend == ha.rule.frontend;
            match shared_address(ha, other).filter(|_| same_frontend) {
                Some(backend) => out.error(
                    ha.key.clone(),
                    Broken::Seed(&[3, 6]),
                    format!(
                        "a non-floating HA-ports rule must be the only rule on its load \
                         balancer, but rule `{}` is on {lb_key} too, on the same frontend \
                         `{}` and {backend}, where both rules would need floating IP; set \
                         floating_ip = true on both",
                        other.rule.name, ha.rule.frontend
                    ),
                ),
                None => out.error(
                    ha.key.clone(),
                    Broken::Seed(&[3]),
                    format!(
                        "a non-floating HA-ports rule must be the only rule on its load \
                         balancer, but rule `{}` is on {lb_key} too; set floating_ip = true on \
                         `{}`, or move `{}` to a public load balancer",
                        other.rule.name, ha.rule.name, other.rule.name
                    ),
                ),
            }
        }
    }
}

/// Rule 3, second half: no other internal load balancer on a non-floating HA-ports rule's
/// backends (any pool of it, used by a rule or not).
fn rule3_no_other_internal_load_balancer_on_its_backends(
    cfg: &Config,
    internal_ha: &[&RuleView],
    out: &mut Problems,
) {
    for ha in internal_ha.iter().filter(|v| !v.rule.floating_ip) {
        let Some(ha_pool) = ha.pool else { continue };
        for (l, lb) in cfg.load_balancer.iter().enumerate() {
            if l == ha.lb || lb.kind != LbKind::Internal {
                continue;
            }
            let found = lb
                .backend_pool
                .iter()
                .find_map(|pool| shared_backend(ha_pool, pool).map(|s| (pool, s)));
            let Some((pool, pair)) = found else { continue };
            // A floating HA-ports rule there on these backends: rule 4 forbids this rule
            // on top of it as well.
            let floating_ha_there = internal_ha.iter().any(|v| {
                v.lb == l
                    && v.rule.floating_ip
                    && v.pool.and_then(|p| shared_backend(ha_pool, p)).is_some()
            });
            let broken = if floating_ha_there {
                Broken::Seed(&[3, 4])
            } else {
                Broken::Seed(&[3])
            };
            // Floating, it could stay beside the other's port rules, but not beside an
            // HA-ports rule of the other on these backends (rule 5): then both go on one.
            let ha_there = internal_ha
                .iter()
                .any(|v| v.lb == l && v.pool.and_then(|p| shared_backend(ha_pool, p)).is_some());
            let fix = if ha_there {
                format!(
                    "put `{}` on {} beside its HA-ports rule (HA-ports rules over shared \
                     backends belong to one internal load balancer, each on a frontend of its \
                     own and floating)",
                    ha.rule.name,
                    lb_key(l, lb)
                )
            } else {
                format!("set floating_ip = true on `{}`", ha.rule.name)
            };
            out.error(
                ha.key.clone(),
                broken,
                format!(
                    "a non-floating HA-ports rule allows no other internal load balancer on its \
                     backends, but {}.backend_pool[{}] also has {}{}; {fix}, or give the other \
                     load balancer other backends (a public load balancer may share them)",
                    lb_key(l, lb),
                    pool.name,
                    describe_shared(pair),
                    if floating_ha_there {
                        ", behind a floating HA-ports rule"
                    } else {
                        ""
                    },
                ),
            );
        }
    }
}

/// Rules 3 and 4, and the seed's "an internal load balancer with HA ports and a public load
/// balancer on the same backend instance": one public load balancer at most on the backends
/// of each of an internal load balancer's HA-ports rules (two rules over pools of their own
/// may each have one). Tagged rule 3 when such a rule is non-floating, rule 4 when it floats.
fn rule3_4_one_public_load_balancer_on_the_backends(
    cfg: &Config,
    internal_ha: &[&RuleView],
    out: &mut Problems,
) {
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        // The load balancer's HA-ports rules with more than one public load balancer on
        // their backends, and those public load balancers.
        let mut crowded: Vec<&RuleView> = Vec::new();
        let mut publics: Vec<String> = Vec::new();
        for ha in internal_ha.iter().filter(|v| v.lb == l) {
            let Some(ha_pool) = ha.pool else {
                continue;
            };
            let sharing: Vec<String> = (cfg.load_balancer.iter().enumerate())
                .filter(|(_, public)| public.kind == LbKind::Public)
                .filter_map(|(p, public)| {
                    let pair = (public.backend_pool.iter())
                        .find_map(|pool| shared_backend(ha_pool, pool))?;
                    Some(format!("{} ({})", lb_key(p, public), describe_shared(pair)))
                })
                .collect();
            if sharing.len() >= 2 {
                crowded.push(ha);
                for s in sharing {
                    if !publics.contains(&s) {
                        publics.push(s);
                    }
                }
            }
        }
        if crowded.is_empty() {
            continue;
        }
        let non_floating = crowded.iter().any(|v| !v.rule.floating_ip);
        let floating = crowded.iter().any(|v| v.rule.floating_ip);
        let broken = match (non_floating, floating) {
            (true, false) => Broken::Seed(&[3]),
            (false, true) => Broken::Seed(&[4]),
            _ => Broken::Seed(&[3, 4]),
        };
        let names: Vec<&str> = crowded.iter().map(|v| v.rule.name.as_str()).collect();
        out.error(
            lb_key(l, lb),
            broken,
            format!(
                "only one public load balancer may share the backends of an internal load \
                 balancer's HA-ports rules (`{}`), but {} public load balancers do: {}; keep \
                 one of them on these backends",
                names.join("`, `"),
                publics.len(),
                publics.join(", ")
            ),
        );
    }
}

/// Rule 5: several HA-ports rules on one load balancer each have their own frontend and all
/// have floating IP. A non-floating one beside a floating one also breaks rule 4.
fn rule5_several_ha_ports_frontends_all_floating(internal_ha: &[&RuleView], out: &mut Problems) {
    for (i, ha) in internal_ha.iter().enumerate() {
        let siblings: Vec<&&RuleView> = internal_ha
            .iter()
            .filter(|v| v.lb == ha.lb && !std::ptr::eq(**v, *ha))
            .collect();
        if siblings.is_empty() {
            continue;
        }
        if let Some(first) = internal_ha[..i]
            .iter()
            .find(|v| v.lb == ha.lb && v.rule.frontend == ha.rule.frontend)
        {
            out.error(
                format!("{}.frontend", ha.key),
                Broken::Seed(&[5]),
                format!(
                    "HA-ports rules `{}` and `{}` both take frontend `{}`; several HA-ports \
                     rules on one load balancer need a frontend each",
                    first.rule.name, ha.rule.name, ha.rule.frontend
                ),
            );
        }
        if ha.rule.floating_ip {
            continue;
        }
        let names: Vec<&str> = siblings.iter().map(|v| v.rule.name.as_str()).collect();
        let floating: Vec<&str> = siblings
            .iter()
            .filter(|v| v.rule.floating_ip)
            .map(|v| v.rule.name.as_str())
            .collect();
        let (broken, beside) = if floating.is_empty() {
            (Broken::Seed(&[5]), String::new())
        } else {
            (
                Broken::Seed(&[4, 5]),
                format!(
                    ", and a non-floating HA-ports rule cannot be added beside a floating one \
                     (`{}`)",
                    floating.join("`, `")
                ),
            )
        };
        out.error(
            format!("{}.floating_ip", ha.key),
            broken,
            format!(
                "several HA-ports rules on one load balancer (here also `{}`) all need \
                 floating IP{beside}; set floating_ip = true on `{}`",
                names.join("`, `"),
                ha.rule.name
            ),
        );
    }
}

/// Rule 5's other half: the seed's several HA-ports configurations are frontends of a single
/// internal load balancer ("one public load balancer for the backend resources with a single
/// internal load balancer with HA ports"): floating HA-ports rules of two internal load
/// balancers on shared backends are refused. (Where one of them is non-floating, rule 3
/// reports it.)
fn rule5_one_internal_load_balancer_of_ha_ports_on_the_backends(
    cfg: &Config,
    internal_ha: &[&RuleView],
    out: &mut Problems,
) {
    let floating = || internal_ha.iter().filter(|v| v.rule.floating_ip);
    for (i, ha) in floating().enumerate() {
        let Some(ha_pool) = ha.pool else { continue };
        let earlier = floating().take(i).find_map(|other| {
            let shared = shared_backend(other.pool?, ha_pool)?;
            (other.lb != ha.lb).then_some((other, shared))
        });
        let Some((other, pair)) = earlier else {
            continue;
        };
        out.error(
            ha.key.clone(),
            Broken::Seed(&[5]),
            format!(
                "HA-ports rules of two internal load balancers on the same backends: `{}` of {} \
                 and this one share {}; several HA-ports frontends on these backends go on one \
                 internal load balancer (a rule and frontend each, all floating)",
                other.rule.name,
                lb_key(other.lb, &cfg.load_balancer[other.lb]),
                describe_shared(pair)
            ),
        );
    }
}

/// Rule 6: an HA-ports rule and another rule on the same frontend and the same backends only
/// when both have floating IP. (With a non-floating HA-ports rule that is rule 3's report.)
fn rule6_ha_ports_and_other_rule_on_one_frontend_both_floating(
    views: &[RuleView],
    internal_ha: &[&RuleView],
    out: &mut Problems,
) {
    for ha in internal_ha.iter().filter(|v| v.rule.floating_ip) {
        let others = views.iter().filter(|v| {
            v.lb == ha.lb
                && !v.rule.is_ha_ports()
                && !v.rule.floating_ip
                && v.rule.frontend == ha.rule.frontend
        });
        for other in others {
            let Some(backend) = shared_address(ha, other) else {
                continue;
            };
            // Floating IP keeps the port: a translating rule gives that up too.
            let (fp, bp) = (other.rule.frontend_port, other.rule.backend_port);
            let port = if fp != bp {
                format!(" and backend_port = {fp} (floating IP keeps the port)")
            } else {
                String::new()
            };
            out.error(
                format!("{}.floating_ip", other.key),
                Broken::Seed(&[6]),
                format!(
                    "the rule shares frontend `{}` and {backend} with floating HA-ports rule \
                     `{}`; an HA-ports rule and another rule on the same frontend and backends \
                     both need floating IP: set floating_ip = true{port} on `{}`, or give it \
                     other backends",
                    ha.rule.frontend, ha.rule.name, other.rule.name
                ),
            );
        }
    }
}
