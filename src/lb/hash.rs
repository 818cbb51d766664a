//! The flow hash: symmetric, seeded, and the same on every machine.
//!
//! Both directions of a flow must reach the same backend (DESIGN §2), and every instance with
//! the same `dataplane.hash_seed` must decide the same way (DESIGN §10). So the hash is taken
//! over a canonical encoding of the key, with its two endpoints in a fixed order, by a
//! portable function whose value depends only on the key and the seed, never on the process,
//! the platform's endianness or `std`'s randomly keyed hasher. Flows use a word-wise
//! multiply-rotate hash (it runs per packet); backend names use XXH3.
//!
//! Changing the encoding or the function changes which backend every flow goes to; the
//! pinned values in the tests are there to make such a change deliberate.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::flow::{FlowKey, V4Key};
use std::net::IpAddr;

const TAG_V4: u8 = 4;
const TAG_V6: u8 = 6;

/// The hash of a flow, identical for `key` and `key.reversed()`.
///
/// Encoding: protocol, then the lesser `(address, port)` endpoint, then the greater one, as
/// 64-bit words (an IPv4 endpoint is one word: family tag, address, port; an IPv6 one three),
/// absorbed by multiply-rotate steps and finished with MurmurHash3's 64-bit finaliser. It runs
/// on the per-packet path: a few multiplications, no buffer, no allocation, no branch but the
/// ordering. A key mixing families, which no packet yields, takes the general path.
#[inline]
pub fn symmetric_hash(key: &FlowKey, seed: u64) -> u64 {
    match (key.src, key.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => v4_hash(
            &V4Key::new(
                key.proto,
                u32::from(src),
                key.src_port,
                u32::from(dst),
                key.dst_port,
            ),
            seed,
        ),
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let a = (u128::from(src), key.src_port);
            let b = (u128::from(dst), key.dst_port);
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            let mut h = start(seed, key.proto);
            for w in v6_words(low.0, low.1)
                .into_iter()
                .chain(v6_words(high.0, high.1))
            {
                h = absorb(h, w);
            }
            finish(h)
        }
        _ => symmetric_hash_general(key, seed),
    }
}

/// [`symmetric_hash`] of an IPv4 flow from its canonical key (lower endpoint first, as the
/// encoding orders them): the fast path hashes without building a [`FlowKey`].
#[inline]
pub fn v4_hash(key: &V4Key, seed: u64) -> u64 {
    let low = v4_word((key.addrs >> 32) as u32, (key.ports >> 16) as u16);
    let high = v4_word(key.addrs as u32, key.ports as u16);
    finish(absorb(absorb(start(seed, key.proto), low), high))
}

/// Where a worker's flow table places an IPv4 flow: its canonical key (symmetric already)
/// under the worker's random `secret`. Unlike [`v4_hash`] it need not be the same on two
/// machines, only unpredictable to senders and quick, so it is one folded 64×64→128-bit
/// multiplication of the key's two words, each keyed by the secret (as foldhash and wyhash
/// mix): a few cycles of latency instead of [`v4_hash`]'s chain of five multiplications.
#[inline]
pub fn table_hash_v4(key: &V4Key, secret: u64) -> u64 {
    let addrs = key.addrs ^ secret;
    let rest = (u64::from(key.ports) << 8 | u64::from(key.proto)) ^ secret.rotate_left(32) ^ K;
    folded_multiply(addrs, rest)
}

/// The 128-bit product of `a` and `b`, its halves folded together by XOR.
#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The encoding endpoint by endpoint, for any mix of families; the reference the fast paths
/// of [`symmetric_hash`] must agree with.
fn symmetric_hash_general(key: &FlowKey, seed: u64) -> u64 {
    let a = (key.src, key.src_port);
    let b = (key.dst, key.dst_port);
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut h = start(seed, key.proto);
    for (addr, port) in [low, high] {
        match addr {
            IpAddr::V4(v4) => h = absorb(h, v4_word(u32::from(v4), port)),
            IpAddr::V6(v6) => {
                for w in v6_words(u128::from(v6), port) {
                    h = absorb(h, w);
                }
            }
        }
    }
    finish(h)
}

/// The golden-ratio constant: odd, with well-spread bits.
const K: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline]
fn start(seed: u64, proto: u8) -> u64 {
    absorb(seed ^ K, u64::from(proto))
}

#[inline]
fn absorb(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(K).rotate_left(29)
}

/// MurmurHash3's fmix64: every input bit reaches every output bit.
#[inline]
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// An IPv4 endpoint as one word: family tag, address, port.
#[inline]
fn v4_word(addr: u32, port: u16) -> u64 {
    (u64::from(TAG_V4) << 56) | (u64::from(addr) << 16) | u64::from(port)
}

#[inline]
fn v6_words(addr: u128, port: u16) -> [u64; 3] {
    [
        (addr >> 64) as u64,
        addr as u64,
        (u64::from(TAG_V6) << 56) | u64::from(port),
    ]
}

/// A seeded hash of arbitrary bytes, stable across processes and machines (backend instance
/// names for Maglev).
#[inline]
pub fn hash_bytes(bytes: &[u8], seed: u64) -> u64 {
    xxh3_64_with_seed(bytes, seed)
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
    const PINNED_V4_TCP: u64 = 0xd69f_c641_0caa_79d9;
    const PINNED_V6_UDP: u64 = 0xe5c7_6ba0_4ba4_e050;
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

    /// The keys a real link brings: one frontend, clients in a /16, ephemeral ports.
    fn clients(n: u32) -> Vec<V4Key> {
        (0..n)
            .map(|i| {
                let client = 0x0a40_0000 | (i / 64);
                V4Key::new(17, client, 40_000 + (i % 64) as u16, 0x0a00_0064, 53)
            })
            .collect()
    }

    #[test]
    fn the_table_hash_spreads_similar_flows_evenly_over_buckets() {
        // 65536 flows into 16384 buckets: 4 a bucket on average. A good hash's fullest
        // bucket holds about 14 (Poisson tail); a poor one piles them up.
        let buckets = 16_384usize;
        let mut load = vec![0u32; buckets];
        for k in clients(65_536) {
            load[table_hash_v4(&k, 0x5eed_1234_abcd_ef01) as usize & (buckets - 1)] += 1;
        }
        let max = *load.iter().max().unwrap();
        let empty = load.iter().filter(|&&l| l == 0).count();
        assert!(max <= 16, "fullest bucket holds {max}");
        // Poisson(4) leaves e^-4 ≈ 1.8 % empty.
        assert!(empty < buckets * 4 / 100, "{empty} empty buckets");
    }

    #[test]
    fn the_table_hash_depends_on_the_secret_and_every_field() {
        let k = clients(1)[0];
        let h = table_hash_v4(&k, 1);
        assert_ne!(h, table_hash_v4(&k, 2));
        for changed in [
            V4Key { proto: 6, ..k },
            V4Key {
                ports: k.ports ^ 1,
                ..k
            },
            V4Key {
                ports: k.ports ^ 1 << 16,
                ..k
            },
            V4Key {
                addrs: k.addrs ^ 1,
                ..k
            },
            V4Key {
                addrs: k.addrs ^ 1 << 32,
                ..k
            },
        ] {
            assert_ne!(table_hash_v4(&changed, 1), h, "{changed:?}");
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
