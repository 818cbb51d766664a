//! Neighbour discovery in fragments (RFC 6980 §5): dropped, neither answered nor learnt
//! from, however valid the message it holds.

use super::icmp_and_ipv6::{icmp6_frame, ipv6_config, solicitation, CLIENT6, FRONTEND6};
use super::*;

/// `frame` (untagged IPv6 without extension headers) with a fragment header at offset 0
/// (identification 7; with `more` fragments, or none: an atomic fragment) between the IPv6
/// header and its ICMPv6 message, which is left as it was, its checksum right over the bytes
/// present.
fn in_a_fragment(frame: &[u8], more: bool) -> Vec<u8> {
    let mut f = frame.to_vec();
    let l4 = ETH_LEN + 40;
    f.splice(
        l4..l4,
        [IpProtocol::ICMPV6, 0, 0, u8::from(more), 0, 0, 0, 7],
    );
    let len = u16::from_be_bytes([f[ETH_LEN + 4], f[ETH_LEN + 5]]) + 8;
    f[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&len.to_be_bytes());
    f[ETH_LEN + 6] = IpProtocol::IPV6_FRAGMENT;
    f
}

#[test]
fn a_solicitation_for_a_frontend_in_a_fragment_gets_no_advert() {
    // The asker known at another MAC: what it says of itself is news (a hint).
    let fwd = build_knowing(
        &ipv6_config(),
        &[],
        &[(IpAddr::V6(CLIENT6), OTHER_HOST_MAC)],
    );
    let (mut st, reports) = worker();
    // Whole, the same solicitation is answered, and its asker taken as a hint.
    let mut whole = solicitation(FRONTEND6);
    assert_eq!(
        process(&mut whole, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(drain(&reports).len(), 1);

    // Each later than a hint about the same neighbour is held back.
    for (more, at) in [(false, NOW + 2_000), (true, NOW + 4_000)] {
        let mut frame = in_a_fragment(&solicitation(FRONTEND6), more);
        let sent = frame.clone();
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, at),
            Action::Drop(DropReason::Unsupported),
            "a solicitation for {FRONTEND6} from {CLIENT6} in a fragment (more: {more})"
        );
        assert_eq!(frame, sent, "no advertisement written in its place");
        assert_eq!(drain(&reports), Vec::new(), "nothing heard from its asker");
    }
}

/// A solicited advertisement (override set) placing `target` at `mac`, its checksum left 0.
pub(super) fn solicited_advert(target: Ipv6Addr, mac: MacAddr) -> Vec<u8> {
    let mut m = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&mac.0);
    m
}

#[test]
fn a_solicited_advertisement_in_a_fragment_answers_nothing() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, reports) = worker();
    let backend: Ipv6Addr = "fd00::11".parse().unwrap();
    st.neighbours.asking.insert(IpAddr::V6(backend));
    let own: Ipv6Addr = "fd00::2".parse().unwrap();
    // (The MAC the config gives it: another would be a false neighbour, kept from the twin.)
    let mac = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
    let advert = icmp6_frame(IF_MAC, backend, own, solicited_advert(backend, mac));
    // Whole, it may answer the appliance's solicitation for the backend.
    assert_eq!(
        process(&mut advert.clone(), LAN, &mut st, &fwd, NOW),
        Action::ToKernel { interface: LAN }
    );
    assert_eq!(
        drain(&reports),
        vec![Report::Answer {
            interface: LAN,
            addr: IpAddr::V6(backend),
            mac
        }]
    );

    for more in [false, true] {
        let mut frame = in_a_fragment(&advert, more);
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::Drop(DropReason::Unsupported),
            "more: {more}"
        );
        assert_eq!(drain(&reports), Vec::new(), "not reported (more: {more})");
    }
}

/// A later fragment holds data, never neighbour discovery, however its data reads: a whole
/// solicited advertisement (checksum right over it) in a fragment 8 bytes in, from a backend's
/// address to the appliance's, teaches nothing; a solicitation for a frontend in one is not
/// answered.
#[test]
fn neighbour_discovery_in_a_later_fragment_is_neither_learnt_nor_answered() {
    use super::icmp_and_ipv6::v6_fragment;
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, reports) = worker();
    let backend: Ipv6Addr = "fd00::11".parse().unwrap();
    let own: Ipv6Addr = "fd00::2".parse().unwrap();
    let attacker = MacAddr([0x02, 0, 0, 0, 0x66, 0x66]);
    let mut m = solicited_advert(backend, attacker);
    let sum = tcp_udp_checksum_v6(backend, own, IpProtocol::ICMPV6, &m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut later = v6_fragment(backend, own, IpProtocol::ICMPV6, (8, false), &m);
    later[6..12].copy_from_slice(&attacker.0);
    later[ETH_LEN + 7] = 255;
    let action = process(&mut later, LAN, &mut st, &fwd, NOW);
    assert!(!matches!(action, Action::Transmit { .. }), "{action:?}");
    assert_eq!(drain(&reports), Vec::new(), "nothing heard");

    let whole = solicitation(FRONTEND6);
    let message = whole[ETH_LEN + 40..].to_vec();
    let ip = Ipv6Packet::new_checked(&whole[ETH_LEN..]).unwrap();
    let mut later = v6_fragment(CLIENT6, ip.dst(), IpProtocol::ICMPV6, (8, false), &message);
    later[..6].copy_from_slice(&whole[..6]);
    later[ETH_LEN + 7] = 255;
    let sent = later.clone();
    let action = process(&mut later, LAN, &mut st, &fwd, NOW);
    assert!(!matches!(action, Action::Transmit { .. }), "{action:?}");
    assert_eq!(later, sent, "no advertisement written in its place");
    assert_eq!(drain(&reports), Vec::new(), "nothing heard from its asker");
}

/// Only a fragment at offset 0 holds an ICMPv6 message's type: a later fragment whose data
/// starts with 133 to 137 is data, and follows its first fragment.
#[test]
fn a_later_icmpv6_fragment_starting_like_neighbour_discovery_follows_its_first() {
    use super::icmp_and_ipv6::v6_fragment;
    let fwd = build(&ipv6_config(), &[]);
    for first_byte in 133..=137u8 {
        let (mut st, _) = worker();
        // An ICMPv6 message of type 200 (private experimentation), 8 bytes then 8 more of data.
        let mut first = v6_fragment(
            CLIENT6,
            FRONTEND6,
            IpProtocol::ICMPV6,
            (0, true),
            &[200, 0, 0, 0, 0, 0, 0, 0],
        );
        let b = to_backend(&mut first, &mut st, &fwd);
        let mut later = v6_fragment(
            CLIENT6,
            FRONTEND6,
            IpProtocol::ICMPV6,
            (8, false),
            &[first_byte; 8],
        );
        assert_eq!(
            to_backend(&mut later, &mut st, &fwd),
            b,
            "data starting {first_byte}"
        );
    }
}
