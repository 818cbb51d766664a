//! The neighbour cache's discipline, and the solicitations it sends.

use super::*;
use crate::config::Config;
use crate::lb::forwarding::Observations;
use crate::wire::{ArpOperation, ArpPacket, EtherType, EthernetFrame, Icmpv6Packet};
use std::net::{Ipv4Addr, Ipv6Addr};

const LAN: InterfaceId = 0;
const IF_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const REACHABLE: Duration = Duration::from_secs(30);

/// One interface, a backend without a configured MAC (10.0.0.11) and one with (10.0.0.12).
fn forwarding() -> Forwarding {
    forwarding_knowing(&[])
}

/// Backend 10.0.0.11 without a MAC (its own next hop), 10.0.0.12 with one.
const CONFIG: &str = r#"
[[interface]]
name = "lan"
port = 0
address = "10.0.0.2/24"
[[load_balancer]]
name = "ilb"
kind = "internal"
  [[load_balancer.frontend]]
  name = "fe"
  address = "10.0.0.100"
  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [{ address = "10.0.0.11" }, { address = "10.0.0.12", mac = "02:00:00:00:00:12" }]
  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
"#;

/// [`forwarding`] as published once `known` were resolved.
fn forwarding_knowing(known: &[(IpAddr, MacAddr)]) -> Forwarding {
    forwarding_of(CONFIG, known)
}

