//! The small records the forwarding state is made of and read through: what the per-packet
//! path reads of a backend, how packets leave towards it, and what the state is built from.

use std::net::IpAddr;

use hashbrown::{HashMap, HashSet};

use super::{BackendId, FrontendId, InterfaceId, PoolId};
use crate::wire::{EthernetRepr, Ipv4Repr, MacAddr, UdpRepr};

/// What the per-packet path reads of a backend, in one small record built with the state
/// (the [`BackendState`](super::BackendState) it derives from spans two cache lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendLink {
    pub pool: PoolId,
    /// [`Forwarding::keeps_flow`](super::Forwarding::keeps_flow)'s answer for a flow of its
    /// own pool.
    pub keeps_flows: bool,
    /// Where its packets leave; None until its route and MAC are known.
    pub egress: Option<Egress>,
    /// Its address as a word, when IPv4 (the fast path's destination NAT).
    pub v4: Option<u32>,
    /// Its load balancer's and `instance`'s number in this state: the same for a backend's
    /// states under several probes and for one NVA's addresses in several pools (its NICs),
    /// which an established flow keeps together ([`counterpart`]).
    ///
    /// [`counterpart`]: super::Forwarding::counterpart
    pub instance: u32,
}

/// How a packet reaches a backend behind VXLAN: inside UDP to port 4789 of its address,
/// from the egress interface's own address, through the next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanLink {
    pub vni: u32,
    /// The outer frame's MACs: the next hop's, then the interface's.
    pub macs: [u8; 12],
    pub src: u32,
    pub dst: u32,
    /// The egress interface's MTU: the most the outer IP packet may carry.
    pub mtu: u16,
}

impl VxlanLink {
    /// The VXLAN header: flags (I: the VNI is valid), reserved, the 24-bit VNI, reserved.
    pub const HEADER: usize = 8;

    /// The outer headers around an inner frame: Ethernet, IPv4, UDP, VXLAN (50 bytes). An
    /// inner IP packet may be at most the egress interface's MTU less these.
    pub const OVERHEAD: usize = EthernetRepr::LEN + Ipv4Repr::LEN + UdpRepr::LEN + Self::HEADER;
}

/// The way out to a backend: the interface, and the addresses of the frame's new MAC header
/// (the backend's or its next hop's MAC, then the interface's own), in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    pub interface: InterfaceId,
    pub macs: [u8; 12],
}

/// An address the appliance answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressee {
    /// An interface's own address, held by its kernel twin.
    Own(InterfaceId),
    Frontend(FrontendId),
}

/// What a non-floating rule's reply gets rewritten to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReverseNat {
    pub frontend: IpAddr,
    /// The frontend port to restore: a TCP or UDP rule's (the backend's own where the rule
    /// does not translate it); None for HA ports.
    pub frontend_port: Option<u16>,
}

/// A new flow's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub frontend: FrontendId,
    pub rule: u32,
    pub backend: BackendId,
}

/// A resolved neighbour as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub mac: MacAddr,
    /// Not confirmed for a while: still used, and verified again once a packet needs it.
    pub stale: bool,
}

impl Neighbour {
    /// A neighbour just confirmed.
    pub fn fresh(mac: MacAddr) -> Neighbour {
        Neighbour { mac, stale: false }
    }
}

/// What the state is built from, besides the config.
#[derive(Debug, Default, Clone)]
pub struct Observations {
    /// Backend addresses down for every rule (`haports lookup --down`).
    pub down: HashSet<IpAddr>,
    /// (backend address, load balancer, probe) failing that probe: down for the rules that
    /// use it.
    pub down_probes: HashSet<(IpAddr, String, String)>,
    /// Resolved neighbours (address → MAC), from the control thread's neighbour cache.
    pub neighbours: HashMap<IpAddr, Neighbour>,
    /// Each interface's MAC, by interface index (empty offline).
    pub interface_macs: Vec<MacAddr>,
    /// Each interface's MTU, by interface index (empty offline: 1500).
    pub interface_mtus: Vec<u16>,
    /// Retired backend slots no flow entry can name any more (retired for longer than any
    /// entry lives): a backend new to the config may take one.
    pub reusable_backends: Vec<BackendId>,
}

/// IPv6's minimum link MTU (RFC 8200 §5): every link must carry packets this big whole.
pub const IPV6_MIN_MTU: usize = 1280;

/// A tunnel that cannot carry IPv6: an IPv6 frontend's rule reaches backends behind VXLAN
/// through an interface whose MTU leaves less than [`IPV6_MIN_MTU`] for the inner packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarrowTunnel {
    pub frontend: String,
    pub interface: String,
    pub mtu: u16,
}

impl std::fmt::Display for NarrowTunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IPv6 frontend `{}` has backends behind VXLAN through interface `{}`, whose MTU \
             {} leaves {} bytes inside the tunnel, under IPv6's minimum of {IPV6_MIN_MTU} \
             (VXLAN endpoints may not fragment, RFC 7348 §4.3): give the interface an MTU \
             of at least {}",
            self.frontend,
            self.interface,
            self.mtu,
            usize::from(self.mtu).saturating_sub(VxlanLink::OVERHEAD),
            IPV6_MIN_MTU + VxlanLink::OVERHEAD,
        )
    }
}
