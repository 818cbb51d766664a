//! `process` never panics, whatever the bytes.

use super::errors_and_transit::frag_needed;
use super::flows_and_drops::udp_fragments;
use super::icmp_and_ipv6::{
    ipv6_config, solicitation, tcp6_frame, udp6_fragments, CLIENT6, FRONTEND6,
};
use super::*;

// ---------------------------------------------------------------------------------------
// Never panics

/// Valid frames of every kind `process` handles, addressed to the interface.
pub(super) fn templates() -> Vec<Vec<u8>> {
    let mut t = vec![
        syn(40_000, 443),
        udp_frame(CLIENT_MAC, CLIENT, 5353, FRONTEND, 53),
        tcp_frame(
            BACKEND_MACS[0],
            BACKENDS[0],
            443,
            CLIENT,
            40_000,
            TcpFlags::ACK,
        ),
        udp_frame(BACKEND_MACS[1], BACKENDS[1], 8080, CLIENT, 6000),
        eth(
            IF_MAC,
            CLIENT_MAC,
            EtherType::IPV4,
            &ipv4(CLIENT, FRONTEND, IpProtocol::ICMP, &icmp_echo_request(b"p")),
        ),
        arp_request(CLIENT_MAC, CLIENT, FRONTEND),
        arp_request(CLIENT_MAC, CLIENT, OWN),
        tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, TcpFlags::SYN),
        tcp6_frame(
            BACKEND_MACS[0],
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x11),
            443,
            CLIENT6,
            40_000,
            TcpFlags::ACK,
        ),
    ];
    // Fragments (first and later, both families), an ICMP error about a flow, neighbour
    // discovery, a VLAN tag and an IPv6 hop-by-hop header.
    t.extend(udp_fragments(CLIENT, 5353, FRONTEND, 53));
    t.extend(udp6_fragments(CLIENT6, 5353, FRONTEND6, 53));
    t.push(frag_needed(
        OTHER_HOST_MAC,
        Ipv4Addr::new(10, 0, 1, 1),
        40_000,
    ));
    t.push(solicitation(FRONTEND6));
    let mut tagged = syn(40_000, 443);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
    t.push(tagged);
    let mut hop_by_hop = tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, TcpFlags::SYN);
    let l3 = ETH_LEN;
    let next = hop_by_hop[l3 + 6];
    hop_by_hop[l3 + 6] = 0;
    hop_by_hop.splice(l3 + 40..l3 + 40, [next, 0, 1, 4, 0, 0, 0, 0]);
    let payload = u16::from_be_bytes([hop_by_hop[l3 + 4], hop_by_hop[l3 + 5]]) + 8;
    hop_by_hop[l3 + 4..l3 + 6].copy_from_slice(&payload.to_be_bytes());
    t.push(hop_by_hop);
    t
}

/// NAT, DSR, port-translating and IPv6 states, so every rewrite is reached.
pub(super) fn states() -> [Forwarding; 4] {
    [
        build(&ha_ports(), &[]),
        build(&config("all", 0, 0, true), &[]),
        build(&config("udp", 8080, 80, false), &[]),
        build(&ipv6_config(), &[]),
    ]
}

proptest! {
    #[test]
    fn process_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ingress in 0u32..2,
    ) {
        let (mut st, _) = worker();
        for fwd in &states() {
            let mut frame = bytes.clone();
            let _ = process(&mut frame, ingress, &mut st, fwd, NOW);
            // Addressed to us, so the bytes reach the layers behind the Ethernet check.
            let mut frame = bytes.clone();
            if frame.len() >= 6 {
                frame[..6].copy_from_slice(&IF_MAC.0);
            }
            let _ = process(&mut frame, ingress, &mut st, fwd, NOW);
        }
    }

    #[test]
    fn process_never_panics_on_valid_frames_with_flipped_bytes(
        which in 0usize..64,
        flips in proptest::collection::vec((14usize..120, any::<u8>()), 1..8),
        cut in 0usize..8,
    ) {
        let (mut st, _) = worker();
        for fwd in &states() {
            let mut all = templates();
            let mut frame = all.swap_remove(which % all.len());
            for &(at, x) in &flips {
                let n = frame.len();
                frame[at % n] ^= x;
            }
            let keep = frame.len().saturating_sub(cut * 4);
            frame.truncate(keep);
            let _ = process(&mut frame, LAN, &mut st, fwd, NOW);
        }
    }
}
