//! End to end: a flood of a million random sources (tcpreplay; SYNs and lone ACKs) at a
//! running appliance while an established TCP session carries data. Needs root.

mod common;

use std::time::Duration;

use common::{metric, metric_sum, wait_for, Appliance, Lab, FRONTEND};

/// Writes a pcap of N TCP segments to the frontend's port 8000, SYNs and ACKs in turn, each
/// from a random source in 100.64.0.0/10 and a random port, with valid IPv4 and TCP
/// checksums (summed incrementally: only the source address, port and flags change).
const SYN_PCAP: &str = r#"
import random, struct, sys
path, n, dst_mac, src_mac = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
mac = lambda m: bytes(int(x, 16) for x in m.split(":"))
eth = mac(dst_mac) + mac(src_mac) + b"\x08\x00"
dst = bytes([10, 0, 0, 100])
def fold(s):
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s
ip_fixed = 0x4500 + 40 + 0x4000 + (64 << 8 | 6) + (10 << 8) + 100
tcp_fixed = 6 + 20 + (10 << 8) + 100 + 8000 + (5 << 12) + 0xffff
random.seed(7)
out = open(path, "wb")
out.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
rec = struct.pack("<IIII", 0, 0, 54, 54)
for i in range(n):
    flags = 0x02 if i % 2 == 0 else 0x10
    src = (100 << 24) | (64 << 16) | random.getrandbits(22)
    sport = random.randint(1024, 65535)
    s_hi, s_lo = src >> 16, src & 0xffff
    ip_sum = 0xffff - fold(ip_fixed + s_hi + s_lo)
    tcp_sum = 0xffff - fold(tcp_fixed + flags + s_hi + s_lo + sport)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, ip_sum, src.to_bytes(4, "big"), dst)
    tcp = struct.pack(">HHIIBBHHH", sport, 8000, 0, 0, 5 << 4, flags, 0xffff, tcp_sum, 0)
    out.write(rec + eth + ip + tcp)
out.close()
"#;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_million_source_flood_breaks_no_established_connection_and_its_state_goes_soon() {
    let lab = Lab::up("nat");
    let lb = Appliance::start(&lab, &lab.config());
    let mac = |host: &str| {
        let out = lab.exec(host, &["cat", "/sys/class/net/eth0/address"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let pcap = format!("/tmp/haports-lab-{}/flood.pcap", lab.tag);
    let flood = 1_000_000;
    let written = std::process::Command::new("python3")
        .args([
            "-c",
            SYN_PCAP,
            &pcap,
            &flood.to_string(),
            &mac("lb"),
            &mac("c"),
        ])
        .output()
        .expect("python3");
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );

    // Warm: every path used once, then the baseline.
    let warm = lab.traffic("tcp", FRONTEND, &[8000, 8001, 8002], 30, None);
    assert!(warm.failures.is_empty(), "{:?}", warm.failures);
    let before = lb.metrics();
    let rss_before = rss_kib(lb.pid());

    // The session runs until the flood is over (at most two minutes). What the kernel's
    // AF_PACKET socket drops before the PMD under the flood hits the session's segments too,
    // and TCP sends them again: a few seconds' wait for an answer is not a broken connection.
    let mut streams = lab.streams(&[
        "--udp-flows",
        "0",
        "--session-port",
        "8002",
        "--session-timeout",
        "8",
        "--duration",
        "120",
        "--until-stdin-closes",
    ]);
    wait_for(
        "the session to carry traffic",
        Duration::from_secs(5),
        || {
            let m = lb.metrics();
            (metric_sum(&m, "haports_backend_packets_total")
                > metric_sum(&before, "haports_backend_packets_total") + 20.0)
                .then_some(())
        },
    );
    let replay = lab.exec(
        "c",
        &[
            "tcpreplay",
            "--intf1=eth0",
            "--pps=50000",
            &format!("--limit={flood}"),
            &pcap,
        ],
    );
    assert!(
        replay.status.success(),
        "tcpreplay: {}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(
        streams.running(),
        "the session ended before the flood did: it did not run through it"
    );
    // The table as the flood ends (65,536 entries; the last 5 s of the flood are live): its
    // going down below is the flood's entries expiring.
    let entries = metric(
        &lb.metrics(),
        "haports_flow_table_entries",
        &[("worker", "0")],
    );
    assert!(
        entries.is_some_and(|n| n >= 30_000.0),
        "flow-table entries as the flood ended: {entries:?}"
    );
    let report = streams.stop();
    let after = lb.metrics();
    let rss_after = rss_kib(lb.pid());

    // The flood happened: the appliance received most of it (the rest the kernel's AF_PACKET
    // socket dropped before the PMD, uncounted) and its flow table ran full.
    let grew = |name: &str| metric_sum(&after, name) - metric_sum(&before, name);
    let received = grew("haports_port_rx_packets_total") + grew("haports_port_rx_dropped_total");
    assert!(
        received >= flood as f64 * 0.5,
        "the appliance saw {received} frames of the {flood}"
    );
    assert!(
        grew("haports_flow_table_refused_total") > 0.0,
        "the flood filled the flow table"
    );
    // The established session never noticed.
    let session = &report["session"];
    assert_eq!(session["errors"].as_array().unwrap().len(), 0, "{session}");
    assert!(session["sent"].as_u64().unwrap() > 20, "{session}");
    assert_eq!(session["sent"], session["answered"], "{session}");
    // State is fixed at start: the flood costs no memory beyond pages of it first touched.
    let growth = rss_after.saturating_sub(rss_before);
    assert!(
        growth < 8 * 1024,
        "RSS grew by {growth} KiB ({rss_before} -> {rss_after})"
    );
    // And afterwards, new connections are served by every backend.
    let t = lab.traffic("tcp", FRONTEND, &(8000..8024).collect::<Vec<_>>(), 48, None);
    assert!(
        t.failures.is_empty() && t.served.len() == 3,
        "after the flood: {:?} {:?}",
        t.served,
        t.failures.first()
    );
    // The flood's entries, a lone packet each (SYN or ACK), go after 5 s, not the rule's
    // idle timeout (240 s, the default): the table has room for new flows again.
    wait_for(
        "the flood's flow-table entries to expire",
        Duration::from_secs(30),
        || {
            let now = metric(
                &lb.metrics(),
                "haports_flow_table_entries",
                &[("worker", "0")],
            )?;
            (now < 1_000.0).then_some(())
        },
    );
    eprintln!(
        "flood: {received} frames received, RSS {rss_before} -> {rss_after} KiB, \
         flow-table entries {entries:?}, refused {}; tcpreplay: {}",
        grew("haports_flow_table_refused_total"),
        String::from_utf8_lossy(&replay.stdout)
            .lines()
            .find(|l| l.contains("Rated"))
            .unwrap_or("")
            .trim()
    );
}
