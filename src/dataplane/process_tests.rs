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
use crate::dataplane::Glean;
use crate::lb::flow::FlowKey;
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

/// The state the control thread would publish, with `down` failing their probes.
fn build(cfg: &Config, down: &[Ipv4Addr]) -> Forwarding {
    let obs = Observations {
        down: down.iter().map(|&a| IpAddr::V4(a)).collect(),
        interface_macs: vec![IF_MAC],
        ..Observations::default()
    };
    Forwarding::build(cfg, &obs, 1, None)
}

fn worker() -> (WorkerState, Arc<ArrayQueue<Glean>>) {
    let reports = Arc::new(ArrayQueue::new(64));
    (WorkerState::new(1024, reports.clone()), reports)
}

fn drain(reports: &ArrayQueue<Glean>) -> Vec<Glean> {
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

// ---------------------------------------------------------------------------------------
// ARP

#[test]
fn arp_request_for_frontend_is_answered_with_the_frontends_own_mac() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = arp_request(CLIENT_MAC, CLIENT, FRONTEND);

    let action = process(&mut frame, LAN, &mut st, &fwd, NOW);

    assert_eq!(
        action,
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    let fe_mac = frontend_mac(IpAddr::V4(FRONTEND));
    assert_ne!(fe_mac, IF_MAC);
    let e = EthernetFrame::new_checked(&frame[..]).unwrap();
    assert_eq!(
        (e.dst(), e.src(), e.ethertype()),
        (CLIENT_MAC, fe_mac, EtherType::ARP)
    );
    let a = ArpPacket::new_checked(e.payload()).unwrap();
    assert_eq!(a.operation(), ArpOperation::REPLY);
    assert_eq!((a.sender_mac(), a.sender_ip()), (fe_mac, FRONTEND));
    assert_eq!((a.target_mac(), a.target_ip()), (CLIENT_MAC, CLIENT));
}

#[test]
fn arp_request_for_own_address_goes_to_the_kernel_twin() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    for own in [OWN, OWN_1] {
        let mut frame = arp_request(CLIENT_MAC, CLIENT, own);
        let before = frame.clone();
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::ToKernel { interface: LAN }
        );
        assert_eq!(
            frame, before,
            "the kernel answers; the frame goes to it unchanged"
        );
    }
}

#[test]
fn arp_request_for_another_address_is_not_for_us() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = arp_request(CLIENT_MAC, CLIENT, Ipv4Addr::new(10, 0, 0, 77));
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NotForUs)
    );
}

#[test]
fn arp_sender_is_learnt_and_reported() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, reports) = worker();
    let mut frame = arp_request(CLIENT_MAC, CLIENT, FRONTEND);
    process(&mut frame, LAN, &mut st, &fwd, NOW);

    assert_eq!(drain(&reports), vec![(IpAddr::V4(CLIENT), CLIENT_MAC)]);
    assert_eq!(
        st.gleaned.lookup(&fwd, IpAddr::V4(CLIENT)),
        Some(CLIENT_MAC)
    );

    // Asking for our own address teaches the same; a second time reports nothing new.
    let other_mac = MacAddr([0x02, 0, 0, 0, 0, 0xc2]);
    let other = Ipv4Addr::new(10, 0, 0, 50);
    let mut frame = arp_request(other_mac, other, OWN);
    process(&mut frame, LAN, &mut st, &fwd, NOW);
    let mut frame = arp_request(other_mac, other, OWN);
    process(&mut frame, LAN, &mut st, &fwd, NOW);
    assert_eq!(drain(&reports), vec![(IpAddr::V4(other), other_mac)]);
}

#[test]
fn arp_reply_about_a_frontend_is_not_answered() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = arp_frame(IF_MAC, ArpOperation::REPLY, CLIENT_MAC, CLIENT, FRONTEND);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Unsupported)
    );
}

// ---------------------------------------------------------------------------------------
// Non-floating HA ports: destination NAT and the reverse

#[test]
fn ha_ports_tcp_syn_is_dnatted_to_the_maglev_backend() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = syn(40_000, 443);
    let key = flow_key(&frame);

    let b = to_backend(&mut frame, &mut st, &fwd);

    assert_eq!(fwd.lookup(&key, None).unwrap().backend, b);
    let i = backend_index(&fwd, b);
    assert_eq!(endpoints(&frame), ((CLIENT, 40_000), (BACKENDS[i], 443)));
    assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));
    assert_eq!(ip(&frame).ttl(), 64);
    assert_checksums(&frame);
    assert_eq!(&ip(&frame).payload()[20..], b"hello");
}

#[test]
fn ha_ports_tcp_reply_is_snatted_back_to_the_frontend_and_the_client_mac() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, reports) = worker();
    let mut frame = syn(40_000, 443);
    let i = backend_index(&fwd, to_backend(&mut frame, &mut st, &fwd));
    assert_eq!(
        drain(&reports),
        vec![(IpAddr::V4(CLIENT), CLIENT_MAC)],
        "the client's MAC is learnt from the SYN"
    );

    let mut reply = tcp_frame(
        BACKEND_MACS[i],
        BACKENDS[i],
        443,
        CLIENT,
        40_000,
        TcpFlags::SYN | TcpFlags::ACK,
    );
    let action = process(&mut reply, LAN, &mut st, &fwd, NOW);

    assert_eq!(
        action,
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(endpoints(&reply), ((FRONTEND, 443), (CLIENT, 40_000)));
    assert_eq!(macs(&reply), (CLIENT_MAC, IF_MAC));
    assert_checksums(&reply);
}

