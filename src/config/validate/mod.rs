//! Validation: the meaning of a parsed [`Config`], checked in one pure pass that reports
//! every problem, not the first.
//!
//! Each check is one function over the whole config that pushes [`Problem`]s; a problem's
//! key names the object by its name (`load_balancer[ilb].rule[ha].backend_pool`), so an
//! operator can find it without counting tables. The seed's rules (DESIGN §7) each get a
//! function named `rule<N>_…` whose messages end in `[seed rule N]`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use super::model::{
    Backend, BackendPool, Config, Frontend, Interface, LoadBalancer, Probe, ProbeProtocol, Rule,
};
use crate::wire::MacAddr;

mod seed_rules;

/// One thing wrong with a config: where (`key`) and what, and what to do where it helps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path with objects named, e.g. `load_balancer[ilb].rule[ha].backend_pool`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl Config {
    /// `Ok` when [`validate`] finds nothing, else every problem.
    pub fn check(&self) -> Result<(), Vec<Problem>> {
        let problems = validate(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Every problem of `cfg`, in config order within each check.
pub fn validate(cfg: &Config) -> Vec<Problem> {
    let mut out = Problems::default();
    dataplane_sizes(cfg, &mut out);
    maglev_table_holds_every_pool(cfg, &mut out);
    interfaces(cfg, &mut out);
    load_balancer_names(cfg, &mut out);
    frontend_addresses(cfg, &mut out);
    backend_pools(cfg, &mut out);
    backends_reachable(cfg, &mut out);
    probes(cfg, &mut out);
    rule_references(cfg, &mut out);
    rule_timeouts(cfg, &mut out);
    seed_rules::check(cfg, &mut out);
    out.0
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

// ---- keys ----------------------------------------------------------------------------

/// `[name]`, or `[index]` for an unnamed object.
fn label(name: &str, index: usize) -> String {
    if name.is_empty() {
        format!("[{index}]")
    } else {
        format!("[{name}]")
    }
}

fn interface_key(i: usize, iface: &Interface) -> String {
    format!("interface{}", label(&iface.name, i))
}

fn lb_key(i: usize, lb: &LoadBalancer) -> String {
    format!("load_balancer{}", label(&lb.name, i))
}

fn frontend_key(lb: &str, i: usize, fe: &Frontend) -> String {
    format!("{lb}.frontend{}", label(&fe.name, i))
}

fn pool_key(lb: &str, i: usize, pool: &BackendPool) -> String {
    format!("{lb}.backend_pool{}", label(&pool.name, i))
}

fn backend_key(pool: &str, backend: &Backend) -> String {
    format!("{pool}.backends[{}]", backend.address)
}

fn probe_key(lb: &str, i: usize, probe: &Probe) -> String {
    format!("{lb}.probe{}", label(&probe.name, i))
}

fn rule_key(lb: &str, i: usize, rule: &Rule) -> String {
    format!("{lb}.rule{}", label(&rule.name, i))
}

/// Every pool with its key, across load balancers.
fn pools(cfg: &Config) -> impl Iterator<Item = (String, &BackendPool)> {
    cfg.load_balancer.iter().enumerate().flat_map(|(l, lb)| {
        let lb_key = lb_key(l, lb);
        lb.backend_pool
            .iter()
            .enumerate()
            .map(move |(p, pool)| (pool_key(&lb_key, p, pool), pool))
    })
}

// ---- shared checks -------------------------------------------------------------------

/// Names must be present and unique among their siblings (`what` is the table name).
fn unique_names<'a>(
    parent: &str,
    what: &str,
    names: impl Iterator<Item = &'a str>,
    out: &mut Problems,
) {
    let prefix = if parent.is_empty() {
        what.to_owned()
    } else {
        format!("{parent}.{what}")
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in names.enumerate() {
        if name.is_empty() {
            out.push(format!("{prefix}[{i}].name"), "must not be empty");
            continue;
        }
        let count = seen.entry(name).or_insert(0);
        *count += 1;
        if *count == 2 {
            out.push(
                format!("{prefix}[{name}]"),
                format!("the name `{name}` is used by more than one {what}; names must be unique"),
            );
        }
    }
}

/// Why `addr` cannot be a host's own address, if it cannot.
fn not_unicast(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(a) if a.is_loopback() => Some("a loopback address"),
        IpAddr::V4(a) if a.is_broadcast() => Some("the broadcast address"),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(a) if a.is_loopback() => Some("the loopback address"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address"),
        _ => None,
    }
}

fn unicast(key: &str, addr: IpAddr, role: &str, out: &mut Problems) {
    if let Some(why) = not_unicast(addr) {
        out.push(
            key,
            format!("{addr} is {why}; a {role} needs a unicast address"),
        );
    }
}

fn unicast_mac(key: String, mac: Option<MacAddr>, out: &mut Problems) {
    if let Some(mac) = mac {
        if !mac.is_unicast() {
            out.push(
                key,
                format!("{mac} is not a unicast MAC address (group bit set, or all zero)"),
            );
        }
    }
}

/// A frontend or backend must not take the appliance's own address: traffic to it goes to
/// the interface's kernel twin.
fn not_own_address(key: &str, addr: IpAddr, cfg: &Config, out: &mut Problems) {
    for (i, iface) in cfg.interface.iter().enumerate() {
        if iface.address.iter().any(|net| net.addr() == addr) {
            out.push(
                key,
                format!(
                    "{addr} is the own address of {}; use another address",
                    interface_key(i, iface)
                ),
            );
        }
    }
}

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n & 1 == 0 {
        return n == 2;
    }
    let n = u64::from(n);
    (3..)
        .step_by(2)
        .take_while(|d| d * d <= n)
        .all(|d| n % d != 0)
}

// ---- checks --------------------------------------------------------------------------

fn dataplane_sizes(cfg: &Config, out: &mut Problems) {
    let dp = &cfg.dataplane;
    if dp.workers == 0 {
        out.push(
            "dataplane.workers",
            "must be at least 1 (one worker lcore per RX/TX queue pair)",
        );
    }
    if !is_prime(dp.maglev_table_size) {
        out.push(
            "dataplane.maglev_table_size",
            format!(
                "{} is not prime; Maglev needs a prime table size (e.g. 65537)",
                dp.maglev_table_size
            ),
        );
    }
    if dp.flow_table_capacity == 0 {
        out.push(
            "dataplane.flow_table_capacity",
            "must be at least 1 (flow-table entries per worker)",
        );
    }
}

fn maglev_table_holds_every_pool(cfg: &Config, out: &mut Problems) {
    let size = cfg.dataplane.maglev_table_size;
    for (key, pool) in pools(cfg) {
        let n = pool.backends.len();
        if n >= size as usize {
            out.push(
                "dataplane.maglev_table_size",
                format!("{size} must be larger than the {n} backends of {key}"),
            );
        }
    }
}

fn interfaces(cfg: &Config, out: &mut Problems) {
    if cfg.interface.is_empty() {
        out.push(
            "interface",
            "no [[interface]]: the appliance needs at least one DPDK port",
        );
    }
    unique_names(
        "",
        "interface",
        cfg.interface.iter().map(|i| i.name.as_str()),
        out,
    );
    let mut ports: HashMap<u16, String> = HashMap::new();
    for (i, iface) in cfg.interface.iter().enumerate() {
        let key = interface_key(i, iface);
        if let Some(first) = ports.get(&iface.port) {
            out.push(
                format!("{key}.port"),
                format!("DPDK port {} is already used by {first}", iface.port),
            );
        } else {
            ports.insert(iface.port, key.clone());
        }
        unicast_mac(format!("{key}.mac"), iface.mac, out);
        if iface.address.is_empty() {
            out.push(
                format!("{key}.address"),
                "needs at least one address with its prefix length, e.g. 10.0.0.2/24",
            );
        }
        for net in &iface.address {
            unicast(&format!("{key}.address"), net.addr(), "interface", out);
        }
        for route in &iface.routes {
            if !iface.address.iter().any(|net| net.contains(&route.via)) {
                out.push(
                    format!("{key}.routes[{}].via", route.to),
                    format!(
                        "next hop {} is not on a subnet of this interface; it must be on-link",
                        route.via
                    ),
                );
            }
        }
    }
}

fn load_balancer_names(cfg: &Config, out: &mut Problems) {
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

fn frontend_addresses(cfg: &Config, out: &mut Problems) {
    let mut seen: HashMap<IpAddr, String> = HashMap::new();
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let lb_key = lb_key(l, lb);
        for (f, fe) in lb.frontend.iter().enumerate() {
            let key = format!("{}.address", frontend_key(&lb_key, f, fe));
            unicast(&key, fe.address, "frontend", out);
            not_own_address(&key, fe.address, cfg, out);
            if let Some(first) = seen.get(&fe.address) {
                out.push(
                    &key,
                    format!("{} is already the address of {first}", fe.address),
                );
            } else {
                seen.insert(fe.address, frontend_key(&lb_key, f, fe));
            }
        }
    }
}

fn backend_pools(cfg: &Config, out: &mut Problems) {
    for (key, pool) in pools(cfg) {
        if pool.backends.is_empty() {
            out.push(
                format!("{key}.backends"),
                "the pool has no backends; list at least one",
            );
        }
        let mut addresses = HashSet::new();
        let mut instances = HashSet::new();
        for backend in &pool.backends {
            let bkey = backend_key(&key, backend);
            let akey = format!("{bkey}.address");
            unicast(&akey, backend.address, "backend", out);
            not_own_address(&akey, backend.address, cfg, out);
            unicast_mac(format!("{bkey}.mac"), backend.mac, out);
            if !addresses.insert(backend.address) {
                out.push(
                    &akey,
                    format!("{} is listed more than once in this pool", backend.address),
                );
            }
            let instance = backend.instance();
            if !instances.insert(instance.clone()) {
                out.push(
                    format!("{bkey}.instance"),
                    format!(
                        "instance `{instance}` is named by more than one backend of this pool; \
                         Maglev needs distinct instances"
                    ),
                );
            }
        }
    }
}

fn backends_reachable(cfg: &Config, out: &mut Problems) {
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
        if pool.encap.is_some() {
            continue;
        }
        for backend in &pool.backends {
            let addr = backend.address;
            if !on_link(&addr) && !routed(&addr) {
                out.push(
                    backend_key(&key, backend),
                    format!(
                        "backend {addr} is on no interface's subnet and no route leads to it; \
                         add a route (interface.routes) or fix the address"
                    ),
                );
            }
        }
    }
}

fn probes(cfg: &Config, out: &mut Problems) {
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let lb_key = lb_key(l, lb);
        for (p, probe) in lb.probe.iter().enumerate() {
            let key = probe_key(&lb_key, p, probe);
            if probe.port == 0 {
                out.push(format!("{key}.port"), "must be a port from 1 to 65535");
            }
            if probe.protocol == ProbeProtocol::Http {
                match &probe.path {
                    None => out.push(
                        format!("{key}.path"),
                        "an http probe needs a path to GET, e.g. \"/\"",
                    ),
                    Some(path) if !path.starts_with('/') => out.push(
                        format!("{key}.path"),
                        format!("`{path}` must start with \"/\""),
                    ),
                    Some(_) => {}
                }
            }
            if probe.interval_ms < 10 {
                out.push(
                    format!("{key}.interval_ms"),
                    format!("{} is too short; at least 10", probe.interval_ms),
                );
            }
            for (name, value) in [
                ("unhealthy_threshold", probe.unhealthy_threshold),
                ("healthy_threshold", probe.healthy_threshold),
            ] {
                if value == 0 {
                    out.push(format!("{key}.{name}"), "must be at least 1");
                }
            }
        }
    }
}

