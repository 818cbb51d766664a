//! The forwarding state: everything a worker needs to decide a packet, built by the control
//! thread from the config, backend health and resolved neighbours, and published whole.
//!
//! It is immutable once built ([`Forwarding::build`], in `forwarding_build.rs`). Workers
//! read it through the RCU pointer once a loop (their quiescent point, between the bursts
//! of every port's queue); the lookups here take no lock and allocate nothing. The decision
//! itself is [`decide`](super::decision::decide), which the data plane and `haports lookup` share.

use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};
use ipnet::IpNet;

use super::maglev::MaglevTable;
use super::v4_index::V4Index;
use crate::config::{Distribution, RuleProtocol};
use crate::wire::MacAddr;

pub type BackendId = u32;
pub type FrontendId = u32;
pub type PoolId = u32;
pub type InterfaceId = u32;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// One DPDK port serving a segment.
#[derive(Debug, Clone)]
pub struct InterfaceState {
    pub name: String,
    pub port: u16,
    /// The port's MAC (and its kernel twin's); zero when built offline.
    pub mac: MacAddr,
    /// The interface's own addresses (held by the kernel twin) with their prefixes.
    pub addresses: Vec<IpNet>,
    /// The port's MTU (1500 where unknown, offline).
    pub mtu: u16,
}

/// Where a packet for some address leaves: the interface and the neighbour to send it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub interface: InterfaceId,
    /// The destination itself when on-link, else the route's gateway.
    pub next_hop: IpAddr,
}

#[derive(Debug, Clone)]
pub struct RuleState {
    pub name: String,
    pub protocol: RuleProtocol,
    pub frontend_port: u16,
    pub backend_port: u16,
    pub floating_ip: bool,
    pub pool: PoolId,
    pub idle_timeout_ms: u64,
    /// What a new flow's backend is chosen by.
    pub distribution: Distribution,
    /// The backend port a translating rule (not HA ports, a backend port) rewrites to.
    pub translated_port: Option<u16>,
}

impl RuleState {
    pub fn is_ha_ports(&self) -> bool {
        self.protocol == RuleProtocol::All && self.frontend_port == 0
    }

