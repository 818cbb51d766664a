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

/// The groups joined on one interface's twin, by a socket of its own (the kernel holds a
/// group while a socket has it joined, and reports it while any does).
#[derive(Debug, Default)]
pub(super) struct FrontendGroups {
    socket: Option<UdpSocket>,
    joined: Vec<Ipv6Addr>,
}

impl FrontendGroups {
    /// Joins on `ifc`'s twin the groups of `cfg`'s frontends on its IPv6 subnets and leaves
    /// those of frontends gone. What fails is logged and tried again at the next reload: the
    /// frontends still answer solicitations, which reach them on any switch not snooping MLD.
    pub(super) fn join(&mut self, ifc: &Interface, cfg: &Config) {
        let wanted = wanted(ifc, cfg);
        if wanted.is_empty() && self.joined.is_empty() {
            return;
        }
        let twin = kernel_name(&ifc.name);
        let index = std::fs::read_to_string(format!("/sys/class/net/{twin}/ifindex"))
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok());
        let Some(index) = index else {
            tracing::warn!(interface = %ifc.name, %twin, "no interface index for the kernel \
                twin: the frontends' multicast groups are not joined");
            return;
        };
        if self.socket.is_none() {
            match UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)) {
                Ok(s) => self.socket = Some(s),
                Err(e) => {
                    tracing::warn!(interface = %ifc.name, error = %e, "no IPv6 socket: the \
                        frontends' multicast groups are not joined");
                    return;
                }
            }
        }
        let Some(socket) = &self.socket else { return };
        self.joined.retain(|group| {
            wanted.contains(group) || socket.leave_multicast_v6(group, index).is_err()
        });
        for group in wanted {
            if self.joined.contains(&group) {
                continue;
            }
            match socket.join_multicast_v6(&group, index) {
                Ok(()) => self.joined.push(group),
                Err(e) => {
                    tracing::warn!(interface = %ifc.name, %group, error = %e,
                        "cannot join a frontend's solicited-node group");
                }
            }
        }
    }
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
