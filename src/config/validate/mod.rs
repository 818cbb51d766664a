//! Validation: the meaning of a parsed [`Config`], checked in one pure pass that reports
//! every problem, not the first.
//!
//! Each check is one function over the whole config that pushes [`Problem`]s; a problem's
//! key names the object by its name (`load_balancer[ilb].rule[ha].backend_pool`), so an
//! operator can find it without counting tables, and its message names the other objects
//! involved and ends with the rule or limitation broken, as a tag: `[seed rule N]` for the
//! rules of DESIGN §7 (`seed_rules`, functions named `rule<N>_…`), `[limitation: …]` for the
//! others (the words of the [`limit`] constants). Errors make a config unusable; warnings
//! (a Maglev table too small to balance well, a setting that has no effect) do not.
//!
//! One file per concern: `dataplane` (sizes, interfaces, DPDK ports), `lcores` (EAL lcores
//! for the workers), `names` (names and references), `addresses` (frontends, pools,
//! backends), `encap`, `probes`, `rules` (ports, timeouts, address families, the reverse
//! rewrite), `seed_rules` and `control`.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use super::model::{Backend, BackendPool, Config, Frontend, Interface, LoadBalancer, Probe, Rule};
use crate::wire::MacAddr;

mod addresses;
mod control;
mod dataplane;
mod encap;
mod lcores;
mod names;
mod probes;
mod rules;
mod seed_rules;
mod segments;

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The config cannot work as written: `check` fails and `run` refuses it.
    Error,
    /// The config works, but not as well as it could, or a setting has no effect.
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing wrong with a config: how bad, where (`key`) and what, and what to do where it
/// helps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// Key path with objects named, e.g. `load_balancer[ilb].rule[ha].backend_pool`.
    pub key: String,
    /// What is wrong, in the operator's words; ends with ` [TAG]`.
    pub message: String,
    /// The rule or limitation broken, as the message's last words show it:
    /// `seed rule 3`, `seed rules 3 and 6`, `limitation: one interface per DPDK port`.
    pub tag: String,
}

impl Problem {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `KEY: MESSAGE`, or `warning: KEY: MESSAGE`.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl Config {
    /// `Ok` when [`validate`] finds no error (warnings alone pass), else every problem,
    /// warnings included, in the order `validate` gives them.
    pub fn check(&self) -> Result<(), Vec<Problem>> {
        let problems = validate(self);
        if problems.iter().any(Problem::is_error) {
            Err(problems)
        } else {
            Ok(())
        }
    }

    /// Every problem, errors and warnings, as `haports run … -- EXTRA` sees them: with
    /// `extra_eal_args` appended to `dpdk.eal_args`, so that DPDK ports they create count (a
    /// reload of a process started with such arguments checks with them too).
    pub fn problems_with_eal_args(&self, extra_eal_args: &[String]) -> Vec<Problem> {
        if extra_eal_args.is_empty() {
            return validate(self);
        }
        let mut with = self.clone();
        with.dpdk.eal_args.extend_from_slice(extra_eal_args);
        validate(&with)
    }
}

/// Every problem of `cfg`, errors and warnings, in config order within each check.
pub fn validate(cfg: &Config) -> Vec<Problem> {
    let mut out = Problems::default();
    dataplane::sizes(cfg, &mut out);
    lcores::enough_for_workers(cfg, &mut out);
    dataplane::maglev_table_holds_every_pool(cfg, &mut out);
    dataplane::backend_slots_counted(cfg, &mut out);
    dataplane::interfaces(cfg, &mut out);
    segments::interface_addresses(cfg, &mut out);
    segments::routes(cfg, &mut out);
    dataplane::ports_exist(cfg, &mut out);
    names::unique(cfg, &mut out);
    addresses::frontends(cfg, &mut out);
    addresses::backend_pools(cfg, &mut out);
    addresses::appliance_macs_apart(cfg, &mut out);
    addresses::backends_reachable(cfg, &mut out);
    addresses::dsr_backends_on_link(cfg, &mut out);
    encap::vxlan_pools(cfg, &mut out);
    probes::check(cfg, &mut out);
    probes::within_kernel_rate(cfg, &mut out);
    names::rule_references(cfg, &mut out);
    rules::timeouts(cfg, &mut out);
    rules::one_rule_per_frontend_port(cfg, &mut out);
    rules::nat_keeps_the_address_family(cfg, &mut out);
    rules::backend_port_reuse_needs_floating_ip(cfg, &mut out);
    rules::floating_keeps_the_port(cfg, &mut out);
    rules::nat_replies_mapped_on_any_worker(cfg, &mut out);
    rules::nat_not_scaled_out(cfg, &mut out);
    seed_rules::check(cfg, &mut out);
    control::socket(cfg, &mut out);
    control::announce(cfg, &mut out);
    out.0
}

/// The rule or limitation a problem breaks; it ends the message as `[…]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broken {
    /// Rules of DESIGN §7 (the seed's "Supported configurations" and "Limitations", and
    /// rule 7's names, references and Maglev size); several when one situation breaks more.
    Seed(&'static [u8]),
    /// A limitation of haports beyond §7, in a few words: one of [`limit`]'s constants.
    Limitation(&'static str),
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broken::Seed([n]) => write!(f, "seed rule {n}"),
            Broken::Seed(ns) => {
                let (last, rest) = ns.split_last().expect("at least one seed rule");
                let rest: Vec<String> = rest.iter().map(u8::to_string).collect();
                write!(f, "seed rules {} and {last}", rest.join(", "))
            }
            Broken::Limitation(words) => write!(f, "limitation: {words}"),
        }
    }
}

