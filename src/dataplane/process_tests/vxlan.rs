//! Backends behind VXLAN: the original packet inside VXLAN to the backend's address, through
//! the next hop; too big for the tunnel, an ICMP error back (DESIGN §4).

use super::*;
use crate::dataplane::pipeline::process_burst;
use crate::wire::{IcmpPacket, UdpPacket};

const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const ROUTER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xfe]);
const REMOTE: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 9, 0, 11), Ipv4Addr::new(10, 9, 0, 12)];
const VTEP_MACS: [MacAddr; 2] = [
    MacAddr([0x02, 0, 0, 0x0b, 0, 0x11]),
    MacAddr([0x02, 0, 0, 0x0b, 0, 0x12]),
];

/// A floating HA-ports rule over two backends on 10.9.0.0/24, behind the router 10.0.0.1,
/// reached by VXLAN 100.
fn vxlan_config() -> Config {
    let text = r#"
[[interface]]
name = "lan"
port = 0
address = ["10.0.0.2/24", "10.0.1.2/24", "fd00::2/64"]
routes = [{ to = "10.9.0.0/24", via = "10.0.0.1" }]
[[load_balancer]]
name = "ilb"
kind = "internal"
  [[load_balancer.frontend]]
  name = "fe"
  address = "10.0.0.100"
  [[load_balancer.frontend]]
  name = "fe6"
  address = "fd00::100"
  [[load_balancer.backend_pool]]
  name = "remote"
  encap = "vxlan"
  vni = 100
  backends = [
    { address = "10.9.0.11", mac = "02:00:00:0b:00:11" },
    { address = "10.9.0.12", mac = "02:00:00:0b:00:12" },
  ]
  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe"
  backend_pool = "remote"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = true
  [[load_balancer.rule]]
  name = "ha6"
  frontend = "fe6"
  backend_pool = "remote"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = true
"#;
    let cfg = Config::from_toml(text, "test").unwrap();
    assert_eq!(crate::config::validate(&cfg), vec![]);
    cfg
}

fn through_the_pipeline(frame: &[u8], fwd: &Forwarding) -> (Action, Vec<u8>) {
    let (action, out, made) = split_by_the_pipeline(frame, fwd);
    assert_eq!(made, vec![], "no packet made beside it");
    (action, out)
}

/// What [`split_by_the_pipeline`] returns: the packet's action and its frame as it left,
/// then each packet made beside it with its action.
type Split = (Action, Vec<u8>, Vec<(Vec<u8>, Action)>);

/// As [`through_the_pipeline`], with the packets made beside it (its later fragments, where
/// it was split for the tunnel) and their actions.
fn split_by_the_pipeline(frame: &[u8], fwd: &Forwarding) -> Split {
    through_worker(frame, &mut worker().0, fwd, NOW)
}

/// As [`split_by_the_pipeline`], on worker `st` at `now`.
fn through_worker(frame: &[u8], st: &mut WorkerState, fwd: &Forwarding, now: u64) -> Split {
    let mut burst = vec![frame.to_vec()];
    let mut actions = [Action::Drop(DropReason::Unsupported); 1];
    let mut made = spill();
    process_burst(&mut burst, LAN, st, fwd, now, &mut actions, &mut made);
    (actions[0], burst.remove(0), made.drain().collect())
}