#[test]
fn ha_ports_udp_round_trip_rewrites_addresses_with_valid_checksums() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = udp_frame(CLIENT_MAC, CLIENT, 5353, FRONTEND, 53);
    let key = flow_key(&frame);

    let b = to_backend(&mut frame, &mut st, &fwd);

    assert_eq!(fwd.lookup(&key, None).unwrap().backend, b);
    let i = backend_index(&fwd, b);
    assert_eq!(endpoints(&frame), ((CLIENT, 5353), (BACKENDS[i], 53)));
    assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));
    assert_checksums(&frame);

    let mut reply = udp_frame(BACKEND_MACS[i], BACKENDS[i], 53, CLIENT, 5353);
    assert_eq!(
        process(&mut reply, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(endpoints(&reply), ((FRONTEND, 53), (CLIENT, 5353)));
    assert_eq!(macs(&reply), (CLIENT_MAC, IF_MAC));
    assert_checksums(&reply);
}

#[test]
fn udp_without_checksum_keeps_none_after_nat() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut dgram = udp(CLIENT, FRONTEND, 5353, 53, b"datagram");
    dgram[6..8].copy_from_slice(&[0, 0]);
    let mut frame = eth(
        IF_MAC,
        CLIENT_MAC,
        EtherType::IPV4,
        &ipv4(CLIENT, FRONTEND, IpProtocol::UDP, &dgram),
    );

    to_backend(&mut frame, &mut st, &fwd);

    assert!(ip(&frame).verify_checksum());
    assert_eq!(
        UdpPacket::new_checked(ip(&frame).payload())
            .unwrap()
            .checksum(),
        0
    );
}

#[test]
fn dnat_keeps_checksums_valid_with_ip_options() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let seg = tcp(CLIENT, FRONTEND, 40_001, 22, TcpFlags::SYN, &[]);
    // One NOP and an end-of-options list, padded to 4 bytes.
    let packet = ipv4_with(CLIENT, FRONTEND, IpProtocol::TCP, DF, &[1, 0, 0, 0], &seg);
    let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &packet);

    let i = backend_index(&fwd, to_backend(&mut frame, &mut st, &fwd));

    assert_eq!(ip(&frame).header_len(), 24);
    assert_eq!(endpoints(&frame), ((CLIENT, 40_001), (BACKENDS[i], 22)));
    assert_checksums(&frame);
}

#[test]
fn reply_to_a_client_whose_mac_is_unknown_is_dropped_no_neighbour() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut reply = tcp_frame(
        BACKEND_MACS[0],
        BACKENDS[0],
        443,
        CLIENT,
        40_000,
        TcpFlags::ACK,
    );
    assert_eq!(
        process(&mut reply, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoNeighbour)
    );
}

// ---------------------------------------------------------------------------------------
// Port translation

