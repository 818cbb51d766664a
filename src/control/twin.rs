//! The kernel twin of each interface: a `net_tap` port with the interface's MAC that holds
//! the interface's own addresses, so the kernel answers for them (ARP, ping, management)
//! and health probes are ordinary sockets. Configured once at start with iproute2.

use std::net::IpAddr;
use std::process::Command;

use ipnet::IpNet;

use super::Error;

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

/// Brings the twin up with the interface's addresses and the routes through it.
pub fn configure(
    ifname: &str,
    addresses: &[IpNet],
    routes: &[(IpNet, IpAddr)],
) -> Result<(), Error> {
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
