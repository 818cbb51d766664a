//! IP fragments: every fragment of a datagram reaches the same backend as its first
//! (DESIGN §6). The first fragment (it has the ports) is decided like any packet and its
//! decision kept per datagram; the later ones follow it, rewritten the same way at the IP
//! layer, or are dropped as `fragment` when their first was not seen.

use std::net::IpAddr;

use super::nat::{reply_to_client, set_address, Side};
use super::slow::Ctx;
use super::state::Action;
use crate::lb::flow::FlowKey;
use crate::lb::forwarding::{BackendId, ReverseNat};
use crate::lb::hash::symmetric_hash;
use crate::lb::verdict::DropReason;
use crate::wire::{Headers, IpProtocol, Ipv4Packet};

/// Datagrams in flight in fragments one worker follows at once.
pub(super) const FRAGMENT_CAPACITY: usize = 16_384;
/// How long the later fragments of a datagram are expected after its first.
const FRAGMENT_TIMEOUT_MS: u64 = 5_000;

/// What a datagram's first fragment got, for its later fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// To a backend (destination rewritten to it when `nat`).
    Forward { backend: BackendId, nat: bool },
    /// A NATed reply: source rewritten to the frontend.
    Reply(ReverseNat),
}

/// A datagram's identity, as its receiver reassembles it: addresses, identification (in the
/// port slot; this key lives in its own table, never among flows) and, for IPv4, protocol.
/// IPv6 reassembles without it (RFC 8200 §4.5): a later fragment names only the first header
/// of the fragmentable part, which need not be the transport its first fragment names.
pub(super) fn fragment_key(h: &Headers, ident: u32) -> FlowKey {
    let proto = match h.dst {
        IpAddr::V4(_) => h.proto,
        IpAddr::V6(_) => IpProtocol::IPV6_FRAGMENT,
    };
    FlowKey {
        proto,
        src: h.src,
        dst: h.dst,
        src_port: ident as u16,
        dst_port: (ident >> 16) as u16,
    }
}

/// (identification, offset in bytes) of a fragment, IPv4 or IPv6 (its fragment header).
pub(super) fn fragment_id(frame: &[u8], h: &Headers) -> Result<(u32, usize), DropReason> {
    let l3 = usize::from(h.l3_offset);
    match h.dst {
        IpAddr::V4(_) => {
            let ip = Ipv4Packet::new_checked(&frame[l3..])?;
            Ok((u32::from(ip.ident()), ip.frag_offset()))
        }
        IpAddr::V6(_) => {
            // parse_headers found the fragment header, wherever it is in the chain.
            let at = usize::from(h.fragment_header);
            let f = frame.get(at..at + 8).ok_or(DropReason::Truncated)?;
            let offset = usize::from(u16::from_be_bytes([f[2], f[3]]) & 0xfff8);
            Ok((u32::from_be_bytes([f[4], f[5], f[6], f[7]]), offset))
        }
    }
}

/// Keeps what a first fragment got for the rest of its datagram.
pub(super) fn remember_fragment(cx: &mut Ctx, key: FlowKey, what: Fragment) {
    let hash = symmetric_hash(&key, cx.st.flows.secret);
    // Full: the later fragments are dropped, as without this table; counted, not an error.
    let kept = cx
        .st
        .fragments
        .insert(key, hash, what, cx.now_ms, FRAGMENT_TIMEOUT_MS);
    cx.st.fragments_refused += u64::from(!kept);
}

/// A fragment after the first: it goes where its first fragment went, rewritten the same
/// way at the IP layer (it carries no transport header).
pub(super) fn later_fragment(
    frame: &mut [u8],
    h: &Headers,
    key: &FlowKey,
    cx: &mut Ctx,
) -> Result<Action, DropReason> {
    let hash = symmetric_hash(key, cx.st.flows.secret);
    match cx.st.fragments.lookup(key, hash, cx.now_ms) {
        None => Err(DropReason::Fragment),
        Some(Fragment::Reply(rn)) => reply_to_client(frame, h, rn, None, cx),
        Some(Fragment::Forward { backend, nat }) => {
            // By the backend's per-packet record, as its flows go: not to a backend that may
            // no longer keep them (gone in a reload, or down), nor, behind VXLAN, out of a
            // tunnel that is not there.
            let out = cx
                .fwd
                .link(backend)
                .filter(|l| l.keeps_flows)
                .ok_or(DropReason::Fragment)?
                .egress
                .ok_or(DropReason::NoNeighbour)?;
            if nat {
                let address = cx.fwd.backends[backend as usize].address;
                set_address(frame, h, Side::Dst, address)?;
            }
            frame
                .get_mut(..12)
                .ok_or(DropReason::Truncated)?
                .copy_from_slice(&out.macs);
            Ok(Action::Transmit {
                interface: out.interface,
                backend: Some(backend),
            })
        }
    }
}