    fn matches(&self, proto: u8, dst_port: u16) -> bool {
        match self.protocol {
            RuleProtocol::All => true,
            RuleProtocol::Tcp => proto == PROTO_TCP && dst_port == self.frontend_port,
            RuleProtocol::Udp => proto == PROTO_UDP && dst_port == self.frontend_port,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FrontendState {
    pub load_balancer: String,
    pub name: String,
    pub address: IpAddr,
    /// Its own MAC (see [`frontend_mac`]): what ARP for the frontend answers, so frames
    /// routed through the frontend say which one they were routed through.
    pub mac: MacAddr,
    /// `mac` as the low 48 bits of a little-endian word (the fast path compares words).
    pub mac_word: u64,
    /// Port rules first, the HA-ports rule (if any) last: the most specific match wins.
    pub rules: Vec<RuleState>,
    /// Frames routed through it reach every backend of its HA-ports rule with only their
    /// MAC header changed: each is on an interface's segment or behind VXLAN, none only
    /// behind a router (which would get them, still addressed to their destination).
    pub transit: bool,
}

#[derive(Debug, Clone)]
pub struct PoolState {
    pub load_balancer: String,
    pub name: String,
    /// The probe whose results this state of the pool follows (per-rule health: a config
    /// pool has one state for each probe its rules use, and one without any).
    pub probe: Option<String>,
    /// Every backend of the pool, healthy or not.
    pub members: Vec<BackendId>,
    /// The backends new flows may go to: healthy, not drained, of the best priority tier
    /// that has any. Maglev slots index into this list.
    pub active: Vec<BackendId>,
    table: Arc<MaglevTable>,
    /// Removed by a reload; the slot stays, given back to this pool state alone.
    pub retired: bool,
}

#[derive(Debug, Clone)]
pub struct BackendState {
    pub load_balancer: String,
    pub pool: PoolId,
    pub address: IpAddr,
    pub instance: String,
    pub weight: u32,
    pub priority: u32,
    pub drain: bool,
    pub healthy: bool,
    /// Removed by a reload; the id stays, given back to this backend alone.
    pub retired: bool,
    /// How the backend is reached; None when no interface's subnet or route covers it.
    pub route: Option<Route>,
    /// The MAC to send to (configured, or the next hop's resolved one); behind VXLAN, the
    /// inner frames' destination (its VXLAN device's, configured).
    pub mac: Option<MacAddr>,
    /// Behind VXLAN (its pool's `encap`): the VNI, and the resolved MAC of the next hop
    /// towards its address, where the outer packets go.
    pub vxlan: Option<(u32, Option<MacAddr>)>,
    /// Its next hop's MAC is resolved by the appliance (no `mac` configured, or behind VXLAN):
    /// the neighbour cache keeps verifying it.
    pub resolves: bool,
}

/// The whole forwarding state, immutable once built.
#[derive(Debug)]
pub struct Forwarding {
    /// Counts every published state (health, neighbours, reloads).
    pub generation: u64,
    /// Counts applied configs: 1 for the config at start, +1 per successful reload.
    pub config_generation: u64,
    pub hash_seed: u64,
    /// `dataplane.kernel_pps`: packets a second to the kernel twins, over all workers, in
    /// each of the three budgets they share
    /// ([`KernelBudget`](crate::dataplane::state::WorkerState::kernel)).
    pub kernel_pps: u32,
    pub interfaces: Vec<InterfaceState>,
    pub frontends: Vec<FrontendState>,
    pub pools: Vec<PoolState>,
    pub backends: Vec<BackendState>,
    /// The per-packet digest of `backends`, by the same id.
    links: Vec<BackendLink>,
    /// Whether new flows may go to each backend (by id): it is in its pool's active tier.
    takes_new: Vec<bool>,
    /// Each retired backend's successor: the same backend (load balancer, instance, address)
    /// in the pool state that replaced its own (its rule got another probe).
    successors: HashMap<BackendId, BackendId>,
    /// Some backend is behind VXLAN.
    has_vxlan: bool,
    /// For each backend behind VXLAN, by id: the outer headers' fields (then its link's
    /// `egress` holds the inner frame's MACs). Kept apart so the per-packet link stays small.
    tunnels: Vec<Option<VxlanLink>>,
    frontend_by_addr: HashMap<IpAddr, FrontendId>,
    /// IPv4 frontends by address as a word, for the fast path.
    frontend_v4: V4Index,
    /// The appliance's own IPv4 addresses, its frontends' and its interface subnets' broadcast
    /// addresses: sources no packet may have.
    claimed_v4: V4Index,
    /// Own and frontend addresses in one map: one lookup per packet says which it is.
    addressees: HashMap<IpAddr, Addressee>,
    /// Each frontend's own MAC address (answered in ARP), naming the frontend a transit
    /// packet was routed through.
    frontend_by_mac: HashMap<MacAddr, FrontendId>,
    own_addresses: HashMap<IpAddr, InterfaceId>,
    /// Where each backend address's packets come from: its interface and the MAC its traffic
    /// goes to (its own, or its gateway's, or its tunnel's next hop's); and each gateway to
    /// backends, from its own MAC.
    backend_sides: HashSet<(IpAddr, InterfaceId, MacAddr)>,
    /// On-link backends' configured MACs, which nothing overrides (not in `neighbours`).
    configured_macs: HashMap<IpAddr, MacAddr>,
    /// (backend address, protocol or None for all, backend port or 0 for all).
    reverse_nat: HashMap<(IpAddr, Option<u8>, u16), ReverseNat>,
    /// For each backend address whose NAT replies the rules cannot map back (an HA-ports rule
    /// and a port rule of another frontend or port share it): its non-floating rules, as
    /// (frontend, rule index), whose flows a reply may belong to.
    reply_candidates: HashMap<IpAddr, Vec<(FrontendId, u32)>>,
    neighbours: HashMap<IpAddr, Neighbour>,
    routes: Vec<(IpNet, Route)>,
}

impl Forwarding {
    /// The frontend whose MAC address a frame was sent to: for a packet not addressed to
    /// a frontend, the frontend it was routed through (transit).
    #[inline]
    pub fn frontend_by_mac(&self, mac: MacAddr) -> Option<FrontendId> {
        self.frontend_by_mac.get(&mac).copied()
    }

    /// The HA-ports rule of `frontend`, which balances its transit traffic; None where the
    /// frontend takes no transit (no such rule, or a backend behind a router).
    #[inline]
    pub fn transit_rule(&self, frontend: FrontendId) -> Option<(u32, &RuleState)> {
        let fe = self
            .frontends
            .get(frontend as usize)
            .filter(|f| f.transit)?;
        fe.rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.is_ha_ports())
            .map(|(i, r)| (i as u32, r))
    }

    /// Whose address `addr` is: the appliance's own (an interface's), a frontend's, or
    /// neither. One lookup, for the per-packet path.
    #[inline]
    pub fn addressee(&self, addr: IpAddr) -> Option<Addressee> {
        self.addressees.get(&addr).copied()
    }

    /// The frontend that owns `addr`, if any.
    #[inline]
    pub fn frontend(&self, addr: IpAddr) -> Option<FrontendId> {
        self.frontend_by_addr.get(&addr).copied()
    }

    /// The interface whose kernel twin holds `addr`, if it is one of the appliance's own.
    #[inline]
    pub fn own_address(&self, addr: IpAddr) -> Option<InterfaceId> {
        self.own_addresses.get(&addr).copied()
    }

    /// The most specific rule of `frontend` for a protocol and destination port.
    #[inline]
    pub fn rule(
        &self,
        frontend: FrontendId,
        proto: u8,
        dst_port: u16,
    ) -> Option<(u32, &RuleState)> {
        self.frontends[frontend as usize]
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(proto, dst_port))
            .map(|(i, r)| (i as u32, r))
    }

    /// Maglev's choice in `pool` for a flow hash; None when no backend is active.
    #[inline]
    pub fn pick(&self, pool: PoolId, hash: u64) -> Option<BackendId> {
        let p = &self.pools[pool as usize];
        p.table
            .lookup(hash)
            .and_then(|slot| p.active.get(slot as usize).copied())
    }

    /// Whether an established flow may stay on `backend`: it is still in `pool` and healthy
    /// (drained backends keep their flows), or no backend of the pool may take new flows (none
    /// is healthy, in service and weighted: the flow has nowhere better to go), or the pool
    /// regained one lately and holds its flows while it settles ([`Forwarding::hold_flows`]).
    #[inline]
    pub fn keeps_flow(&self, pool: PoolId, backend: BackendId) -> bool {
        self.link(backend)
            .is_some_and(|l| l.pool == pool && l.keeps_flows)
    }

    /// The member of `pool` that is `backend`'s instance in another pool state of its load
    /// balancer: the same backend in another state of its config pool (another probe's, or
    /// one a reload retired when it changed the rule's probe), or the same NVA in another
    /// pool (a two-NIC NVA's other side, its addresses one `instance`). An established flow
    /// follows it rather than being decided again.
    pub fn counterpart(&self, pool: PoolId, backend: BackendId) -> Option<BackendId> {
        let link = self.link(backend)?;
        if link.pool == pool {
            return None;
        }
        let same = |m: &BackendId| self.link(*m).is_some_and(|l| l.instance == link.instance);
        self.pools
            .get(pool as usize)?
            .members
            .iter()
            .copied()
            .find(same)
    }

    /// A backend's per-packet record.
    #[inline]
    pub fn link(&self, backend: BackendId) -> Option<&BackendLink> {
        self.links.get(backend as usize)
    }

    /// Whether `pool` has any backend that can take new flows.
    #[inline]
    pub fn pool_has_active(&self, pool: PoolId) -> bool {
        self.pools
            .get(pool as usize)
            .is_some_and(|p| !p.active.is_empty())
    }

    /// The IPv4 frontend at `addr` (an address as a word), for the fast path.
    #[inline]
    pub fn frontend_v4(&self, addr: u32) -> Option<FrontendId> {
        self.frontend_v4.get(addr)
    }

    /// Whether a packet's source is one no real sender has: broadcast, multicast, loopback
    /// or unspecified (IPv4: 0/8, 127/8 and everything from 224/4 up, broadcast included,
    /// and an interface subnet's broadcast address; IPv6: ::, ::1, ff00::/8 and the
    /// IPv4-mapped ::ffff:0:0/96, RFC 6890), or an address the appliance itself answers
    /// for; and for IPv4, link-local (169.254/16), which no router forwards (RFC 3927 §7).
    /// IPv6's link-local sources are neighbour discovery's, for the kernel twin: the slow
    /// path refuses to forward them.
    #[inline]
    pub fn is_martian_source(&self, src: IpAddr) -> bool {
        match src {
            IpAddr::V4(a) => self.is_martian_v4(u32::from(a)),
            IpAddr::V6(a) => {
                a.is_unspecified()
                    || a.is_loopback()
                    || a.is_multicast()
                    || a.to_ipv4_mapped().is_some()
                    || self.addressees.contains_key(&src)
            }
        }
    }

    /// [`Forwarding::is_martian_source`] for an IPv4 source as a word (the fast path).
    #[inline]
    pub fn is_martian_v4(&self, src: u32) -> bool {
        crate::wire::in_martian_octet(src)
            || src >> 16 == 0xa9fe
            || (self.claimed_v4.may_hold(src) && self.claimed_v4.get(src).is_some())
    }

    /// Whether no packet may be forwarded to `dst`: unspecified, loopback, link-local or
    /// reserved (0/8, 127/8, 169.254/16, 240/4; `::`, `::1`, fe80::/10, ::ffff:0:0/96), or
    /// the broadcast address of an interface's IPv4 subnet (a directed broadcast). Group
    /// destinations are the slow path's own case.
    pub fn is_martian_destination(&self, dst: IpAddr) -> bool {
        let subnet_broadcast = |a: IpAddr| {
            let nets = self.interfaces.iter().flat_map(|i| &i.addresses);
            let v4 = nets.filter(|n| matches!(n, IpNet::V4(_)));
            v4.filter(|n| n.prefix_len() < 31)
                .any(|n| n.broadcast() == a)
        };
        match dst {
            IpAddr::V4(a) => {
                let first = u32::from(a) >> 24;
                first == 0
                    || first == 127
                    || first >= 240
                    || a.is_link_local()
                    || subnet_broadcast(dst)
            }
            IpAddr::V6(a) => {
                a.is_unspecified()
                    || a.is_loopback()
                    || a.segments()[0] & 0xffc0 == 0xfe80
                    || a.to_ipv4_mapped().is_some()
            }
        }
    }

    pub fn rule_state(&self, d: &Decision) -> &RuleState {
        &self.frontends[d.frontend as usize].rules[d.rule as usize]
    }

    /// Whether a packet from `src` came from the backend side: received on the interface a
    /// backend at that address is reached through, from the MAC its traffic goes to. Only
    /// such packets are a backend's replies; anyone else may claim its address.
    #[inline]
    pub fn from_backend_side(&self, src: IpAddr, ingress: InterfaceId, src_mac: MacAddr) -> bool {
        self.backend_sides.contains(&(src, ingress, src_mac))
    }

    /// For a packet from a backend of a non-floating rule: the frontend to restore.
    #[inline]
    pub fn reverse_nat(&self, src: IpAddr, proto: u8, src_port: u16) -> Option<ReverseNat> {
        self.reverse_nat
            .get(&(src, Some(proto), src_port))
            .or_else(|| self.reverse_nat.get(&(src, None, 0)))
            .copied()
    }

    /// The rules whose flows a NAT reply from `backend` may belong to, where the rules alone
    /// cannot map it back ([`reply_frontend`](super::decision::reply_frontend)); else none.
    #[inline]
    pub fn reply_candidates(&self, backend: IpAddr) -> &[(FrontendId, u32)] {
        if self.reply_candidates.is_empty() {
            return &[];
        }
        self.reply_candidates
            .get(&backend)
            .map_or(&[], Vec::as_slice)
    }

    /// Where a packet to `dst` leaves: longest-prefix match over on-link subnets and routes.
    #[inline]
    pub fn route(&self, dst: IpAddr) -> Option<Route> {
        self.routes
            .iter()
            .find(|(net, _)| net.contains(&dst))
            .map(|(net, r)| {
                // On-link prefixes carry the interface's own address as a placeholder.
                if self.own_addresses.contains_key(&r.next_hop) && net.contains(&r.next_hop) {
                    Route {
                        interface: r.interface,
                        next_hop: dst,
                    }
                } else {
                    *r
                }
            })
    }

    /// The tunnel to `backend`, when it is behind VXLAN (and its next hop is resolved).
    #[inline]
    pub fn tunnel(&self, backend: BackendId) -> Option<&VxlanLink> {
        self.tunnels.get(backend as usize)?.as_ref()
    }

    /// Whether any backend is behind VXLAN (else the data plane never looks for a tunnel).
    #[inline]
    pub fn has_vxlan(&self) -> bool {
        self.has_vxlan
    }

    /// The resolved MAC of a neighbour.
    #[inline]
    pub fn neighbour(&self, addr: IpAddr) -> Option<MacAddr> {
        self.neighbours.get(&addr).map(|n| n.mac)
    }

    /// The MAC the appliance holds `addr` at: a neighbour it verified, or an on-link
    /// backend's configured `mac`.
    pub fn known_mac(&self, addr: IpAddr) -> Option<MacAddr> {
        self.neighbour(addr)
            .or_else(|| self.configured_macs.get(&addr).copied())
    }

    /// A resolved neighbour and whether it is due for verification.
    #[inline]
    pub fn neighbour_entry(&self, addr: IpAddr) -> Option<Neighbour> {
        self.neighbours.get(&addr).copied()
    }

    /// Neighbours the data plane needs, resolved or not: next hops of backends without a
    /// configured MAC, and of backends behind VXLAN (the cache verifies them as they age).
    pub fn needed_neighbours(&self) -> Vec<(InterfaceId, IpAddr)> {
        self.next_hops(|b| b.resolves)
    }

    /// The [`needed_neighbours`](Self::needed_neighbours) not resolved yet.
    pub fn unresolved(&self) -> Vec<(InterfaceId, IpAddr)> {
        self.next_hops(|b| {
            let outer_unknown = b.vxlan.is_some_and(|(_, hop)| hop.is_none());
            b.resolves && (b.mac.is_none() || outer_unknown)
        })
    }

    fn next_hops(&self, which: impl Fn(&BackendState) -> bool) -> Vec<(InterfaceId, IpAddr)> {
        let mut out: Vec<(InterfaceId, IpAddr)> = self
            .backends
            .iter()
            .filter(|b| !b.retired && which(b))
            .filter_map(|b| b.route.map(|r| (r.interface, r.next_hop)))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// A MAC address as the low 48 bits of a little-endian word (its first octet lowest), as
/// the fast path reads it from a frame.
pub fn mac_word(mac: MacAddr) -> u64 {
    let mut w = [0u8; 8];
    w[..6].copy_from_slice(&mac.0);
    u64::from_le_bytes(w)
}

pub use crate::config::frontend_mac;

#[path = "forwarding_build.rs"]
mod build;

#[path = "forwarding_records.rs"]
mod records;
pub use records::{
    Addressee, BackendLink, Decision, Egress, NarrowTunnel, Neighbour, Observations, ReverseNat,
    VxlanLink, IPV6_MIN_MTU,
};

#[cfg(test)]
#[path = "forwarding_tests.rs"]
mod tests;
