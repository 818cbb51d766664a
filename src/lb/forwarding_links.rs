//! What the build derives for each backend and pool: the per-packet link and tunnel records,
//! the tier of backends new flows may go to, and where backends' own packets come from.

use std::net::IpAddr;

use super::super::*;

/// A backend's per-packet record: a flow stays on it while it is in service and healthy, or
/// while its pool has no backend for new flows (then it has nowhere better to go); and,
/// set after the build, while its pool settles ([`Forwarding::hold_flows`]).
pub(super) fn link_of(
    fwd: &Forwarding,
    b: &BackendState,
    tunnel: bool,
    instance: u32,
) -> BackendLink {
    let egress = b.route.zip(b.mac).and_then(|(route, dst_mac)| {
        let src_mac = fwd.interfaces.get(route.interface as usize)?.mac;
        let mut macs = [0; 12];
        macs[..6].copy_from_slice(&dst_mac.0);
        macs[6..].copy_from_slice(&src_mac.0);
        Some(Egress {
            interface: route.interface,
            macs,
        })
    });
    BackendLink {
        pool: b.pool,
        keeps_flows: !b.retired && (b.healthy || !fwd.pool_has_active(b.pool)),
        // Behind VXLAN, no way out until the tunnel's next hop is resolved.
        egress: egress.filter(|_| b.vxlan.is_none() || tunnel),
        v4: match b.address {
            IpAddr::V4(a) => Some(u32::from(a)),
            IpAddr::V6(_) => None,
        },
        instance,
    }
}

impl Forwarding {
    /// Whether new flows may go to `backend`: it is in its pool's active tier (healthy, in
    /// service, weighted, of the best priority serving).
    pub fn takes_new(&self, backend: BackendId) -> bool {
        self.takes_new.get(backend as usize) == Some(&true)
    }

    /// The backend that keeps `backend`'s flows now, and its link: itself, where it keeps
    /// them; where a reload retired it as it gave its rule another probe, the same backend in
    /// the new pool state, as `decide` follows it ([`Forwarding::counterpart`]); else none
    /// (down, or gone). For what a worker holds across a reload: packets waiting for a MAC,
    /// the later fragments of a datagram.
    pub fn keeping_flows_of(&self, backend: BackendId) -> Option<(BackendId, &BackendLink)> {
        let own = self.link(backend)?;
        let (id, link) = match self.successors.get(&backend) {
            Some(&next) if !own.keeps_flows => (next, self.link(next)?),
            _ => (backend, own),
        };
        link.keeps_flows.then_some((id, link))
    }

    /// The pools that have a backend for new flows but had none in `previous` (the same
    /// pool state there: ids are kept across states).
    pub fn regained(&self, previous: &Forwarding) -> Vec<PoolId> {
        let had_none = |id: usize| previous.pools.get(id).is_some_and(|p| p.active.is_empty());
        (self.pools.iter().enumerate())
            .filter(|&(id, p)| !p.retired && !p.active.is_empty() && had_none(id))
            .map(|(id, _)| id as PoolId)
            .collect()
    }

    /// Lets every backend of `pool` (not retired) keep its established flows, down or not,
    /// as all did while the pool had no backend for new flows: while its backends come back
    /// one probe at a time, the first back would otherwise take the flows of all the others.
    pub fn hold_flows(&mut self, pool: PoolId) {
        let Some(p) = self.pools.get(pool as usize) else {
            return;
        };
        for &b in &p.members {
            if self.backends.get(b as usize).is_some_and(|b| !b.retired) {
                if let Some(link) = self.links.get_mut(b as usize) {
                    link.keeps_flows = true;
                }
            }
        }
    }
}

/// Each retired backend's successor, where its config pool still has it (the same instance
/// and address) in another pool state: see [`Forwarding::keeping_flows_of`]. (Not where it
/// left its pool: its flows are decided again, as `decide` does.)
pub(super) fn successors(
    backends: &[BackendState],
    pools: &[PoolState],
) -> HashMap<BackendId, BackendId> {
    let name = |b: &BackendState| {
        let pool = pools.get(b.pool as usize).map(|p| p.name.clone());
        (b.load_balancer.clone(), pool, b.instance.clone(), b.address)
    };
    let live: HashMap<_, BackendId> = (backends.iter().zip(0..))
        .filter(|(b, _)| !b.retired)
        .map(|(b, id)| (name(b), id))
        .collect();
    (backends.iter().zip(0..))
        .filter(|(b, _)| b.retired)
        .filter_map(|(b, id)| Some((id, *live.get(&name(b))?)))
        .collect()
}

