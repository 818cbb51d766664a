//! Neighbour solicitations for a frontend as RFC 4861 allows them: options in any order, and
//! a unicast one without its sender's link-layer address (§4.3); malformed options discarded
//! (§7.1.1).

use super::icmp_and_ipv6::{
    advert, answered_with_the_frontends_mac, icmp6_frame, ipv6_config, solicitation,
    ASKER_KNOWN_ELSEWHERE, CLIENT6, FRONTEND6,
};
use super::*;

/// A solicitation for the frontend with `options` behind its target, to `dst` (the
/// frontend itself, or its solicited-node group as [`solicitation`] sends it).
fn solicitation_with(options: &[u8], multicast: bool) -> Vec<u8> {
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&FRONTEND6.octets());
    m.extend_from_slice(options);
    if multicast {
        let plain = solicitation(FRONTEND6);
        let group = Ipv6Packet::new_checked(&plain[ETH_LEN..]).unwrap().dst();
        icmp6_frame(MacAddr(plain[..6].try_into().unwrap()), CLIENT6, group, m)
    } else {
        let fe_mac = frontend_mac(IpAddr::V6(FRONTEND6));
        icmp6_frame(fe_mac, CLIENT6, FRONTEND6, m)
    }
}

const ANSWERED: Action = Action::Transmit {
    interface: LAN,
    backend: None,
};

#[test]
fn a_unicast_solicitation_without_the_senders_address_is_answered_to_the_mac_it_came_from() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, reports) = worker();
    let mut frame = solicitation_with(&[], false);
    assert_eq!(process(&mut frame, LAN, &mut st, &fwd, NOW), ANSWERED);
    let na = advert(&frame);
    assert_eq!(na.len(), 24, "no option to answer with");
    assert_eq!(
        na[4] & 0x60,
        0x40,
        "solicited; not override, without the option"
    );
    assert_eq!(drain(&reports), vec![], "nothing learnt from it");
}

#[test]
fn a_multicast_solicitation_without_the_senders_address_is_malformed() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, reports) = worker();
    let mut frame = solicitation_with(&[], true);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Malformed)
    );
    assert_eq!(drain(&reports), vec![]);
}

#[test]
fn the_senders_address_is_found_behind_another_option() {
    let fwd = build_knowing(&ipv6_config(), &[], &[ASKER_KNOWN_ELSEWHERE]);
    for multicast in [true, false] {
        let (mut st, reports) = worker();
        // A nonce (RFC 3971), then the source link-layer address.
        let mut options = vec![14, 1, 1, 2, 3, 4, 5, 6, 1, 1];
        options.extend_from_slice(&CLIENT_MAC.0);
        let mut frame = solicitation_with(&options, multicast);
        assert_eq!(process(&mut frame, LAN, &mut st, &fwd, NOW), ANSWERED);
        answered_with_the_frontends_mac(&frame, &reports);
    }
}

#[test]
fn a_solicitation_with_an_option_of_length_zero_or_past_its_end_is_malformed() {
    let fwd = build(&ipv6_config(), &[]);
    let mut zero = vec![1, 0];
    zero.extend_from_slice(&CLIENT_MAC.0);
    let mut long = vec![1, 2];
    long.extend_from_slice(&CLIENT_MAC.0);
    for options in [zero, long] {
        for multicast in [true, false] {
            let (mut st, reports) = worker();
            let mut frame = solicitation_with(&options, multicast);
            assert_eq!(
                process(&mut frame, LAN, &mut st, &fwd, NOW),
                Action::Drop(DropReason::Malformed),
                "options {options:?}, multicast {multicast}"
            );
            assert_eq!(drain(&reports), vec![]);
        }
    }
}

/// A solicitation from a group, loopback or the frontend's own address (RFC 4861 §7.1.1:
/// the unspecified address or a unicast one) gets no advertisement: it is a martian source.
#[test]
fn a_solicitation_from_a_martian_source_is_not_answered() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    for src in ["ff02::1", "::1"]
        .map(|a| a.parse::<Ipv6Addr>().unwrap())
        .into_iter()
        .chain([FRONTEND6])
    {
        let plain = solicitation(FRONTEND6);
        let group = Ipv6Packet::new_checked(&plain[ETH_LEN..]).unwrap().dst();
        let message = plain[ETH_LEN + 40..].to_vec();
        let mut frame = icmp6_frame(MacAddr(plain[..6].try_into().unwrap()), src, group, message);
        let action = process(&mut frame, LAN, &mut st, &fwd, NOW);
        assert_ne!(action, ANSWERED, "from {src}");
        assert!(
            matches!(action, Action::Drop(DropReason::MartianSource)),
            "from {src}: {action:?}"
        );
    }
}