/// `[seed rule 7]`: names, references, Maglev table size (DESIGN §7 rule 7).
const SEED_RULE_7: Broken = Broken::Seed(&[7]);

/// Limitations beyond DESIGN §7 by their tags' words (`[limitation: WORDS]`); in step with README.
mod limit {
    use super::Broken::{self, Limitation};
    pub(super) const WORKERS: Broken = Limitation("at least one worker");
    pub(super) const LCORES: Broken = Limitation("an lcore per worker, and one more");
    pub(super) const FLOW_TABLE: Broken = Limitation("flow table capacity above 0");
    pub(super) const FLOW_TABLE_MAX: Broken = Limitation("flow table of at most 2^26 flows");
    pub(super) const MAGLEV_MAX: Broken = Limitation("Maglev table of at most 2^22 entries");
    pub(super) const BACKEND_SLOTS: Broken = Limitation("at most 65,536 backend slots");
    pub(super) const MAGLEV_IN_ALL: Broken = Limitation("Maglev tables of at most 2^28 entries");
    pub(super) const MBUFS: Broken = Limitation("enough packet buffers");
    pub(super) const KERNEL_PPS: Broken = Limitation("kernel rate above 0");
    pub(super) const NEIGHBOUR_REACHABLE: Broken =
        Limitation("neighbour reachable time of 1 s to 1 h");
    pub(super) const MAGLEV_BALANCE: Broken = Limitation("Maglev table of 100 × backends");
    pub(super) const INTERFACES: Broken = Limitation("at least one interface");
    pub(super) const AT_MOST_INTERFACES: Broken = Limitation("at most 16 interfaces");
    pub(super) const INTERFACE_NAME: Broken = Limitation("interface name fits its twin's");
    pub(super) const FRONTEND_MAC: Broken =
        Limitation("IPv6 frontends differ in their last 32 bits");
    pub(super) const INTERFACE_ADDRESS: Broken = Limitation("interface needs an address");
    pub(super) const ONE_INTERFACE_PER_PORT: Broken = Limitation("one interface per DPDK port");
    pub(super) const PORT_EXISTS: Broken = Limitation("DPDK port must exist");
    pub(super) const QUEUE_PER_WORKER: Broken =
        Limitation("AF_PACKET and AF_XDP ports fill a queue per worker");
    pub(super) const NEXT_HOP_ON_LINK: Broken = Limitation("next hop on-link");
    pub(super) const ROUTES: Broken = Limitation("routes to networks through a router");
    pub(super) const SUBNETS_APART: Broken = Limitation("interface subnets apart");
    pub(super) const ONE_MAC_PER_BACKEND: Broken = Limitation("one MAC per backend");
    pub(super) const OWN_MACS: Broken = Limitation("the appliance's MACs its own");
    pub(super) const UNICAST: Broken = Limitation("unicast addresses only");
    pub(super) const NOT_OWN_ADDRESS: Broken = Limitation("not the appliance's own address");
    pub(super) const ONE_FRONTEND_PER_ADDRESS: Broken = Limitation("one frontend per address");
    pub(super) const POOL_NOT_EMPTY: Broken = Limitation("pool needs backends");
    pub(super) const DISTINCT_BACKENDS: Broken = Limitation("distinct backends in a pool");
    pub(super) const BACKEND_REACHABLE: Broken = Limitation("backend reachable");
    pub(super) const BACKEND_MAC_ON_LINK: Broken = Limitation("backend mac only on a segment");
    pub(super) const DSR_ON_LINK: Broken = Limitation("DSR backends on-link or VXLAN");
    pub(super) const TRANSIT_ON_LINK: Broken = Limitation("transit backends on-link or VXLAN");
    pub(super) const VXLAN: Broken = Limitation("VXLAN pools: vni, IPv4 backends with a mac, DSR");
    pub(super) const PROBE_PORT: Broken = Limitation("probe port 1 to 65535");
    pub(super) const HTTP_PROBE_PATH: Broken = Limitation("http probe path");
    pub(super) const PATH_IS_FOR_HTTP: Broken = Limitation("path is for http probes");
    pub(super) const PROBE_INTERVAL: Broken = Limitation("probe interval 50 ms to 1 h");
    pub(super) const PROBE_THRESHOLDS: Broken = Limitation("probe thresholds at least 1");
    pub(super) const PROBE_USED: Broken = Limitation("probe named by a rule");
    pub(super) const PROBES_WITHIN_KERNEL_RATE: Broken =
        Limitation("probe answers within kernel_pps");
    pub(super) const IDLE_TIMEOUT: Broken = Limitation("idle timeout 1 s to 24 h");
    pub(super) const SHARED_TIMEOUT: Broken =
        Limitation("HA-ports rules on shared backends time out alike");
    pub(super) const ONE_RULE_PER_PORT: Broken = Limitation("one rule per frontend port");
    pub(super) const NAT_FAMILY: Broken = Limitation("NAT keeps the address family");
    pub(super) const BACKEND_PORT_REUSE: Broken =
        Limitation("backend port reuse needs floating IP");
    pub(super) const FLOATING_PORT: Broken = Limitation("floating IP keeps the port");
    pub(super) const REPLIES_ON_ANY_WORKER: Broken =
        Limitation("NAT replies mapped by the rules on any worker");
    pub(super) const NAT_SCALE_OUT: Broken = Limitation("NAT replies come to one instance");
    pub(super) const LINK_LOCAL: Broken = Limitation("frontends and backends not link-local");
    pub(super) const CONTROL_SOCKET: Broken = Limitation("control socket path absolute");
    pub(super) const METRICS_PORT: Broken = Limitation("metrics on a known port");
    pub(super) const ANNOUNCE_PATHS: Broken = Limitation("announce paths absolute");
    pub(super) const DRAIN: Broken = Limitation("drain time up to 1 h");
    pub(super) const ANNOUNCE_INTERFACE: Broken = Limitation("announce through an interface");
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn error(&mut self, key: impl Into<String>, broken: Broken, message: impl fmt::Display) {
        self.push(Severity::Error, key.into(), broken, message);
    }

