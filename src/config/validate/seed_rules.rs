//! The seed's rules on which rules, frontends and load balancers may be combined
//! (DESIGN §7, rules 1-6), one function each, named `rule<N>_…`; every message ends in
//! `[seed rule N]` so `haports check` names the rule broken.

use super::{lb_key, rule_key, Problems};
use crate::config::model::{Config, RuleProtocol};

/// Runs every seed rule over `cfg`.
pub(super) fn check(cfg: &Config, out: &mut Problems) {
    // Rules 1 and 3-6 slot in here, in order.
    rule2_all_protocol_iff_all_ports(cfg, out);
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
                    (RuleProtocol::All, _) => out.push(
                        format!("{key}.{name}"),
                        format!(
                            "protocol \"all\" (HA ports) takes every port, so {name} must be 0, \
                             not {port}; for one port use protocol \"tcp\" or \"udp\" \
                             [seed rule 2]"
                        ),
                    ),
                    (protocol, 0) => out.push(
                        format!("{key}.{name}"),
                        format!(
                            "port 0 means every port and needs protocol \"all\" (HA ports); \
                             with protocol \"{protocol}\" give a port from 1 to 65535 \
                             [seed rule 2]"
                        ),
                    ),
                    _ => {}
                }
            }
        }
    }
}