#[test]
fn port_rule_translates_the_destination_port_and_restores_it_on_reply() {
    let fwd = build(&config("tcp", 80, 8080, false), &[]);
    let (mut st, _) = worker();
    let mut frame = syn(40_000, 80);
    let key = flow_key(&frame);

    let b = to_backend(&mut frame, &mut st, &fwd);

    assert_eq!(fwd.lookup(&key, None).unwrap().backend, b);
    let i = backend_index(&fwd, b);
    assert_eq!(endpoints(&frame), ((CLIENT, 40_000), (BACKENDS[i], 8080)));
    assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));
    assert_checksums(&frame);

    let mut reply = tcp_frame(
        BACKEND_MACS[i],
        BACKENDS[i],
        8080,
        CLIENT,
        40_000,
        TcpFlags::SYN | TcpFlags::ACK,
    );
    assert_eq!(
        process(&mut reply, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(endpoints(&reply), ((FRONTEND, 80), (CLIENT, 40_000)));
    assert_eq!(macs(&reply), (CLIENT_MAC, IF_MAC));
    assert_checksums(&reply);
}

#[test]
fn udp_port_rule_translates_both_ways() {
    let fwd = build(&config("udp", 53, 5300, false), &[]);
    let (mut st, _) = worker();
    let mut frame = udp_frame(CLIENT_MAC, CLIENT, 6000, FRONTEND, 53);
    let i = backend_index(&fwd, to_backend(&mut frame, &mut st, &fwd));
    assert_eq!(endpoints(&frame), ((CLIENT, 6000), (BACKENDS[i], 5300)));
    assert_checksums(&frame);

    let mut reply = udp_frame(BACKEND_MACS[i], BACKENDS[i], 5300, CLIENT, 6000);
    assert_eq!(
        process(&mut reply, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(endpoints(&reply), ((FRONTEND, 53), (CLIENT, 6000)));
    assert_checksums(&reply);
}

#[test]
fn port_rule_drops_other_ports_and_protocols_no_rule() {
    let fwd = build(&config("tcp", 80, 80, false), &[]);
    let (mut st, _) = worker();
    let mut other_port = syn(40_000, 81);
    assert_eq!(
        process(&mut other_port, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoRule)
    );
    let mut udp = udp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 80);
    assert_eq!(
        process(&mut udp, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoRule)
    );
    assert!(st.flows.is_empty());
}

// ---------------------------------------------------------------------------------------
// Floating IP (DSR)

#[test]
fn floating_rule_changes_only_the_ethernet_header() {
    let fwd = build(&config("all", 0, 0, true), &[]);
    let (mut st, _) = worker();
    for mut frame in [
        syn(40_000, 443),
        udp_frame(CLIENT_MAC, CLIENT, 5353, FRONTEND, 53),
    ] {
        let before = frame.clone();
        let key = flow_key(&frame);

        let b = to_backend(&mut frame, &mut st, &fwd);

        assert_eq!(fwd.lookup(&key, None).unwrap().backend, b);
        let i = backend_index(&fwd, b);
        assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));
        assert_eq!(
            frame[12..],
            before[12..],
            "ethertype, IP header and payload unchanged"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Flow stickiness and health

#[test]
fn same_five_tuple_always_gets_the_same_backend() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let first = to_backend(&mut syn(40_000, 443), &mut st, &fwd);
    for flags in [TcpFlags::ACK, TcpFlags::PSH | TcpFlags::ACK, TcpFlags::ACK] {
        let mut frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, flags);
        assert_eq!(to_backend(&mut frame, &mut st, &fwd), first);
    }
    assert_eq!(
        st.flows.len(),
        2,
        "one entry each way (the reply's restores the frontend)"
    );
}

#[test]
fn distinct_flows_spread_over_the_pool() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut seen = [false; 3];
    for sport in 40_000..40_064 {
        let mut frame = syn(sport, 443);
        let key = flow_key(&frame);
        let b = to_backend(&mut frame, &mut st, &fwd);
        assert_eq!(fwd.lookup(&key, None).unwrap().backend, b);
        seen[backend_index(&fwd, b)] = true;
    }
    assert_eq!(seen, [true; 3]);
    assert_eq!(st.flows.len(), 2 * 64, "one entry each way per flow");
}

#[test]
fn established_flow_keeps_its_backend_when_another_goes_down() {
    let cfg = ha_ports();
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    let b = to_backend(&mut syn(40_000, 443), &mut st, &fwd);
    let i = backend_index(&fwd, b);
    let other = BACKENDS[(i + 1) % 3];

    let fwd = build(&cfg, &[other]);
    let mut frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::ACK);
    assert_eq!(to_backend(&mut frame, &mut st, &fwd), b);
}

#[test]
fn flow_moves_to_a_healthy_backend_when_its_own_goes_down() {
    let cfg = ha_ports();
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    let b = to_backend(&mut syn(40_000, 443), &mut st, &fwd);
    let down = BACKENDS[backend_index(&fwd, b)];

    let fwd = build(&cfg, &[down]);
    let mut frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::ACK);
    let key = flow_key(&frame);
    let moved = to_backend(&mut frame, &mut st, &fwd);

    assert_ne!(moved, b);
    assert!(fwd.backends[moved as usize].healthy);
    assert_eq!(fwd.lookup(&key, None).unwrap().backend, moved);
    let j = backend_index(&fwd, moved);
    assert_eq!(endpoints(&frame).1, (BACKENDS[j], 443));
    assert_eq!(macs(&frame), (BACKEND_MACS[j], IF_MAC));
    assert_checksums(&frame);
    assert_eq!(
        st.flows.len(),
        2,
        "both entries are replaced, not duplicated"
    );

    // It stays on its new backend.
    let mut frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::ACK);
    assert_eq!(to_backend(&mut frame, &mut st, &fwd), moved);
}

#[test]
fn with_every_backend_down_new_flows_drop_and_established_ones_keep_going() {
    let cfg = ha_ports();
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    let b = to_backend(&mut syn(40_000, 443), &mut st, &fwd);

    // Nowhere better to go: the established flow stays on its (probe-failing) backend.
    let fwd = build(&cfg, &BACKENDS);
    let mut established = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::ACK);
    assert_eq!(to_backend(&mut established, &mut st, &fwd), b);
    let mut new = syn(40_001, 443);
    assert_eq!(
        process(&mut new, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoHealthyBackend)
    );
}

// ---------------------------------------------------------------------------------------
// Drops

#[test]
fn frame_for_another_hosts_mac_is_not_for_us() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = syn(40_000, 443);
    frame[0..6].copy_from_slice(&OTHER_HOST_MAC.0);
    let before = frame.clone();
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NotForUs)
    );
    assert_eq!(frame, before);
    assert!(st.flows.is_empty());
}