    fn warning(&mut self, key: impl Into<String>, broken: Broken, message: impl fmt::Display) {
        self.push(Severity::Warning, key.into(), broken, message);
    }

    fn push(
        &mut self,
        severity: Severity,
        key: String,
        broken: Broken,
        message: impl fmt::Display,
    ) {
        self.0.push(Problem {
            severity,
            key,
            message: format!("{message} [{broken}]"),
            tag: broken.to_string(),
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

/// A rule with its key and what its names refer to (when they exist: a dangling name is
/// reported once, by `names::rule_references`, and the checks that need it skip the rule).
struct RuleView<'a> {
    /// Index of the load balancer in `cfg.load_balancer`.
    lb: usize,
    key: String,
    rule: &'a Rule,
    frontend: Option<&'a Frontend>,
    pool: Option<&'a BackendPool>,
}

/// Every rule of the config, in config order.
fn rules(cfg: &Config) -> Vec<RuleView<'_>> {
    let mut out = Vec::new();
    for (l, lb) in cfg.load_balancer.iter().enumerate() {
        let lb_key = lb_key(l, lb);
        for (r, rule) in lb.rule.iter().enumerate() {
            out.push(RuleView {
                lb: l,
                key: rule_key(&lb_key, r, rule),
                rule,
                frontend: lb.frontend.iter().find(|fe| fe.name == rule.frontend),
                pool: lb.pool_of(rule),
            });
        }
    }
    out
}

/// The first backend of `a` that `b` holds too: the same address or the same instance
/// (DESIGN §4: an instance is one appliance, whichever of its addresses a pool lists).
fn shared_backend<'a, 'b>(
    a: &'a BackendPool,
    b: &'b BackendPool,
) -> Option<(&'a Backend, &'b Backend)> {
    // `b`'s backends by address and by instance, each its first: linear in the pools' sizes
    // (a reload checks every pair of pools, which may hold thousands of backends).
    let mut by_address = HashMap::with_capacity(b.backends.len());
    let mut by_instance = HashMap::with_capacity(b.backends.len());
    for y in &b.backends {
        by_address.entry(y.address).or_insert(y);
        by_instance.entry(y.instance()).or_insert(y);
    }
    a.backends.iter().find_map(|x| {
        let y = by_address
            .get(&x.address)
            .or_else(|| by_instance.get(&x.instance()))?;
        Some((x, *y))
    })
}

/// How a message names a backend two pools share.
fn describe_shared((a, b): (&Backend, &Backend)) -> String {
    if a.address == b.address {
        format!("backend {}", a.address)
    } else {
        format!(
            "instance `{}` ({} and {})",
            a.instance(),
            a.address,
            b.address
        )
    }
}

fn family(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
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
            out.error(
                format!("{prefix}[{i}].name"),
                SEED_RULE_7,
                format!(
                    "{} {what} needs a name, and it must not be empty",
                    article(what)
                ),
            );
            continue;
        }
        let count = seen.entry(name).or_insert(0);
        *count += 1;
        if *count == 2 {
            out.error(
                format!("{prefix}[{name}]"),
                SEED_RULE_7,
                format!(
                    "the name `{name}` is used by more than one {what}{}; names must be unique",
                    if parent.is_empty() {
                        String::new()
                    } else {
                        format!(" of {parent}")
                    }
                ),
            );
        }
    }
}

