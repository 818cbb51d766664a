//! `[dataplane]` sizes, `[[interface]]`s, and whether each interface's DPDK port exists
//! among the devices the EAL arguments create, where that can be known.

use std::collections::HashMap;

use super::{
    interface_key, limit, pools, unicast, unicast_mac, unique_names, Problems, SEED_RULE_7,
};
use crate::config::model::{Config, Dataplane, MAX_INTERFACES, MAX_INTERFACE_NAME};
use crate::config::{is_prime, prime_at_least, MAX_BACKEND_SLOTS};

/// Maglev's balance guarantee needs a table of at least this many entries per backend
/// (Eisenbud et al., NSDI 2016, section 5.3: with M ≥ 100·N each backend's share stays
/// within about 1% of the others).
const MAGLEV_ENTRIES_PER_BACKEND: u64 = 100;

pub(super) fn sizes(cfg: &Config, out: &mut Problems) {
    let dp = &cfg.dataplane;
    if dp.workers == 0 {
        out.error(
            "dataplane.workers",
            limit::WORKERS,
            "must be at least 1: the worker lcores, one RX/TX queue pair each, are what \
             forward packets",
        );
    }
    if !is_prime(dp.maglev_table_size) {
        let hint = prime_at_least(u64::from(dp.maglev_table_size))
            .map(|p| format!(" such as {p}"))
            .unwrap_or_default();
        out.error(
            "dataplane.maglev_table_size",
            SEED_RULE_7,
            format!(
                "{} is not prime; Maglev needs a prime table size{hint} (default 65537)",
                dp.maglev_table_size
            ),
        );
    }
    if dp.maglev_table_size > Dataplane::MAX_MAGLEV_TABLE_SIZE {
        out.error(
            "dataplane.maglev_table_size",
            limit::MAGLEV_MAX,
            format!(
                "{} is too large: at most {} (each pool's table is built at start and at \
                 every reload)",
                dp.maglev_table_size,
                Dataplane::MAX_MAGLEV_TABLE_SIZE
            ),
        );
    }
    if dp.flow_table_capacity == 0 {
        out.error(
            "dataplane.flow_table_capacity",
            limit::FLOW_TABLE,
            "must be at least 1 (flow-table entries per worker; 1048576 by default)",
        );
    }
    if dp.flow_table_capacity > Dataplane::MAX_FLOW_TABLE_CAPACITY {
        out.error(
            "dataplane.flow_table_capacity",
            limit::FLOW_TABLE_MAX,
            format!(
                "{} is too large: at most {} flows a worker (4 GiB of hugepages each)",
                dp.flow_table_capacity,
                Dataplane::MAX_FLOW_TABLE_CAPACITY
            ),
        );
    }
    if dp.kernel_pps == 0 {
        out.error(
            "dataplane.kernel_pps",
            limit::KERNEL_PPS,
            "must be at least 1 (packets a second to the kernel twins; 20000 by default): \
             without any, ARP, neighbour discovery and the health probes stop",
        );
    }
    let reachable = 1..=Dataplane::MAX_NEIGHBOUR_REACHABLE_S;
    if !reachable.contains(&dp.neighbour_reachable_s) {
        out.error(
            "dataplane.neighbour_reachable_s",
            limit::NEIGHBOUR_REACHABLE,
            format!(
                "{} is out of range: a neighbour is verified again after 1 to {} seconds (30 by default)",
                dp.neighbour_reachable_s,
                Dataplane::MAX_NEIGHBOUR_REACHABLE_S
            ),
        );
    }
    let rings = dp.mbufs_for_rings(cfg.interface.len());
    if dp.mbufs != 0 && dp.mbufs < rings {
        out.error(
            "dataplane.mbufs",
            limit::MBUFS,
            format!(
                "{} packet buffers are too few for the rings of {} interface(s) and {} \
                 worker(s); give 0 (sized from the rings) or at least {rings}",
                dp.mbufs,
                cfg.interface.len(),
                dp.workers
            ),
        );
    }
}

/// Each pool's backends and states: a state for each distinct probe of the rules naming it
/// (none: one), as `Forwarding::build` gives them, each with its own Maglev table where a
/// backend may take new flows (weight above 0, not drained).
fn pool_states(cfg: &Config) -> impl Iterator<Item = (usize, usize, bool)> + '_ {
    cfg.load_balancer.iter().flat_map(|lb| {
        lb.backend_pool.iter().map(|pool| {
            let mut probes: Vec<Option<&str>> = (lb.rule.iter())
                .filter(|r| r.backend_pool == pool.name)
                .map(|r| r.probe.as_deref())
                .collect();
            probes.sort();
            probes.dedup();
            let weighted = (pool.backends.iter()).any(|b| b.weight > 0 && !b.drain);
            (pool.backends.len(), probes.len().max(1), weighted)
        })
    })
}