/// The state of config `text` once `known` were resolved.
fn forwarding_of(text: &str, known: &[(IpAddr, MacAddr)]) -> Forwarding {
    let cfg = Config::from_toml(text, "test").unwrap();
    let obs = Observations {
        interface_macs: vec![IF_MAC],
        neighbours: known
            .iter()
            .map(|&(a, m)| (a, Neighbour::fresh(m)))
            .collect(),
        ..Observations::default()
    };
    Forwarding::build(&cfg, &obs, 1, None)
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

fn answer(addr: IpAddr, mac: MacAddr) -> Report {
    Report::Answer {
        interface: LAN,
        addr,
        mac,
    }
}

/// A worker's report that a packet needs `addr`.
fn wanted(addr: IpAddr) -> Report {
    Report::Want {
        interface: LAN,
        addr,
    }
}

/// The targets of the ARP requests among `frames`.
fn asked(frames: &[(InterfaceId, Vec<u8>)]) -> Vec<IpAddr> {
    frames
        .iter()
        .map(|(_, f)| IpAddr::V4(ArpPacket::new_checked(&f[14..]).unwrap().target_ip()))
        .collect()
}

#[test]
fn only_answers_to_outstanding_solicitations_are_learnt() {
    let fwd = forwarding();
    let mut n = Neighbours::new(REACHABLE);
    let t0 = Instant::now();
    let client = v4(50);
    // Nobody asked: an answer is not learnt.
    assert!(!n.report(answer(client, MAC_A), t0));
    assert_eq!(n.mac(client), None);

    // A packet wants the client: asked for (with the backend without a MAC), then answered.
    n.report(wanted(client), t0);
    let (frames, _) = n.tick(&fwd, t0);
    let mut targets = asked(&frames);
    targets.sort();
    assert_eq!(
        targets,
        vec![v4(11), client],
        "never the backend with a configured MAC"
    );
    assert!(n.report(answer(client, MAC_A), t0));
    assert_eq!(n.published()[&client], Neighbour::fresh(MAC_A));

    // Answered once: a second answer (a poisoner racing the real host) is not taken.
    assert!(!n.report(answer(client, MAC_B), t0));
    assert_eq!(n.mac(client), Some(MAC_A));
    // Nor one on another interface, for an address asked for on this one.
    n.report(
        Report::Answer {
            interface: 1,
            addr: v4(11),
            mac: MAC_B,
        },
        t0,
    );
    assert_eq!(n.mac(v4(11)), None);
    assert_eq!(n.stats.ignored.load(Ordering::Relaxed), 3);
}

/// The workers report answers about the addresses a solicitation is out for, from before it
/// is sent until the round after its answer: the rest are floods' to them.
#[test]
fn the_workers_see_which_neighbours_are_asked_for() {
    let fwd = forwarding();
    let mut n = Neighbours::new(REACHABLE);
    let t0 = Instant::now();
    let client = v4(50);
    n.report(wanted(client), t0);
    assert!(!n.asking.contains(client), "not before the round that asks");
    let (frames, _) = n.tick(&fwd, t0);
    assert_eq!(frames.len(), 2);
    assert!(n.asking.contains(client) && n.asking.contains(v4(11)));
    assert!(
        !n.asking.contains(v4(12)),
        "a configured MAC is never asked for"
    );
    n.report(answer(client, MAC_A), t0);
    n.tick(&fwd, t0);
    assert!(!n.asking.contains(client), "answered");
    assert!(n.asking.contains(v4(11)), "still asked for");
}

/// The cache once backend 10.0.0.11 answered at MAC_A, and a second later.
fn backend_verified_at_mac_a() -> (Forwarding, Neighbours, Instant) {
    let fwd = forwarding();
    let mut n = Neighbours::new(REACHABLE);
    let t0 = Instant::now();
    n.tick(&fwd, t0);
    n.report(answer(v4(11), MAC_A), t0);
    (fwd, n, t0 + Duration::from_secs(1))
}

#[test]
fn an_announcement_only_makes_it_ask_again_and_the_answer_decides() {
    let (fwd, mut n, t1) = backend_verified_at_mac_a();
    // Gratuitous ARP claiming the backend's address: nothing learnt, but asked again.
    let hint = Report::Hint {
        interface: LAN,
        addr: v4(11),
        mac: MAC_B,
    };
    assert!(!n.report(hint, t1));
    assert_eq!(n.mac(v4(11)), Some(MAC_A));
    let (frames, _) = n.tick(&fwd, t1);
    assert_eq!(asked(&frames), vec![v4(11)]);
    // Whoever answers first is taken (as in any ARP); here the real host does.
    n.report(answer(v4(11), MAC_A), t1);
    assert_eq!(n.mac(v4(11)), Some(MAC_A));
    // A hint repeating what is known asks nothing.
    n.report(
        Report::Hint {
            interface: LAN,
            addr: v4(11),
            mac: MAC_A,
        },
        t1,
    );
    assert!(n.tick(&fwd, t1).0.is_empty());
}

#[test]
fn neighbours_go_stale_are_verified_when_needed_and_forgotten_when_silent() {
    let fwd = forwarding();
    let mut n = Neighbours::new(REACHABLE);
    let t0 = Instant::now();
    let client = v4(50);
    n.report(wanted(client), t0);
    n.tick(&fwd, t0);
    n.report(answer(client, MAC_A), t0);
    n.report(answer(v4(11), MAC_A), t0);
    assert!(n.tick(&fwd, t0 + REACHABLE / 2).0.is_empty());

    // Stale: still published (marked), and the backend's next hop is verified at once.
    let stale = t0 + REACHABLE;
    let (frames, changed) = n.tick(&fwd, stale);
    assert!(changed);
    assert_eq!(asked(&frames), vec![v4(11)]);
    assert!(n.published()[&client].stale);
    // The backend's MAC changed: the answer to the verification brings the new one.
    assert!(n.report(answer(v4(11), MAC_B), stale));
    assert_eq!(n.published()[&v4(11)], Neighbour::fresh(MAC_B));

    // A client nobody needs is forgotten after as long again.
    let (_, changed) = n.tick(&fwd, t0 + REACHABLE * 2);
    assert!(changed);
    assert_eq!(n.mac(client), None);

    // A needed one that never answers again: asked three times, then forgotten, then asked
    // for afresh (a backend's next hop).
    let mut at = t0 + REACHABLE * 2 + REACHABLE;
    let mut asks = 0;
    for _ in 0..4 {
        asks += asked(&n.tick(&fwd, at).0).len();
        at += RETRY;
    }
    assert_eq!(asks, 4, "three tries, then asked for afresh");
    assert_eq!(
        n.mac(v4(11)),
        None,
        "forgotten after three unanswered tries"
    );
}

/// A want for the `i`th address of 10.1/16 (no neighbour of the interface's: nothing is sent
/// for it, but it takes its place in the cache).
fn want(n: &mut Neighbours, i: u32, at: Instant) {
    n.report(wanted(IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i))), at);
}

