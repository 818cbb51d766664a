//! Names and references (DESIGN §7 rule 7): names unique among their siblings, and a rule's
//! frontend, pool and probe named in its own load balancer.

use super::{lb_key, rule_key, unique_names, Problems, SEED_RULE_7};
use crate::config::model::Config;

pub(super) fn unique(cfg: &Config, out: &mut Problems) {
    unique_names(
        "",
        "load_balancer",
        cfg.load_balancer.iter().map(|lb| lb.name.as_str()),
        out,
    );
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let key = lb_key(l, lb);
        unique_names(
            &key,
            "frontend",
            lb.frontend.iter().map(|x| x.name.as_str()),
            out,
        );
        let pools = lb.backend_pool.iter().map(|x| x.name.as_str());
        unique_names(&key, "backend_pool", pools, out);
        unique_names(&key, "probe", lb.probe.iter().map(|x| x.name.as_str()), out);
        unique_names(&key, "rule", lb.rule.iter().map(|x| x.name.as_str()), out);
    }
}

/// A rule's frontend, pool and probe are names within the same load balancer.
pub(super) fn rule_references(cfg: &Config, out: &mut Problems) {
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let lb_key = lb_key(l, lb);
        let known = |names: Vec<&str>| {
            if names.is_empty() {
                "it has none".to_owned()
            } else {
                format!("it has `{}`", names.join("`, `"))
            }
        };
        for (r, rule) in lb.rule.iter().enumerate() {
            let key = rule_key(&lb_key, r, rule);
            if !lb.frontend.iter().any(|fe| fe.name == rule.frontend) {
                let names = lb.frontend.iter().map(|x| x.name.as_str()).collect();
                out.error(
                    format!("{key}.frontend"),
                    SEED_RULE_7,
                    format!(
                        "no frontend named `{}` in {lb_key} ({}); a rule names a frontend of \
                         its own load balancer",
                        rule.frontend,
                        known(names)
                    ),
                );
            }
            if !lb
                .backend_pool
                .iter()
                .any(|pool| pool.name == rule.backend_pool)
            {
                let names = lb.backend_pool.iter().map(|x| x.name.as_str()).collect();
                out.error(
                    format!("{key}.backend_pool"),
                    SEED_RULE_7,
                    format!(
                        "no backend_pool named `{}` in {lb_key} ({}); a rule names a pool of \
                         its own load balancer",
                        rule.backend_pool,
                        known(names)
                    ),
                );
            }
            if let Some(probe) = &rule.probe {
                if !lb.probe.iter().any(|p| &p.name == probe) {
                    let names = lb.probe.iter().map(|x| x.name.as_str()).collect();
                    out.error(
                        format!("{key}.probe"),
                        SEED_RULE_7,
                        format!(
                            "no probe named `{probe}` in {lb_key} ({}); a rule names a probe \
                             of its own load balancer, or none",
                            known(names)
                        ),
                    );
                }
            }
        }
    }
}