/// Behind VXLAN: the inner frame goes to the backend's own MAC (its link's egress), the outer
/// packet to the next hop, from the interface's address on the next hop's subnet.
pub(super) fn tunnel_of(fwd: &Forwarding, b: &BackendState) -> Option<VxlanLink> {
    let ((vni, next_hop), route) = b.vxlan.zip(b.route)?;
    let IpAddr::V4(dst) = b.address else {
        return None;
    };
    let interface = fwd.interfaces.get(route.interface as usize)?;
    let mut macs = [0; 12];
    macs[..6].copy_from_slice(&next_hop?.0);
    macs[6..].copy_from_slice(&interface.mac.0);
    let src = interface
        .addresses
        .iter()
        .find_map(|n| match (n, route.next_hop) {
            (ipnet::IpNet::V4(n), IpAddr::V4(hop)) if n.contains(&hop) => Some(n.addr()),
            _ => None,
        })?;
    Some(VxlanLink {
        vni,
        macs,
        src: u32::from(src),
        dst: u32::from(dst),
        mtu: interface.mtu,
    })
}

/// The best-priority tier (lowest number) that has a backend able to take new flows.
pub(super) fn active_tier(backends: &[BackendState], members: &[BackendId]) -> Vec<BackendId> {
    let usable = |b: &&BackendId| {
        let be = &backends[**b as usize];
        be.healthy && be.weight > 0 && !be.drain
    };
    let best = members
        .iter()
        .filter(usable)
        .map(|&b| backends[b as usize].priority)
        .min();
    match best {
        None => Vec::new(),
        Some(p) => members
            .iter()
            .filter(usable)
            .filter(|&&b| backends[b as usize].priority == p)
            .copied()
            .collect(),
    }
}

pub(super) fn same_members(
    prev: &Forwarding,
    pool: &PoolState,
    next: &Forwarding,
    active: &[BackendId],
) -> bool {
    pool.active.len() == active.len()
        && pool.active.iter().zip(active).all(|(&a, &b)| {
            let (x, y) = (&prev.backends[a as usize], &next.backends[b as usize]);
            x.instance == y.instance && x.weight == y.weight
        })
        && prev.hash_seed == next.hash_seed
}

impl Forwarding {
    /// Every IPv6 frontend whose rules reach a backend behind VXLAN through an interface too
    /// narrow for IPv6 inside the tunnel, once per frontend and interface. Such a packet
    /// could only be answered with a "packet too big" under 1280 bytes, which hosts need
    /// not heed (RFC 8201 §4): the appliance refuses the config instead.
    pub fn narrow_ipv6_tunnels(&self) -> Vec<NarrowTunnel> {
        let mut out: Vec<NarrowTunnel> = Vec::new();
        for fe in self.frontends.iter().filter(|f| f.address.is_ipv6()) {
            let pools = fe
                .rules
                .iter()
                .filter_map(|r| self.pools.get(r.pool as usize));
            let backends = pools.flat_map(|p| &p.members);
            let tunnelled = backends
                .filter_map(|&b| self.backends.get(b as usize))
                .filter(|b| b.vxlan.is_some());
            for route in tunnelled.filter_map(|b| b.route) {
                let Some(ifc) = self.interfaces.get(route.interface as usize) else {
                    continue;
                };
                let narrow = NarrowTunnel {
                    frontend: fe.name.clone(),
                    interface: ifc.name.clone(),
                    mtu: ifc.mtu,
                };
                if usize::from(ifc.mtu) < IPV6_MIN_MTU + VxlanLink::OVERHEAD
                    && !out.contains(&narrow)
                {
                    out.push(narrow);
                }
            }
        }
        out
    }
}

/// Where each backend's own packets come from ([`Forwarding::from_backend_side`]): its
/// interface and the MAC its traffic goes to; and each gateway to backends, from its own MAC.
pub(super) fn backend_sides(fwd: &Forwarding) -> HashSet<(IpAddr, InterfaceId, MacAddr)> {
    fwd.backends
        .iter()
        .filter(|b| !b.retired)
        .flat_map(|b| {
            let Some(route) = b.route else {
                return [None, None];
            };
            // Its own (probe answers): behind VXLAN from the tunnel's next hop, which carries
            // them unwrapped, not from the tunnel's inner MAC.
            let from = match b.vxlan {
                Some((_, next_hop)) => next_hop,
                None => b.mac,
            };
            // Its gateway's own: the answers to the kernel twin's neighbour solicitations,
            // without which the probes would not leave.
            let gateway = (route.next_hop != b.address)
                .then(|| fwd.neighbours.get(&route.next_hop))
                .flatten()
                .map(|n| (route.next_hop, route.interface, n.mac));
            [from.map(|m| (b.address, route.interface, m)), gateway]
        })
        .flatten()
        .collect()
}