/// A full cache makes room from its oldest unanswered want (forged sources in a flood fill it
/// with such), for a newer want and for a backend's next hop alike; each pushed out counts.
#[test]
fn a_full_cache_pushes_its_oldest_unanswered_want_out_for_a_new_one() {
    let fwd = forwarding();
    let mut n = Neighbours::new(REACHABLE);
    let t0 = Instant::now();
    for i in 0..CAPACITY as u32 + 10 {
        want(&mut n, i, t0);
    }
    assert_eq!(n.stats.refused.load(Ordering::Relaxed), 10);
    let held = |n: &Neighbours, i: u32| n.holds(IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i)));
    assert!(
        (0..10).all(|i| !held(&n, i)),
        "the oldest ten gave their places up"
    );
    assert!((10..CAPACITY as u32 + 10).all(|i| held(&n, i)));
    // The backend's next hop takes the next oldest's place, and is asked for at once.
    let (frames, _) = n.tick(&fwd, t0);
    assert!(
        asked(&frames).contains(&v4(11)),
        "the next hop was shut out"
    );
    assert_eq!(n.stats.entries.load(Ordering::Relaxed), CAPACITY as u64);
    assert_eq!(n.stats.refused.load(Ordering::Relaxed), 11);
    assert!(!held(&n, 10));
    // A neighbour a packet asks for now gets in too, and the next hop stays (never pushed
    // out, however many come after it).
    for i in 0..2 * CAPACITY as u32 {
        want(&mut n, 100_000 + i, t0);
    }
    assert!(n.holds(v4(11)), "a backend's next hop was pushed out");
    // Unanswered wants are forgotten after three tries: room again.
    let mut at = t0;
    for _ in 0..4 {
        at += RETRY;
        n.tick(&fwd, at);
    }
    assert_eq!(
        n.stats.entries.load(Ordering::Relaxed),
        1,
        "only the backend's next hop is kept"
    );
    assert!(n.holds(v4(11)), "the backend's next hop was forgotten");
}

/// A backend's next hop that a packet asked for first (so in line to give its place up) is
/// never pushed out once the cache knows it is a next hop, through the rounds in which it
/// fails to answer and is asked for afresh.
#[test]
fn a_next_hop_a_packet_asked_for_first_is_never_pushed_out() {
    let fwd = forwarding();
    let mut n = Neighbours::new(REACHABLE);
    let t0 = Instant::now();
    n.report(wanted(v4(11)), t0);
    n.tick(&fwd, t0);
    let mut at = t0;
    for round in 0..6 {
        for i in 0..CAPACITY as u32 {
            want(&mut n, round * 100_000 + i, at);
        }
        assert!(n.holds(v4(11)), "pushed out in round {round}");
        at += RETRY;
        n.tick(&fwd, at);
    }
}

/// A packet's request, first in line to give its place up, that becomes a backend's next
/// hop at a tick stays, even where the same tick makes room for another next hop.
#[test]
fn a_request_that_becomes_a_next_hop_is_not_pushed_out_for_another() {
    let mut n = Neighbours::new(REACHABLE);
    let t0 = Instant::now();
    n.report(wanted(v4(11)), t0);
    for i in 0..CAPACITY as u32 - 1 {
        want(&mut n, i, t0);
    }
    // Both backends' next hops from now on: 10.0.0.11 (asked for) and 10.0.0.13 (not).
    let two = CONFIG.replace(r#"{ address = "10.0.0.12", mac = "02:00:00:00:00:12" }"#, {
        r#"{ address = "10.0.0.13" }"#
    });
    let fwd = forwarding_of(&two, &[]);
    assert_eq!(fwd.needed_neighbours().len(), 2);
    n.tick(&fwd, t0);
    assert!(n.holds(v4(11)), "pushed out for the other next hop");
    assert!(n.holds(v4(13)), "room made from a packet's request");
}

/// Requests that come, go unanswered and come again do not pile up in the line of those that
/// may give their place up: it stays within twice the cache (the control thread would
/// otherwise grow it, and walk it, for as long as a flood of such requests lasts).
#[test]
fn requests_asked_again_and_again_do_not_pile_up() {
    let fwd = forwarding();
    let mut n = Neighbours::new(REACHABLE);
    let mut at = Instant::now();
    for _ in 0..40 {
        for i in 0..1000 {
            want(&mut n, i, at);
        }
        // Three tries without an answer: forgotten, and asked for again next round.
        for _ in 0..4 {
            at += RETRY;
            n.tick(&fwd, at);
        }
        assert!(n.in_line() <= 2 * 1000 + 64, "{} in line", n.in_line());
    }
}

