//! What reaches the kernel twins: each interface's twin its own addresses alone (the strong-host
//! model), and the probe answers' budget only what a backend really sent.

use super::*;
use crate::dataplane::pipeline::process_burst;
use crate::lb::forwarding::InterfaceId;

/// The second interface's MAC, own address and a host on its segment.
const WAN_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const WAN_OWN: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const WAN_HOST: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 50);
const WAN_HOST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x50]);
const WAN: u32 = 1;

/// The usual HA-ports NAT config with a second interface, 10.9.0.2/24 on port 1.
fn two_interfaces() -> Forwarding {
    let mut cfg = ha_ports();
    let wan = Config::from_toml(
        r#"
[[interface]]
name = "wan"
port = 1
address = ["10.9.0.2/24"]
"#,
        "wan",
    )
    .expect("the second interface parses");
    cfg.interface.extend(wan.interface);
    let mut obs = observed(&[], &[(IpAddr::V4(CLIENT), CLIENT_MAC)]);
    obs.interface_macs.push(WAN_MAC);
    Forwarding::build(&cfg, &obs, 1, None)
}

/// `frame` received on `ingress`, through the slow path and the burst pipeline (which must
/// agree).
fn on(ingress: InterfaceId, frame: &[u8], fwd: &Forwarding) -> Action {
    let (mut st, _) = worker();
    let one = process(&mut frame.to_vec(), ingress, &mut st, fwd, NOW);
    let (mut st, _) = worker();
    let mut burst = vec![frame.to_vec()];
    let mut actions = [Action::Drop(DropReason::Unsupported); 1];
    let (mut spill, now) = (spill(), NOW);
    process_burst(
        &mut burst,
        ingress,
        &mut st,
        fwd,
        now,
        &mut actions,
        &mut spill,
    );
    assert_eq!(actions[0], one, "burst pipeline and slow path disagree");
    one
}

#[test]
fn an_interfaces_twin_gets_its_own_addresses_and_not_another_interfaces() {
    let fwd = two_interfaces();
    assert_eq!(fwd.own_address(IpAddr::V4(OWN)), Some(LAN));
    assert_eq!(fwd.own_address(IpAddr::V4(WAN_OWN)), Some(WAN));
    let syn_to = |dst_mac: MacAddr, src_mac, src, dst| {
        let mut frame = tcp_frame(src_mac, src, 40_000, dst, 22, TcpFlags::SYN);
        frame[..6].copy_from_slice(&dst_mac.0);
        frame
    };
    // Each interface's own address, on its own segment: its twin's.
    let own_here = syn_to(WAN_MAC, WAN_HOST_MAC, WAN_HOST, WAN_OWN);
    assert_eq!(
        on(WAN, &own_here, &fwd),
        Action::ToKernel { interface: WAN }
    );
    let lan_here = syn_to(IF_MAC, CLIENT_MAC, CLIENT, OWN);
    assert_eq!(
        on(LAN, &lan_here, &fwd),
        Action::ToKernel { interface: LAN }
    );
    let arp_here = arp_request(WAN_HOST_MAC, WAN_HOST, WAN_OWN);
    assert_eq!(
        on(WAN, &arp_here, &fwd),
        Action::ToKernel { interface: WAN }
    );
    // The LAN's address asked for, or sent to, from the WAN's segment: neither reaches a
    // twin (the WAN's would answer ARP for it with its own MAC, and take the packets).
    let lan_from_wan = syn_to(WAN_MAC, WAN_HOST_MAC, WAN_HOST, OWN);
    let action = on(WAN, &lan_from_wan, &fwd);
    assert_eq!(action, Action::Drop(DropReason::NotForUs));
    let arp_from_wan = arp_request(WAN_HOST_MAC, WAN_HOST, OWN);
    let action = on(WAN, &arp_from_wan, &fwd);
    assert_eq!(action, Action::Drop(DropReason::NotForUs));
    // Nor the other way round.
    let wan_from_lan = syn_to(IF_MAC, CLIENT_MAC, CLIENT, WAN_OWN);
    let action = on(LAN, &wan_from_lan, &fwd);
    assert_eq!(action, Action::Drop(DropReason::NotForUs));
}

#[test]
fn arp_naming_a_backend_from_another_mac_takes_no_probe_answers_budget() {
    let mut cfg = ha_ports();
    cfg.dataplane.kernel_pps = 1000;
    let fwd = build(&cfg, &[]);
    let (mut st, _) = worker();
    // A client writes the backend's MAC and address into ARP requests for the appliance's
    // own address: a tenth of a second's worth of them at the rate.
    let mut forged = arp_request(BACKEND_MACS[0], BACKENDS[0], OWN);
    forged[6..12].copy_from_slice(&CLIENT_MAC.0);
    let passed = (0..1000)
        .filter(|_| {
            let action = process(&mut forged.clone(), LAN, &mut st, &fwd, NOW);
            matches!(action, Action::ToKernel { .. })
        })
        .count();
    assert_eq!(passed, 100, "the burst of 1000 pps");
    // The backend's own answers, to a probe and to the twin's ARP, still get in: the
    // forgeries spent the others' budget, not the backend side's.
    let mut answer = probe_answer();
    let action = process(&mut answer, LAN, &mut st, &fwd, NOW);
    assert_eq!(action, Action::ToKernel { interface: LAN });
    let mut arp = arp_frame(
        IF_MAC,
        ArpOperation::REPLY,
        BACKEND_MACS[0],
        BACKENDS[0],
        OWN,
    );
    let action = process(&mut arp, LAN, &mut st, &fwd, NOW);
    assert_eq!(action, Action::ToKernel { interface: LAN });
    // Anyone else's packets for the kernel are over the limit by now.
    let action = process(&mut forged.clone(), LAN, &mut st, &fwd, NOW);
    assert_eq!(action, Action::Drop(DropReason::KernelLimit));
}