/// Duplicate-address detection of a frontend's address (RFC 4862 §5.4.3): another host
/// about to take it, from the unspecified address to the target's solicited-node group.
/// The appliance defends it with an advertisement to all nodes, not solicited (RFC 4861
/// §7.2.4), with its MAC where the solicitation leaves room (Linux sends a nonce, RFC 7527),
/// and learns nothing; one to another address or naming a sender's MAC is invalid (§7.1.1).
#[test]
fn duplicate_address_detection_of_a_frontend_is_defended_to_all_nodes() {
    let fwd = build(&ipv6_config(), &[]);
    let group = crate::wire::solicited_node(FRONTEND6);
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let group_mac = MacAddr([0x33, 0x33, 0xff, 0, 1, 0]);
    let dad = |options: &[u8], dst: Ipv6Addr| {
        let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&FRONTEND6.octets());
        m.extend_from_slice(options);
        icmp6_frame(group_mac, Ipv6Addr::UNSPECIFIED, dst, m)
    };
    let fe_mac = frontend_mac(IpAddr::V6(FRONTEND6));
    for (options, len) in [(&[14u8, 1, 9, 8, 7, 6, 5, 4][..], 32), (&[][..], 24)] {
        let (mut st, reports) = worker();
        let mut frame = dad(options, group);
        assert_eq!(process(&mut frame, LAN, &mut st, &fwd, NOW), ANSWERED);
        assert_eq!(macs(&frame), (MacAddr([0x33, 0x33, 0, 0, 0, 1]), fe_mac));
        let ip = Ipv6Packet::new_checked(&frame[ETH_LEN..]).unwrap();
        assert_eq!(
            (ip.src(), ip.dst(), ip.hop_limit()),
            (FRONTEND6, all_nodes, 255)
        );
        let na = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(na.msg_type(), Icmpv6Type::NEIGHBOR_ADVERT);
        assert!(na.verify_checksum(FRONTEND6, all_nodes));
        let body = ip.payload();
        assert_eq!((body.len(), &body[8..24]), (len, &FRONTEND6.octets()[..]));
        if len == 32 {
            assert_eq!(body[4] & 0x60, 0x20, "override, not solicited");
            assert_eq!((body[24], body[25], &body[26..32]), (2, 1, &fe_mac.0[..]));
        } else {
            assert_eq!(
                body[4] & 0x60,
                0,
                "not solicited; no option to override with"
            );
        }
        assert_eq!(drain(&reports), vec![], "nothing learnt from it");
    }
    let mut sender = vec![1, 1];
    sender.extend_from_slice(&CLIENT_MAC.0);
    // A source link-layer address option of any length (RFC 4861 §7.1.1: none at all).
    let mut long_sender = vec![1, 2];
    long_sender.extend_from_slice(&[0; 14]);
    let other_group = crate::wire::solicited_node("fd00::1:2:3".parse().unwrap());
    // (Unicast from the unspecified address: a martian source before anything else.)
    for (mut invalid, reason) in [
        (dad(&sender, group), DropReason::Malformed),
        (dad(&long_sender, group), DropReason::Malformed),
        (dad(&[], other_group), DropReason::Malformed),
        (dad(&[], FRONTEND6), DropReason::MartianSource),
    ] {
        let (mut st, _) = worker();
        assert_eq!(
            process(&mut invalid, LAN, &mut st, &fwd, NOW),
            Action::Drop(reason)
        );
    }
}

/// Forged duplicate-address probes cannot make the appliance flood the segment: each worker
/// defends a burst of 32, then 10 a second; the rest are counted as conflicts.
#[test]
fn defences_against_duplicate_address_detection_are_rate_limited() {
    let fwd = build(&ipv6_config(), &[]);
    let group = crate::wire::solicited_node(FRONTEND6);
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&FRONTEND6.octets());
    let probe = icmp6_frame(
        MacAddr([0x33, 0x33, 0xff, 0, 1, 0]),
        Ipv6Addr::UNSPECIFIED,
        group,
        m,
    );
    let (mut st, _) = worker();
    let answered = |st: &mut WorkerState, at: u64, n: usize| {
        (0..n)
            .map(|_| process(&mut probe.clone(), LAN, st, &fwd, at))
            .filter(|a| match a {
                Action::Transmit { .. } => true,
                Action::Drop(DropReason::NeighbourConflict) => false,
                other => panic!("{other:?}"),
            })
            .count()
    };
    assert_eq!(answered(&mut st, NOW, 1000), 32);
    assert_eq!(answered(&mut st, NOW + 1_000, 1000), 10, "a second later");
}

/// Advertisements as RFC 4861 has them: the target's link-layer address is read after any
/// other option (§4.6: in any order); one with an ICMP code other than 0 teaches nothing
/// (§7.1.2); one placing a frontend at another MAC (a host answering for it, configured
/// with its address by mistake, or a spoofer) is a counted conflict, kept from the twin.
#[test]
fn advertisements_are_read_in_any_order_and_a_frontend_elsewhere_is_a_conflict() {
    let backend: Ipv6Addr = "fd00::11".parse().unwrap();
    let own: Ipv6Addr = "fd00::2".parse().unwrap();
    let fwd = build(&ipv6_config(), &[]);
    let mac = MacAddr([0x02, 0, 0, 0, 0x66, 0x11]);
    // Solicited, to the appliance's own address; else unsolicited, to all nodes.
    let advert = |target: Ipv6Addr, code: u8, options: &[u8], dst: Ipv6Addr| {
        let flags = if dst.is_multicast() { 0x20 } else { 0x60 };
        let mut m = vec![136, code, 0, 0, flags, 0, 0, 0];
        m.extend_from_slice(&target.octets());
        m.extend_from_slice(options);
        icmp6_frame(IF_MAC, backend, dst, m)
    };
    let tlla = [&[2u8, 1][..], &mac.0].concat();
    let nonce_then_tlla = [&[14u8, 1, 1, 2, 3, 4, 5, 6][..], &tlla].concat();
    let answer = Report::Answer {
        interface: LAN,
        addr: IpAddr::V6(backend),
        mac,
    };
    for (code, options, heard) in [(0, &nonce_then_tlla, vec![answer]), (1, &tlla, vec![])] {
        let (mut st, reports) = worker();
        st.neighbours.asking.insert(IpAddr::V6(backend));
        let mut frame = advert(backend, code, options, own);
        process(&mut frame, LAN, &mut st, &fwd, NOW);
        assert_eq!(drain(&reports), heard, "code {code}");
    }
    let (mut st, reports) = worker();
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let mut elsewhere = advert(FRONTEND6, 0, &tlla, all_nodes);
    assert_eq!(
        process(&mut elsewhere, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NeighbourConflict)
    );
    assert_eq!(drain(&reports), vec![]);
}
