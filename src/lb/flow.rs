//! The flow key: what one load-balancing decision is made for.
//!
//! A TCP or UDP flow is its five-tuple; any other IP protocol (ICMP, ESP, GRE…) is balanced
//! by its three-tuple, with both ports 0. `Display` and `FromStr` speak the FLOW syntax of
//! `haports lookup` (DESIGN §5): `tcp|udp SRC:PORT DST:PORT` or `PROTO SRC DST`, IPv6 in
//! brackets when a port follows it and bare otherwise.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::wire::Headers;

/// IP protocol numbers (IANA) that the flow syntax names.
pub mod proto {
    /// Internet Control Message Protocol (IPv4).
    pub const ICMP: u8 = 1;
    /// Transmission Control Protocol.
    pub const TCP: u8 = 6;
    /// User Datagram Protocol.
    pub const UDP: u8 = 17;
    /// Internet Control Message Protocol for IPv6.
    pub const ICMPV6: u8 = 58;

    /// Whether flows of this protocol are told apart by ports (five-tuple) rather than by
    /// addresses alone (three-tuple).
    pub const fn has_ports(proto: u8) -> bool {
        matches!(proto, TCP | UDP)
    }
}

/// One direction of a flow: protocol, source and destination endpoints.
///
/// Both addresses are of the same IP version in every key built from a packet; the type does
/// not enforce it, and hashing works either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// IP protocol number (6 TCP, 17 UDP, …).
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// 0 for protocols without ports.
    pub src_port: u16,
    /// 0 for protocols without ports.
    pub dst_port: u16,
}

impl FlowKey {
    /// The packet's own five-tuple (three-tuple without ports), as its headers say.
    pub fn of(h: &Headers) -> FlowKey {
        FlowKey {
            proto: h.proto,
            src: h.src,
            dst: h.dst,
            src_port: h.src_port,
            dst_port: h.dst_port,
        }
    }

    /// The same flow seen from the other side: source and destination swapped.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
        }
    }

    /// The key both directions of a flow share: the lower (address, port) endpoint first.
    /// The flow table stores flows under it, so a transit flow's two directions are one
    /// entry and always stay on one backend.
    pub fn canonical(&self) -> FlowKey {
        if (self.src, self.src_port) <= (self.dst, self.dst_port) {
            *self
        } else {
            self.reversed()
        }
    }

    /// A key for a protocol balanced by addresses only (ICMP, ESP, GRE…): ports are 0.
    pub fn three_tuple(proto: u8, src: IpAddr, dst: IpAddr) -> FlowKey {
        FlowKey {
            proto,
            src,
            dst,
            src_port: 0,
            dst_port: 0,
        }
    }
}

/// A canonical IPv4 flow key as machine words: the lower `(address, port)` endpoint first, as
/// [`FlowKey::canonical`] orders them, so both directions of a
/// flow are one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct V4Key {
    /// Lower address << 32 | higher address.
    pub addrs: u64,
    /// Lower endpoint's port << 16 | higher endpoint's port.
    pub ports: u32,
    pub proto: u8,
}

impl V4Key {
    #[inline]
    pub fn new(proto: u8, src: u32, src_port: u16, dst: u32, dst_port: u16) -> V4Key {
        let ((a, ap), (b, bp)) = if (src, src_port) <= (dst, dst_port) {
            ((src, src_port), (dst, dst_port))
        } else {
            ((dst, dst_port), (src, src_port))
        };
        V4Key {
            addrs: u64::from(a) << 32 | u64::from(b),
            ports: u32::from(ap) << 16 | u32::from(bp),
            proto,
        }
    }
}

/// Writes the FLOW syntax of `haports lookup`. Ports are written only for TCP and UDP, so a
/// key of another protocol with non-zero ports does not survive a round trip through text.
impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proto {
            proto::TCP | proto::UDP => {
                let name = if self.proto == proto::TCP {
                    "tcp"
                } else {
                    "udp"
                };
                write!(
                    f,
                    "{name} {} {}",
                    SocketAddr::new(self.src, self.src_port),
                    SocketAddr::new(self.dst, self.dst_port)
                )
            }
            proto::ICMP => write!(f, "icmp {} {}", self.src, self.dst),
            proto::ICMPV6 => write!(f, "icmpv6 {} {}", self.src, self.dst),
            other => write!(f, "{other} {} {}", self.src, self.dst),
        }
    }
}

