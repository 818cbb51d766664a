//! The config file's data model: exactly the TOML of DESIGN §4, as serde structs.
//!
//! Every struct denies unknown keys, so a typo is an error rather than a silently ignored
//! setting. Defaults live here (`#[serde(default)]`), meaning checks (references, ranges,
//! the seed's rules) live in `validate`. Addresses are parsed into typed values here, with
//! messages that quote the offending text.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::announce::Announce;
use crate::wire::MacAddr;

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub dpdk: Dpdk,
    #[serde(default)]
    pub dataplane: Dataplane,
    #[serde(default)]
    pub control: Control,
    /// `[[interface]]`: the DPDK ports the appliance owns.
    #[serde(default)]
    pub interface: Vec<Interface>,
    /// `[[load_balancer]]`.
    #[serde(default)]
    pub load_balancer: Vec<LoadBalancer>,
    /// `[announce]`: BGP announcements through BIRD (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce: Option<Announce>,
}

/// `[dpdk]`: arguments for the DPDK EAL (the command line may append more).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dpdk {
    #[serde(default)]
    pub eal_args: Vec<String>,
}

/// `[dataplane]`: worker lcores and the sizes of the per-worker forwarding structures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dataplane {
    /// Worker lcores, one RX/TX queue pair each.
    pub workers: u32,
    /// Entries of each pool's Maglev table; must be prime.
    pub maglev_table_size: u32,
    /// Flow-table entries per worker.
    pub flow_table_capacity: u32,
    /// Seed of the symmetric flow hash; instances with the same seed decide alike.
    pub hash_seed: u64,
    /// Packet buffers in the mempool; 0 (the default) sizes it from the ports' rings. More
    /// are needed where a PMD holds many (net_pcap with `infinite_rx` keeps its whole file).
    #[serde(skip_serializing_if = "is_zero")]
    pub mbufs: u32,
    /// Packets a second handed to the kernel twins, over all workers, in each of three
    /// budgets of this size: traffic to the appliance's own addresses; what comes from the
    /// backends' side (the probes' answers, their ARP and ND); the segment's other ARP, ND
    /// and MLD queries. More are dropped and counted.
    #[serde(skip_serializing_if = "is_default_kernel_pps")]
    pub kernel_pps: u32,
    /// Seconds a neighbour stays reachable after it answered the appliance's solicitation;
    /// then it is stale: still used, and verified again when a packet needs it.
    #[serde(skip_serializing_if = "is_default_neighbour_reachable")]
    pub neighbour_reachable_s: u32,
}

fn is_default_neighbour_reachable(n: &u32) -> bool {
    *n == Dataplane::DEFAULT_NEIGHBOUR_REACHABLE_S
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_default_kernel_pps(n: &u32) -> bool {
    *n == Dataplane::DEFAULT_KERNEL_PPS
}

impl Dataplane {
    pub const DEFAULT_WORKERS: u32 = 1;
    pub const DEFAULT_MAGLEV_TABLE_SIZE: u32 = 65537;
    pub const DEFAULT_FLOW_TABLE_CAPACITY: u32 = 1_048_576;
    pub const DEFAULT_KERNEL_PPS: u32 = 20_000;
    pub const DEFAULT_NEIGHBOUR_REACHABLE_S: u32 = 30;
    pub const MAX_NEIGHBOUR_REACHABLE_S: u32 = 3600;
    /// The largest Maglev table (a prime below 2^22): 16 MiB a pool, built on the control
    /// thread at start and at each reload.
    pub const MAX_MAGLEV_TABLE_SIZE: u32 = 4_194_301;
    /// The most flows a worker's table holds: 4 GiB of hugepages for its buckets.
    pub const MAX_FLOW_TABLE_CAPACITY: u32 = 1 << 26;
}

impl Default for Dataplane {
    fn default() -> Self {
        Dataplane {
            workers: Self::DEFAULT_WORKERS,
            maglev_table_size: Self::DEFAULT_MAGLEV_TABLE_SIZE,
            flow_table_capacity: Self::DEFAULT_FLOW_TABLE_CAPACITY,
            hash_seed: 0,
            mbufs: 0,
            kernel_pps: Self::DEFAULT_KERNEL_PPS,
            neighbour_reachable_s: Self::DEFAULT_NEIGHBOUR_REACHABLE_S,
        }
    }
}

/// `[control]`: the control thread's own endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Where to serve the metrics (OpenMetrics text) at `/metrics`; `None`: no metrics server.
    #[serde(
        default,
        deserialize_with = "optional_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub metrics_listen: Option<SocketAddr>,
    /// The control socket of `haports reload` and `haports status`: a Unix socket only root
    /// and haports' own user may use. `None`: no socket (SIGHUP still reloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
}

