//! What the data plane does with a packet, and why it drops one.

use crate::wire;

/// Why a packet was dropped; each reason is a `haports_drops_total{reason}` counter.
///
/// 32 bits wide, like every field of the data plane's `Action`, so that an action is copied as
/// whole words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum DropReason {
    /// Shorter than its headers say.
    Truncated,
    /// Inconsistent lengths or fields.
    Malformed,
    /// A protocol or form haports does not handle (yet): multi-segment mbufs, unknown
    /// ethertypes, ARP operations other than request/reply…
    Unsupported,
    /// Addressed at layer 2 to another host (seen because the segment flooded it), group
    /// traffic other than neighbour discovery, or for another interface's own address.
    NotForUs,
    /// Addressed to a frontend, but no rule of it matches the protocol and port.
    NoRule,
    /// Addressed to neither a frontend nor the appliance, and no rule allows transit.
    NoFrontend,
    /// The rule's pool has no healthy backend for a new flow, or a packet held for a
    /// backend's MAC found it no longer keeping its flows (down, and its pool not holding
    /// them) or removed meanwhile.
    NoHealthyBackend,
    /// The next hop's MAC address is not resolved: a backend's not yet, or a packet held for
    /// its next hop got no answer in time (or too many were held).
    NoNeighbour,
    /// A later IP fragment whose first fragment was not seen (or is too old), a backend's
    /// reply's from elsewhere than the backend side, one whose backend no longer keeps its
    /// flows, or a TCP fragment 8 bytes in (RFC 1858).
    Fragment,
    /// TTL / hop limit zero on arrival.
    Ttl,
    /// The TX queue (or the exception path towards the kernel twin) was full.
    TxFull,
    /// A source no real sender has: broadcast (an interface subnet's too), multicast,
    /// loopback, unspecified, link-local (169.254/16; fe80::/10 beyond what the kernel twin
    /// takes), or the appliance's own or its frontends' addresses; and a frame of the kernel
    /// twin's from an address that is none of the interfaces' own.
    MartianSource,
    /// TCP flags no stack sends (SYN with FIN or RST, or none of FIN, SYN, RST, PSH, ACK
    /// and URG).
    TcpFlags,
    /// An IPv4 header whose checksum is wrong (by our check, which the device's verdict of
    /// right spares).
    IpChecksum,
    /// For the kernel twin, over its rate (`dataplane.kernel_pps`).
    KernelLimit,
    /// VLAN-tagged: no interface is configured for a VLAN.
    Vlan,
    /// More IPv6 extension headers than are walked to the transport header.
    ExtensionHeaders,
    /// For a backend behind VXLAN, too big for the interface's MTU once encapsulated, and
    /// neither split (IPv4 without DF, but with IP options, or no buffer or room for its
    /// fragments) nor answered with an ICMP error (itself an ICMP error or a later IPv4
    /// fragment, no own address to answer from, or the errors' rate spent).
    TooBig,
    /// A destination no packet may be forwarded to: unspecified, loopback, link-local,
    /// reserved (240/4), or an interface subnet's broadcast address.
    MartianDestination,
    /// For the kernel twin, an ARP packet or IPv6 neighbour message that places an address at
    /// another MAC than the one the appliance verified (the twin would learn it, and send its
    /// probes there); the control thread verifies the address again. Also a neighbour
    /// advertisement placing a frontend at another MAC, and a duplicate-address probe for a
    /// frontend beyond the defences' rate (`DEFENCES_PER_SECOND`).
    NeighbourConflict,
}

impl DropReason {
    pub const ALL: [DropReason; 20] = [
        DropReason::Truncated,
        DropReason::Malformed,
        DropReason::Unsupported,
        DropReason::NotForUs,
        DropReason::NoRule,
        DropReason::NoFrontend,
        DropReason::NoHealthyBackend,
        DropReason::NoNeighbour,
        DropReason::Fragment,
        DropReason::Ttl,
        DropReason::TxFull,
        DropReason::MartianSource,
        DropReason::TcpFlags,
        DropReason::IpChecksum,
        DropReason::KernelLimit,
        DropReason::Vlan,
        DropReason::ExtensionHeaders,
        DropReason::TooBig,
        DropReason::MartianDestination,
        DropReason::NeighbourConflict,
    ];
    pub const COUNT: usize = Self::ALL.len();

    /// The `reason` label of the drop counter, and the REASON of `haports lookup`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::Malformed => "malformed",
            DropReason::Unsupported => "unsupported",
            DropReason::NotForUs => "not_for_us",
            DropReason::NoRule => "no_rule",
            DropReason::NoFrontend => "no_frontend",
            DropReason::NoHealthyBackend => "no_healthy_backend",
            DropReason::NoNeighbour => "no_neighbour",
            DropReason::Fragment => "fragment",
            DropReason::Ttl => "ttl",
            DropReason::TxFull => "tx_full",
            DropReason::MartianSource => "martian_source",
            DropReason::TcpFlags => "tcp_flags",
            DropReason::IpChecksum => "ip_checksum",
            DropReason::KernelLimit => "kernel_limit",
            DropReason::Vlan => "vlan",
            DropReason::ExtensionHeaders => "extension_headers",
            DropReason::TooBig => "too_big",
            DropReason::MartianDestination => "martian_destination",
            DropReason::NeighbourConflict => "neighbour_conflict",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl From<wire::Error> for DropReason {
    fn from(e: wire::Error) -> Self {
        match e {
            wire::Error::Truncated => DropReason::Truncated,
            wire::Error::Malformed => DropReason::Malformed,
            wire::Error::Unsupported => DropReason::Unsupported,
            wire::Error::ExtensionHeaders => DropReason::ExtensionHeaders,
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_match_the_table() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r}");
        }
    }
}