#[test]
fn a_packet_for_a_backend_behind_vxlan_goes_inside_it_unchanged() {
    let fwd = build_knowing(&vxlan_config(), &[], &[(IpAddr::V4(ROUTER), ROUTER_MAC)]);
    let mut sports = std::collections::BTreeSet::new();
    for sport in 40_000..40_040 {
        let frame = tcp_frame(CLIENT_MAC, CLIENT, sport, FRONTEND, 443, TcpFlags::SYN);
        let (action, out) = through_the_pipeline(&frame, &fwd);
        let Action::Transmit {
            interface: LAN,
            backend: Some(b),
        } = action
        else {
            panic!("{action:?}")
        };
        let i = REMOTE
            .iter()
            .position(|a| IpAddr::V4(*a) == fwd.backends[b as usize].address)
            .unwrap();
        // The frame padded to Ethernet's 60 bytes: inside, the packet alone (TCP "hello").
        let packet = ETH_LEN + 40 + 5;
        assert_eq!((frame.len(), out.len()), (60, packet + 50));
        // Outer: to the router, from the interface, IPv4 from the own address on the
        // router's subnet to the backend, UDP to 4789, VXLAN with the I flag and VNI 100.
        assert_eq!(macs(&out), (ROUTER_MAC, IF_MAC));
        let outer = ip(&out);
        assert!(outer.verify_checksum());
        assert_eq!((outer.src(), outer.dst()), (OWN, REMOTE[i]));
        assert_eq!(outer.protocol(), IpProtocol::UDP);
        assert_eq!(outer.total_len(), out.len() - 14);
        let udp = UdpPacket::new_checked(outer.payload()).unwrap();
        assert_eq!(udp.dst_port(), 4789);
        assert!(udp.src_port() >= 49152);
        assert_eq!(udp.len(), out.len() - 34);
        sports.insert(udp.src_port());
        assert_eq!(&out[42..50], &[0x08, 0, 0, 0, 0, 0, 100, 0]);
        // Inner: the original frame, to the backend's VXLAN device, IP packet untouched.
        let inner = &out[50..];
        assert_eq!(macs(inner), (VTEP_MACS[i], IF_MAC));
        assert_eq!(&inner[12..], &frame[12..packet]);
    }
    assert!(
        sports.len() >= 30,
        "the outer source port follows the flow: {sports:?}"
    );
}

#[test]
fn without_the_next_hop_resolved_nothing_leaves_and_it_is_asked_for() {
    let fwd = build_knowing(&vxlan_config(), &[], &[]);
    let frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::SYN);
    let (action, _) = through_the_pipeline(&frame, &fwd);
    assert_eq!(action, Action::Drop(DropReason::NoNeighbour));
    assert_eq!(fwd.unresolved(), vec![(LAN, IpAddr::V4(ROUTER))]);
    // Nor by the general path (IPv6 inside): never out unwrapped to the segment.
    use super::icmp_and_ipv6::{tcp6_frame, CLIENT6, FRONTEND6};
    let mut frame6 = tcp6_frame(CLIENT_MAC, CLIENT6, 40_000, FRONTEND6, 443, TcpFlags::SYN);
    frame6[..6].copy_from_slice(&frontend_mac(IpAddr::V6(FRONTEND6)).0);
    let (action, _) = through_the_pipeline(&frame6, &fwd);
    assert_eq!(action, Action::Drop(DropReason::NoNeighbour));
}

/// A TCP segment with DF whose IPv4 packet is one byte more than the tunnel carries (1451
/// bytes): the segment, the packet and its frame.
fn one_byte_too_big() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let big = tcp(
        CLIENT,
        FRONTEND,
        40_000,
        443,
        TcpFlags::ACK,
        &vec![7; 1451 - 40],
    );
    let packet = ipv4(CLIENT, FRONTEND, IpProtocol::TCP, &big);
    let frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &packet);
    (big, packet, frame)
}