/// Why text is not a FLOW.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowParseError {
    #[error(
        "expected a flow as `PROTO SRC DST` (three fields, e.g. `tcp 10.0.0.1:1234 10.0.0.100:80`), found {found} field(s)"
    )]
    FieldCount { found: usize },
    #[error("unknown protocol `{0}`: use tcp, udp, icmp, icmpv6 or a protocol number 0-255")]
    UnknownProtocol(String),
    #[error(
        "`{proto}` flows need ports: write `{endpoint}` as ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)"
    )]
    MissingPort { proto: String, endpoint: String },
    #[error("protocol `{proto}` has no ports: write the bare address instead of `{endpoint}`")]
    UnexpectedPort { proto: String, endpoint: String },
    #[error("`{0}` is not ADDRESS:PORT (IPv6 in brackets, e.g. [2001:db8::1]:443)")]
    BadEndpoint(String),
    #[error("`{0}` is not an IP address (IPv6 without brackets when there is no port)")]
    BadAddress(String),
    #[error("source `{src}` and destination `{dst}` are not the same IP version")]
    MixedFamilies { src: String, dst: String },
}

impl FromStr for FlowKey {
    type Err = FlowParseError;

    fn from_str(s: &str) -> Result<FlowKey, FlowParseError> {
        let fields: Vec<&str> = s.split_whitespace().collect();
        let &[proto_text, src_text, dst_text] = fields.as_slice() else {
            return Err(FlowParseError::FieldCount {
                found: fields.len(),
            });
        };
        let proto = parse_proto(proto_text)?;
        let key = if proto::has_ports(proto) {
            let src = parse_endpoint(proto_text, src_text)?;
            let dst = parse_endpoint(proto_text, dst_text)?;
            FlowKey {
                proto,
                src: src.ip(),
                dst: dst.ip(),
                src_port: src.port(),
                dst_port: dst.port(),
            }
        } else {
            let src = parse_bare_address(proto_text, src_text)?;
            let dst = parse_bare_address(proto_text, dst_text)?;
            FlowKey::three_tuple(proto, src, dst)
        };
        if key.src.is_ipv4() != key.dst.is_ipv4() {
            return Err(FlowParseError::MixedFamilies {
                src: src_text.to_owned(),
                dst: dst_text.to_owned(),
            });
        }
        Ok(key)
    }
}

fn parse_proto(text: &str) -> Result<u8, FlowParseError> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Ok(proto::TCP),
        "udp" => Ok(proto::UDP),
        "icmp" => Ok(proto::ICMP),
        "icmpv6" => Ok(proto::ICMPV6),
        number if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => number
            .parse::<u8>()
            .map_err(|_| FlowParseError::UnknownProtocol(text.to_owned())),
        _ => Err(FlowParseError::UnknownProtocol(text.to_owned())),
    }
}

fn parse_endpoint(proto_text: &str, text: &str) -> Result<SocketAddr, FlowParseError> {
    match text.parse::<SocketAddr>() {
        // A scope id (`%eth0`) has no place in a flow key; refuse it rather than drop it.
        Ok(SocketAddr::V6(v6)) if v6.scope_id() != 0 => {
            Err(FlowParseError::BadEndpoint(text.to_owned()))
        }
        Ok(endpoint) => Ok(endpoint),
        Err(_) if text.parse::<IpAddr>().is_ok() => Err(FlowParseError::MissingPort {
            proto: proto_text.to_owned(),
            endpoint: text.to_owned(),
        }),
        Err(_) => Err(FlowParseError::BadEndpoint(text.to_owned())),
    }
}

fn parse_bare_address(proto_text: &str, text: &str) -> Result<IpAddr, FlowParseError> {
    match text.parse::<IpAddr>() {
        Ok(address) => Ok(address),
        Err(_) if text.parse::<SocketAddr>().is_ok() => Err(FlowParseError::UnexpectedPort {
            proto: proto_text.to_owned(),
            endpoint: text.to_owned(),
        }),
        Err(_) => Err(FlowParseError::BadAddress(text.to_owned())),
    }
}