/// Where every entry has been answered, nothing gives its place up: a backend's next hop is
/// refused, counted once until admitted.
#[test]
fn a_backends_next_hop_that_does_not_fit_is_refused_and_counted_once_until_admitted() {
    let fwd = forwarding();
    let mut n = Neighbours::new(REACHABLE);
    let t0 = Instant::now();
    for i in 0..CAPACITY as u32 {
        want(&mut n, i, t0);
    }
    assert_eq!(n.stats.refused.load(Ordering::Relaxed), 0, "every want fit");
    n.answer_all_for_test(MAC_A, t0);
    let (frames, _) = n.tick(&fwd, t0);
    assert!(!asked(&frames).contains(&v4(11)));
    assert_eq!(
        n.stats.refused.load(Ordering::Relaxed),
        1,
        "the backend's next hop did not fit"
    );
    // Ticks come with every housekeeping round and every worker's want, not with the next
    // hop: one still refused is not counted again at each.
    for ms in [10, 50, 100] {
        n.tick(&fwd, t0 + Duration::from_millis(ms));
    }
    assert_eq!(n.stats.refused.load(Ordering::Relaxed), 1);
    // Answered neighbours nothing uses are forgotten once stale for as long again: then it
    // fits, and is asked for.
    let mut at = t0;
    let admitted = (0..8).any(|_| {
        at += REACHABLE;
        asked(&n.tick(&fwd, at).0).contains(&v4(11))
    });
    assert!(admitted, "asked for once there was room");
    assert_eq!(n.stats.refused.load(Ordering::Relaxed), 1);
}

#[test]
fn neighbour_solicitation_parses_back_with_a_valid_checksum() {
    let mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let (src, target): (Ipv6Addr, Ipv6Addr) =
        ("fd00::2".parse().unwrap(), "fd00::11".parse().unwrap());
    let f = neighbour_solicitation(mac, src, target);
    let h = crate::wire::parse_headers(&f).unwrap();
    assert_eq!(h.dst, "ff02::1:ff00:11".parse::<IpAddr>().unwrap());
    let icmp = Icmpv6Packet::new_checked(&f[54..]).unwrap();
    assert_eq!(icmp.ns_target(), Some(target));
    assert_eq!(icmp.ns_source_mac(), Ok(Some(mac)));
    assert!(icmp.verify_checksum(src, "ff02::1:ff00:11".parse().unwrap()));
    assert!(EthernetFrame::new_checked(&f[..])
        .unwrap()
        .dst()
        .is_multicast());
}

#[test]
fn arp_request_parses_back() {
    let mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let f = arp_request(mac, Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 11));
    let eth = EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!(eth.dst(), MacAddr::BROADCAST);
    assert_eq!(eth.ethertype(), EtherType::ARP);
    let arp = ArpPacket::new_checked(&f[14..]).unwrap();
    assert_eq!(arp.operation(), ArpOperation::REQUEST);
    assert_eq!(arp.sender_mac(), mac);
    assert_eq!(arp.target_ip(), Ipv4Addr::new(10, 0, 0, 11));
}

#[test]
fn a_backends_next_hop_stays_verified_once_published_never_aged_out() {
    let mut n = Neighbours::new(REACHABLE);
    let t0 = Instant::now();
    n.tick(&forwarding(), t0);
    n.report(answer(v4(11), MAC_A), t0);
    // From now on the published state has the backend resolved: still needed.
    let fwd = forwarding_knowing(&[(v4(11), MAC_A)]);
    assert!(fwd.unresolved().is_empty());
    for round in 1..=4 {
        let at = t0 + REACHABLE * round;
        let (frames, _) = n.tick(&fwd, at);
        assert_eq!(
            asked(&frames),
            vec![v4(11)],
            "verified again in round {round}"
        );
        n.report(answer(v4(11), MAC_A), at);
        assert_eq!(n.mac(v4(11)), Some(MAC_A), "kept in round {round}");
    }
    // A configured backend MAC is never asked for, resolved or not.
    assert!(!fwd.needed_neighbours().contains(&(LAN, v4(12))));
}

/// An answer nobody asked for that places a known neighbour at another MAC (a backend back on
/// a new NIC, answering the kernel twin's own ARP) is not learnt, but has the neighbour asked
/// again at once, as an announcement does: the answer to that decides.
#[test]
fn an_unasked_answer_with_another_mac_makes_it_ask_again() {
    let (fwd, mut n, t1) = backend_verified_at_mac_a();
    assert!(n.tick(&fwd, t1).0.is_empty(), "verified: nothing to ask");
    assert!(!n.report(answer(v4(11), MAC_B), t1));
    assert_eq!(n.mac(v4(11)), Some(MAC_A), "not learnt");
    let (frames, _) = n.tick(&fwd, t1);
    assert_eq!(asked(&frames), vec![v4(11)]);
    assert!(
        n.report(answer(v4(11), MAC_B), t1),
        "the answer to that decides"
    );
    assert_eq!(n.mac(v4(11)), Some(MAC_B));
    // The same MAC again, unasked, asks nothing.
    n.report(answer(v4(11), MAC_B), t1);
    assert!(n.tick(&fwd, t1).0.is_empty());
}