/// Why `addr` cannot be a host's own address, if it cannot: what the data plane takes for a
/// martian source (`Forwarding::is_martian_source`: IPv4 0/8, 127/8, 224/3; IPv6 `::`,
/// `::1`, ff00::/8, ::ffff:0:0/96), so that no packet from a configured address is dropped as
/// one.
fn not_unicast(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(a) if a.octets()[0] == 0 => Some("in 0.0.0.0/8 (\"this network\")"),
        IpAddr::V4(a) if a.is_loopback() => Some("a loopback address"),
        IpAddr::V4(a) if a.is_broadcast() => Some("the broadcast address"),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V4(a) if a.octets()[0] >= 240 => Some("in the reserved 240.0.0.0/4"),
        IpAddr::V6(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(a) if a.is_loopback() => Some("the loopback address"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => {
            Some("an IPv4-mapped address (::ffff:0:0/96, never on the wire)")
        }
        _ => None,
    }
}

fn unicast(key: &str, addr: IpAddr, role: &str, out: &mut Problems) {
    if let Some(why) = not_unicast(addr) {
        out.error(
            key,
            limit::UNICAST,
            format!(
                "{addr} is {why}; {} {role} needs a unicast address",
                article(role)
            ),
        );
    }
}

/// `an` before a vowel (`an interface`), else `a`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn unicast_mac(key: String, mac: Option<MacAddr>, out: &mut Problems) {
    if let Some(mac) = mac {
        if !mac.is_unicast() {
            out.error(
                key,
                limit::UNICAST,
                format!("{mac} is not a unicast MAC address (group bit set, or all zero)"),
            );
        }
    }
}

#[cfg(test)]
mod tests;
