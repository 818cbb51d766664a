//! The Internet checksum: the one's-complement sum of RFC 1071, its incremental update from
//! RFC 1624, and the pseudo-header sums that TCP, UDP and ICMPv6 checksums cover.
//!
//! Sums (`ones_complement_sum`, `pseudo_header_*`) are folded to 16 bits but not complemented;
//! checksums (the value stored in a header) are the complement of a sum. Every function here is
//! total: none panics, whatever the input.
//!
//! Rewriting an IP address changes the IPv4 header checksum *and* the transport checksum,
//! because TCP, UDP and ICMPv6 cover a pseudo-header holding both addresses. The views'
//! `set_src`/`set_dst` fix only their own header; `wire::rewrite_ipv4_dst` and friends fix both.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::IpProtocol;

/// Adds `data` as big-endian 16-bit words to `acc`, an odd trailing byte padded with zero.
fn accumulate(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds the carries back in (end-around carry) until the sum fits 16 bits.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// One's-complement addition of two 16-bit sums.
pub fn add(a: u16, b: u16) -> u16 {
    fold(u64::from(a) + u64::from(b))
}

/// The folded one's-complement sum of `data` (RFC 1071 section 4.1), not complemented.
pub fn ones_complement_sum(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// The Internet checksum of `data`: the complement of its one's-complement sum. Over a header
/// whose checksum field is zero this is the value to store; over a header with a correct
/// checksum in place it is zero.
pub fn internet_checksum(data: &[u8]) -> u16 {
    !ones_complement_sum(data)
}

/// RFC 1624 equation 3, `HC' = ~(~HC + ~m + m')`, over equal-length runs of words. Unlike
/// equation 2 it never produces 0xffff from a checksum that a full computation could produce.
fn update_words(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    apply_delta(csum, delta(old, new))
}

/// What replacing the words `old` by `new` adds to a one's-complement sum (unfolded): the
/// complement of the old words plus the new ones (RFC 1624 equation 3's `~m + m'`). One delta
/// serves every checksum covering the same field (the IPv4 header's and the transport's).
#[inline]
pub fn delta(old: &[u8], new: &[u8]) -> u64 {
    (old.len() / 2) as u64 * 0xffff - accumulate(0, old) + accumulate(0, new)
}

/// Applies a [`delta`] to checksum `csum`: `~(~HC + ~m + m')`.
#[inline]
pub fn apply_delta(csum: u16, delta: u64) -> u16 {
    !fold(u64::from(!csum) + delta)
}

/// What replacing the 16-bit word `old` by `new` (each below 2^16) adds to a
/// one's-complement sum: [`delta`] of one word, from values rather than bytes.
#[inline]
pub fn word_delta(old: u32, new: u32) -> u32 {
    0xffff - old + new
}

/// [`apply_delta`] for a delta below 2^31 (a few [`word_delta`]s): the same checksum, folded
/// in two fixed steps instead of a loop.
#[inline]
pub fn apply_small_delta(csum: u16, delta: u32) -> u16 {
    let mut acc = u32::from(!csum) + (delta & 0x7fff_ffff);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    !(acc as u16)
}

/// Updates checksum `csum` for a 16-bit field that changed from `old` to `new` (RFC 1624).
pub fn update_u16(csum: u16, old: u16, new: u16) -> u16 {
    update_words(csum, &old.to_be_bytes(), &new.to_be_bytes())
}

/// Updates checksum `csum` for a 32-bit, 16-bit-aligned field that changed from `old` to `new`.
pub fn update_u32(csum: u16, old: u32, new: u32) -> u16 {
    update_words(csum, &old.to_be_bytes(), &new.to_be_bytes())
}

/// Updates checksum `csum` for an IPv4 address that changed, in a header or a pseudo-header.
pub fn update_ipv4_addr(csum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update_words(csum, &old.octets(), &new.octets())
}

/// Updates checksum `csum` for an IPv6 address that changed in the pseudo-header.
pub fn update_ipv6_addr(csum: u16, old: Ipv6Addr, new: Ipv6Addr) -> u16 {
    update_words(csum, &old.octets(), &new.octets())
}

/// The sum of the IPv4 pseudo-header (RFC 793 section 3.1, RFC 768): addresses, protocol and
/// the transport length (TCP: IP payload length; UDP: its length field).
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u16 {
    let mut acc = accumulate(0, &src.octets());
    acc = accumulate(acc, &dst.octets());
    acc += u64::from(proto) + u64::from(len);
    fold(acc)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u16 {
    let mut acc = accumulate(0, &src.octets());
    acc = accumulate(acc, &dst.octets());
    acc += u64::from(next_header) + u64::from(len >> 16) + u64::from(len & 0xffff);
    fold(acc)
}

/// Where the checksum field of a transport header lies, for the protocols whose checksum
/// covers a pseudo-header.
pub(crate) fn checksum_offset(proto: u8) -> Option<usize> {
    match proto {
        IpProtocol::TCP => Some(16),
        IpProtocol::UDP => Some(6),
        IpProtocol::ICMPV6 => Some(2),
        _ => None,
    }
}

/// The checksum of `segment` behind the pseudo-header sum `pseudo`, counting the segment's own
/// checksum field as zero. UDP sends a computed zero as 0xffff, zero meaning "no checksum".
fn transport_checksum(pseudo: u16, proto: u8, segment: &[u8]) -> u16 {
    let mut acc = u64::from(pseudo);
    match checksum_offset(proto) {
        Some(at) if segment.len() >= at + 2 => {
            acc = accumulate(acc, &segment[..at]);
            acc = accumulate(acc, &segment[at + 2..]);
        }
        _ => acc = accumulate(acc, segment),
    }
    let csum = !fold(acc);
    if proto == IpProtocol::UDP && csum == 0 {
        0xffff
    } else {
        csum
    }
}

/// The value to store in the checksum field of a TCP or UDP `segment` (header and payload, as
/// many bytes as the pseudo-header length says) carried over IPv4. The field's current
/// contents are ignored, so this also recomputes a checksum to compare with the one in place.
pub fn tcp_udp_checksum_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, segment: &[u8]) -> u16 {
    let len = segment.len().min(usize::from(u16::MAX)) as u16;
    transport_checksum(pseudo_header_v4(src, dst, proto, len), proto, segment)
}

/// As [`tcp_udp_checksum_v4`], over IPv6; also serves ICMPv6 (`proto` 58).
pub fn tcp_udp_checksum_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, segment: &[u8]) -> u16 {
    let len = segment.len().min(u32::MAX as usize) as u32;
    transport_checksum(pseudo_header_v6(src, dst, proto, len), proto, segment)
}

/// Whether a 20-byte IPv4 header (no options) checks out: its words sum to all ones. Summed
/// as 32-bit words (2^32 is 1 modulo 0xffff, so the one's-complement sum is kept), in the
/// machine's byte order (a sum of all ones is all ones either way, RFC 1071 §2(B)), for the
/// fast path.
#[inline]
pub fn ipv4_header_ok(header: &[u8; 20]) -> bool {
    let mut acc = 0u64;
    for w in header.chunks_exact(4) {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    acc != 0 && acc % 0xffff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The fast header check says what the full checksum says, for any header.
        #[test]
        fn the_fast_ipv4_header_check_agrees_with_the_checksum(header in proptest::array::uniform20(proptest::prelude::any::<u8>()), fix in proptest::prelude::any::<bool>()) {
            let mut header = header;
            if fix {
                header[10..12].fill(0);
                let sum = internet_checksum(&header);
                header[10..12].copy_from_slice(&sum.to_be_bytes());
            }
            proptest::prop_assert_eq!(ipv4_header_ok(&header), internet_checksum(&header) == 0);
        }
    }

    proptest::proptest! {
        /// Word deltas folded in two steps update a checksum as the byte deltas do.
        #[test]
        fn small_word_deltas_update_as_byte_deltas_do(csum in proptest::prelude::any::<u16>(), old in proptest::prelude::any::<u32>(), new in proptest::prelude::any::<u32>()) {
            let words = word_delta(old >> 16, new >> 16) + word_delta(old & 0xffff, new & 0xffff);
            proptest::prop_assert_eq!(words as u64, delta(&old.to_be_bytes(), &new.to_be_bytes()));
            proptest::prop_assert_eq!(apply_small_delta(csum, words), apply_delta(csum, u64::from(words)));
        }
    }

    /// The worked example of RFC 1071 section 3.
    const RFC1071: [u8; 8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];

    #[test]
    fn sum_matches_rfc1071_example() {
        assert_eq!(ones_complement_sum(&RFC1071), 0xddf2);
        assert_eq!(internet_checksum(&RFC1071), 0x220d);
    }

    #[test]
    fn checksum_over_data_with_its_checksum_is_zero() {
        let mut data = RFC1071.to_vec();
        data.extend_from_slice(&0x220du16.to_be_bytes());
        assert_eq!(internet_checksum(&data), 0);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(ones_complement_sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(ones_complement_sum(&[]), 0);
    }

    #[test]
    fn carries_fold_back_in() {
        assert_eq!(add(0xffff, 0x0001), 0x0001);
        assert_eq!(ones_complement_sum(&[0xff; 64 * 1024 + 2]), 0xffff);
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut data = RFC1071.to_vec();
        let before = internet_checksum(&data);
        data[2..4].copy_from_slice(&0x1234u16.to_be_bytes());
        assert_eq!(update_u16(before, 0xf203, 0x1234), internet_checksum(&data));
        let old = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        let csum = internet_checksum(&data);
        data[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(update_u32(csum, old, 0xdead_beef), internet_checksum(&data));
    }

    #[test]
    fn rfc1624_example_gives_zero_not_negative_zero() {
        // RFC 1624 section 4: the other words sum to 0xcd7a, so with 0x5555 the checksum is
        // 0xdd2f; when 0x5555 becomes 0x3285 equation 3 gives 0x0000, not equation 2's 0xffff.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn pseudo_header_v4_sums_each_field() {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(10, 0, 0, 2);
        let want = fold(0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 20);
        assert_eq!(pseudo_header_v4(src, dst, 6, 20), want);
    }

    #[test]
    fn udp_zero_checksum_is_sent_as_all_ones() {
        // A segment whose sum with the pseudo-header is 0xffff computes to 0, sent as 0xffff.
        let (src, dst) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
        let pseudo = pseudo_header_v4(src, dst, 17, 10);
        let filler = !pseudo - 10;
        let mut seg = [0u8; 10];
        seg[4..6].copy_from_slice(&10u16.to_be_bytes());
        seg[8..10].copy_from_slice(&filler.to_be_bytes());
        assert_eq!(tcp_udp_checksum_v4(src, dst, 17, &seg), 0xffff);
    }
}
