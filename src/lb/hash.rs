//! The flow hash: symmetric, seeded, and the same on every machine.
//!
//! Both directions of a flow must reach the same backend (DESIGN §2), and every instance with
//! the same `dataplane.hash_seed` must decide the same way (DESIGN §10). So the hash is taken
//! over a canonical encoding of the key, with its two endpoints in a fixed order, by a
//! portable function (XXH3) whose value depends only on bytes and seed, never on the process,
//! the platform's endianness or `std`'s randomly keyed hasher.
//!
//! Changing the encoding or the function changes which backend every flow goes to; the
//! pinned values in the tests are there to make such a change deliberate.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::flow::FlowKey;
use std::net::IpAddr;

/// Family tags, so that an IPv4 address and its IPv4-mapped IPv6 form never share an encoding.
const TAG_V4: u8 = 4;
const TAG_V6: u8 = 6;

/// proto + two endpoints of (tag, up to 16 address bytes, port).
const MAX_ENCODED_LEN: usize = 1 + 2 * (1 + 16 + 2);
/// The same with two IPv4 addresses.
const V4_ENCODED_LEN: usize = 1 + 2 * (1 + 4 + 2);

/// The hash of a flow, identical for `key` and `key.reversed()`.
///
/// Encoding: protocol, then the lesser `(address, port)` endpoint, then the greater one, each as
/// family tag, address octets in network order, port big-endian. No allocation. The two
/// same-family cases write that encoding at fixed offsets (no bounds checks, no branches but
/// the ordering); a key mixing families, which no packet yields, takes the general path.
#[inline]
pub fn symmetric_hash(key: &FlowKey, seed: u64) -> u64 {
    match (key.src, key.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let a = (u32::from(src), key.src_port);
            let b = (u32::from(dst), key.dst_port);
            let ((low, low_port), (high, high_port)) = if a <= b { (a, b) } else { (b, a) };
            let mut buf = [0u8; V4_ENCODED_LEN];
            buf[0] = key.proto;
            buf[1] = TAG_V4;
            buf[2..6].copy_from_slice(&low.to_be_bytes());
            buf[6..8].copy_from_slice(&low_port.to_be_bytes());
            buf[8] = TAG_V4;
            buf[9..13].copy_from_slice(&high.to_be_bytes());
            buf[13..15].copy_from_slice(&high_port.to_be_bytes());
            xxh3_64_with_seed(&buf, seed)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let a = (u128::from(src), key.src_port);
            let b = (u128::from(dst), key.dst_port);
            let ((low, low_port), (high, high_port)) = if a <= b { (a, b) } else { (b, a) };
            let mut buf = [0u8; MAX_ENCODED_LEN];
            buf[0] = key.proto;
            buf[1] = TAG_V6;
            buf[2..18].copy_from_slice(&low.to_be_bytes());
            buf[18..20].copy_from_slice(&low_port.to_be_bytes());
            buf[20] = TAG_V6;
            buf[21..37].copy_from_slice(&high.to_be_bytes());
            buf[37..39].copy_from_slice(&high_port.to_be_bytes());
            xxh3_64_with_seed(&buf, seed)
        }
        _ => symmetric_hash_general(key, seed),
    }
}

/// The encoding written endpoint by endpoint, for any mix of families; the reference the fast
/// paths of [`symmetric_hash`] must agree with.
fn symmetric_hash_general(key: &FlowKey, seed: u64) -> u64 {
    let a = (key.src, key.src_port);
    let b = (key.dst, key.dst_port);
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; MAX_ENCODED_LEN];
    buf[0] = key.proto;
    let len = put_endpoint(&mut buf, 1, low);
    let len = put_endpoint(&mut buf, len, high);
    xxh3_64_with_seed(&buf[..len], seed)
}

/// A seeded hash of arbitrary bytes, stable across processes and machines (backend instance
/// names for Maglev).
#[inline]
pub fn hash_bytes(bytes: &[u8], seed: u64) -> u64 {
    xxh3_64_with_seed(bytes, seed)
}