#[test]
fn too_big_for_the_tunnel_is_answered_with_fragmentation_needed_or_fragmented_without_df() {
    let fwd = build_knowing(&vxlan_config(), &[], &[(IpAddr::V4(ROUTER), ROUTER_MAC)]);
    // 1500 - 50 bytes of headers around it: the most an inner IP packet may be.
    let fits = tcp(
        CLIENT,
        FRONTEND,
        40_000,
        443,
        TcpFlags::ACK,
        &vec![7; 1450 - 40],
    );
    let frame = eth(
        IF_MAC,
        CLIENT_MAC,
        EtherType::IPV4,
        &ipv4(CLIENT, FRONTEND, IpProtocol::TCP, &fits),
    );
    assert_to_a_backend(through_the_pipeline(&frame, &fwd).0);
    // The same packet in a frame with 20 bytes behind it, too long for the tunnel: the
    // bytes behind the packet are cut, the packet goes in whole.
    let mut padded = frame.clone();
    padded.extend_from_slice(&[0xee; 20]);
    let (action, out) = through_the_pipeline(&padded, &fwd);
    assert_to_a_backend(action);
    assert!(
        out[50 + 12..] == frame[12..],
        "the packet inside, without what was behind it"
    );

    let (big, packet, frame) = one_byte_too_big();
    let (action, out) = through_the_pipeline(&frame, &fwd);
    assert_eq!(
        action,
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(macs(&out), (CLIENT_MAC, IF_MAC));
    let reply = ip(&out);
    assert!(reply.verify_checksum());
    assert_eq!(
        (reply.src(), reply.dst()),
        (OWN_1, CLIENT),
        "from the own address"
    );
    let icmp = IcmpPacket::new_checked(reply.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!((icmp.msg_type(), icmp.code()), (3, 4));
    assert_eq!(
        &reply.payload()[6..8],
        &1450u16.to_be_bytes(),
        "the next-hop MTU"
    );
    assert_eq!(
        &reply.payload()[8..],
        &packet[..28],
        "the header and 8 bytes quoted"
    );

    // Without DF it may be fragmented, and is, as a router would: two fragments, each inside
    // VXLAN to the same backend with the same outer source port, which put back together
    // are the original packet.
    let packet = ipv4_with(CLIENT, FRONTEND, IpProtocol::TCP, 0, &[], &big);
    let frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &packet);
    let (action, first, made) = split_by_the_pipeline(&frame, &fwd);
    let Action::Transmit {
        backend: Some(b),
        interface: LAN,
    } = action
    else {
        panic!("{action:?}")
    };
    assert_eq!(made.len(), 1, "one fragment beside the first");
    assert_eq!(made[0].1, action, "to the same backend");
    let (mut data, mut sports) = (Vec::new(), Vec::new());
    for (i, out) in [&first, &made[0].0].into_iter().enumerate() {
        let outer = ip(out);
        assert!(
            outer.verify_checksum() && outer.total_len() <= 1500,
            "fragment {i}"
        );
        assert_eq!(IpAddr::V4(outer.dst()), fwd.backends[b as usize].address);
        sports.push(UdpPacket::new_checked(outer.payload()).unwrap().src_port());
        let inner = Ipv4Packet::new_checked(&out[50 + ETH_LEN..]).unwrap();
        assert!(inner.verify_checksum(), "fragment {i}'s header checksum");
        assert_eq!(inner.ident(), 0x1234);
        assert_eq!(inner.frag_offset(), data.len(), "fragment {i}'s offset");
        assert_eq!(
            inner.more_fragments(),
            i == 0,
            "more fragments on the first only"
        );
        assert!(!inner.dont_fragment());
        assert!(inner.total_len() <= 1450, "fragment {i} fits the tunnel");
        data.extend_from_slice(inner.payload());
    }
    assert_eq!(
        data, big,
        "the fragments' data, in order, is the original's"
    );
    assert_eq!(sports[0], sports[1], "one outer source port");

    // With IP options it is not split (fragments copy options by rules of their own): a
    // counted drop.
    let frame = eth(
        IF_MAC,
        CLIENT_MAC,
        EtherType::IPV4,
        &ipv4_with(CLIENT, FRONTEND, IpProtocol::TCP, 0, &[1, 1, 1, 0], &big),
    );
    assert_eq!(
        through_the_pipeline(&frame, &fwd).0,
        Action::Drop(DropReason::TooBig)
    );
}

#[test]
fn an_ipv6_packet_too_big_for_the_tunnel_is_answered_with_packet_too_big() {
    too_big_ipv6_is_answered(1500, 1420);
}

/// Through an interface with IPv6's minimum MTU, a packet too big for the tunnel can be
/// shorter than the quote IPv6 allows: the answer quotes what the frame holds.
#[test]
fn a_short_ipv6_packet_too_big_for_a_small_mtu_is_answered_with_what_it_holds() {
    too_big_ipv6_is_answered(1280, 1200);
}

/// An IPv6 packet that fits the tunnel exactly, in a frame with 20 bytes behind it: the bytes
/// behind go, the packet goes in whole (the frame's length had it answered as too big).
#[test]
fn an_ipv6_packet_that_fits_goes_through_whatever_its_frame_holds_behind_it() {
    let fwd = build_knowing(&vxlan_config(), &[], &[(IpAddr::V4(ROUTER), ROUTER_MAC)]);
    let (p, mut frame) = udp6_to_the_frontend(1450 - 40);
    frame.extend_from_slice(&[0xee; 20]);
    let (action, out) = through_the_pipeline(&frame, &fwd);
    assert_to_a_backend(action);
    assert_eq!(
        out.len(),
        50 + ETH_LEN + p.len(),
        "the packet inside, and nothing behind it"
    );
    assert_eq!(&out[50 + ETH_LEN..], &p[..]);
}

/// An IPv6 packet of `payload` bytes of UDP (header included; a checksum the DSR path does
/// not read) from the client to the IPv6 frontend, and its frame.
fn udp6_to_the_frontend(payload: usize) -> (Vec<u8>, Vec<u8>) {
    use super::icmp_and_ipv6::{CLIENT6, FRONTEND6};
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload as u16).to_be_bytes());
    p.extend_from_slice(&[IpProtocol::UDP, 64]);
    p.extend_from_slice(&CLIENT6.octets());
    p.extend_from_slice(&FRONTEND6.octets());
    p.extend_from_slice(&[0x9c, 0x40, 0, 53]);
    p.extend_from_slice(&(payload as u16).to_be_bytes());
    p.extend_from_slice(&[0x5a, 0x5a]);
    p.resize(40 + payload, 9);
    let frame = eth(
        frontend_mac(IpAddr::V6(FRONTEND6)),
        CLIENT_MAC,
        EtherType::IPV6,
        &p,
    );
    (p, frame)
}