#[test]
fn frame_from_our_own_mac_is_not_for_us() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = tcp_frame(IF_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::SYN);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NotForUs)
    );
    let mut arp = arp_request(IF_MAC, OWN, FRONTEND);
    assert_eq!(
        process(&mut arp, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NotForUs)
    );
}

#[test]
fn ipv4_to_an_unknown_address_has_no_frontend() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = tcp_frame(
        CLIENT_MAC,
        CLIENT,
        40_000,
        Ipv4Addr::new(10, 0, 0, 77),
        443,
        TcpFlags::SYN,
    );
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoFrontend)
    );
}

/// Spoils a good frame in one way.
type Mangle = fn(&mut Vec<u8>);

#[test]
fn short_or_inconsistent_ipv4_headers_are_truncated_or_malformed() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let good = {
        let seg = tcp(CLIENT, FRONTEND, 40_000, 443, TcpFlags::SYN, &[]);
        let mut f = [IF_MAC.0, CLIENT_MAC.0].concat();
        f.extend_from_slice(&EtherType::IPV4.to_be_bytes());
        f.extend_from_slice(&ipv4(CLIENT, FRONTEND, IpProtocol::TCP, &seg));
        f
    };
    assert_eq!(good.len(), 54, "no padding: lengths below are exact");
    let cases: [(&str, Mangle, DropReason); 7] = [
        (
            "ethernet header cut",
            |f| f.truncate(10),
            DropReason::Truncated,
        ),
        (
            "IPv4 header cut",
            |f| f.truncate(ETH_LEN + 19),
            DropReason::Truncated,
        ),
        (
            "total length past the frame",
            |f| f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&100u16.to_be_bytes()),
            DropReason::Truncated,
        ),
        (
            "TCP header cut",
            |f| {
                f.truncate(ETH_LEN + 30);
                f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&30u16.to_be_bytes())
            },
            DropReason::Truncated,
        ),
        (
            "version 6 in an IPv4 ethertype",
            |f| f[ETH_LEN] = 0x65,
            DropReason::Malformed,
        ),
        (
            "header length below 20",
            |f| f[ETH_LEN] = 0x44,
            DropReason::Malformed,
        ),
        (
            "total length below the header",
            |f| f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&12u16.to_be_bytes()),
            DropReason::Malformed,
        ),
    ];
    for (what, mangle, want) in cases {
        let mut frame = good.clone();
        mangle(&mut frame);
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::Drop(want),
            "{what}"
        );
    }
    assert!(st.flows.is_empty());
}

/// The three fragments of one UDP datagram from `src` to `dst` (ident 0x1234): the first
/// carries the UDP header, the later two only payload (offsets in 8-byte units).
fn udp_fragments(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<Vec<u8>> {
    let dgram = udp(src, dst, sport, dport, &[0x5a; 40]);
    [(MF, 0..24), (MF | 3, 24..40), (6, 40..48)]
        .into_iter()
        .map(|(ff, range)| ipv4_with(src, dst, IpProtocol::UDP, ff, &[], &dgram[range]))
        .collect()
}

#[test]
fn every_fragment_of_a_datagram_follows_its_first_and_orphans_are_dropped() {
    for floating in [false, true] {
        let fwd = build(&config("all", 0, 0, floating), &[]);
        let (mut st, _) = worker();
        let mut chosen = None;
        for (i, packet) in udp_fragments(CLIENT, 5353, FRONTEND, 53)
            .into_iter()
            .enumerate()
        {
            let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &packet);
            let b = to_backend(&mut frame, &mut st, &fwd);
            assert_eq!(
                *chosen.get_or_insert(b),
                b,
                "fragment {i} follows the first"
            );
            let ip = Ipv4Packet::new_checked(&frame[ETH_LEN..]).unwrap();
            assert!(ip.verify_checksum());
            let expected = if floating {
                FRONTEND
            } else {
                BACKENDS[backend_index(&fwd, b)]
            };
            assert_eq!(ip.dst(), expected, "fragment {i} rewritten like the first");
            if i > 0 || floating {
                // (The first fragment's UDP checksum follows the NATed address.)
                assert_eq!(
                    ip.payload(),
                    &packet[20..],
                    "fragment {i}'s payload untouched"
                );
            }
        }
        assert_eq!(st.fragments.len(), 1);
    }
    // A later fragment whose first was never seen has nowhere known to go.
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let orphan = udp_fragments(CLIENT, 5353, FRONTEND, 53).remove(1);
    let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &orphan);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Fragment)
    );
}

#[test]
fn a_fragmented_reply_gets_the_frontend_address_on_every_fragment() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let b = to_backend(
        &mut udp_frame(CLIENT_MAC, CLIENT, 5353, FRONTEND, 53),
        &mut st,
        &fwd,
    );
    let i = backend_index(&fwd, b);
    for packet in udp_fragments(BACKENDS[i], 53, CLIENT, 5353) {
        let mut frame = eth(IF_MAC, BACKEND_MACS[i], EtherType::IPV4, &packet);
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::Transmit {
                interface: LAN,
                backend: None
            }
        );
        let ip = Ipv4Packet::new_checked(&frame[ETH_LEN..]).unwrap();
        assert_eq!((ip.src(), ip.dst()), (FRONTEND, CLIENT));
        assert!(ip.verify_checksum());
        assert_eq!(macs(&frame).0, CLIENT_MAC);
    }
}

