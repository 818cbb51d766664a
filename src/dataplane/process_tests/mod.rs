//! Tests of `process`: whole frames in, the action and the rewritten bytes out, against a
//! forwarding state built from config text as the control thread builds it. Frames are laid
//! out byte by byte here, with checksums computed from scratch, so that the rewrites are
//! checked against independently built packets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use proptest::prelude::*;

use super::{process, Action, WorkerState};
use crate::config::Config;
use crate::dataplane::datagrams::FRAGMENT_CAPACITY;
use crate::dataplane::neighbours::{HOLD_CAPACITY, HOLD_MS};
use crate::dataplane::{Held, Report, Spill, Wait};
use crate::lb::decision::lookup;
use crate::lb::flow::FlowKey;
use crate::lb::forwarding::Neighbour;
use crate::lb::forwarding::{frontend_mac, BackendId, Forwarding, Observations};
use crate::lb::verdict::DropReason;
use crate::wire::checksum::{internet_checksum, tcp_udp_checksum_v4, tcp_udp_checksum_v6};
use crate::wire::{
    ArpOperation, ArpPacket, EtherType, EthernetFrame, IcmpPacket, IcmpType, Icmpv6Packet,
    Icmpv6Type, IpProtocol, Ipv4Packet, Ipv6Packet, MacAddr, TcpFlags, TcpPacket, UdpPacket,
};

const IF_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xc1]);
const OTHER_HOST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xee]);
const OWN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const OWN_1: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const FRONTEND: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
const BACKENDS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 0, 0, 11),
    Ipv4Addr::new(10, 0, 0, 12),
    Ipv4Addr::new(10, 0, 0, 13),
];
const BACKEND_MACS: [MacAddr; 3] = [
    MacAddr([0x02, 0, 0, 0, 0, 0x11]),
    MacAddr([0x02, 0, 0, 0, 0, 0x12]),
    MacAddr([0x02, 0, 0, 0, 0, 0x13]),
];
const LAN: u32 = 0;
const NOW: u64 = 1_000;
const ETH_LEN: usize = 14;

// ---------------------------------------------------------------------------------------
// Forwarding state

/// One interface holding two subnets; one internal load balancer, frontend 10.0.0.100, a pool
/// of three backends with configured MACs, and one rule as given.
fn config(protocol: &str, frontend_port: u16, backend_port: u16, floating_ip: bool) -> Config {
    let text = format!(
        r#"
[dataplane]
maglev_table_size = 1021

[[interface]]
name = "lan"
port = 0
address = ["10.0.0.2/24", "10.0.1.2/24"]

[[load_balancer]]
name = "ilb"
kind = "internal"

  [[load_balancer.frontend]]
  name = "fe1"
  address = "10.0.0.100"

  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [
    {{ address = "10.0.0.11", mac = "02:00:00:00:00:11" }},
    {{ address = "10.0.0.12", mac = "02:00:00:00:00:12" }},
    {{ address = "10.0.0.13", mac = "02:00:00:00:00:13" }},
  ]

  [[load_balancer.rule]]
  name = "r"
  frontend = "fe1"
  backend_pool = "pool"
  protocol = "{protocol}"
  frontend_port = {frontend_port}
  backend_port = {backend_port}
  floating_ip = {floating_ip}
"#
    );
    Config::from_toml(&text, "test").expect("test config parses")
}

fn ha_ports() -> Config {
    config("all", 0, 0, false)
}

/// The state the control thread would publish, with `down` failing their probes, once it
/// resolved the clients (IPv4 and IPv6) by asking for them.
fn build(cfg: &Config, down: &[Ipv4Addr]) -> Forwarding {
    let clients = [IpAddr::V4(CLIENT), IpAddr::V6(icmp_and_ipv6::CLIENT6)];
    build_knowing(cfg, down, &clients.map(|c| (c, CLIENT_MAC)))
}

/// [`build`] with the given neighbours resolved.
fn build_knowing(cfg: &Config, down: &[Ipv4Addr], neighbours: &[(IpAddr, MacAddr)]) -> Forwarding {
    Forwarding::build(cfg, &observed(down, neighbours), 1, None)
}