/// A known neighbour is verified at its own MAC first (RFC 4861 §7.3.3: a switch delivers
/// that whatever it knows of the neighbour's multicast groups), the last try to the segment
/// (it may have moved to another MAC); one someone claimed at another MAC, to the segment
/// at once.
#[test]
fn a_known_neighbour_is_verified_at_its_mac_then_on_the_segment() {
    let fwd = forwarding();
    let t0 = Instant::now();
    let backend = v4(11);
    let to = |frames: &[(InterfaceId, Vec<u8>)]| -> Vec<MacAddr> {
        let to = frames
            .iter()
            .map(|(_, f)| EthernetFrame::new_checked(&f[..]).unwrap().dst());
        to.collect()
    };
    let mut n = Neighbours::new(REACHABLE);
    n.tick(&fwd, t0);
    n.report(answer(backend, MAC_A), t0);
    let mut at = t0 + REACHABLE;
    let mut sent = Vec::new();
    for _ in 0..3 {
        let (frames, _) = n.tick(&fwd, at);
        assert_eq!(asked(&frames), vec![backend]);
        sent.extend(to(&frames));
        at += RETRY;
    }
    assert_eq!(sent, vec![MAC_A, MAC_A, MacAddr::BROADCAST]);

    let mut n = Neighbours::new(REACHABLE);
    n.tick(&fwd, t0);
    n.report(answer(backend, MAC_A), t0);
    let hint = Report::Hint {
        interface: LAN,
        addr: backend,
        mac: MAC_B,
    };
    n.report(hint, t0 + Duration::from_secs(1));
    let (frames, _) = n.tick(&fwd, t0 + Duration::from_secs(1));
    assert_eq!(to(&frames), vec![MacAddr::BROADCAST]);
}

/// As above in IPv6: the first two solicitations to the neighbour's address at its MAC, the
/// last to its solicited-node group.
#[test]
fn a_known_ipv6_neighbour_is_verified_at_its_mac_then_at_its_group() {
    let config = CONFIG
        .replace("10.0.0.2/24", "fd00::2/64")
        .replace("10.0.0.100", "fd00::100")
        .replace(
            r#"{ address = "10.0.0.11" }, { address = "10.0.0.12", mac = "02:00:00:00:00:12" }"#,
            r#"{ address = "fd00::11" }"#,
        );
    let fwd = forwarding_of(&config, &[]);
    let backend: IpAddr = "fd00::11".parse().unwrap();
    let t0 = Instant::now();
    let mut n = Neighbours::new(REACHABLE);
    n.tick(&fwd, t0);
    n.report(answer(backend, MAC_A), t0);
    let mut at = t0 + REACHABLE;
    let mut sent = Vec::new();
    for _ in 0..3 {
        let (frames, _) = n.tick(&fwd, at);
        assert_eq!(frames.len(), 1, "one solicitation a try");
        let eth = EthernetFrame::new_checked(&frames[0].1[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::IPV6);
        let ip = &eth.payload()[..40];
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
        let icmp = Icmpv6Packet::new_checked(&eth.payload()[40..]).unwrap();
        assert_eq!(icmp.ns_target(), Some("fd00::11".parse().unwrap()));
        sent.push((eth.dst(), dst.to_string()));
        at += RETRY;
    }
    let group_mac = MacAddr([0x33, 0x33, 0xff, 0, 0, 0x11]);
    let expected = [
        (MAC_A, "fd00::11"),
        (MAC_A, "fd00::11"),
        (group_mac, "ff02::1:ff00:11"),
    ];
    let expected: Vec<_> = expected.iter().map(|&(m, a)| (m, a.to_owned())).collect();
    assert_eq!(sent, expected);
}

#[test]
fn a_unicast_solicitation_goes_to_the_target_at_its_mac() {
    let mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let (src, target): (Ipv6Addr, Ipv6Addr) =
        ("fd00::2".parse().unwrap(), "fd00::11".parse().unwrap());
    let f = frames::solicitation_to(mac, src, target, Some(MAC_A));
    let h = crate::wire::parse_headers(&f).unwrap();
    assert_eq!(h.dst, IpAddr::V6(target));
    assert_eq!(EthernetFrame::new_checked(&f[..]).unwrap().dst(), MAC_A);
    let icmp = Icmpv6Packet::new_checked(&f[54..]).unwrap();
    assert_eq!(icmp.ns_target(), Some(target));
    assert!(icmp.verify_checksum(src, target));
}