/// The most interfaces one appliance serves.
pub const MAX_INTERFACES: usize = 16;

/// The longest interface name: its kernel twin is `hp-NAME`, within Linux's 15 bytes.
pub const MAX_INTERFACE_NAME: usize = 12;

/// `[[interface]]`: one DPDK port and the appliance's own addresses on its segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    pub name: String,
    /// DPDK port id.
    #[serde(deserialize_with = "dpdk_port_id")]
    pub port: u16,
    /// Set the port's MAC address; `None` keeps the NIC's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// Own addresses with their prefix length (`10.0.0.2/24`); the prefix is the on-link
    /// subnet. The file may give one string or a list.
    #[serde(deserialize_with = "one_or_many_nets")]
    pub address: Vec<IpNet>,
    /// Off-link destinations and their next hops on this segment.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// A static route: `to` is reached through the on-link next hop `via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(deserialize_with = "text")]
    pub to: IpNet,
    #[serde(deserialize_with = "text")]
    pub via: IpAddr,
}

/// `[[load_balancer]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    pub name: String,
    pub kind: LbKind,
    #[serde(default)]
    pub frontend: Vec<Frontend>,
    #[serde(default)]
    pub backend_pool: Vec<BackendPool>,
    #[serde(default)]
    pub probe: Vec<Probe>,
    #[serde(default)]
    pub rule: Vec<Rule>,
}

impl LoadBalancer {
    /// The pool `rule` names, where it exists.
    pub fn pool_of(&self, rule: &Rule) -> Option<&BackendPool> {
        self.backend_pool
            .iter()
            .find(|p| p.name == rule.backend_pool)
    }

    /// The probe `rule` names, where it names one that exists.
    pub fn probe_of(&self, rule: &Rule) -> Option<&Probe> {
        let name = rule.probe.as_ref()?;
        self.probe.iter().find(|p| &p.name == name)
    }
}

/// Internal load balancers may carry HA-ports rules; public ones may not (seed rule 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LbKind {
    Internal,
    Public,
}

/// `[[load_balancer.frontend]]`: an address the appliance answers for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    pub name: String,
    #[serde(deserialize_with = "text")]
    pub address: IpAddr,
}

/// `[[load_balancer.backend_pool]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendPool {
    pub name: String,
    /// How DSR traffic reaches a backend off the segment; `None`: by MAC rewrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encap: Option<Encap>,
    /// The VXLAN network identifier (24 bits) of `encap = "vxlan"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    #[serde(default)]
    pub backends: Vec<Backend>,
}

/// Encapsulation towards backends of a floating-IP (DSR) pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encap {
    Vxlan,
}

/// One backend of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    #[serde(deserialize_with = "text")]
    pub address: IpAddr,
    /// Relative share of new flows; 0 takes no new flows (like `drain`).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Lower wins: only the healthy backends of the lowest priority present take flows
    /// (active-passive).
    #[serde(default)]
    pub priority: u32,
    /// Known MAC address; `None`: resolved by ARP/ND.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// What Maglev hashes; the same instance in several pools makes the same choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Takes no new flows; established flows stay.
    #[serde(default)]
    pub drain: bool,
}

fn default_weight() -> u32 {
    1
}

impl Backend {
    /// The instance name Maglev hashes: the configured one, else the address as text.
    pub fn instance(&self) -> String {
        match &self.instance {
            Some(name) => name.clone(),
            None => self.address.to_string(),
        }
    }
}

/// `[[load_balancer.probe]]`: a health check run from the interface's kernel twin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub name: String,
    pub protocol: ProbeProtocol,
    #[serde(deserialize_with = "port_number")]
    pub port: u16,
    /// Path of the HTTP GET (http only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Consecutive failures that mark a backend down.
    #[serde(default = "default_threshold")]
    pub unhealthy_threshold: u32,
    /// Consecutive successes that mark a backend up again.
    #[serde(default = "default_threshold")]
    pub healthy_threshold: u32,
}

fn default_interval_ms() -> u64 {
    5000
}

fn default_threshold() -> u32 {
    2
}

/// `tcp`: a connect succeeds; `http`: a GET of `path` answers 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeProtocol {
    Tcp,
    Http,
}