/// [`build`] as a reload does: from the state before (its pool and backend ids kept).
fn rebuild(cfg: &Config, previous: &Forwarding) -> Forwarding {
    let clients = [IpAddr::V4(CLIENT), IpAddr::V6(icmp_and_ipv6::CLIENT6)];
    let obs = observed(&[], &clients.map(|c| (c, CLIENT_MAC)));
    Forwarding::build(cfg, &obs, previous.generation + 1, Some(previous))
}

/// What the control thread observed: backends `down`, `neighbours` resolved.
fn observed(down: &[Ipv4Addr], neighbours: &[(IpAddr, MacAddr)]) -> Observations {
    Observations {
        down: down.iter().map(|&a| IpAddr::V4(a)).collect(),
        interface_macs: vec![IF_MAC],
        down_probes: Default::default(),
        interface_mtus: Vec::new(),
        neighbours: neighbours
            .iter()
            .map(|&(a, m)| (a, Neighbour::fresh(m)))
            .collect(),
        reusable_backends: Vec::new(),
    }
}

fn worker() -> (WorkerState, Arc<ArrayQueue<Report>>) {
    let reports = Arc::new(ArrayQueue::new(64));
    (WorkerState::new(1024, reports.clone()), reports)
}

fn drain(reports: &ArrayQueue<Report>) -> Vec<Report> {
    std::iter::from_fn(|| reports.pop()).collect()
}

fn backend_index(fwd: &Forwarding, b: BackendId) -> usize {
    let addr = fwd.backends[b as usize].address;
    BACKENDS
        .iter()
        .position(|&a| IpAddr::V4(a) == addr)
        .expect("one of the configured backends")
}

// ---------------------------------------------------------------------------------------
// Frame builders

/// An untagged Ethernet frame, padded to the 60-byte minimum as a NIC would.
fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [dst.0, src.0].concat();
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// An IPv4 packet (ident 0x1234, DF, TTL 64) with `options` (a multiple of 4 bytes).
fn ipv4_with(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    flags_fragment: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = (20 + options.len()) / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut p = vec![0x40 | ihl as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34]);
    p.extend_from_slice(&flags_fragment.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(options);
    let csum = internet_checksum(&p);
    p[10..12].copy_from_slice(&csum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// DF set, not a fragment.
const DF: u16 = 0x4000;
/// More fragments.
const MF: u16 = 0x2000;

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_with(src, dst, proto, DF, &[], payload)
}

/// A TCP segment without options (seq 1000, ack 2000), checksum filled for `src` → `dst`.
fn tcp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&1000u32.to_be_bytes());
    s.extend_from_slice(&2000u32.to_be_bytes());
    s.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    s.extend_from_slice(payload);
    let csum = tcp_udp_checksum_v4(src, dst, IpProtocol::TCP, &s);
    s[16..18].copy_from_slice(&csum.to_be_bytes());
    s
}

/// A UDP datagram, checksum filled for `src` → `dst`.
fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let csum = tcp_udp_checksum_v4(src, dst, IpProtocol::UDP, &d);
    d[6..8].copy_from_slice(&csum.to_be_bytes());
    d
}

/// An ICMP echo request (ident 0x4242, sequence 7) carrying `data`.
fn icmp_echo_request(data: &[u8]) -> Vec<u8> {
    let mut m = vec![IcmpType::ECHO_REQUEST, 0, 0, 0, 0x42, 0x42, 0, 7];
    m.extend_from_slice(data);
    let csum = internet_checksum(&m);
    m[2..4].copy_from_slice(&csum.to_be_bytes());
    m
}

/// A TCP frame from `src_mac` to our interface.
fn tcp_frame(
    src_mac: MacAddr,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
) -> Vec<u8> {
    let seg = tcp(src, dst, sport, dport, flags, b"hello");
    eth(
        IF_MAC,
        src_mac,
        EtherType::IPV4,
        &ipv4(src, dst, IpProtocol::TCP, &seg),
    )
}

fn udp_frame(src_mac: MacAddr, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let dgram = udp(src, dst, sport, dport, b"datagram");
    eth(
        IF_MAC,
        src_mac,
        EtherType::IPV4,
        &ipv4(src, dst, IpProtocol::UDP, &dgram),
    )
}

/// A health probe's answer from the first backend to the kernel twin's address.
fn probe_answer() -> Vec<u8> {
    let flags = TcpFlags::SYN | TcpFlags::ACK;
    tcp_frame(BACKEND_MACS[0], BACKENDS[0], 22, OWN, 50_000, flags)
}