#[cfg(test)]
pub(crate) mod tests {

    #[test]
    fn both_directions_have_one_canonical_key() {
        let k: FlowKey = "tcp 10.2.0.10:22 10.1.0.10:40000".parse().unwrap();
        assert_eq!(k.canonical(), k.reversed().canonical());
        assert_eq!(k.canonical().src, "10.1.0.10".parse::<IpAddr>().unwrap());
        let same_addr: FlowKey = "udp 10.0.0.1:53 10.0.0.1:5353".parse().unwrap();
        assert_eq!(same_addr.canonical(), same_addr.reversed().canonical());
    }

    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Any v4 or v6 flow key whose text form is exact: ports only for TCP and UDP, both
    /// addresses of one version. Mostly TCP and UDP (with ports, what the data plane
    /// balances), and in one case of eight both addresses the same, so that the order of two
    /// endpoints falls to their ports.
    pub(crate) fn arb_flow_key() -> impl Strategy<Value = FlowKey> {
        fn pair<T: Copy>(a: T, b: T, same: u8) -> (T, T) {
            if same == 0 {
                (a, a)
            } else {
                (a, b)
            }
        }
        let v4 = (any::<u32>(), any::<u32>(), 0u8..8).prop_map(move |(a, b, same)| {
            let (a, b) = pair(a, b, same);
            (IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b)))
        });
        let v6 = (any::<u128>(), any::<u128>(), 0u8..8).prop_map(move |(a, b, same)| {
            let (a, b) = pair(a, b, same);
            (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)))
        });
        let proto = prop_oneof![4 => prop_oneof![Just(6u8), Just(17u8)], 1 => any::<u8>()];
        (prop_oneof![v4, v6], proto, any::<u16>(), any::<u16>()).prop_map(
            |((src, dst), proto, src_port, dst_port)| {
                if proto::has_ports(proto) {
                    FlowKey {
                        proto,
                        src,
                        dst,
                        src_port,
                        dst_port,
                    }
                } else {
                    FlowKey::three_tuple(proto, src, dst)
                }
            },
        )
    }

    fn key(text: &str) -> FlowKey {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn display_writes_the_lookup_flow_syntax() {
        let tcp = FlowKey {
            proto: proto::TCP,
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.100".parse().unwrap(),
            src_port: 1234,
            dst_port: 80,
        };
        assert_eq!(tcp.to_string(), "tcp 10.0.0.1:1234 10.0.0.100:80");
        let udp = FlowKey {
            proto: proto::UDP,
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
            src_port: 53,
            dst_port: 53,
        };
        assert_eq!(udp.to_string(), "udp [2001:db8::1]:53 [2001:db8::2]:53");
        let icmp = FlowKey::three_tuple(
            proto::ICMP,
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
        );
        assert_eq!(icmp.to_string(), "icmp 10.0.0.1 10.0.0.2");
        let gre = FlowKey::three_tuple(47, "fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        assert_eq!(gre.to_string(), "47 fd00::1 fd00::2");
        let icmpv6 =
            FlowKey::three_tuple(58, "fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        assert_eq!(icmpv6.to_string(), "icmpv6 fd00::1 fd00::2");
    }

    #[test]
    fn parse_accepts_names_numbers_and_extra_whitespace() {
        assert_eq!(key("  TCP\t10.0.0.1:1 10.0.0.2:2 ").proto, proto::TCP);
        assert_eq!(key("6 10.0.0.1:1 10.0.0.2:2").proto, proto::TCP);
        assert_eq!(key("17 [::1]:1 [::2]:2").dst_port, 2);
        assert_eq!(key("icmpv6 ::1 ::2").proto, proto::ICMPV6);
        assert_eq!(key("0 1.2.3.4 5.6.7.8").proto, 0);
        assert_eq!(key("255 1.2.3.4 5.6.7.8").proto, 255);
        let esp = key("50 10.0.0.1 10.0.0.2");
        assert_eq!((esp.src_port, esp.dst_port), (0, 0));
    }

    #[test]
    fn reversed_swaps_endpoints_and_is_an_involution() {
        let k = key("tcp 10.0.0.1:1234 10.0.0.100:80");
        assert_eq!(k.reversed(), key("tcp 10.0.0.100:80 10.0.0.1:1234"));
        assert_eq!(k.reversed().reversed(), k);
    }

    #[test]
    fn parse_rejects_garbage_with_a_reason() {
        use FlowParseError as E;
        type Expect = fn(&FlowParseError) -> bool;
        let cases: &[(&str, Expect)] = &[
            ("", |e| matches!(e, E::FieldCount { found: 0 })),
            ("tcp 10.0.0.1:1", |e| {
                matches!(e, E::FieldCount { found: 2 })
            }),
            ("tcp 1.1.1.1:1 2.2.2.2:2 x", |e| {
                matches!(e, E::FieldCount { found: 4 })
            }),
            ("sctp 1.1.1.1 2.2.2.2", |e| {
                matches!(e, E::UnknownProtocol(_))
            }),
            ("256 1.1.1.1 2.2.2.2", |e| {
                matches!(e, E::UnknownProtocol(_))
            }),
            ("-1 1.1.1.1 2.2.2.2", |e| matches!(e, E::UnknownProtocol(_))),
            ("tcp 1.1.1.1 2.2.2.2:80", |e| {
                matches!(e, E::MissingPort { .. })
            }),
            ("udp [::1]:53 ::2", |e| matches!(e, E::MissingPort { .. })),
            ("icmp 1.1.1.1:1 2.2.2.2", |e| {
                matches!(e, E::UnexpectedPort { .. })
            }),
            ("icmpv6 [::1]:1 ::2", |e| {
                matches!(e, E::UnexpectedPort { .. })
            }),
            ("icmpv6 [::1] ::2", |e| matches!(e, E::BadAddress(_))),
            ("tcp 1.1.1.1:99999 2.2.2.2:1", |e| {
                matches!(e, E::BadEndpoint(_))
            }),
            ("tcp ::1:80 [::2]:80", |e| {
                matches!(e, E::MissingPort { .. })
            }),
            ("tcp [fe80::1%2]:80 [fe80::2]:80", |e| {
                matches!(e, E::BadEndpoint(_))
            }),
            ("udp host:53 1.1.1.1:53", |e| matches!(e, E::BadEndpoint(_))),
            ("47 1.1.1 2.2.2.2", |e| matches!(e, E::BadAddress(_))),
            ("tcp 1.1.1.1:1 [::1]:1", |e| {
                matches!(e, E::MixedFamilies { .. })
            }),
            ("icmp 1.1.1.1 ::1", |e| matches!(e, E::MixedFamilies { .. })),
        ];
        for (text, expected) in cases {
            match text.parse::<FlowKey>() {
                Ok(k) => panic!("{text:?} parsed as {k}"),
                Err(e) => {
                    assert!(expected(&e), "{text:?}: unexpected error {e:?}");
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn errors_name_the_offending_text() {
        let e = "tcp 10.0.0.1 10.0.0.2:80".parse::<FlowKey>().unwrap_err();
        assert!(e.to_string().contains("`10.0.0.1`"), "{e}");
        let e = "gre 10.0.0.1 10.0.0.2".parse::<FlowKey>().unwrap_err();
        assert!(e.to_string().contains("`gre`"), "{e}");
    }

    proptest! {
        #[test]
        fn display_and_parse_round_trip(k in arb_flow_key()) {
            let text = k.to_string();
            prop_assert_eq!(text.parse::<FlowKey>(), Ok(k), "{}", text);
        }

        #[test]
        fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,60}") {
            let _ = text.parse::<FlowKey>();
        }

        #[test]
        fn parse_never_panics_on_flow_like_text(
            text in "(tcp|udp|icmp|icmpv6|[0-9]{1,4}|x) [0-9a-f:.\\[\\]%]{0,20} [0-9a-f:.\\[\\]]{0,20}"
        ) {
            if let Ok(k) = text.parse::<FlowKey>() {
                // Whatever parses, prints back to something that parses to the same key.
                prop_assert_eq!(k.to_string().parse::<FlowKey>(), Ok(k));
            }
        }
    }
}
