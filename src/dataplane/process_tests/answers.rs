//! What a worker reports of the answers and claims it hears about neighbours, when the
//! segment floods it with them: the control thread, which learns a neighbour only from the
//! answer to its own solicitation, still hears that answer.

use super::*;
use crate::dataplane::neighbours::{
    NeighbourReports, ANSWERS_PER_S, ANSWERS_ROOM, ANSWER_AGAIN_MS, HINTS_PER_S, REPORTS,
};

/// A worker whose reports queue has room for twice the appliance's.
fn worker_with_a_long_queue() -> (WorkerState, Arc<ArrayQueue<Report>>) {
    let reports = Arc::new(ArrayQueue::new(2 * REPORTS));
    (WorkerState::new(1024, reports.clone()), reports)
}

/// An ARP reply to the appliance's own address, sent to its MAC by the host it names.
fn reply(sender_mac: MacAddr, sender: Ipv4Addr) -> Vec<u8> {
    arp_frame(IF_MAC, ArpOperation::REPLY, sender_mac, sender, OWN)
}

fn answer(addr: Ipv4Addr, mac: MacAddr) -> Report {
    Report::Answer {
        interface: LAN,
        addr: IpAddr::V4(addr),
        mac,
    }
}

/// The `n`th of the MACs a flood sends from.
fn made_up_mac(n: u32) -> MacAddr {
    let [_, a, b, c] = n.to_be_bytes();
    MacAddr([0x02, 0xee, a, b, c, 0])
}

/// Replies forged from a host on the segment, each naming another address, nobody asked
/// for: the queue had filled with them (each an answer to the control thread, which ignored
/// them), and the backend's real answer found no room.
#[test]
fn replies_nobody_asked_for_leave_the_reports_to_the_answer_asked_for() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, reports) = worker();
    st.neighbours.asking.insert(IpAddr::V4(BACKENDS[1]));
    for n in 0..20_000 {
        let sender = Ipv4Addr::from(0x0a01_0000 + n);
        process(&mut reply(made_up_mac(n), sender), LAN, &mut st, &fwd, NOW);
    }
    let flood = drain(&reports);
    assert!(
        flood.len() <= 20,
        "{} of the flood's replies reported",
        flood.len()
    );
    let ignored = st.neighbours.ignored;
    assert_eq!(
        ignored as usize + flood.len(),
        20_000,
        "each counted, not learnt"
    );
    process(
        &mut reply(BACKEND_MACS[1], BACKENDS[1]),
        LAN,
        &mut st,
        &fwd,
        NOW + 1,
    );
    assert_eq!(drain(&reports), vec![answer(BACKENDS[1], BACKEND_MACS[1])]);
}

/// One answer sent over and over is reported once in [`ANSWER_AGAIN_MS`]; an answer that
/// says otherwise (the real host racing a forger) is reported at once.
#[test]
fn an_answer_repeated_is_reported_once_in_a_while() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, reports) = worker();
    st.neighbours.asking.insert(IpAddr::V4(BACKENDS[1]));
    let forged = made_up_mac(1);
    for _ in 0..1000 {
        process(&mut reply(forged, BACKENDS[1]), LAN, &mut st, &fwd, NOW);
    }
    assert_eq!(drain(&reports), vec![answer(BACKENDS[1], forged)]);
    let last = NOW + ANSWER_AGAIN_MS - 1;
    process(&mut reply(forged, BACKENDS[1]), LAN, &mut st, &fwd, last);
    assert_eq!(drain(&reports), vec![]);
    assert_eq!(st.neighbours.ignored, 1000);
    let again = NOW + ANSWER_AGAIN_MS;
    process(&mut reply(forged, BACKENDS[1]), LAN, &mut st, &fwd, again);
    assert_eq!(drain(&reports), vec![answer(BACKENDS[1], forged)]);
    let real = reply(BACKEND_MACS[1], BACKENDS[1]);
    process(&mut real.clone(), LAN, &mut st, &fwd, again);
    assert_eq!(drain(&reports), vec![answer(BACKENDS[1], BACKEND_MACS[1])]);
}

