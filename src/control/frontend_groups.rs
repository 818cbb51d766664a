//! The solicited-node multicast groups of the IPv6 frontends, joined on their interface's
//! kernel twin: the twin's kernel then reports them (MLD, RFC 3810) with those of its own
//! addresses, at once and whenever a querier asks (the workers hand it the queries), so that
//! a switch that snoops MLD, and forwards a group's frames only to the ports that reported
//! it, forwards the frontends' neighbour solicitations to the appliance as well.

use std::net::{Ipv6Addr, UdpSocket};

use ipnet::IpNet;

use super::twin::kernel_name;
use crate::config::{Config, Interface};
use crate::wire::solicited_node;

/// The groups joined on one interface's twin (the kernel holds a group while a socket has it
/// joined, and reports it while any does), at most [`GROUPS_PER_SOCKET`] on each of its
/// sockets.
#[derive(Debug, Default)]
pub(super) struct FrontendGroups {
    members: Vec<Member>,
}

/// One socket and the groups it joined.
#[derive(Debug)]
struct Member {
    socket: UdpSocket,
    groups: Vec<Ipv6Addr>,
}

/// Each membership is charged to its socket's option memory (`net.core.optmem_max`, 20 KiB
/// on older kernels, about 64 bytes a group): far below what it allows.
const GROUPS_PER_SOCKET: usize = 64;

impl FrontendGroups {
    /// Joins on `ifc`'s twin the groups of `cfg`'s frontends on its IPv6 subnets and leaves
    /// those of frontends gone. What fails is logged and tried again at the next reload: the
    /// frontends still answer solicitations, which reach them on any switch not snooping MLD.
    pub(super) fn join(&mut self, ifc: &Interface, cfg: &Config) {
        let wanted = wanted(ifc, cfg);
        if wanted.is_empty() && self.members.iter().all(|m| m.groups.is_empty()) {
            return;
        }
        let twin = kernel_name(&ifc.name);
        let Some(index) = ipv6_index(&twin) else {
            tracing::warn!(interface = %ifc.name, %twin, "the kernel twin has no IPv6 \
                address: the frontends' multicast groups are not joined");
            return;
        };
        for m in &mut self.members {
            let socket = &m.socket;
            (m.groups)
                .retain(|g| wanted.contains(g) || socket.leave_multicast_v6(g, index).is_err());
        }
        for group in wanted {
            if self.members.iter().any(|m| m.groups.contains(&group)) {
                continue;
            }
            let room = self
                .members
                .iter()
                .position(|m| m.groups.len() < GROUPS_PER_SOCKET);
            let i = match room {
                Some(i) => i,
                None => match socket() {
                    Ok(socket) => {
                        let groups = Vec::new();
                        self.members.push(Member { socket, groups });
                        self.members.len() - 1
                    }
                    Err(e) => {
                        tracing::warn!(interface = %ifc.name, error = %e, "no IPv6 socket: \
                            the frontends' multicast groups are not joined");
                        return;
                    }
                },
            };
            let member = &mut self.members[i];
            match member.socket.join_multicast_v6(&group, index) {
                Ok(()) => member.groups.push(group),
                Err(e) => {
                    tracing::warn!(interface = %ifc.name, %group, error = %e,
                        "cannot join a frontend's solicited-node group");
                }
            }
        }
    }
}

/// A socket that only holds memberships: bound to the loopback address (no port open on the
/// host's interfaces), or, where the host has none, to an unspecified one.
fn socket() -> std::io::Result<UdpSocket> {
    UdpSocket::bind((Ipv6Addr::LOCALHOST, 0))
        .or_else(|_| UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)))
}

/// The interface index of `name` in this process's network namespace, from its IPv6
/// addresses (`/proc/self/net/if_inet6`: address, index in hex, prefix, scope, flags,
/// name); `None` where it has none.
fn ipv6_index(name: &str) -> Option<u32> {
    index_in(
        &std::fs::read_to_string("/proc/self/net/if_inet6").ok()?,
        name,
    )
}

/// [`ipv6_index`] in the table's text.
fn index_in(table: &str, name: &str) -> Option<u32> {
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [_, index, _, _, _, dev] if dev == name => u32::from_str_radix(index, 16).ok(),
            _ => None,
        }
    })
}

/// The solicited-node groups of the IPv6 frontends on `ifc`'s subnets, once each.
fn wanted(ifc: &Interface, cfg: &Config) -> Vec<Ipv6Addr> {
    let on_link =
        |a: &Ipv6Addr| (ifc.address.iter()).any(|net| matches!(net, IpNet::V6(n) if n.contains(a)));
    let mut groups: Vec<Ipv6Addr> = (cfg.load_balancer.iter())
        .flat_map(|lb| lb.frontend.iter())
        .filter_map(|fe| match fe.address {
            std::net::IpAddr::V6(a) if on_link(&a) => Some(solicited_node(a)),
            _ => None,
        })
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_twins_index_is_read_from_its_ipv6_addresses() {
        let table = "00000000000000000000000000000001 01 80 10 80       lo\n\
            fd000000000000000000000000000002 1a 40 00 80    hp-lan\n";
        assert_eq!(index_in(table, "hp-lan"), Some(26));
        assert_eq!(index_in(table, "hp-wan"), None);
        assert_eq!(index_in(table, "hp-la"), None);
    }

    #[test]
    fn the_groups_are_those_of_the_ipv6_frontends_on_the_interfaces_subnets() {
        let mut cfg = Config::from_toml(crate::config::testdata::MINIMAL, "t").unwrap();
        let fe = cfg.load_balancer[0].frontend[0].clone();
        let frontends = [
            "fd00::100",
            "fd00::ab00:100",
            "fd00:9::100",
            "10.0.0.100",
            "fd00::200",
        ];
        cfg.load_balancer[0].frontend = (frontends.iter().enumerate())
            .map(|(i, a)| {
                let mut fe = fe.clone();
                (fe.name, fe.address) = (format!("fe{i}"), a.parse().unwrap());
                fe
            })
            .collect();
        let mut ifc = cfg.interface[0].clone();
        ifc.address = vec![
            "10.0.0.2/24".parse().unwrap(),
            "fd00::2/64".parse().unwrap(),
        ];
        // fd00::100 and fd00::ab00:100 share a group; fd00:9::100 is off the subnets.
        let expected: Vec<Ipv6Addr> = ["ff02::1:ff00:100", "ff02::1:ff00:200"]
            .map(|g| g.parse().unwrap())
            .to_vec();
        assert_eq!(wanted(&ifc, &cfg), expected);
        ifc.address.truncate(1);
        assert!(wanted(&ifc, &cfg).is_empty(), "an interface without IPv6");
    }
}