/// An IPv6 UDP packet with `payload` bytes of UDP to the frontend, through an interface of
/// `mtu`: answered with a packet-too-big (the tunnel takes 50 bytes) quoting it.
fn too_big_ipv6_is_answered(mtu: u16, payload: usize) {
    use super::icmp_and_ipv6::{CLIENT6, FRONTEND6};
    let obs = Observations {
        interface_macs: vec![IF_MAC],
        interface_mtus: vec![mtu],
        neighbours: [(IpAddr::V4(ROUTER), Neighbour::fresh(ROUTER_MAC))].into(),
        ..Observations::default()
    };
    let fwd = Forwarding::build(&vxlan_config(), &obs, 1, None);
    let (p, frame) = udp6_to_the_frontend(payload);
    let (action, out) = through_the_pipeline(&frame, &fwd);
    assert_eq!(
        action,
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(macs(&out), (CLIENT_MAC, IF_MAC));
    let ip = Ipv6Packet::new_checked(&out[ETH_LEN..]).unwrap();
    // From the frontend the packet was sent to (RFC 4443 §2.2(a)), not the interface's
    // address (fd00::2), which the client need not know.
    assert_eq!((ip.src(), ip.dst()), (FRONTEND6, CLIENT6));
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (2, 0));
    assert!(icmp.verify_checksum(FRONTEND6, CLIENT6));
    let tunnel_mtu = u32::from(mtu) - 50;
    assert_eq!(&ip.payload()[4..8], &tunnel_mtu.to_be_bytes(), "the MTU");
    assert_eq!(&ip.payload()[8..48], &p[..40], "the packet quoted");
    assert!(out.len() <= ETH_LEN + 1280, "within IPv6's minimum MTU");
}

