//! The reply entries of ambiguous NAT flows (an HA-ports rule and a public rule on the same
//! backends): they live as their flows do, a lone SYN's as briefly as its flow's entry.

use super::errors_and_transit::internal_and_public_on_the_same_backends;
use super::*;
use crate::lb::decision::SYN_TIMEOUT_MS;

/// A flood of lone SYNs fills the reply table no longer than their flows' entries live (5 s):
/// then a real flow's reply direction is remembered again. With the rule's idle timeout
/// (240 s) on each, the flood held the table full for minutes and real flows' replies were
/// left to the rules, which cannot tell the two frontends apart.
#[test]
fn a_lone_syn_s_reply_entry_lives_as_briefly_as_its_flow() {
    let fwd = build(&internal_and_public_on_the_same_backends(), &[]);
    // Room for two reply entries (a quarter of eight flows).
    let mut st = WorkerState::new(8, Arc::new(ArrayQueue::new(64)));
    for sport in 40_000..40_002 {
        let action = process(&mut syn(sport, 80), LAN, &mut st, &fwd, NOW);
        assert!(matches!(
            action,
            Action::Transmit {
                backend: Some(_),
                ..
            }
        ));
    }
    assert_eq!(
        (st.flows.replies.len(), st.flows.refused),
        (2, 0),
        "the table is full"
    );
    let later = NOW + SYN_TIMEOUT_MS + 1;
    let action = process(&mut syn(40_002, 80), LAN, &mut st, &fwd, later);
    assert!(matches!(
        action,
        Action::Transmit {
            backend: Some(_),
            ..
        }
    ));
    assert_eq!(
        st.flows.refused, 0,
        "the new flow's reply direction is remembered"
    );
}

/// A lone SYN's reply entry takes the idle timeout with the handshake's ACK, as its flow's
/// entry does: the backend's reply a minute later (past the SYN's 5 s) still comes from the
/// frontend the client addressed, whichever of the two.
#[test]
fn a_reply_entry_takes_the_idle_timeout_with_the_handshake() {
    let fwd = build(&internal_and_public_on_the_same_backends(), &[]);
    for frontend in [FRONTEND, Ipv4Addr::new(10, 0, 0, 200)] {
        let (mut st, _) = worker();
        let packet = |flags| tcp_frame(CLIENT_MAC, CLIENT, 40_000, frontend, 80, flags);
        let b = match process(&mut packet(TcpFlags::SYN), LAN, &mut st, &fwd, NOW) {
            Action::Transmit {
                backend: Some(b), ..
            } => b,
            other => panic!("{other:?}"),
        };
        let i = backend_index(&fwd, b);
        let ack = process(&mut packet(TcpFlags::ACK), LAN, &mut st, &fwd, NOW + 100);
        assert_eq!(
            ack,
            Action::Transmit {
                interface: LAN,
                backend: Some(b)
            }
        );
        let mut reply = tcp_frame(
            BACKEND_MACS[i],
            BACKENDS[i],
            80,
            CLIENT,
            40_000,
            TcpFlags::ACK,
        );
        let at = NOW + 60_000;
        let action = process(&mut reply, LAN, &mut st, &fwd, at);
        assert!(
            matches!(action, Action::Transmit { backend: None, .. }),
            "{action:?}"
        );
        assert_eq!(
            endpoints(&reply),
            ((frontend, 80), (CLIENT, 40_000)),
            "via {frontend}"
        );
    }
}