#[test]
fn unknown_ethertype_is_unsupported() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = eth(IF_MAC, CLIENT_MAC, 0x88b5, &[0xab; 46]);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Unsupported)
    );
}

#[test]
fn unknown_ingress_interface_is_dropped_not_a_panic() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut frame = syn(40_000, 443);
    assert!(matches!(
        process(&mut frame, 7, &mut st, &fwd, NOW),
        Action::Drop(_)
    ));
}

// ---------------------------------------------------------------------------------------
// ICMP and the appliance's own addresses

#[test]
fn ping_to_a_frontend_is_answered_out_the_ingress_interface() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let request = icmp_echo_request(b"ping payload");
    let mut frame = eth(
        IF_MAC,
        CLIENT_MAC,
        EtherType::IPV4,
        &ipv4(CLIENT, FRONTEND, IpProtocol::ICMP, &request),
    );

    let action = process(&mut frame, LAN, &mut st, &fwd, NOW);

    assert_eq!(
        action,
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(macs(&frame), (CLIENT_MAC, IF_MAC));
    let p = ip(&frame);
    assert_eq!(
        (p.src(), p.dst(), p.protocol()),
        (FRONTEND, CLIENT, IpProtocol::ICMP)
    );
    assert!(p.ttl() > 0);
    let icmp = IcmpPacket::new_checked(p.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (IcmpType::ECHO_REPLY, 0));
    assert_eq!((icmp.echo_ident(), icmp.echo_seq_no()), (0x4242, 7));
    assert_eq!(icmp.payload(), b"ping payload");
    assert_checksums(&frame);
    assert!(
        st.flows.is_empty(),
        "a ping answered by the appliance makes no flow"
    );
}

#[test]
fn ipv4_to_the_appliances_own_address_goes_to_the_kernel_twin() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let request = icmp_echo_request(b"x");
    let frames = [
        tcp_frame(CLIENT_MAC, CLIENT, 40_000, OWN, 22, TcpFlags::SYN),
        eth(
            IF_MAC,
            CLIENT_MAC,
            EtherType::IPV4,
            &ipv4(CLIENT, OWN_1, IpProtocol::ICMP, &request),
        ),
        // A health-probe answer from a backend to the kernel twin's address.
        tcp_frame(
            BACKEND_MACS[0],
            BACKENDS[0],
            22,
            OWN,
            50_000,
            TcpFlags::SYN | TcpFlags::ACK,
        ),
    ];
    for mut frame in frames {
        let before = frame.clone();
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, NOW),
            Action::ToKernel { interface: LAN }
        );
        assert_eq!(frame, before);
    }
    assert!(st.flows.is_empty());
}

// ---------------------------------------------------------------------------------------
// IPv6

const FRONTEND6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10);

/// The HA-ports setup over IPv6: frontend fd00::100, backends fd00::11-13 with MACs.
fn ipv6_config() -> Config {
    let text = r#"
[dataplane]
maglev_table_size = 1021

[[interface]]
name = "lan"
port = 0
address = ["fd00::2/64"]

[[load_balancer]]
name = "ilb"
kind = "internal"

  [[load_balancer.frontend]]
  name = "fe6"
  address = "fd00::100"

  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [
    { address = "fd00::11", mac = "02:00:00:00:00:11" },
    { address = "fd00::12", mac = "02:00:00:00:00:12" },
    { address = "fd00::13", mac = "02:00:00:00:00:13" },
  ]

  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe6"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
"#;
    Config::from_toml(text, "test").expect("test config parses")
}