/// The outer header forbids fragmentation: the MTU check before encapsulating already keeps
/// the outer packet within the interface, and a fragmentable datagram would need an
/// identification that is not repeated (RFC 6864 §4.1), which the outer header (always 0)
/// is not.
#[test]
fn the_outer_ipv4_header_forbids_fragmentation() {
    let fwd = build_knowing(&vxlan_config(), &[], &[(IpAddr::V4(ROUTER), ROUTER_MAC)]);
    let frame = tcp_frame(CLIENT_MAC, CLIENT, 40_000, FRONTEND, 443, TcpFlags::SYN);
    let (action, out) = through_the_pipeline(&frame, &fwd);
    assert_to_a_backend(action);
    let outer = ip(&out);
    assert!(outer.dont_fragment(), "DF set on the outer header");
    assert!(!outer.is_fragment());
    assert!(outer.verify_checksum(), "the header checksum covers DF");
}

/// Through an interface with a tiny MTU, an IPv6 frame (no next header, padded to Ethernet's
/// minimum) too short to hold the answer's headers and, behind them, the offending header
/// cannot be answered in place: a counted drop, not a panic. Long enough, it is answered.
#[test]
fn a_short_ipv6_frame_too_big_for_a_tiny_mtu_is_dropped() {
    use super::icmp_and_ipv6::{CLIENT6, FRONTEND6};
    let obs = Observations {
        interface_macs: vec![IF_MAC],
        interface_mtus: vec![68],
        neighbours: [(IpAddr::V4(ROUTER), Neighbour::fresh(ROUTER_MAC))].into(),
        ..Observations::default()
    };
    let fwd = Forwarding::build(&vxlan_config(), &obs, 1, None);
    let mut p = vec![0x60, 0, 0, 0, 0, 0, 0x3b, 0x40];
    p.extend_from_slice(&CLIENT6.octets());
    p.extend_from_slice(&FRONTEND6.octets());
    let base = eth(
        frontend_mac(IpAddr::V6(FRONTEND6)),
        CLIENT_MAC,
        EtherType::IPV6,
        &p,
    );
    // Unpadded, padded to Ethernet's minimum, and each length short of the answer's headers
    // and the quoted header.
    let answerable = ETH_LEN + 40 + 8 + 40;
    for len in base.len()..answerable {
        let mut frame = base.clone();
        frame.resize(len, 0);
        let (action, _) = through_the_pipeline(&frame, &fwd);
        assert_eq!(
            action,
            Action::Drop(DropReason::TooBig),
            "a {len}-byte frame"
        );
    }
    let mut frame = base.clone();
    frame.resize(answerable, 0);
    let (action, out) = through_the_pipeline(&frame, &fwd);
    assert_eq!(
        action,
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    assert_eq!(&out[ETH_LEN + 48..], &p[..], "the offending header quoted");
}

#[test]
fn icmp_errors_about_packets_too_big_for_the_tunnel_keep_to_their_rate() {
    let fwd = build_knowing(&vxlan_config(), &[], &[(IpAddr::V4(ROUTER), ROUTER_MAC)]);
    let (_, _, frame) = one_byte_too_big();
    let (mut st, _) = worker();
    // How many of `count` such packets at `now` are answered; the others are counted drops.
    let mut answered = |now: u64, count: usize| {
        (0..count)
            .filter(|_| match through_worker(&frame, &mut st, &fwd, now).0 {
                Action::Transmit {
                    interface: LAN,
                    backend: None,
                } => true,
                Action::Drop(DropReason::TooBig) => false,
                other => panic!("{other:?}"),
            })
            .count()
    };
    // A tenth of a second's worth at once, then none more in the same millisecond.
    let burst = (crate::dataplane::vxlan::ERRORS_PER_SECOND / 10) as usize;
    assert_eq!(answered(NOW, 3 * burst), burst);
    // One a millisecond after that (a thousand a second), and a whole burst after a second.
    assert_eq!(answered(NOW + 1, 10), 1);
    assert_eq!(answered(NOW + 1001, 3 * burst), burst);
}

/// Every fragment of a datagram, IPv4 or IPv6 (behind extension headers too), leaves inside
/// VXLAN with the same outer UDP source port (the underlay's ECMP then keeps them on one
/// path), although only the first holds the datagram's ports.
#[test]
fn every_fragment_of_a_datagram_leaves_with_one_outer_source_port() {
    use super::extension_headers::udp6_fragments_behind_options;
    use super::flows_and_drops::udp_fragments;
    use super::icmp_and_ipv6::{udp6_fragments, CLIENT6, FRONTEND6};
    let fwd = build_knowing(&vxlan_config(), &[], &[(IpAddr::V4(ROUTER), ROUTER_MAC)]);
    let v4 = udp_fragments(CLIENT, 5353, FRONTEND, 53)
        .into_iter()
        .map(|p| eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &p))
        .collect::<Vec<_>>();
    // (Behind destination options, the later fragment names them, where the first names UDP.)
    let behind_options = udp6_fragments_behind_options(CLIENT6, 5353, FRONTEND6, 53).to_vec();
    for frames in [
        v4,
        udp6_fragments(CLIENT6, 5353, FRONTEND6, 53),
        behind_options,
    ] {
        let (mut st, _) = worker();
        let mut ports = Vec::new();
        for frame in frames {
            let (action, out, _) = through_worker(&frame, &mut st, &fwd, NOW);
            assert_to_a_backend(action);
            let outer = ip(&out);
            ports.push(UdpPacket::new_checked(outer.payload()).unwrap().src_port());
        }
        assert!(
            ports.len() >= 2 && ports.iter().all(|&p| p == ports[0]),
            "{ports:?}"
        );
    }
}

