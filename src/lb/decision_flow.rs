//! A packet's flow as the decision sees it ([`Flow`]): its canonical key in the worker's
//! tables, the table hash, which way the packet travels, and what its TCP flags make of the
//! flow's state (the value remembered for it).

use std::net::IpAddr;

use super::{BackendId, Distribution, CLOSING, OPENING};
use crate::lb::flow::FlowKey;
use crate::lb::flow_table::V4Key;
use crate::lb::hash::symmetric_hash;
use crate::lb::hash::{table_hash_v4, v4_hash};
use crate::wire::{Ipv4Flow, TcpFlags};

/// A flow's key in the worker's tables: IPv4 in machine words for the bucket table, anything
/// else (IPv6) in canonical form for the side table.
///
/// `repr(u64)`: a whole word of tag, then the variant, so that copying a key moves aligned
/// words. With a byte of tag the fast path copied a key as bytes 1 to 24, in an unaligned
/// 16-byte store that the next load of the key's addresses could not be forwarded from: a
/// stall of a dozen cycles a packet (seen with `perf annotate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum TableKey {
    V4(V4Key),
    Wide(FlowKey),
}

/// A packet's flow as the decision needs it: its canonical table key, where it lives in the
/// worker's tables and which way the packet travels; the packet's own five-tuple is derived
/// from them when needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub key: TableKey,
    /// The symmetric hash under the worker's table secret
    /// ([`Flows::secret`](super::Flows::secret)), the same both ways: where the flow lives
    /// in the worker's tables. Unlike the decision's hash (under `hash_seed`,
    /// [`Flow::decision_hash`]) no sender can know it, so none can aim floods of flows at
    /// one bucket.
    pub table_hash: u64,
    /// The packet travels from the key's higher endpoint to its lower one.
    pub reversed: bool,
    /// TCP flag bits; 0 for other protocols.
    pub tcp_flags: u8,
}

impl Flow {
    /// The flow of a packet with five-tuple `packet`, in tables keyed by `secret`.
    #[inline]
    pub fn new(packet: FlowKey, tcp_flags: u8, secret: u64) -> Flow {
        let reversed = (packet.src, packet.src_port) > (packet.dst, packet.dst_port);
        let key = match (packet.src, packet.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => TableKey::V4(V4Key::new(
                packet.proto,
                u32::from(s),
                packet.src_port,
                u32::from(d),
                packet.dst_port,
            )),
            _ => TableKey::Wide(packet.canonical()),
        };
        let table_hash = match &key {
            TableKey::V4(k) => table_hash_v4(k, secret),
            TableKey::Wide(_) => symmetric_hash(&packet, secret),
        };
        Flow {
            key,
            table_hash,
            reversed,
            tcp_flags,
        }
    }

    /// An IPv4 flow from its canonical key, that key's hash under the table secret
    /// ([`table_hash_v4`](crate::lb::hash::table_hash_v4)) and whether the packet travels against
    /// the key's order ([`Flow::v4_order`]), as the fast path has them: the same flow [`Flow::new`]
    /// builds, without hashing a [`FlowKey`].
    #[inline]
    pub fn v4(packet: &Ipv4Flow, key: V4Key, table_hash: u64, reversed: bool) -> Flow {
        Flow {
            key: TableKey::V4(key),
            table_hash,
            reversed,
            tcp_flags: packet.tcp_flags(),
        }
    }

    /// An IPv4 packet's canonical key, and whether it travels from the key's higher endpoint
    /// to its lower one (the swap done on whole words).
    #[inline]
    pub fn v4_order(packet: &Ipv4Flow) -> (V4Key, bool) {
        let (addrs, ports) = (packet.addrs(), packet.ports());
        // Each endpoint as one number, address in the high half, port in the low: compared
        // address first, then port, as `Flow::new` compares them; without a branch, for
        // which way packets travel is no pattern a predictor learns.
        let src = addrs & !0xffff_ffff | u64::from(ports >> 16);
        let dst = addrs << 32 | u64::from(ports & 0xffff);
        let reversed = src > dst;
        let key = V4Key {
            addrs: if reversed {
                addrs.rotate_left(32)
            } else {
                addrs
            },
            ports: if reversed {
                ports.rotate_left(16)
            } else {
                ports
            },
            proto: packet.proto(),
        };
        (key, reversed)
    }