/// An IPv6 TCP frame (hop limit 64, no extension headers), checksum filled.
fn tcp6_frame(
    src_mac: MacAddr,
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    flags: u8,
) -> Vec<u8> {
    let mut seg = Vec::new();
    seg.extend_from_slice(&sport.to_be_bytes());
    seg.extend_from_slice(&dport.to_be_bytes());
    seg.extend_from_slice(&1000u32.to_be_bytes());
    seg.extend_from_slice(&2000u32.to_be_bytes());
    seg.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    seg.extend_from_slice(b"hello6");
    let csum = tcp_udp_checksum_v6(src, dst, IpProtocol::TCP, &seg);
    seg[16..18].copy_from_slice(&csum.to_be_bytes());
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    p.extend_from_slice(&[IpProtocol::TCP, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&seg);
    eth(IF_MAC, src_mac, EtherType::IPV6, &p)
}

/// (source, destination) of an IPv6 TCP frame, after asserting its TCP checksum.
fn endpoints6(frame: &[u8]) -> ((Ipv6Addr, u16), (Ipv6Addr, u16)) {
    let p = Ipv6Packet::new_checked(&frame[ETH_LEN..]).unwrap();
    let t = TcpPacket::new_checked(p.payload()).unwrap();
    assert!(
        t.verify_checksum_v6(p.src(), p.dst()),
        "TCP checksum over IPv6"
    );
    ((p.src(), t.src_port()), (p.dst(), t.dst_port()))
}

#[test]
fn ipv6_ha_ports_tcp_round_trip_rewrites_addresses_with_valid_checksums() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let mut frame = tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, TcpFlags::SYN);
    let key = FlowKey {
        proto: IpProtocol::TCP,
        src: CLIENT6.into(),
        dst: FRONTEND6.into(),
        src_port: 40_000,
        dst_port: 443,
    };

    let b = to_backend(&mut frame, &mut st, &fwd);

    assert_eq!(fwd.lookup(&key, None).unwrap().backend, b);
    let IpAddr::V6(backend) = fwd.backends[b as usize].address else {
        panic!("an IPv6 backend")
    };
    let i = usize::from(backend.segments()[7] - 0x11);
    assert_eq!(endpoints6(&frame), ((CLIENT6, 40_000), (backend, 443)));
    assert_eq!(macs(&frame), (BACKEND_MACS[i], IF_MAC));

    let mut reply = tcp6_frame(
        BACKEND_MACS[i],
        backend,
        443,
        CLIENT6,
        40_000,
        TcpFlags::SYN | TcpFlags::ACK,
    );
    assert_eq!(
        process(&mut reply, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(endpoints6(&reply), ((FRONTEND6, 443), (CLIENT6, 40_000)));
    assert_eq!(macs(&reply), (CLIENT_MAC, IF_MAC));
}

// ---------------------------------------------------------------------------------------
// Known bugs (ignored until fixed)

/// An ICMP "fragmentation needed" from `router` to the frontend about a segment the frontend
/// sent to the client (frontend:443 → client:`sport`), quoting its IP header and 8 bytes.
fn frag_needed(router_mac: MacAddr, router: Ipv4Addr, sport: u16) -> Vec<u8> {
    let original = ipv4(
        FRONTEND,
        CLIENT,
        IpProtocol::TCP,
        &tcp(FRONTEND, CLIENT, 443, sport, TcpFlags::ACK, &[0; 1400]),
    );
    let mut m = vec![IcmpType::DEST_UNREACHABLE, 4, 0, 0, 0, 0, 0x05, 0x78];
    m.extend_from_slice(&original[..28]);
    let csum = internet_checksum(&m);
    m[2..4].copy_from_slice(&csum.to_be_bytes());
    eth(
        IF_MAC,
        router_mac,
        EtherType::IPV4,
        &ipv4(router, FRONTEND, IpProtocol::ICMP, &m),
    )
}

#[test]
fn icmp_error_about_a_flow_goes_to_the_flows_backend() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let router = Ipv4Addr::new(10, 0, 1, 1);
    let router_mac = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    // A flow whose backend is not the one the error's own three-tuple hashes to.
    let icmp_key = FlowKey::three_tuple(IpProtocol::ICMP, router.into(), FRONTEND.into());
    let by_three_tuple = fwd.lookup(&icmp_key, None).unwrap().backend;
    let sport = (40_000..41_000)
        .find(|&p| fwd.lookup(&flow_key(&syn(p, 443)), None).unwrap().backend != by_three_tuple)
        .unwrap();
    let owner = to_backend(&mut syn(sport, 443), &mut st, &fwd);

    let mut error = frag_needed(router_mac, router, sport);
    let got = process(&mut error, LAN, &mut st, &fwd, NOW);

    assert_eq!(
        got,
        Action::Transmit {
            interface: LAN,
            backend: Some(owner)
        }
    );
    // NAT: the backend gets the error about the packet as it sent it.
    let i = backend_index(&fwd, owner);
    assert_eq!(macs(&error), (BACKEND_MACS[i], IF_MAC));
    let ip = Ipv4Packet::new_checked(&error[ETH_LEN..]).unwrap();
    assert_eq!((ip.src(), ip.dst()), (router, BACKENDS[i]));
    assert!(ip.verify_checksum());
    let icmp = ip.payload();
    assert_eq!(internet_checksum(icmp), 0, "ICMP checksum refilled");
    // The quote is cut short: it is read through the quoted view.
    let q = crate::wire::QuotedIpv4::new_checked(icmp).unwrap();
    assert_eq!(
        (q.src(), q.dst(), q.ports()),
        (BACKENDS[i], CLIENT, (443, sport))
    );
    assert_eq!(
        internet_checksum(&icmp[8..28]),
        0,
        "quoted IP header checksum kept right"
    );
}

