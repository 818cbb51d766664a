//! Health probes: a port to probe, a path exactly for http, an interval an appliance can
//! keep (not a flood, not so rare that a failure goes unseen for hours), thresholds ≥ 1,
//! and a rule that names the probe (only a rule's probe runs).

use std::collections::HashSet;

use super::{lb_key, limit, probe_key, Problems};
use crate::config::model::{Config, ProbeProtocol, Rule};

/// Shortest probe interval: one probe per backend every 50 ms is already 20 connections a
/// second per backend from the kernel twin.
pub(super) const MIN_INTERVAL_MS: u64 = 50;
/// Longest probe interval: one hour.
pub(super) const MAX_INTERVAL_MS: u64 = 3_600_000;

pub(super) fn check(cfg: &Config, out: &mut Problems) {
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let lb_key = lb_key(l, lb);
        for (p, probe) in lb.probe.iter().enumerate() {
            let key = probe_key(&lb_key, p, probe);
            // A probe without a name is reported as such (seed rule 7).
            let named = |r: &Rule| r.probe.as_deref() == Some(probe.name.as_str());
            if !probe.name.is_empty() && !lb.rule.iter().any(named) {
                out.warning(
                    &key,
                    limit::PROBE_USED,
                    format!(
                        "no rule of {lb_key} names this probe, so it never runs and marks no \
                         backend down; name it in a rule (probe = \"{}\") or remove it",
                        probe.name
                    ),
                );
            }
            if probe.port == 0 {
                out.error(
                    format!("{key}.port"),
                    limit::PROBE_PORT,
                    "0 is not a port to probe; give a port from 1 to 65535",
                );
            }
            match (probe.protocol, &probe.path) {
                (ProbeProtocol::Http, None) => out.error(
                    format!("{key}.path"),
                    limit::HTTP_PROBE_PATH,
                    "an http probe needs a path to GET, e.g. \"/\"",
                ),
                (ProbeProtocol::Http, Some(path)) if !path.starts_with('/') => out.error(
                    format!("{key}.path"),
                    limit::HTTP_PROBE_PATH,
                    format!("`{path}` must start with \"/\", e.g. \"/{path}\""),
                ),
                // It goes into the request line as written: a space or a line break would
                // make another request than the one meant (and a CR LF, other headers), and
                // a strict server answers 400 to other characters a target may not carry.
                (ProbeProtocol::Http, Some(path)) if not_in_a_target(path).is_some() => {
                    let bad = not_in_a_target(path).unwrap_or_default();
                    out.error(
                        format!("{key}.path"),
                        limit::HTTP_PROBE_PATH,
                        format!(
                            "`{}` holds {bad}, which a request target cannot carry (RFC 3986: \
                             letters, digits, -._~!$&'()*+,;=:@/? and %HH escapes); \
                             percent-encode it (a space is %20)",
                            path.escape_debug()
                        ),
                    )
                }
                (ProbeProtocol::Tcp, Some(path)) => out.warning(
                    format!("{key}.path"),
                    limit::PATH_IS_FOR_HTTP,
                    format!(
                        "a tcp probe only connects, so path `{path}` has no effect; remove it, \
                         or use protocol \"http\" to GET it"
                    ),
                ),
                _ => {}
            }
            let ms = probe.interval_ms;
            if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) {
                let why = if ms < MIN_INTERVAL_MS {
                    "too short: probes that often load the backends"
                } else {
                    "too long: a failed backend would go unnoticed for hours"
                };
                out.error(
                    format!("{key}.interval_ms"),
                    limit::PROBE_INTERVAL,
                    format!(
                        "{ms} ms is {why}; give {MIN_INTERVAL_MS} to {MAX_INTERVAL_MS} \
                         (50 ms to 1 h)"
                    ),
                );
            }
            for (name, value) in [
                ("unhealthy_threshold", probe.unhealthy_threshold),
                ("healthy_threshold", probe.healthy_threshold),
            ] {
                if value == 0 {
                    out.error(
                        format!("{key}.{name}"),
                        limit::PROBE_THRESHOLDS,
                        "must be at least 1 (consecutive probe results before a backend's \
                         state changes)",
                    );
                }
            }
        }
    }
}

/// Packets a probe's backend sends back to the kernel twin, about: its SYN-ACK and FIN (and
/// an ACK) for a tcp probe; and for an http one its answer and the ACK of the request.
const ANSWER_PACKETS_TCP: u64 = 3;
const ANSWER_PACKETS_HTTP: u64 = 5;

/// The probes' answers come to the kernel twins under a budget of `dataplane.kernel_pps` of
/// their own (the backend side's, which their gateways' ARP and ND answers share): more than
/// half of it for them alone, and a burst of answers is dropped (`kernel_limit`) and healthy
/// backends go down for it.
pub(super) fn within_kernel_rate(cfg: &Config, out: &mut Problems) {
    let mut targets = HashSet::new();
    for lb in &cfg.load_balancer {
        for rule in &lb.rule {
            let probe = lb.probe_of(rule);
            let pool = lb.pool_of(rule);
            let (Some(probe), Some(pool)) = (probe, pool) else {
                continue;
            };
            for b in &pool.backends {
                // A tcp probe's path (warned of) makes no other target.
                let path = (probe.protocol == ProbeProtocol::Http).then_some(&probe.path);
                let service = (b.address, probe.protocol, probe.port, path);
                targets.insert((service, probe.interval_ms.max(1)));
            }
        }
    }
    // In thousandths of a packet a second: a probe every 5 s brings back less than one.
    let milli: u64 = (targets.iter())
        .map(|((_, protocol, ..), interval_ms)| {
            let packets = match protocol {
                ProbeProtocol::Tcp => ANSWER_PACKETS_TCP,
                ProbeProtocol::Http => ANSWER_PACKETS_HTTP,
            };
            packets * 1_000_000 / interval_ms
        })
        .sum();
    let per_second = milli.div_ceil(1000);
    let rate = u64::from(cfg.dataplane.kernel_pps);
    if rate > 0 && milli > rate * 500 {
        out.warning(
            "dataplane.kernel_pps",
            limit::PROBES_WITHIN_KERNEL_RATE,
            format!(
                "{} probe targets bring back about {per_second} packets a second, more than \
                 half of the kernel_pps ({rate}) the backends' side has, their gateways' ARP \
                 and ND answers included: answers over it are dropped (kernel_limit) and \
                 backends go down for it; raise kernel_pps or lengthen the probes' interval_ms",
                targets.len()
            ),
        );
    }
}

/// What in an http probe's path an origin-form request target (RFC 9112 §3.2.1: an absolute
/// path and a query, RFC 3986) cannot carry as it is, said for a message: the first such
/// character, or a `%` without two hex digits behind it; None where it can.
fn not_in_a_target(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    for (i, c) in path.char_indices() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' => {}
            '-' | '.' | '_' | '~' | '!' | '$' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | ';'
            | '=' | ':' | '@' | '/' | '?' => {}
            '%' => {
                let hex = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return Some("a `%` without two hex digits behind it".to_owned());
                }
            }
            c => return Some(format!("`{}`", c.escape_debug())),
        }
    }
    None
}