/// The config's backend slots within what the appliance counts per backend: a pool takes a
/// slot per backend for each of its states ([`pool_states`]); and its Maglev tables, one
/// for each state, within [`MAX_MAGLEV_ENTRIES`] entries in all.
pub(super) fn backend_slots_counted(cfg: &Config, out: &mut Problems) {
    let slots: usize = pool_states(cfg).map(|(n, states, _)| n * states).sum();
    if slots > MAX_BACKEND_SLOTS {
        out.error(
            "load_balancer",
            limit::BACKEND_SLOTS,
            format!(
                "{slots} backend slots (a pool's backends once for each distinct probe of the \
                 rules naming it); the appliance counts the traffic of at most \
                 {MAX_BACKEND_SLOTS}, and a backend that leaves the config keeps its slot 25 hours"
            ),
        );
    }
    // A table too large on its own is said so once (`maglev_table_size`'s own check).
    let size = cfg.dataplane.maglev_table_size;
    let tables = pool_states(cfg).filter(|&(_, _, weighted)| weighted);
    let tables: usize = tables.map(|(_, states, _)| states).sum();
    let entries = tables as u64 * u64::from(size);
    if entries > MAX_MAGLEV_ENTRIES && size <= Dataplane::MAX_MAGLEV_TABLE_SIZE {
        out.error(
            "dataplane.maglev_table_size",
            limit::MAGLEV_IN_ALL,
            format!(
                "{tables} Maglev tables (a pool's for each distinct probe of the rules naming \
                 it) of {} entries are {entries} entries (4 bytes each); at most \
                 {MAX_MAGLEV_ENTRIES} in all: a smaller maglev_table_size, or fewer pools",
                size
            ),
        );
    }
}

/// The Maglev tables' entries in all (1 GiB of them): they are built, and rebuilt as
/// backends come and go, on the control thread.
pub const MAX_MAGLEV_ENTRIES: u64 = 1 << 28;

/// Every pool fits its Maglev table (an error), with room to balance (a warning).
pub(super) fn maglev_table_holds_every_pool(cfg: &Config, out: &mut Problems) {
    let size = cfg.dataplane.maglev_table_size;
    for (key, pool) in pools(cfg) {
        let n = pool.backends.len();
        if n == 0 {
            continue;
        }
        let wanted = MAGLEV_ENTRIES_PER_BACKEND * n as u64;
        if n >= size as usize {
            out.error(
                "dataplane.maglev_table_size",
                SEED_RULE_7,
                format!(
                    "{size} must be larger than the {n} backends of {key}; every backend needs \
                     entries of its own"
                ),
            );
        } else if u64::from(size) < wanted {
            let hint = prime_at_least(wanted)
                .map(|p| format!(" (the smallest prime at least that is {p})"))
                .unwrap_or_default();
            out.warning(
                "dataplane.maglev_table_size",
                limit::MAGLEV_BALANCE,
                format!(
                    "{size} is less than 100 × the {n} backends of {key} = {wanted}; Maglev \
                     balances flows evenly only with a table that large: choose a prime of at \
                     least {wanted}{hint}"
                ),
            );
        }
    }
}

