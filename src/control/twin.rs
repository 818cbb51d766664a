//! The kernel twin of each interface: a `net_tap` port with the interface's MAC that holds
//! the interface's own addresses, so the kernel answers for them (ARP, ping, management)
//! and health probes are ordinary sockets. Configured once at start with iproute2.

use std::net::IpAddr;
use std::process::Command;
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use ipnet::IpNet;

use super::Error;
use crate::config::{Config, Dataplane, Interface};
use crate::dataplane::counters::Counter;
use crate::dpdk::{Eal, Mbuf, Mempool, Port, PortConfig, TxBuffer, TxQueue};
use crate::wire::MacAddr;

/// Linux limits interface names to 15 bytes.
const IFNAMSIZ_MAX: usize = 15;

/// The kernel name of interface `name`'s twin: `hp-NAME` (`check` keeps names short enough
/// to fit; a longer one is cut at a character boundary, never in the middle of one).
pub fn kernel_name(name: &str) -> String {
    let mut s = format!("hp-{name}");
    let mut end = IFNAMSIZ_MAX.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// The DPDK device name of twin `index` (must start with the driver name `net_tap`).
pub fn vdev_name(index: usize) -> String {
    format!("net_tap_haports{index}")
}

/// The metric of the routes through a twin: one no host route takes by default (the kernel
/// gives 0 to IPv4 routes, 256 or 1024 to IPv6 ones, DHCP 100 or 1024), so that `replace`
/// never takes the place of the host's own route to the same network (its default route,
/// say, through a management interface), which then stays preferred for the host's own
/// traffic. The probes, bound to the twin, take the twin's route whatever its metric.
const ROUTE_METRIC: &str = "41000";

/// Starts interface `index`'s twin with the port's `mac` and `queues` RX and TX queues each
/// (net_tap wants as many of one as of the other), and brings it up.
pub fn start(
    eal: &Eal,
    index: usize,
    ifc: &Interface,
    mac: MacAddr,
    pool: &Mempool,
    queues: u16,
) -> Result<Port, Error> {
    let (kname, vdev) = (kernel_name(&ifc.name), vdev_name(index));
    let id = eal.probe_vdev(&format!("{vdev},iface={kname},mac={mac}"), &vdev)?;
    let queues = PortConfig {
        rx_queues: queues,
        tx_queues: queues,
        rx_descriptors: Dataplane::RING_DESCRIPTORS,
        tx_descriptors: Dataplane::RING_DESCRIPTORS,
        rss: false,
        mac: None,
    };
    let port = Port::start(id, &queues, pool)?;
    let routes: Vec<_> = ifc.routes.iter().map(|r| (r.to, r.via)).collect();
    configure(&kname, &ifc.address, &routes)?;
    Ok(port)
}

/// Where the control thread sends a port's share of the twins' traffic.
pub(super) enum KernelOut {
    Queue(TxQueue),
    Handoff(Arc<ArrayQueue<Mbuf>>),
}

impl KernelOut {
    /// Sends what `buf` holds; what the queue had no room for is freed and counted in
    /// `tx_full` (the control thread's own `tx_full` drops).
    pub(super) fn send(&mut self, buf: &mut TxBuffer, tx_full: &Counter) {
        let lost = match self {
            KernelOut::Queue(q) => q.flush(buf).1,
            // Full: the worker is behind; dropped as by a full TX ring.
            KernelOut::Handoff(q) => buf.drain().filter_map(|m| q.push(m).err()).count(),
        };
        tx_full.add(lost as u64);
    }
}

/// Refuses a start where an interface's twin name is taken in this network namespace
/// (`/proc/self/net/dev`): by a running haports with this config (the service, where this
/// one was started by hand), whose twin DPDK would otherwise join (a tap device takes a
/// second opener as another queue) and then take down with this one's failure, or by a
/// host interface.
pub fn names_free(cfg: &Config) -> Result<(), Error> {
    let devices = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    let taken = |name: &str| {
        (devices.lines()).any(|l| l.split_once(':').is_some_and(|(d, _)| d.trim() == name))
    };
    match cfg
        .interface
        .iter()
        .map(|i| kernel_name(&i.name))
        .find(|n| taken(n))
    {
        Some(name) => Err(Error::Twin(format!(
            "{name} exists: another haports runs with this config (left as it is), or a host \
             interface has its name"
        ))),
        None => Ok(()),
    }
}

/// Brings the twin up with the interface's addresses and the routes through it.
pub fn configure(
    ifname: &str,
    addresses: &[IpNet],
    routes: &[(IpNet, IpAddr)],
) -> Result<(), Error> {
    // Loose reverse-path filtering: the host may route a backend's network another way (its
    // management NIC, at a better metric), and strict filtering would then drop the probes'
    // answers arriving on the twin. (The kernel takes the larger of `all` and this.)
    // A read-only /proc/sys (a container's) leaves it as it is: warned of, not fatal.
    let rp_filter = format!("/proc/sys/net/ipv4/conf/{ifname}/rp_filter");
    if let Err(e) = std::fs::write(&rp_filter, "2") {
        tracing::warn!(error = %e, "cannot set {rp_filter} to 2 (loose): where the host routes \
            a backend's network another way, strict filtering drops its probes' answers");
    }
    host_only(ifname);
    // Down and up again: its link-local address, made when the port started, is made anew,
    // without duplicate-address detection (which a forged answer on the segment would fail).
    ip(&["link", "set", "dev", ifname, "down"])?;
    ip(&["link", "set", "dev", ifname, "up"])?;
    for a in addresses {
        let addr = a.to_string();
        match a {
            // The appliance owns its addresses: no duplicate-address detection delay.
            IpNet::V6(_) => ip(&["addr", "replace", &addr, "dev", ifname, "nodad"])?,
            IpNet::V4(_) => ip(&["addr", "replace", &addr, "dev", ifname])?,
        }
    }
    for (to, via) in routes {
        ip(&[
            "route",
            "replace",
            &to.to_string(),
            "via",
            &via.to_string(),
            "dev",
            ifname,
            "metric",
            ROUTE_METRIC,
        ])?;
    }
    Ok(())
}

/// The twin's kernel settings (`/proc/sys/net/FAMILY/conf/TWIN/KEY`) that make it a host on
/// its segment which routes nothing and learns no route or address from it, whatever the
/// host's defaults: the workers keep router messages from it, and these keep what reaches it
/// otherwise (a host process, a route of the host's) from making it a router or a second
/// owner of the segment's addresses. ARP answered only for the twin's own addresses and
/// asked from them (`arp_ignore`, `arp_announce`), as on any multi-homed host.
const HOST_ONLY: [(&str, &str, &str); 12] = [
    ("ipv4", "forwarding", "0"),
    ("ipv4", "accept_redirects", "0"),
    ("ipv4", "send_redirects", "0"),
    ("ipv4", "accept_source_route", "0"),
    ("ipv4", "arp_ignore", "1"),
    ("ipv4", "arp_announce", "2"),
    ("ipv6", "forwarding", "0"),
    ("ipv6", "accept_ra", "0"),
    ("ipv6", "autoconf", "0"),
    ("ipv6", "accept_redirects", "0"),
    ("ipv6", "accept_source_route", "0"),
    ("ipv6", "accept_dad", "0"),
];

/// Writes [`HOST_ONLY`] for `ifname` (IPv6's where the kernel has IPv6); what cannot be
/// written (a container's read-only /proc/sys) is warned of, not fatal.
fn host_only(ifname: &str) {
    let ipv6 = std::path::Path::new(&format!("/proc/sys/net/ipv6/conf/{ifname}")).exists();
    let unset: Vec<String> = (HOST_ONLY.iter())
        .filter(|(family, _, _)| *family == "ipv4" || ipv6)
        .map(|(family, key, value)| (format!("/proc/sys/net/{family}/conf/{ifname}/{key}"), value))
        .filter(|(path, value)| std::fs::write(path, value).is_err())
        .map(|(path, value)| format!("{path}={value}"))
        .collect();
    if !unset.is_empty() {
        tracing::warn!(interface = %ifname, unset = %unset.join(" "), "kernel twin settings \
            not written: the twin keeps the host's defaults for them");
    }
}

fn ip(args: &[&str]) -> Result<(), Error> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        Error::Twin(format!(
            "running `ip {}`: {e} (is iproute2 installed?)",
            args.join(" ")
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Twin(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_kernel_limit() {
        assert_eq!(kernel_name("lan"), "hp-lan");
        assert_eq!(kernel_name("a-very-long-interface").len(), 15);
        // 15 bytes would end inside the é: cut before it.
        assert_eq!(kernel_name("aaaaaaaaaaaé"), "hp-aaaaaaaaaaa");
        assert!(vdev_name(3).starts_with("net_tap"));
    }
}