fn put_endpoint(buf: &mut [u8; MAX_ENCODED_LEN], at: usize, (addr, port): (IpAddr, u16)) -> usize {
    let after_addr = match addr {
        IpAddr::V4(v4) => {
            buf[at] = TAG_V4;
            buf[at + 1..at + 5].copy_from_slice(&v4.octets());
            at + 5
        }
        IpAddr::V6(v6) => {
            buf[at] = TAG_V6;
            buf[at + 1..at + 17].copy_from_slice(&v6.octets());
            at + 17
        }
    };
    buf[after_addr..after_addr + 2].copy_from_slice(&port.to_be_bytes());
    after_addr + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::flow::tests::arb_flow_key;
    use proptest::prelude::*;

    fn key(text: &str) -> FlowKey {
        text.parse().unwrap()
    }

    #[test]
    fn hash_is_pinned_so_instances_and_versions_agree() {
        // Every instance and every release must map a flow to the same hash, or flows move
        // between backends on upgrade. These values were computed once; do not update them
        // without meaning to re-balance every flow.
        assert_eq!(
            symmetric_hash(&key("tcp 10.0.0.1:1234 10.0.0.100:80"), 0),
            PINNED_V4_TCP
        );
        assert_eq!(
            symmetric_hash(&key("udp [2001:db8::1]:53 [2001:db8::2]:53"), 7),
            PINNED_V6_UDP
        );
        assert_eq!(hash_bytes(b"nva1", 0), PINNED_BYTES);
    }
    const PINNED_V4_TCP: u64 = 0x0107_c1b5_732b_65da;
    const PINNED_V6_UDP: u64 = 0x01f5_23b3_0206_1a50;
    const PINNED_BYTES: u64 = 0x504a_3457_701f_7d64;

    #[test]
    fn ipv4_and_ipv4_mapped_ipv6_hash_differently() {
        let v4 = key("udp 10.0.0.1:53 10.0.0.2:53");
        let mapped = key("udp [::ffff:10.0.0.1]:53 [::ffff:10.0.0.2]:53");
        assert_ne!(symmetric_hash(&v4, 0), symmetric_hash(&mapped, 0));
    }

    #[test]
    fn different_flows_between_the_same_hosts_hash_differently() {
        let seed = 0;
        let base = symmetric_hash(&key("tcp 10.0.0.1:1000 10.0.0.2:80"), seed);
        for other in [
            "tcp 10.0.0.1:80 10.0.0.2:1000",
            "udp 10.0.0.1:1000 10.0.0.2:80",
            "tcp 10.0.0.1:1001 10.0.0.2:80",
            "tcp 10.0.0.1:1000 10.0.0.3:80",
            "6 10.0.0.1:0 10.0.0.2:0",
        ] {
            assert_ne!(base, symmetric_hash(&key(other), seed), "{other}");
        }
    }

    #[test]
    fn seeds_change_the_hash_of_almost_every_key() {
        let keys: Vec<FlowKey> = (0..1000u32)
            .map(|i| FlowKey {
                proto: 6,
                src: IpAddr::from([10, 0, (i >> 8) as u8, i as u8]),
                dst: IpAddr::from([10, 1, 0, 1]),
                src_port: 1024 + i as u16,
                dst_port: 443,
            })
            .collect();
        for (s1, s2) in [(0, 1), (1, 2), (0, u64::MAX)] {
            let differing = keys
                .iter()
                .filter(|k| symmetric_hash(k, s1) != symmetric_hash(k, s2))
                .count();
            assert!(
                differing >= 999,
                "seeds {s1} and {s2}: only {differing} of 1000 differ"
            );
        }
    }

    proptest! {
        #[test]
        fn fast_paths_match_the_general_encoding(k in arb_flow_key(), seed in any::<u64>()) {
            prop_assert_eq!(symmetric_hash(&k, seed), symmetric_hash_general(&k, seed));
        }

        #[test]
        fn hash_is_the_same_in_both_directions(k in arb_flow_key(), seed in any::<u64>()) {
            prop_assert_eq!(symmetric_hash(&k, seed), symmetric_hash(&k.reversed(), seed));
        }

        #[test]
        fn hash_is_symmetric_for_arbitrary_ports_and_mixed_families(
            a in any::<[u8; 16]>(), b in any::<u32>(), pa in any::<u16>(), pb in any::<u16>(),
            proto in any::<u8>(), seed in any::<u64>()
        ) {
            let k = FlowKey {
                proto,
                src: IpAddr::from(a),
                dst: IpAddr::from(b.to_be_bytes()),
                src_port: pa,
                dst_port: pb,
            };
            prop_assert_eq!(symmetric_hash(&k, seed), symmetric_hash(&k.reversed(), seed));
        }
    }
}