/// `action` sends the packet to a backend.
#[track_caller]
fn assert_to_a_backend(action: Action) {
    let to_a_backend = matches!(
        action,
        Action::Transmit {
            backend: Some(_),
            ..
        }
    );
    assert!(to_a_backend, "{action:?}");
}

fn syn(sport: u16, dport: u16) -> Vec<u8> {
    tcp_frame(CLIENT_MAC, CLIENT, sport, FRONTEND, dport, TcpFlags::SYN)
}

/// A broadcast ARP request from `sender` for `target`.
fn arp_request(sender_mac: MacAddr, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::REQUEST,
        sender_mac,
        sender,
        target,
    )
}

fn arp_frame(
    eth_dst: MacAddr,
    op: u16,
    sender_mac: MacAddr,
    sender: Ipv4Addr,
    target: Ipv4Addr,
) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sender_mac.0);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    eth(eth_dst, sender_mac, EtherType::ARP, &a)
}

// ---------------------------------------------------------------------------------------
// Reading frames back

fn macs(frame: &[u8]) -> (MacAddr, MacAddr) {
    let e = EthernetFrame::new_checked(frame).unwrap();
    (e.dst(), e.src())
}

fn ip(frame: &[u8]) -> Ipv4Packet<&[u8]> {
    Ipv4Packet::new_checked(&frame[ETH_LEN..]).unwrap()
}

/// (source, destination) of the IPv4 packet and of its TCP or UDP header.
fn endpoints(frame: &[u8]) -> ((Ipv4Addr, u16), (Ipv4Addr, u16)) {
    let p = ip(frame);
    let l4 = p.payload();
    let (sport, dport) = (
        u16::from_be_bytes([l4[0], l4[1]]),
        u16::from_be_bytes([l4[2], l4[3]]),
    );
    ((p.src(), sport), (p.dst(), dport))
}

/// The IPv4 header checksum and the transport checksum (TCP, UDP or ICMP) both verify.
fn assert_checksums(frame: &[u8]) {
    let p = ip(frame);
    assert!(p.verify_checksum(), "IPv4 header checksum");
    let (src, dst) = (p.src(), p.dst());
    match p.protocol() {
        IpProtocol::TCP => {
            assert!(
                TcpPacket::new_checked(p.payload())
                    .unwrap()
                    .verify_checksum_v4(src, dst),
                "TCP checksum"
            )
        }
        IpProtocol::UDP => {
            let u = UdpPacket::new_checked(p.payload()).unwrap();
            assert_ne!(u.checksum(), 0, "a UDP checksum was sent and must stay");
            assert!(u.verify_checksum_v4(src, dst), "UDP checksum");
        }
        IpProtocol::ICMP => assert!(
            IcmpPacket::new_checked(p.payload())
                .unwrap()
                .verify_checksum(),
            "ICMP checksum"
        ),
        other => panic!("unexpected protocol {other}"),
    }
}

fn flow_key(frame: &[u8]) -> FlowKey {
    let ((src, sport), (dst, dport)) = endpoints(frame);
    FlowKey {
        proto: ip(frame).protocol(),
        src: src.into(),
        dst: dst.into(),
        src_port: sport,
        dst_port: dport,
    }
}

/// Processes `frame` and returns the backend a `Transmit` chose, checking the action.
fn to_backend(frame: &mut [u8], st: &mut WorkerState, fwd: &Forwarding) -> BackendId {
    match process(frame, LAN, st, fwd, NOW) {
        Action::Transmit {
            interface: LAN,
            backend: Some(b),
        } => b,
        other => panic!("expected a transmit to a backend, got {other:?}"),
    }
}

mod answers;
mod arp_and_nat;
mod errors_and_transit;
mod extension_headers;
mod flows_and_drops;
mod fragmented_neighbour_discovery;
mod hostile;
mod icmp_and_ipv6;
mod never_panics;
mod own_addresses;
mod pipeline;
mod replies;
mod solicitations;
mod vxlan;

/// Room for the packets a burst may make beside its own (a split packet's fragments).
fn spill() -> Spill<Vec<u8>> {
    Spill::with_capacity(crate::dpdk::BURST)
}
