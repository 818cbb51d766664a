//! Pings, the appliance's own addresses, IPv6 NAT, neighbour discovery.

use super::*;

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
        probe_answer(),
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

pub(super) const FRONTEND6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);
pub(super) const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10);

/// The HA-ports setup over IPv6: frontend fd00::100, backends fd00::11-13 with MACs.
pub(super) fn ipv6_config() -> Config {
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
pub(super) fn tcp6_frame(
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
pub(super) fn endpoints6(frame: &[u8]) -> ((Ipv6Addr, u16), (Ipv6Addr, u16)) {
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

    assert_eq!(lookup(&fwd, &key, None).unwrap().backend, b);
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
// IPv6 neighbour discovery and ping for frontends

/// An IPv6 frame carrying ICMPv6 `message` (checksum filled), hop limit 255.
pub(super) fn icmp6_frame(
    dst_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    mut message: Vec<u8>,
) -> Vec<u8> {
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
pub(super) fn solicitation(target: Ipv6Addr) -> Vec<u8> {
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

/// The advertisement `frame` became: its ICMPv6 message, checked from the frontend to the
/// client at layer 2 and 3.
pub(super) fn advert(frame: &[u8]) -> Vec<u8> {
    assert_eq!(
        macs(frame),
        (CLIENT_MAC, frontend_mac(IpAddr::V6(FRONTEND6)))
    );
    let ip = Ipv6Packet::new_checked(&frame[ETH_LEN..]).unwrap();
    assert_eq!(
        (ip.src(), ip.dst(), ip.hop_limit()),
        (FRONTEND6, CLIENT6, 255)
    );
    let na = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(na.msg_type(), Icmpv6Type::NEIGHBOR_ADVERT);
    assert!(na.verify_checksum(FRONTEND6, CLIENT6));
    assert_eq!(&ip.payload()[8..24], &FRONTEND6.octets(), "the target");
    ip.payload().to_vec()
}

/// The asker of [`solicitation`], known at another MAC: what it says of itself is news, a
/// hint, which shows the source link-layer address it was read with.
pub(super) const ASKER_KNOWN_ELSEWHERE: (IpAddr, MacAddr) = (IpAddr::V6(CLIENT6), OTHER_HOST_MAC);

/// `frame` is the frontend's solicited advertisement with its MAC (override set), and the
/// asker (known at another MAC: [`ASKER_KNOWN_ELSEWHERE`]) went to the control thread as a
/// hint only.
pub(super) fn answered_with_the_frontends_mac(frame: &[u8], reports: &ArrayQueue<Report>) {
    let body = advert(frame);
    assert_eq!(body.len(), 32, "with the target's link-layer address");
    assert_eq!(body[4] & 0x60, 0x60, "solicited and override");
    let fe_mac = frontend_mac(IpAddr::V6(FRONTEND6));
    assert_eq!((body[24], body[25], &body[26..32]), (2, 1, &fe_mac.0[..]));
    assert_eq!(
        drain(reports),
        vec![Report::Hint {
            interface: LAN,
            addr: IpAddr::V6(CLIENT6),
            mac: CLIENT_MAC
        }],
        "the asker is a hint, not learnt"
    );
}

#[test]
fn neighbour_solicitation_for_a_v6_frontend_is_answered_with_its_mac() {
    let fwd = build_knowing(&ipv6_config(), &[], &[ASKER_KNOWN_ELSEWHERE]);
    let (mut st, reports) = worker();
    let mut frame = solicitation(FRONTEND6);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Transmit {
            interface: LAN,
            backend: None
        }
    );
    answered_with_the_frontends_mac(&frame, &reports);

    // The appliance's own address is the kernel twin's to answer; not while the asker's
    // option places it elsewhere than the appliance verified (the twin would learn that),
    // which is a hint all the same: the control thread asks the asker again.
    let (mut st, reports) = worker();
    let mut own = solicitation("fd00::2".parse().unwrap());
    assert_eq!(
        process(&mut own, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NeighbourConflict)
    );
    assert_eq!(
        drain(&reports),
        vec![Report::Hint {
            interface: LAN,
            addr: IpAddr::V6(CLIENT6),
            mac: CLIENT_MAC
        }]
    );
    let fwd = build(&ipv6_config(), &[]);
    let mut own = solicitation("fd00::2".parse().unwrap());
    assert_eq!(
        process(&mut own, LAN, &mut st, &fwd, NOW),
        Action::ToKernel { interface: LAN }
    );
}

/// A solicitation whose second source option contradicts a verified neighbour (the first
/// agreeing) is kept from the twin, and is a hint as well: the asker is verified again, as
/// for a first option that contradicts.
#[test]
fn a_solicitations_every_source_option_is_news_where_it_contradicts() {
    let fwd = build_knowing(&ipv6_config(), &[], &[(IpAddr::V6(CLIENT6), CLIENT_MAC)]);
    let (mut st, reports) = worker();
    let own: Ipv6Addr = "fd00::2".parse().unwrap();
    let mut frame = solicitation(own);
    let mut m = frame[ETH_LEN + 40..].to_vec();
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&OTHER_HOST_MAC.0);
    let dst = Ipv6Packet::new_checked(&frame[ETH_LEN..]).unwrap().dst();
    frame = icmp6_frame(MacAddr::from_bytes(&frame[..6]), CLIENT6, dst, m);
    assert_eq!(
        process(&mut frame, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::NeighbourConflict)
    );
    assert_eq!(
        drain(&reports),
        vec![Report::Hint {
            interface: LAN,
            addr: IpAddr::V6(CLIENT6),
            mac: OTHER_HOST_MAC
        }]
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
fn only_a_solicited_advertisement_with_hop_limit_255_may_answer_and_none_of_them_the_twin() {
    let backend: Ipv6Addr = "fd00::11".parse().unwrap();
    // The backend known at another MAC: an unsolicited advertisement of this one is news.
    let fwd = build_knowing(
        &ipv6_config(),
        &[],
        &[(IpAddr::V6(backend), OTHER_HOST_MAC)],
    );
    let (mut st, reports) = worker();
    // The control thread asks for it (answers about addresses nobody asked for are hints).
    st.neighbours.asking.insert(IpAddr::V6(backend));
    let own: Ipv6Addr = "fd00::2".parse().unwrap();
    let mac = MacAddr([0x02, 0, 0, 0, 0x66, 0x11]);
    let advert = |flags: u8| {
        let mut m = vec![136, 0, 0, 0, flags, 0, 0, 0];
        m.extend_from_slice(&backend.octets());
        m.extend_from_slice(&[2, 1]);
        m.extend_from_slice(&mac.0);
        icmp6_frame(IF_MAC, backend, own, m)
    };
    let (solicited, unsolicited) = (0x60, 0x20);
    let mut hop_64 = advert(solicited);
    hop_64[ETH_LEN + 7] = 64;
    let mut bad_sum = advert(solicited);
    let last = bad_sum.len() - 1;
    bad_sum[last] ^= 1;
    let mut heard = Vec::new();
    // Apart in time: a hint about one neighbour is held back for a while after another.
    let frames = [advert(solicited), advert(unsolicited), hop_64, bad_sum];
    for (mut frame, at) in frames
        .into_iter()
        .zip([NOW, NOW + 2_000, NOW + 4_000, NOW + 6_000])
    {
        // Each places the backend elsewhere than verified: never the twin's to learn.
        assert_eq!(
            process(&mut frame, LAN, &mut st, &fwd, at),
            Action::Drop(DropReason::NeighbourConflict)
        );
        heard.push(drain(&reports));
    }
    let addr = IpAddr::V6(backend);
    assert_eq!(
        heard,
        vec![
            vec![Report::Answer {
                interface: LAN,
                addr,
                mac
            }],
            vec![Report::Hint {
                interface: LAN,
                addr,
                mac
            }],
            vec![],
            vec![],
        ],
        "solicited: may answer; unsolicited: a hint; hop limit 64 or a bad checksum: nothing"
    );
}

#[test]
fn packet_too_big_about_a_v6_flow_goes_to_its_backend_about_the_packet_it_sent() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let router: Ipv6Addr = "fd00:1::1".parse().unwrap();
    for sport in 40_000..40_010 {
        let mut syn = tcp6_frame(CLIENT_MAC, CLIENT6, sport, FRONTEND6, 443, TcpFlags::SYN);
        let owner = to_backend(&mut syn, &mut st, &fwd);
        let backend_mac = fwd.backends[owner as usize].mac.unwrap();
        let backend: Ipv6Addr = fwd.backends[owner as usize]
            .address
            .to_string()
            .parse()
            .unwrap();
        // What the backend sent, as the client side saw it: from the frontend, NATed.
        let sent = tcp6_frame(IF_MAC, FRONTEND6, 443, CLIENT6, sport, TcpFlags::ACK);
        let mut m = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
        m.extend_from_slice(&sent[ETH_LEN..]);
        let mut error = icmp6_frame(IF_MAC, router, FRONTEND6, m);
        assert_eq!(
            process(&mut error, LAN, &mut st, &fwd, NOW),
            Action::Transmit {
                interface: LAN,
                backend: Some(owner)
            }
        );
        assert_eq!(macs(&error).0, backend_mac);
        let ip = Ipv6Packet::new_checked(&error[ETH_LEN..]).unwrap();
        assert_eq!((ip.src(), ip.dst()), (router, backend));
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(
            icmp.verify_checksum(router, backend),
            "ICMPv6 checksum refilled"
        );
        let q = crate::wire::QuotedIpv6::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (q.src(), q.dst(), q.ports()),
            (backend, CLIENT6, (443, sport))
        );
        // The quoted segment's checksum is right for its new source.
        let seg = &ip.payload()[8 + 40..];
        assert_eq!(
            tcp_udp_checksum_v6(backend, CLIENT6, IpProtocol::TCP, seg),
            u16::from_be_bytes([seg[16], seg[17]])
        );
    }
}

/// The two fragments of one IPv6 UDP datagram (identification 0x0a0b0c0d): the first holds
/// the UDP header and 16 bytes, the second the other 24.
pub(super) fn udp6_fragments(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16) -> Vec<Vec<u8>> {
    let mut dgram = Vec::new();
    dgram.extend_from_slice(&sport.to_be_bytes());
    dgram.extend_from_slice(&dport.to_be_bytes());
    dgram.extend_from_slice(&48u16.to_be_bytes());
    dgram.extend_from_slice(&[0, 0]);
    dgram.extend_from_slice(&[0x5a; 40]);
    let csum = tcp_udp_checksum_v6(src, dst, IpProtocol::UDP, &dgram);
    dgram[6..8].copy_from_slice(&csum.to_be_bytes());
    [(0u16, true, 0..24), (24, false, 24..48)]
        .into_iter()
        .map(|(offset, more, range)| {
            v6_fragment(src, dst, IpProtocol::UDP, (offset, more), &dgram[range])
        })
        .collect()
}

/// A client's IPv6 fragment (identification 0x0a0b0c0d) from `src` to `dst`: `data` at byte
/// `offset` of the fragmentable part, which starts with header `next`; `more`: not the last.
pub(super) fn v6_fragment(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    (offset, more): (u16, bool),
    data: &[u8],
) -> Vec<u8> {
    let mut payload = vec![next, 0];
    payload.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
    payload.extend_from_slice(&0x0a0b_0c0du32.to_be_bytes());
    payload.extend_from_slice(data);
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[IpProtocol::IPV6_FRAGMENT, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&payload);
    eth(IF_MAC, CLIENT_MAC, EtherType::IPV6, &p)
}

#[test]
fn every_ipv6_fragment_follows_its_first_with_the_transport_checksum_kept_right() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let frames = udp6_fragments(CLIENT6, 5353, FRONTEND6, 53);
    let mut chosen = None;
    let mut reassembled = Vec::new();
    let mut backend_addr = Ipv6Addr::UNSPECIFIED;
    for (i, mut frame) in frames.into_iter().enumerate() {
        let b = to_backend(&mut frame, &mut st, &fwd);
        assert_eq!(
            *chosen.get_or_insert(b),
            b,
            "fragment {i} follows the first"
        );
        let ip = Ipv6Packet::new_checked(&frame[ETH_LEN..]).unwrap();
        backend_addr = fwd.backends[b as usize]
            .address
            .to_string()
            .parse()
            .unwrap();
        assert_eq!(ip.dst(), backend_addr, "fragment {i} NATed like the first");
        reassembled.extend_from_slice(&ip.payload()[8..]);
    }
    // Put back together, the datagram's UDP checksum is right for its new destination.
    assert_eq!(
        tcp_udp_checksum_v6(CLIENT6, backend_addr, IpProtocol::UDP, &reassembled),
        u16::from_be_bytes([reassembled[6], reassembled[7]])
    );
    // A later fragment alone has nowhere known to go.
    let (mut st, _) = worker();
    let mut orphan = udp6_fragments(CLIENT6, 5354, FRONTEND6, 53).remove(1);
    assert_eq!(
        process(&mut orphan, LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::Fragment)
    );
}

/// The kernel twin's own link-local address: an advertisement answering the twin's unicast
/// solicitation (Linux checks reachability that way, from its link-local address) reaches
/// it; to a frontend's MAC, a link-local destination is not transit but dropped.
#[test]
fn what_is_for_the_twins_link_local_address_reaches_the_kernel_and_is_never_forwarded() {
    let fwd = build(&ipv6_config(), &[]);
    let (mut st, _) = worker();
    let backend: Ipv6Addr = "fd00::11".parse().unwrap();
    let twin: Ipv6Addr = "fe80::1".parse().unwrap();
    let advert = |dst_mac: MacAddr| {
        let mut m = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
        m.extend_from_slice(&backend.octets());
        m.extend_from_slice(&[2, 1]);
        // The MAC the config gives it.
        m.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x11]);
        icmp6_frame(dst_mac, backend, twin, m)
    };
    assert_eq!(
        process(&mut advert(IF_MAC), LAN, &mut st, &fwd, NOW),
        Action::ToKernel { interface: LAN }
    );
    let through_frontend = frontend_mac(IpAddr::V6(FRONTEND6));
    assert_eq!(
        process(&mut advert(through_frontend), LAN, &mut st, &fwd, NOW),
        Action::Drop(DropReason::MartianDestination)
    );
}