/// A solicited advertisement is an answer where the control thread asks for its target,
/// and about another target (not a known neighbour either) nothing, counted.
#[test]
fn a_solicited_advertisement_answers_only_what_is_asked_for() {
    use super::fragmented_neighbour_discovery::solicited_advert;
    use super::icmp_and_ipv6::{icmp6_frame, ipv6_config};
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, reports) = worker();
    let own: Ipv6Addr = "fd00::2".parse().unwrap();
    let (asked, other): (Ipv6Addr, Ipv6Addr) =
        ("fd00::11".parse().unwrap(), "fd00::77".parse().unwrap());
    st.neighbours.asking.insert(IpAddr::V6(asked));
    let mac = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
    for target in [other, asked] {
        let mut advert = icmp6_frame(IF_MAC, target, own, solicited_advert(target, mac));
        process(&mut advert, LAN, &mut st, &fwd, NOW);
    }
    let addr = IpAddr::V6(asked);
    let answer = Report::Answer {
        interface: LAN,
        addr,
        mac,
    };
    assert_eq!(drain(&reports), vec![answer]);
    assert_eq!(st.neighbours.ignored, 1);
}

/// An address asked for, answered from ever new MACs: a tenth of a second's worth of
/// answers at once, then at the rate.
#[test]
fn answers_are_reported_at_a_rate() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, reports) = worker_with_a_long_queue();
    st.neighbours.asking.insert(IpAddr::V4(BACKENDS[1]));
    for n in 0..10_000 {
        process(
            &mut reply(made_up_mac(n), BACKENDS[1]),
            LAN,
            &mut st,
            &fwd,
            NOW,
        );
    }
    assert_eq!(drain(&reports).len(), ANSWERS_PER_S as usize / 10);
    assert_eq!(st.neighbours.ignored, 10_000 - ANSWERS_PER_S as u64 / 10);
    for n in 10_000..10_100 {
        let frame = &mut reply(made_up_mac(n), BACKENDS[1]);
        process(frame, LAN, &mut st, &fwd, NOW + 1);
    }
    assert_eq!(drain(&reports).len(), ANSWERS_PER_S as usize / 1000);
}

/// Claims about known neighbours, each from another MAC than known: each is news (the
/// control thread asks again), but a tenth of a second's worth at once, then at the rate,
/// however many neighbours they name.
#[test]
fn hints_are_reported_at_a_rate() {
    let known: Vec<(IpAddr, MacAddr)> = (0..2000)
        .map(|n| (IpAddr::V4(Ipv4Addr::from(0x0a00_0400 + n)), CLIENT_MAC))
        .collect();
    let fwd = build_knowing(&ha_ports(), &[], &known);
    let (mut st, reports) = worker_with_a_long_queue();
    for (addr, _) in &known {
        let IpAddr::V4(sender) = *addr else {
            unreachable!()
        };
        let frame = &mut arp_request(OTHER_HOST_MAC, sender, OWN);
        process(frame, LAN, &mut st, &fwd, NOW);
    }
    let hints = drain(&reports);
    assert_eq!(hints.len(), HINTS_PER_S as usize / 10);
    assert!(hints
        .iter()
        .all(|r| matches!(r, Report::Hint { mac, .. } if *mac == OTHER_HOST_MAC)));
}

/// Wants from every worker filling the queue leave room for the answers to the appliance's
/// own solicitations.
#[test]
fn wants_stop_short_of_the_room_kept_for_answers() {
    let fwd = build(&ha_ports(), &[]);
    let queue = NeighbourReports::new_queue();
    let asking = Arc::new(crate::dataplane::Asking::default());
    let mut workers: Vec<NeighbourReports> = (0..64)
        .map(|_| NeighbourReports::answering(queue.clone(), asking.clone()))
        .collect();
    for (w, reports) in workers.iter_mut().enumerate() {
        for n in 0..200 {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (w as u32) << 8 | n));
            reports.want(LAN, addr, NOW);
        }
    }
    assert_eq!(queue.len(), REPORTS - ANSWERS_ROOM);
    asking.insert(IpAddr::V4(BACKENDS[1]));
    let heard = (IpAddr::V4(BACKENDS[1]), BACKEND_MACS[1]);
    workers[0].answer(&fwd, LAN, heard, NOW);
    assert_eq!(queue.len(), REPORTS - ANSWERS_ROOM + 1, "the answer got in");
}