/// A rule's frontend, pool and probe are names within the same load balancer.
fn rule_references(cfg: &Config, out: &mut Problems) {
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let lb_key = lb_key(l, lb);
        for (r, rule) in lb.rule.iter().enumerate() {
            let key = rule_key(&lb_key, r, rule);
            if !lb.frontend.iter().any(|fe| fe.name == rule.frontend) {
                out.push(
                    format!("{key}.frontend"),
                    format!("no frontend named `{}` in {lb_key}", rule.frontend),
                );
            }
            if !lb
                .backend_pool
                .iter()
                .any(|pool| pool.name == rule.backend_pool)
            {
                out.push(
                    format!("{key}.backend_pool"),
                    format!("no backend_pool named `{}` in {lb_key}", rule.backend_pool),
                );
            }
            if let Some(probe) = &rule.probe {
                if !lb.probe.iter().any(|p| &p.name == probe) {
                    out.push(
                        format!("{key}.probe"),
                        format!("no probe named `{probe}` in {lb_key}"),
                    );
                }
            }
        }
    }
}

fn rule_timeouts(cfg: &Config, out: &mut Problems) {
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let lb_key = lb_key(l, lb);
        for (r, rule) in lb.rule.iter().enumerate() {
            if rule.idle_timeout_s == 0 {
                out.push(
                    format!("{}.idle_timeout_s", rule_key(&lb_key, r, rule)),
                    "must be at least 1 second",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