#[test]
fn icmp_errors_under_dsr_and_transit_reach_the_flows_backend_unchanged_but_for_layer_2() {
    let router = Ipv4Addr::new(10, 0, 1, 1);
    let router_mac = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    // DSR: the backend answered from the frontend address; the error comes back to it.
    let fwd = build(&config("all", 0, 0, true), &[]);
    let (mut st, _) = worker();
    for sport in 40_000..40_020 {
        let owner = to_backend(&mut syn(sport, 443), &mut st, &fwd);
        let mut error = frag_needed(router_mac, router, sport);
        let before = error.clone();
        assert_eq!(to_backend(&mut error, &mut st, &fwd), owner);
        assert_eq!(error[ETH_LEN..], before[ETH_LEN..]);
    }
    // Transit: an error about a flow routed through the frontend, itself routed through it.
    let fwd = build(&config("all", 0, 0, true), &[]);
    let (mut st, _) = worker();
    let (a, b) = (Ipv4Addr::new(10, 1, 0, 10), Ipv4Addr::new(10, 2, 0, 10));
    for sport in 40_000..40_020 {
        let mut there = tcp_frame(CLIENT_MAC, a, sport, b, 22, TcpFlags::SYN);
        there[0..6].copy_from_slice(&frontend_mac(IpAddr::V4(FRONTEND)).0);
        let nva = to_backend(&mut there, &mut st, &fwd);
        let original = ipv4(
            a,
            b,
            IpProtocol::TCP,
            &tcp(a, b, sport, 22, TcpFlags::SYN, &[]),
        );
        let mut m = vec![IcmpType::TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&original[..28]);
        let csum = internet_checksum(&m);
        m[2..4].copy_from_slice(&csum.to_be_bytes());
        let mut error = eth(
            frontend_mac(IpAddr::V4(FRONTEND)),
            router_mac,
            EtherType::IPV4,
            &ipv4(Ipv4Addr::new(10, 2, 0, 1), a, IpProtocol::ICMP, &m),
        );
        assert_eq!(
            to_backend(&mut error, &mut st, &fwd),
            nva,
            "the error meets the flow's NVA"
        );
    }
}

/// Seed rule 3 allows a public load balancer on the backends of a non-floating HA-ports rule.
fn internal_and_public_on_the_same_backends() -> Config {
    let text = r#"
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
    { address = "10.0.0.11", mac = "02:00:00:00:00:11" },
    { address = "10.0.0.12", mac = "02:00:00:00:00:12" },
    { address = "10.0.0.13", mac = "02:00:00:00:00:13" },
  ]

  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe1"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0

[[load_balancer]]
name = "plb"
kind = "public"

  [[load_balancer.frontend]]
  name = "web"
  address = "10.0.0.200"

  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [
    { address = "10.0.0.11", mac = "02:00:00:00:00:11" },
    { address = "10.0.0.12", mac = "02:00:00:00:00:12" },
    { address = "10.0.0.13", mac = "02:00:00:00:00:13" },
  ]

  [[load_balancer.rule]]
  name = "http"
  frontend = "web"
  backend_pool = "pool"
  protocol = "tcp"
  frontend_port = 80
  backend_port = 80
"#;
    Config::from_toml(text, "test").expect("test config parses")
}

#[test]
fn ha_ports_reply_keeps_its_frontend_when_a_public_rule_shares_the_backends() {
    let cfg = internal_and_public_on_the_same_backends();
    assert_eq!(crate::config::validate(&cfg), vec![]);
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    let i = backend_index(&fwd, to_backend(&mut syn(40_000, 80), &mut st, &fwd));

    let mut reply = tcp_frame(
        BACKEND_MACS[i],
        BACKENDS[i],
        80,
        CLIENT,
        40_000,
        TcpFlags::SYN | TcpFlags::ACK,
    );
    assert_eq!(
        process(&mut reply, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );

    assert_eq!(
        endpoints(&reply),
        ((FRONTEND, 80), (CLIENT, 40_000)),
        "the client talks to 10.0.0.100"
    );
}

// ---------------------------------------------------------------------------------------
// Never panics

/// Valid frames of every kind `process` handles, addressed to the interface.
fn templates() -> Vec<Vec<u8>> {
    vec![
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
    ]
}

/// NAT, DSR, port-translating and IPv6 states, so every rewrite is reached.
fn states() -> [Forwarding; 4] {
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
        which in 0usize..9,
        flips in proptest::collection::vec((14usize..120, any::<u8>()), 1..8),
        cut in 0usize..8,
    ) {
        let (mut st, _) = worker();
        for fwd in &states() {
            let mut frame = templates().swap_remove(which);
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

// ---------------------------------------------------------------------------------------
// Transit (routed through a frontend as next hop)

/// A TCP frame routed through the frontend: addressed to its MAC, the IP destination elsewhere.
fn transit_frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut f = tcp_frame(CLIENT_MAC, src, sport, dst, dport, TcpFlags::SYN);
    f[0..6].copy_from_slice(&frontend_mac(IpAddr::V4(FRONTEND)).0);
    f
}

#[test]
fn transit_through_a_frontend_changes_only_the_mac_header_and_both_directions_meet() {
    for floating in [true, false] {
        let fwd = build(&config("all", 0, 0, floating), &[]);
        let (mut st, _) = worker();
        let (a, b) = (Ipv4Addr::new(10, 1, 0, 10), Ipv4Addr::new(10, 2, 0, 10));
        let mut there = transit_frame(a, 40_000, b, 22);
        let before = there.clone();
        let nva = to_backend(&mut there, &mut st, &fwd);
        assert_eq!(
            there[ETH_LEN..],
            before[ETH_LEN..],
            "IP and above untouched, TTL included"
        );
        assert_eq!(
            macs(&there),
            (BACKEND_MACS[backend_index(&fwd, nva)], IF_MAC)
        );
        let mut back = transit_frame(b, 22, a, 40_000);
        assert_eq!(
            to_backend(&mut back, &mut st, &fwd),
            nva,
            "the reply meets the same NVA"
        );
        assert_eq!(st.flows.len(), 1, "both directions share one flow entry");
        let key: crate::lb::flow::FlowKey = format!("tcp {a}:40000 {b}:22").parse().unwrap();
        assert_eq!(
            fwd.lookup(&key, Some(0)).unwrap().backend,
            nva,
            "lookup --via agrees"
        );
    }
}

#[test]
fn a_foreign_destination_sent_to_the_interface_mac_is_not_transit() {
    let fwd = build(&ha_ports(), &[]);
    let (mut st, _) = worker();
    let mut f = tcp_frame(
        CLIENT_MAC,
        CLIENT,
        40_000,
        Ipv4Addr::new(10, 2, 0, 10),
        22,
        TcpFlags::SYN,
    );
    assert_eq!(
        process(&mut f, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NoFrontend)
    );
}

// ---------------------------------------------------------------------------------------
// IPv6 neighbour discovery and ping for frontends

/// An IPv6 frame carrying ICMPv6 `message` (checksum filled), hop limit 255.
fn icmp6_frame(dst_mac: MacAddr, src: Ipv6Addr, dst: Ipv6Addr, mut message: Vec<u8>) -> Vec<u8> {
    let csum = tcp_udp_checksum_v6(src, dst, IpProtocol::ICMPV6, &message);
    message[2..4].copy_from_slice(&csum.to_be_bytes());
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(message.len() as u16).to_be_bytes());
    p.extend_from_slice(&[IpProtocol::ICMPV6, 255]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&message);
    eth(dst_mac, CLIENT_MAC, EtherType::IPV6, &p)
}

/// A neighbour solicitation for `target` from the client, with its link-layer option.
fn solicitation(target: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&CLIENT_MAC.0);
    let o = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    );
    icmp6_frame(
        MacAddr([0x33, 0x33, 0xff, o[13], o[14], o[15]]),
        CLIENT6,
        group,
        m,
    )
}