    /// The symmetric hash Maglev decides by, under `seed` (`dataplane.hash_seed`): the same
    /// on every instance with the same config. Of the fields `distribution` names: the
    /// unordered address pair always, the protocol and ports as the mode says (the table
    /// key is canonical, so leaving fields out keeps it symmetric). Needed only for a new
    /// decision.
    #[inline]
    pub fn decision_hash(&self, seed: u64, distribution: Distribution) -> u64 {
        let proto = match distribution {
            Distribution::FiveTuple => return self.five_tuple_hash(seed),
            Distribution::ClientIpProtocol => self.proto(),
            Distribution::ClientIp => 0,
        };
        match &self.key {
            TableKey::V4(k) => v4_hash(
                &V4Key {
                    proto,
                    ports: 0,
                    ..*k
                },
                seed,
            ),
            TableKey::Wide(k) => {
                let key = FlowKey {
                    proto,
                    src_port: 0,
                    dst_port: 0,
                    ..*k
                };
                symmetric_hash(&key, seed)
            }
        }
    }

    #[inline]
    fn five_tuple_hash(&self, seed: u64) -> u64 {
        match &self.key {
            TableKey::V4(k) => v4_hash(k, seed),
            TableKey::Wide(k) => symmetric_hash(k, seed),
        }
    }

    #[inline]
    pub fn proto(&self) -> u8 {
        match &self.key {
            TableKey::V4(k) => k.proto,
            TableKey::Wide(k) => k.proto,
        }
    }

    /// The packet's destination port (0 for protocols without ports).
    #[inline]
    pub fn dst_port(&self) -> u16 {
        match (&self.key, self.reversed) {
            (TableKey::V4(k), false) => k.ports as u16,
            (TableKey::V4(k), true) => (k.ports >> 16) as u16,
            (TableKey::Wide(k), false) => k.dst_port,
            (TableKey::Wide(k), true) => k.src_port,
        }
    }

    /// The packet's own five-tuple (three-tuple without ports), as it travels.
    pub fn packet(&self) -> FlowKey {
        let canonical = match &self.key {
            TableKey::V4(k) => FlowKey {
                proto: k.proto,
                src: IpAddr::V4(((k.addrs >> 32) as u32).into()),
                dst: IpAddr::V4((k.addrs as u32).into()),
                src_port: (k.ports >> 16) as u16,
                dst_port: k.ports as u16,
            },
            TableKey::Wide(k) => *k,
        };
        if self.reversed {
            canonical.reversed()
        } else {
            canonical
        }
    }

    /// A TCP FIN or RST (other protocols carry no flags: `tcp_flags` is 0).
    fn closes(&self) -> bool {
        self.tcp_flags & (TcpFlags::FIN | TcpFlags::RST) != 0
    }

    /// A TCP SYN without ACK, FIN or RST: a connection attempt, or its retransmission.
    pub(super) fn only_opens(&self) -> bool {
        let bits = TcpFlags::SYN | TcpFlags::ACK | TcpFlags::FIN | TcpFlags::RST;
        self.tcp_flags & bits == TcpFlags::SYN
    }

    /// The value to remember for this packet's flow on `backend`, given what was remembered
    /// (`before`, of this backend or the one the flow moves from; `None` for a flow seen
    /// first): closing once a FIN or RST was seen; opening while nothing but SYNs were, and
    /// after a flow's first packet of any other kind (an ACK, a datagram: a forged source
    /// sends one), until its next; a SYN on a closing flow opens it again (its five-tuple
    /// starts a new connection, after a RST or TIME-WAIT, which earns the idle timeout again
    /// with its handshake).
    pub(super) fn value(&self, backend: BackendId, before: Option<u32>) -> u32 {
        let Some(before) = before else {
            return backend | if self.closes() { CLOSING } else { OPENING };
        };
        if self.only_opens() {
            backend
                | if before & (OPENING | CLOSING) != 0 {
                    OPENING
                } else {
                    0
                }
        } else {
            backend
                | if before & CLOSING != 0 || self.closes() {
                    CLOSING
                } else {
                    0
                }
        }
    }

    /// Whether this packet may change its flow's state: a TCP SYN, FIN or RST.
    pub(super) fn changes_state(&self) -> bool {
        self.tcp_flags & (TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST) != 0
    }
}