/// `[[load_balancer.rule]]`: which traffic of a frontend goes to which pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// Name of a frontend of the same load balancer.
    pub frontend: String,
    /// Name of a backend pool of the same load balancer.
    pub backend_pool: String,
    /// Name of a probe of the same load balancer; `None`: every backend counts as healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    pub protocol: RuleProtocol,
    #[serde(deserialize_with = "port_number")]
    pub frontend_port: u16,
    #[serde(deserialize_with = "port_number")]
    pub backend_port: u16,
    /// `true`: DSR, destination kept; `false`: DNAT to the backend.
    #[serde(default)]
    pub floating_ip: bool,
    #[serde(default = "default_idle_timeout_s")]
    pub idle_timeout_s: u32,
    /// Which fields of a new flow choose its backend (Azure's distribution modes).
    #[serde(default, skip_serializing_if = "Distribution::is_default")]
    pub distribution: Distribution,
}

/// What a rule's new flows are balanced by. Every mode hashes the unordered address pair
/// (so both directions of a transit flow meet one backend); the modes differ in what else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Addresses, protocol and ports: each flow on its own.
    #[default]
    FiveTuple,
    /// Addresses and protocol ("client IP and protocol", session persistence): every flow of
    /// one protocol between two hosts on one backend, whatever the ports.
    ClientIpProtocol,
    /// Addresses only ("client IP"): every flow between two hosts on one backend.
    ClientIp,
}

impl Distribution {
    fn is_default(&self) -> bool {
        *self == Distribution::FiveTuple
    }
}

/// Longest idle timeout: a day. Longer keeps dead flows in a bounded table.
pub const MAX_IDLE_TIMEOUT_S: u32 = 86_400;

fn default_idle_timeout_s() -> u32 {
    240
}

impl Rule {
    /// An HA-ports rule: every flow of every protocol and port (`protocol = "all"`, ports 0).
    pub fn is_ha_ports(&self) -> bool {
        self.protocol == RuleProtocol::All && self.frontend_port == 0 && self.backend_port == 0
    }
}

/// `all` (HA ports) | `tcp` | `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleProtocol {
    All,
    Tcp,
    Udp,
}

macro_rules! display_as_config_text {
    ($($ty:ty { $($variant:ident => $text:literal),+ $(,)? })+) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$variant => $text),+ })
            }
        }
    )+};
}

display_as_config_text! {
    LbKind { Internal => "internal", Public => "public" }
    Encap { Vxlan => "vxlan" }
    ProbeProtocol { Tcp => "tcp", Http => "http" }
    RuleProtocol { All => "all", Tcp => "tcp", Udp => "udp" }
}

/// A 16-bit number whose error says what it is and its range (serde's says `u16`).
struct Number16(&'static str);

impl<'de> Visitor<'de> for Number16 {
    type Value = u16;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<u16, E> {
        u16::try_from(n).map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<u16, E> {
        u16::try_from(n).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))
    }
}

/// A TCP or UDP port: 0 to 65535.
fn port_number<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    d.deserialize_u16(Number16("a port number from 0 to 65535"))
}

/// A DPDK port id: 0 to 65535.
fn dpdk_port_id<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    d.deserialize_u16(Number16("a DPDK port id from 0 to 65535"))
}

/// A value written in the file as text, with what the text should look like for the error.
trait TextValue: FromStr {
    const EXPECTED: &'static str;
}

impl TextValue for IpAddr {
    const EXPECTED: &'static str = "an IP address like 10.0.0.1 or fd00::1";
}

impl TextValue for IpNet {
    const EXPECTED: &'static str =
        "an address with its prefix length like 10.0.0.2/24 or fd00::2/64";
}

impl TextValue for SocketAddr {
    const EXPECTED: &'static str = "an address and port like 127.0.0.1:9900 or [::1]:9900";
}

fn parse_text<T: TextValue, E: de::Error>(s: &str) -> Result<T, E> {
    s.parse()
        .map_err(|_| E::custom(format!("`{s}` is not {}", T::EXPECTED)))
}

/// Deserializes a `TextValue` from a string, quoting the string when it does not parse.
fn text<'de, D: Deserializer<'de>, T: TextValue>(d: D) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    parse_text(&s)
}

fn optional_text<'de, D: Deserializer<'de>, T: TextValue>(d: D) -> Result<Option<T>, D::Error> {
    text(d).map(Some)
}

/// One list element parsed by `text`, so that its error points at the element.
struct Net(IpNet);

impl<'de> Deserialize<'de> for Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d).map(Net)
    }
}

/// `address = "10.0.0.2/24"` or `address = ["10.0.0.2/24", "fd00::2/64"]`.
fn one_or_many_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    struct OneOrMany;

    impl<'de> Visitor<'de> for OneOrMany {
        type Value = Vec<IpNet>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an address with prefix length, or a list of them")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            parse_text(s).map(|net| vec![net])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut nets = Vec::new();
            while let Some(Net(net)) = seq.next_element()? {
                nets.push(net);
            }
            Ok(nets)
        }
    }

    d.deserialize_any(OneOrMany)
}