#[test]
fn neighbour_solicitation_for_a_v6_frontend_is_answered_with_its_mac() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, reports) = worker();
    let mut frame = solicitation(FRONTEND6);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    let fe_mac = frontend_mac(IpAddr::V6(FRONTEND6));
    assert_eq!(macs(&frame), (CLIENT_MAC, fe_mac));
    let ip = Ipv6Packet::new_checked(&frame[ETH_LEN..]).unwrap();
    assert_eq!(
        (ip.src(), ip.dst(), ip.hop_limit()),
        (FRONTEND6, CLIENT6, 255)
    );
    let na = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(na.msg_type(), Icmpv6Type::NEIGHBOR_ADVERT);
    assert!(na.verify_checksum(FRONTEND6, CLIENT6));
    let body = ip.payload();
    assert_eq!(body[4] & 0x60, 0x60, "solicited and override");
    assert_eq!(&body[8..24], &FRONTEND6.octets());
    assert_eq!((body[24], body[25], &body[26..32]), (2, 1, &fe_mac.0[..]));
    assert_eq!(
        drain(&reports),
        vec![(IpAddr::V6(CLIENT6), CLIENT_MAC)],
        "the asker is learnt"
    );

    // The appliance's own address is the kernel twin's to answer.
    let mut own = solicitation("fd00::2".parse().unwrap());
    assert_eq!(
        process(&mut own, LAN, &mut st, &fwd, NOW),
        Action::ToKernel { interface: LAN }
    );
}

#[test]
fn ping_to_a_v6_frontend_is_answered() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let m = vec![128, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
    let mut frame = icmp6_frame(frontend_mac(IpAddr::V6(FRONTEND6)), CLIENT6, FRONTEND6, m);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    let ip = Ipv6Packet::new_checked(&frame[ETH_LEN..]).unwrap();
    assert_eq!((ip.src(), ip.dst()), (FRONTEND6, CLIENT6));
    let reply = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(reply.msg_type(), Icmpv6Type::ECHO_REPLY);
    assert!(reply.verify_checksum(FRONTEND6, CLIENT6));
}

#[test]
fn neighbour_advertisements_are_learnt_and_reach_the_kernel() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, reports) = worker();
    let backend: Ipv6Addr = "fd00::11".parse().unwrap();
    let own: Ipv6Addr = "fd00::2".parse().unwrap();
    let mac = MacAddr([0x02, 0, 0, 0, 0x66, 0x11]);
    let mut m = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    m.extend_from_slice(&backend.octets());
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&mac.0);
    let mut frame = icmp6_frame(IF_MAC, backend, own, m);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::ToKernel { interface: LAN }
    );
    assert!(drain(&reports).contains(&(IpAddr::V6(backend), mac)));
}
