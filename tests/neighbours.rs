//! End to end: the network cannot teach haports a wrong neighbour. Spoofed packets, ARP and
//! neighbour advertisements nobody asked for are sent at a running appliance from the
//! client's namespace, claiming a backend's address; traffic for that backend still reaches
//! its real MAC. A backend whose MAC changes is relearnt within the reachable time. Needs root.

mod common;

use std::time::Duration;

use common::{
    assert_all_served, assert_every_connection_served, metric, wait_for, Appliance, Capture, Lab,
    FRONTEND6,
};

fn ports() -> Vec<u16> {
    (8000..8024).collect()
}

fn mac_of(lab: &Lab, host: &str) -> String {
    let out = lab.exec(host, &["cat", "/sys/class/net/eth0/address"]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn counter(lb: &Appliance, name: &str) -> f64 {
    metric(&lb.metrics(), name, &[]).unwrap_or(0.0)
}

/// Poisoning attempts (scapy) from the client's host, which claims the backend's address.
/// First an ARP reply nobody asked for, sent to the appliance's MAC for its own address
/// (before anything could make the appliance ask).
const UNSOLICITED_REPLY: &str = r#"
import sys
from scapy.all import ARP, Ether, get_if_hwaddr, sendp
lb_mac, backend, own = sys.argv[1:4]
me = get_if_hwaddr("eth0")
sendp(Ether(dst=lb_mac, src=me) / ARP(op=2, hwsrc=me, psrc=backend, hwdst=lb_mac, pdst=own),
      iface="eth0", verbose=False)
"#;

/// The rest of the attempts: SYNs from the backend's address, gratuitous ARP (request and
/// reply) and an ARP request for the frontend in its name; then a spoofed NAT reply (source
/// the backend, to the client's port 5555) while the client listens for it coming back
/// rewritten (a second: the time a reply through the appliance takes many times over).
/// Prints how many came back (must be 0).
const POISON_V4: &str = r#"
import sys, threading
from scapy.all import ARP, Ether, IP, TCP, UDP, Raw, AsyncSniffer, get_if_hwaddr, sendp
lb_mac, backend, frontend, client = sys.argv[1:5]
me = get_if_hwaddr("eth0")
bcast = "ff:ff:ff:ff:ff:ff"
frames = [Ether(dst=lb_mac, src=me) / IP(src=backend, dst=frontend) /
          TCP(sport=40000 + i, dport=8000, flags="S") for i in range(5)]
frames += [
    Ether(dst=bcast, src=me) / ARP(op=1, hwsrc=me, psrc=backend, pdst=backend),
    Ether(dst=bcast, src=me) / ARP(op=2, hwsrc=me, psrc=backend, hwdst=bcast, pdst=backend),
    Ether(dst=bcast, src=me) / ARP(op=1, hwsrc=me, psrc=backend, pdst=frontend),
]
sendp(frames, iface="eth0", verbose=False)
listening = threading.Event()
sniffer = AsyncSniffer(iface="eth0", filter="udp and dst port 5555",
                       started_callback=listening.set, timeout=1.0)
sniffer.start()
listening.wait(5)
sendp(Ether(dst=lb_mac, src=me) / IP(src=backend, dst=client) / UDP(sport=8000, dport=5555) /
      Raw(b"spoofed reply"), iface="eth0", verbose=False)
sniffer.join()
print(sum(1 for p in sniffer.results if p.haslayer(IP) and p[IP].src == frontend))
"#;

#[test]
fn spoofed_syns_and_unsolicited_arp_teach_nothing_and_a_spoofed_reply_is_not_rewritten() {
    let lab = Lab::up("nat");
    // Entries stay verified for an hour: only the claims below can make it ask again.
    lab.edit_config(|t| {
        t.replacen(
            "[dataplane]\n",
            "[dataplane]\nneighbour_reachable_s = 3600\n",
            1,
        )
    });
    let lb = Appliance::start(&lab, &lab.config());
    let before = lab.traffic("tcp", lab.frontend(), &ports(), 48, None);
    assert_all_served("before", &before, 48);
    let (answers, ignored) = (
        counter(&lb, "haports_neighbour_answers_total"),
        counter(&lb, "haports_neighbour_ignored_total"),
    );
    assert!(
        answers >= 4.0,
        "three backends and the client asked for: {answers}"
    );

    let lb_mac = mac_of(&lab, "lb");
    let backend = lab.backends()[0];
    // Connections throughout the claims, and a watch at the client's host for any packet
    // meant for b1: had a claim been taken, even until a verification mended it, b1's
    // packets would have come there.
    let stray = Capture::start(&lab, "c", &format!("ip dst host {backend}"));
    let streams = lab.streams(&[
        "--udp-flows",
        "0",
        "--duration",
        "120",
        "--until-stdin-closes",
    ]);
    let sent = lab.exec(
        "c",
        &[
            "/usr/bin/python3",
            "-c",
            UNSOLICITED_REPLY,
            &lb_mac,
            backend,
            "10.0.1.2",
        ],
    );
    assert!(
        sent.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    wait_for(
        "the unsolicited reply to be ignored",
        Duration::from_secs(10),
        || (counter(&lb, "haports_neighbour_ignored_total") > ignored).then_some(()),
    );
    let no_frontend =
        |m: &str| metric(m, "haports_drops_total", &[("reason", "no_frontend")]).unwrap_or(0.0);
    let dropped_before = no_frontend(&lb.metrics());
    let sent = lab.exec(
        "c",
        &[
            "/usr/bin/python3",
            "-c",
            POISON_V4,
            &lb_mac,
            backend,
            lab.frontend(),
            lab.client(),
        ],
    );
    assert!(
        sent.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let rewritten = String::from_utf8_lossy(&sent.stdout).trim().to_owned();
    assert_eq!(
        rewritten, "0",
        "the spoofed reply came back as the frontend's"
    );
    // It reached the appliance, which dropped it: from the client's side, claiming a
    // backend's address, it is no reply, and it is addressed to no frontend.
    wait_for(
        "the spoofed reply to be dropped",
        Duration::from_secs(10),
        || (no_frontend(&lb.metrics()) > dropped_before).then_some(()),
    );
    // The claims of another MAC made the appliance ask the backend again, which answered.
    wait_for(
        "the appliance to re-verify the backend",
        Duration::from_secs(10),
        || (counter(&lb, "haports_neighbour_answers_total") > answers).then_some(()),
    );
    let report = streams.stop();
    assert_every_connection_served(&report);
    let seen = stray.stop();
    assert!(
        seen.is_empty(),
        "b1's packets reached the client's host: {seen:?}"
    );

    // Had b1's MAC been taken from any of them, its flows would go to the client's host.
    let after = lab.traffic("tcp", lab.frontend(), &ports(), 48, None);
    assert_all_served("after the poisoning attempts", &after, 48);
}

/// Neighbour advertisements claiming a backend (scapy, from the client's host): one with hop
/// limit 64 (RFC 4861 drops it) marked solicited, sent to the appliance's own address; one
/// unsolicited (override) to all nodes.
const POISON_V6: &str = r#"
import sys
from scapy.all import Ether, IPv6, ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, get_if_hwaddr, sendp
lb_mac, backend, own = sys.argv[1:4]
me = get_if_hwaddr("eth0")
na = lambda dst, hlim, s: (IPv6(src=backend, dst=dst, hlim=hlim) /
    ICMPv6ND_NA(tgt=backend, R=0, S=s, O=1) / ICMPv6NDOptDstLLAddr(lladdr=me))
if sys.argv[4] == "solicited":
    sendp(Ether(dst=lb_mac, src=me) / na(own, 64, 1), iface="eth0", verbose=False)
else:
    sendp(Ether(dst="33:33:00:00:00:01", src=me) / na("ff02::1", 255, 0),
          iface="eth0", verbose=False)
"#;

#[test]
fn neighbour_advertisements_nobody_asked_for_teach_nothing() {
    let lab = Lab::up("nat6");
    // Entries stay verified for an hour: only the claims below can make it ask again.
    lab.edit_config(|t| {
        t.replacen(
            "[dataplane]\n",
            "[dataplane]\nneighbour_reachable_s = 3600\n",
            1,
        )
    });
    let lb = Appliance::start(&lab, &lab.config());
    let before = lab.traffic("tcp", lab.frontend(), &ports(), 48, None);
    assert_all_served("before", &before, 48);
    let answers = counter(&lb, "haports_neighbour_answers_total");

    let lb_mac = mac_of(&lab, "lb");
    let send = |which: &str| {
        let sent = lab.exec(
            "c",
            &[
                "/usr/bin/python3",
                "-c",
                POISON_V6,
                &lb_mac,
                lab.backends()[0],
                "fd00::2",
                which,
            ],
        );
        assert!(
            sent.status.success(),
            "scapy: {}",
            String::from_utf8_lossy(&sent.stderr)
        );
    };
    // A "solicited" answer nobody asked for, with hop limit 64 (from off the link): taken,
    // b1's traffic would go to the client's host, and no verification would come to mend it
    // within the hour.
    // Seen at the appliance's port (a neighbour advertisement for the backend, from the
    // client's host), so that what follows is its effect, not its absence.
    let arrived = Capture::start(&lab, "lb", "icmp6 and ip6[40] == 136 and ip6[7] == 64");
    send("solicited");
    wait_for(
        "the advertisement at the appliance's port",
        Duration::from_secs(10),
        || (!arrived.seen().is_empty()).then_some(()),
    );
    drop(arrived.stop());
    let t = lab.traffic("tcp", lab.frontend(), &ports(), 48, None);
    assert_all_served("after the solicited one", &t, 48);
    assert_eq!(
        counter(&lb, "haports_neighbour_answers_total"),
        answers,
        "the appliance asked again: it took the answer as news"
    );
    // An unsolicited one from the link makes the appliance ask the backend again, which
    // answers (the claim itself is not taken).
    send("unsolicited");
    wait_for(
        "the appliance to re-verify the backend",
        Duration::from_secs(10),
        || (counter(&lb, "haports_neighbour_answers_total") > answers).then_some(()),
    );
    let after = lab.traffic("tcp", lab.frontend(), &ports(), 48, None);
    assert_all_served("after the advertisements", &after, 48);
}

#[test]
fn a_backend_whose_mac_changes_is_relearnt_once_its_entry_is_verified_again() {
    let lab = Lab::up("nat");
    lab.edit_config(|t| {
        t.replacen(
            "[dataplane]\n",
            "[dataplane]\nneighbour_reachable_s = 2\n",
            1,
        )
    });
    let lb = Appliance::start(&lab, &lab.config());
    let before = lab.traffic("tcp", lab.frontend(), &ports(), 48, None);
    assert_all_served("before", &before, 48);

    // A new MAC for b1 (as when a VM's NIC is replaced); frames to the old one are not its.
    let old = mac_of(&lab, "b1");
    let new = "02:00:00:00:0b:01";
    let set = lab.exec("b1", &["ip", "link", "set", "eth0", "address", new]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    assert_eq!(mac_of(&lab, "b1"), new);
    assert_ne!(old, new);

    // Once the entry's reachable time (2 s) is over, verification and the answer: b1 serves
    // again, which it can only at its new MAC (waited for with a margin: tests time nothing;
    // an attempt's 48 exchanges run one after another, b1's up to 0.5 s each).
    let t = wait_for(
        "b1 to be reached at its new MAC",
        Duration::from_secs(20),
        || {
            let t = lab.traffic_timeout("tcp", lab.frontend(), &ports(), 48, None, 0.5);
            (t.failures.is_empty() && t.served.contains_key("b1")).then_some(t)
        },
    );
    // Served at all, b1 was reached at its new MAC: the appliance asked and took the answer.
    assert_all_served("after the change", &t, 48);
    drop(lb);
}

/// A backend announcing its new MAC (gratuitous ARP, as a host taking an address over does)
/// is asked again at once: b1 is served at its new MAC within 20 s, where its old entry
/// would otherwise have stood for the hour the test's reachable time gives it.
#[test]
fn a_backend_announcing_a_new_mac_is_asked_again_at_once() {
    let lab = Lab::up("nat");
    // Entries stay verified for an hour: only the claims below can make it ask again.
    lab.edit_config(|t| {
        t.replacen(
            "[dataplane]\n",
            "[dataplane]\nneighbour_reachable_s = 3600\n",
            1,
        )
    });
    let lb = Appliance::start(&lab, &lab.config());
    let before = lab.traffic("tcp", lab.frontend(), &ports(), 48, None);
    assert_all_served("before", &before, 48);
    let answers = counter(&lb, "haports_neighbour_answers_total");

    let new = "02:00:00:00:0b:01";
    assert_ne!(mac_of(&lab, "b1"), new);
    let set = lab.exec("b1", &["ip", "link", "set", "eth0", "address", new]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let announce = "import sys\n\
        from scapy.all import ARP, Ether, sendp\n\
        me, addr = sys.argv[1:3]\n\
        sendp(Ether(dst='ff:ff:ff:ff:ff:ff', src=me) / ARP(op=1, hwsrc=me, psrc=addr, pdst=addr),\n\
        \x20     iface='eth0', verbose=False)\n";
    let sent = lab.exec(
        "b1",
        &["/usr/bin/python3", "-c", announce, new, lab.backends()[0]],
    );
    assert!(
        sent.status.success(),
        "scapy: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let t = wait_for(
        "b1 to be reached at its new MAC",
        Duration::from_secs(20),
        || {
            let t = lab.traffic_timeout("tcp", lab.frontend(), &ports(), 48, None, 0.5);
            (t.failures.is_empty() && t.served.contains_key("b1")).then_some(t)
        },
    );
    assert_all_served("after the announcement", &t, 48);
    assert!(counter(&lb, "haports_neighbour_answers_total") > answers);
}

/// A host on the segment configuring a frontend's IPv6 address finds it taken: the
/// appliance defends it against the host's duplicate-address detection (RFC 4862 §5.4.3),
/// so that the host's kernel marks the address failed rather than answering for the frontend
/// (and taking its clients), and the frontend goes on serving.
#[test]
fn a_host_taking_a_frontends_ipv6_address_finds_it_defended() {
    let lab = Lab::up("nat6");
    let mut lb = Appliance::start(&lab, &lab.config());
    let before = lab.traffic("udp", FRONTEND6, &ports(), 48, None);
    assert_all_served("before", &before, 48);
    // The lab's hosts skip duplicate-address detection; this one runs it (Linux's with a
    // nonce, RFC 7527), as a host taking the address by mistake would.
    let dad = lab.exec("b1", &["sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=1"]);
    assert!(dad.status.success(), "{dad:?}");
    let add = ["ip", "-6", "addr", "add", "fd00::100/64", "dev", "eth0"];
    let added = lab.exec("b1", &add);
    assert!(added.status.success(), "{added:?}");
    let failed = wait_for(
        "b1's duplicate-address detection to end",
        Duration::from_secs(10),
        || {
            let out = lab.exec("b1", &["ip", "-6", "addr", "show", "dev", "eth0"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let line = text
                .lines()
                .find(|l| l.contains("fd00::100/64"))?
                .to_owned();
            if line.contains("dadfailed") {
                Some(true)
            } else {
                (!line.contains("tentative")).then_some(false)
            }
        },
    );
    assert!(
        failed,
        "b1 took the frontend's address: it was not defended"
    );
    let after = lab.traffic("udp", FRONTEND6, &ports(), 48, None);
    assert_all_served("after", &after, 48);
    assert!(lb.stop().success(), "{}", lb.logs());
}

/// On a switch that snoops MLD and floods no unregistered multicast to the appliance's port
/// (as many are set up), neighbours find an IPv6 frontend only where the appliance reports
/// its solicited-node group, and go on finding it only while it answers the switch's
/// queries: the lab's bridge queries every second and forgets a group 3 s after its last
/// report.
#[test]
fn an_ipv6_frontend_stays_reachable_behind_a_switch_snooping_mld() {
    let lab = Lab::up("dsr6");
    let sw = |args: &[&str]| {
        let out = lab.exec("sw", args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The bridge queries from its link-local address, once that is usable.
    wait_for(
        "the switch's link-local address",
        Duration::from_secs(10),
        || {
            let a = sw(&["ip", "-6", "addr", "show", "dev", "br0"]);
            (a.contains("fe80") && !a.contains("tentative")).then_some(())
        },
    );
    let bridge = ["ip", "link", "set", "br0", "type", "bridge"];
    let timers = [
        "mcast_snooping",
        "1",
        "mcast_query_interval",
        "100",
        "mcast_startup_query_interval",
        "50",
        "mcast_query_response_interval",
        "50",
        "mcast_membership_interval",
        "300",
    ];
    sw(&[&bridge[..], &timers[..]].concat());
    sw(&[&bridge[..], &["mcast_querier", "1"]].concat());
    sw(&[
        "bridge",
        "link",
        "set",
        "dev",
        "p-lb-eth0",
        "mcast_flood",
        "off",
    ]);
    let mut lb = Appliance::start(&lab, &lab.config());
    // The group's entry on the appliance's port, and the seconds it has left.
    let entry = || {
        let out = sw(&["bridge", "-s", "mdb", "show", "dev", "br0"]);
        let line = out
            .lines()
            .find(|l| l.contains("port p-lb-eth0") && l.contains("grp ff02::1:ff00:100 "))?
            .to_owned();
        line.split_whitespace().last()?.parse::<f64>().ok()
    };
    let mut left = wait_for(
        "the switch to learn the frontend's group on the appliance's port",
        Duration::from_secs(10),
        entry,
    );
    let t = lab.traffic("udp", FRONTEND6, &ports(), 48, None);
    assert_all_served("once reported", &t, 48);
    // Reported again at each query: the entry's time rises back five times (over 5 s, which
    // would have let it lapse: unanswered, the queries leave it gone). A lapse in between is
    // the failure itself, not a wait (one read may miss it as the bridge rewrites it).
    let mut refreshed = 0;
    wait_for(
        "the group to be reported again at five queries",
        Duration::from_secs(20),
        || {
            let now = entry()
                .or_else(entry)
                .expect("the frontend's group lapsed on the appliance's port");
            refreshed += usize::from(now > left + 0.2);
            left = now;
            (refreshed >= 5).then_some(())
        },
    );
    // A neighbour asking afresh still finds the frontend.
    let flushed = lab.exec("c", &["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    assert!(flushed.status.success(), "{flushed:?}");
    let t = lab.traffic("udp", FRONTEND6, &ports(), 48, None);
    assert_all_served("after the queries", &t, 48);
    assert!(lb.stop().success(), "{}", lb.logs());
}
