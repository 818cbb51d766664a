//! Tests of `lb::decision` for transit: frontends that take none, and a flow through a
//! two-NIC NVA's two frontends.
use super::*;
use crate::lb::testdata::two_nic_config;
use crate::wire::TcpFlags;
use std::net::IpAddr;

/// Transit leaves with its MAC header changed alone: a frontend whose HA-ports rule has a
/// backend behind a router (which NAT reaches) takes none, rather than hand it to the router.
#[test]
fn a_frontend_with_a_backend_behind_a_router_takes_no_transit() {
    let text = config_text(false)
        .replace(
            "address = \"10.0.0.2/24\"",
            "address = \"10.0.0.2/24\"\nroutes = [{ to = \"10.9.0.0/16\", via = \"10.0.0.1\" }]",
        )
        .replace("10.0.0.13", "10.9.0.13");
    let cfg = Config::from_toml(&text, "test").unwrap();
    let fwd = Forwarding::build(&cfg, &Observations::default(), 1, None);
    let mut flows = Flows::with_capacity(64);
    for i in 0..50u16 {
        let key: FlowKey = format!("udp 10.1.0.5:{} 10.2.0.9:53", 5000 + i)
            .parse()
            .unwrap();
        let f = Flow::new(key, 0, fwd.hash_seed);
        let transit = decide(&fwd, &mut flows, 0, Via::Transit, &f, 0, Memory::Record);
        assert_eq!(transit.err(), Some(DropReason::NoFrontend), "{key}");
        assert_eq!(
            lookup(&fwd, &key, Some(0)).err(),
            Some(DropReason::NoFrontend)
        );
    }
    assert!(flows.is_empty(), "nothing remembered");
    // To the frontend itself, NAT takes every backend, the routed one too.
    let to_frontend = (0..300u16).map(|p| {
        let f = flow(&fwd, 1000 + p, TcpFlags::SYN);
        let d = record(&fwd, &mut flows, &f, 0);
        fwd.backends[d.backend as usize].address
    });
    let routed: IpAddr = "10.9.0.13".parse().unwrap();
    assert!(to_frontend.collect::<Vec<_>>().contains(&routed));
    // The same pool on a segment takes transit again.
    assert!(build(false, &[]).transit_rule(0).is_some());
}

/// Through a two-NIC NVA, a flow's two directions arrive through two frontends whose pools
/// hold the NVA's two addresses: the flow is established on the instance in both, not
/// decided again at each packet, so that draining an NVA or adding one moves none of it.
#[test]
fn a_flow_through_two_frontends_stays_on_its_nva_when_one_is_drained_or_added() {
    let (u, t) = (0, 1);
    let f1 = Forwarding::build(
        &two_nic_config("", false),
        &Observations::default(),
        1,
        None,
    );
    let mut flows = Flows::with_capacity(4096);
    let nva = |f: &Forwarding, d: &Decided| f.backends[d.backend as usize].instance.clone();
    let packet = |f: &Forwarding, fe, key: &FlowKey, flows: &mut Flows| {
        let flow = Flow::new(*key, TcpFlags::ACK, f.hash_seed);
        decide(f, flows, fe, Via::Transit, &flow, 0, Memory::Record).unwrap()
    };
    let held: Vec<(FlowKey, String)> = (0..300u16)
        .map(|i| {
            let spec = format!("tcp 10.10.0.{}:{} 10.20.0.50:443", 50 + i % 100, 2000 + i);
            let key: FlowKey = spec.parse().unwrap();
            let there = packet(&f1, u, &key, &mut flows);
            assert!(there.new, "{key}: the first packet decides");
            let back = packet(&f1, t, &key.reversed(), &mut flows);
            assert_eq!(nva(&f1, &back), nva(&f1, &there), "{key}: one NVA");
            assert!(!back.new, "{key}: the reply is the established flow's");
            assert!(
                !packet(&f1, u, &key, &mut flows).new,
                "{key}: and so is the next"
            );
            (key, nva(&f1, &there))
        })
        .collect();
    for (drain, nva4) in [("nva1", false), ("", true)] {
        let f2 = Forwarding::build(
            &two_nic_config(drain, nva4),
            &Observations::default(),
            2,
            Some(&f1),
        );
        let mut moved_if_new = 0;
        for (key, was) in &held {
            for (fe, k) in [(u, *key), (t, key.reversed()), (u, *key)] {
                let d = packet(&f2, fe, &k, &mut flows);
                assert_eq!(&nva(&f2, &d), was, "{drain} {nva4}: {k} stays on its NVA");
                assert!(!d.new, "{drain} {nva4}: {k} is established");
            }
            let flow = Flow::new(*key, TcpFlags::ACK, f2.hash_seed);
            let pick = f2.pick(
                f2.frontends[u as usize].rules[0].pool,
                flow.decision_hash(f2.hash_seed, Distribution::FiveTuple),
            );
            moved_if_new +=
                usize::from(pick.map(|b| &f2.backends[b as usize].instance) != Some(was));
        }
        assert!(
            moved_if_new > 0,
            "{drain} {nva4}: new flows would go elsewhere"
        );
    }
}

/// An IPv4 frontend's MAC is learnt by ARP, an IPv6 one's by neighbour discovery: a frame of
/// the other family sent to it was routed through no frontend, and no rule takes it, in the
/// data plane's decision or in `haports lookup`.
#[test]
fn transit_through_a_frontend_is_of_its_family_alone() {
    let fwd = build(false, &[]);
    assert!(fwd.frontends[0].address.is_ipv4());
    let mut flows = Flows::with_capacity(64);
    let v4: FlowKey = "udp 10.1.0.5:5000 10.2.0.9:53".parse().unwrap();
    let v6: FlowKey = "udp [fd01::5]:5000 [fd02::9]:53".parse().unwrap();
    let transit = |key: &FlowKey, flows: &mut Flows| {
        let f = Flow::new(*key, 0, fwd.hash_seed);
        decide(&fwd, flows, 0, Via::Transit, &f, 0, Memory::Record)
    };
    assert!(transit(&v4, &mut flows).is_ok());
    assert!(lookup(&fwd, &v4, Some(0)).is_ok());
    assert_eq!(transit(&v6, &mut flows).err(), Some(DropReason::NoFrontend));
    assert_eq!(
        lookup(&fwd, &v6, Some(0)).err(),
        Some(DropReason::NoFrontend)
    );
    assert_eq!(flows.len(), 1, "the IPv4 flow alone remembered");
}