pub(super) fn interfaces(cfg: &Config, out: &mut Problems) {
    if cfg.interface.is_empty() {
        out.error(
            "interface",
            limit::INTERFACES,
            "no [[interface]]: the appliance needs at least one DPDK port",
        );
    }
    if cfg.interface.len() > MAX_INTERFACES {
        out.error(
            "interface",
            limit::AT_MOST_INTERFACES,
            format!(
                "{} [[interface]]s; one appliance serves at most {MAX_INTERFACES}",
                cfg.interface.len()
            ),
        );
    }
    unique_names(
        "",
        "interface",
        cfg.interface.iter().map(|i| i.name.as_str()),
        out,
    );
    for (i, iface) in cfg.interface.iter().enumerate() {
        // An empty name is refused as such (seed rule 7).
        let fits = iface.name.is_empty()
            || (iface.name.len() <= MAX_INTERFACE_NAME
                && iface
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        if !fits {
            out.error(
                format!("{}.name", interface_key(i, iface)),
                limit::INTERFACE_NAME,
                format!(
                    "`{}`: 1 to {MAX_INTERFACE_NAME} ASCII letters, digits, `-`, `_` or `.`, so \
                     that its kernel twin's name (`hp-` and the name) fits Linux's 15 bytes",
                    iface.name.escape_default()
                ),
            );
        }
    }
    let mut ports: HashMap<u16, String> = HashMap::new();
    for (i, iface) in cfg.interface.iter().enumerate() {
        let key = interface_key(i, iface);
        if let Some(first) = ports.get(&iface.port) {
            out.error(
                format!("{key}.port"),
                limit::ONE_INTERFACE_PER_PORT,
                format!(
                    "DPDK port {} is already used by {first}; each interface needs a port of \
                     its own",
                    iface.port
                ),
            );
        } else {
            ports.insert(iface.port, key.clone());
        }
        unicast_mac(format!("{key}.mac"), iface.mac, out);
        if iface.address.is_empty() {
            out.error(
                format!("{key}.address"),
                limit::INTERFACE_ADDRESS,
                "needs at least one address with its prefix length, e.g. 10.0.0.2/24",
            );
        }
        for net in &iface.address {
            unicast(&format!("{key}.address"), net.addr(), "interface", out);
        }
        for route in &iface.routes {
            if !iface.address.iter().any(|net| net.contains(&route.via)) {
                out.error(
                    format!("{key}.routes[{}].via", route.to),
                    limit::NEXT_HOP_ON_LINK,
                    format!(
                        "next hop {} is not on a subnet of this interface ({}); a next hop \
                         must be on-link",
                        route.via,
                        iface
                            .address
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }
}

/// Each interface's port is one the EAL arguments create, where that can be known: with
/// `--no-pci` and no allow-listed devices, the ports are the network `--vdev`s, numbered
/// from 0 in their order. (Arguments that `haports run` appends after `--` take part when
/// `run` checks, not when `check` does.)
pub(super) fn ports_exist(cfg: &Config, out: &mut Problems) {
    let Some(vdevs) = eal_ports(&cfg.dpdk.eal_args) else {
        return;
    };
    let listed = vdevs
        .iter()
        .enumerate()
        .map(|(port, vdev)| format!("port {port}: {}", vdev_name(vdev)))
        .collect::<Vec<_>>()
        .join(", ");
    for (i, iface) in cfg.interface.iter().enumerate() {
        if usize::from(iface.port) >= vdevs.len() {
            out.error(
                format!("{}.port", interface_key(i, iface)),
                limit::PORT_EXISTS,
                format!(
                    "DPDK port {} does not exist: with --no-pci the ports are the --vdev \
                     devices of the EAL arguments in order, and there are {} ({listed}); add \
                     a --vdev to dpdk.eal_args or fix the port (`haports run` also counts \
                     the EAL arguments given after `--`)",
                    iface.port,
                    vdevs.len()
                ),
            );
        } else if let Some((key, queues)) =
            vdev_queues(&vdevs[usize::from(iface.port)]).filter(|_| cfg.dataplane.workers > 0)
        {
            // Each worker polls an RX queue of its own on every port: a device that fills
            // fewer cannot start, one that fills more loses the frames of the others.
            if queues != cfg.dataplane.workers {
                let vdev = vdev_name(&vdevs[usize::from(iface.port)]);
                let workers = cfg.dataplane.workers;
                let plural = |n: u32| if n == 1 { "" } else { "s" };
                let (queues_s, workers_s) = (plural(queues), plural(workers));
                out.error(
                    format!("{}.port", interface_key(i, iface)),
                    limit::QUEUE_PER_WORKER,
                    format!(
                        "port {} ({vdev}) fills {queues} RX queue{queues_s} ({key}, 1 unless \
                         given) but {workers} worker{workers_s} poll {workers}, one each: give \
                         the vdev {key}={workers}",
                        iface.port
                    ),
                );
            }
        }
    }
}

/// A vdev's driver and instance name: what comes before its first argument.
fn vdev_name(vdev: &str) -> &str {
    vdev.split(',').next().unwrap_or("")
}

/// The queues an AF_PACKET or AF_XDP vdev fills (its `qpairs` or `queue_count` argument,
/// 1 unless given) and that argument's name; `None` for other drivers (their queues are
/// as many as asked for) or a count that does not parse (the PMD refuses it at start).
fn vdev_queues(vdev: &str) -> Option<(&'static str, u32)> {
    let driver = vdev_name(vdev)
        .trim_start_matches("net_")
        .trim_start_matches("eth_")
        .trim_end_matches(|c: char| c.is_ascii_digit());
    let key = match driver {
        "af_packet" => "qpairs",
        "af_xdp" => "queue_count",
        _ => return None,
    };
    let given = vdev
        .split(',')
        .skip(1)
        .find_map(|a| a.strip_prefix(key)?.strip_prefix('='));
    match given {
        None => Some((key, 1)),
        Some(n) => Some((key, n.trim().parse().ok()?)),
    }
}

/// Virtual network drivers that make exactly one ethdev port per `--vdev`.
const ONE_PORT_VDEVS: [&str; 12] = [
    "af_packet",
    "af_xdp",
    "tap",
    "tun",
    "pcap",
    "null",
    "ring",
    "memif",
    "virtio_user",
    "vhost",
    "bonding",
    "kni",
];

/// The network vdevs of `args` in order (each `--vdev` whole: driver, name and arguments), when
/// they are all the ports EAL will create; `None` when that cannot be known from `args`:
/// PCI devices may be probed (no `--no-pci`, or an allow list), a vdev may make more or
/// fewer ports than one, or there is no vdev at all (other buses, such as vmbus).
fn eal_ports(args: &[String]) -> Option<Vec<String>> {
    let mut no_pci = false;
    let mut allow_list = false;
    let mut vdevs: Vec<&str> = Vec::new();
    let mut args = args.iter().map(String::as_str);
    while let Some(arg) = args.next() {
        let (option, inline) = match arg.split_once('=') {
            Some((option, value)) if option.starts_with("--") => (option, Some(value)),
            _ => (arg, None),
        };
        match option {
            "--no-pci" => no_pci = true,
            "--vdev" => vdevs.push(inline.or_else(|| args.next()).unwrap_or("")),
            "-a" | "-w" | "--allow" | "--pci-whitelist" => {
                allow_list = true;
                if inline.is_none() {
                    args.next();
                }
            }
            // `-a0000:01:00.0`: getopt's attached argument.
            short if short.starts_with("-a") || short.starts_with("-w") => allow_list = true,
            _ => {}
        }
    }
    if !no_pci || allow_list {
        return None;
    }
    let network = |name: &str| name.starts_with("net_") || name.starts_with("eth_");
    // A vdev that is not a network device makes no port (crypto, event, DMA…).
    let ports: Vec<String> = (vdevs.into_iter())
        .filter(|v| network(vdev_name(v)))
        .map(str::to_owned)
        .collect();
    let one_port_each = ports.iter().all(|vdev| {
        let driver = vdev_name(vdev)
            .trim_start_matches("net_")
            .trim_start_matches("eth_")
            .trim_end_matches(|c: char| c.is_ascii_digit());
        ONE_PORT_VDEVS.contains(&driver)
    });
    if ports.is_empty() || !one_port_each {
        return None;
    }
    Some(ports)
}

#[cfg(test)]
mod tests {
    use super::eal_ports;

    /// The ports' driver and instance names.
    fn ports(args: &[&str]) -> Option<Vec<String>> {
        let ports = eal_ports(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())?;
        Some(
            ports
                .iter()
                .map(|v| super::vdev_name(v).to_owned())
                .collect(),
        )
    }

    #[test]
    fn vdev_ports_are_known_only_without_pci() {
        let both = ["net_af_packet0", "net_tap1"];
        assert_eq!(
            ports(&[
                "-l",
                "0-1",
                "--no-pci",
                "--vdev=net_af_packet0,iface=lb0",
                "--vdev",
                "net_tap1,iface=x"
            ]),
            Some(both.map(String::from).to_vec())
        );
        // PCI devices may come first.
        assert_eq!(ports(&["--vdev=net_af_packet0,iface=lb0"]), None);
        assert_eq!(
            ports(&["--no-pci", "-a", "0000:01:00.0", "--vdev=net_tap0"]),
            None
        );
        assert_eq!(
            ports(&["--no-pci", "-a0000:01:00.0", "--vdev=net_tap0"]),
            None
        );
        assert_eq!(ports(&["--no-pci", "--allow=0000:01:00.0"]), None);
        // No vdev: ports may come from other buses.
        assert_eq!(ports(&["--no-pci", "--in-memory"]), None);
        // A failsafe vdev makes ports for its sub-devices too.
        assert_eq!(
            ports(&["--no-pci", "--vdev=net_failsafe0,dev(net_tap0)"]),
            None
        );
        // Crypto vdevs make no ethdev port.
        assert_eq!(
            ports(&[
                "--no-pci",
                "--vdev=crypto_aesni_mb0",
                "--vdev=eth_pcap0,rx_pcap=x"
            ]),
            Some(vec!["eth_pcap0".to_owned()])
        );
    }
}