#[test]
fn probe_answers_from_backends_behind_vxlan_keep_their_own_kernel_budget() {
    let mut cfg = vxlan_config();
    cfg.dataplane.kernel_pps = 1000;
    let fwd = build_knowing(&cfg, &[], &[(IpAddr::V4(ROUTER), ROUTER_MAC)]);
    let (mut st, _) = worker();
    // A flood at the appliance's own address spends the budget of everything else.
    for _ in 0..1000 {
        let request = icmp_echo_request(b"flood");
        let packet = ipv4(CLIENT, OWN, IpProtocol::ICMP, &request);
        let mut frame = eth(IF_MAC, CLIENT_MAC, EtherType::IPV4, &packet);
        process(&mut frame, LAN, &mut st, &fwd, NOW);
    }
    let request = icmp_echo_request(b"flood");
    let mut one_more = eth(
        IF_MAC,
        CLIENT_MAC,
        EtherType::IPV4,
        &ipv4(CLIENT, OWN, IpProtocol::ICMP, &request),
    );
    assert_eq!(
        process(&mut one_more, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::KernelLimit)
    );
    // A probe's answer from a backend behind the tunnel comes, unwrapped, through the router
    // (the tunnel's next hop), and still reaches the kernel. From elsewhere it does not.
    for (mac, expected) in [
        (ROUTER_MAC, Action::ToKernel { interface: LAN }),
        (VTEP_MACS[0], Action::Drop(DropReason::KernelLimit)),
        (CLIENT_MAC, Action::Drop(DropReason::KernelLimit)),
    ] {
        let flags = TcpFlags::SYN | TcpFlags::ACK;
        let mut answer = tcp_frame(mac, REMOTE[0], 22, OWN, 50_000, flags);
        assert_eq!(
            process(&mut answer, LAN, &mut st, &fwd, NOW),
            expected,
            "from {mac}"
        );
    }
    // So does the router's answer to the kernel's ARP request (the probes go through it);
    // another host's answer too, out of the neighbours' budget, which the flood did not
    // spend; not one placing the router elsewhere.
    for (mac, sender, expected) in [
        (ROUTER_MAC, ROUTER, Action::ToKernel { interface: LAN }),
        (CLIENT_MAC, CLIENT, Action::ToKernel { interface: LAN }),
        (
            CLIENT_MAC,
            ROUTER,
            Action::Drop(DropReason::NeighbourConflict),
        ),
    ] {
        let mut reply = arp_frame(IF_MAC, ArpOperation::REPLY, mac, sender, OWN);
        let action = process(&mut reply, LAN, &mut st, &fwd, NOW);
        assert_eq!(action, expected, "{sender} at {mac}");
    }
}
