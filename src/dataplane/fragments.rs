//! IP fragments: every fragment of a datagram reaches the same backend as its first
//! (DESIGN §6). The first fragment (it has the ports) is decided like any packet and its
//! decision kept per datagram; the later ones follow it, rewritten the same way at the IP
//! layer, or are dropped as `fragment` when their first was not seen.
//!
//! The datagrams followed are held in [`Datagrams`](super::datagrams::Datagrams), a worker's own.

use super::action::Action;
use super::ctx::Ctx;
use super::datagrams::Fragment;
use super::nat::{reply_to_client, set_address, unresolved, Side};
use crate::lb::flow::FlowKey;
use crate::lb::hash::symmetric_hash;
use crate::lb::verdict::DropReason;
use crate::wire::Headers;

/// Keeps what a first fragment got for the rest of its datagram.
pub(super) fn remember_fragment(cx: &mut Ctx, key: FlowKey, what: Fragment) {
    let hash = symmetric_hash(&key, cx.st.flows.secret);
    cx.st.fragments.insert(key, hash, what, cx.now_ms);
}

/// A fragment after the first: it goes where its first fragment went, rewritten the same
/// way at the IP layer (it carries no transport header). A reply's only where it too came
/// `from_backend` side (its interface and MAC), as an unfragmented reply must.
pub(super) fn later_fragment(
    frame: &mut [u8],
    h: &Headers,
    key: &FlowKey,
    from_backend: bool,
    cx: &mut Ctx,
) -> Result<Action, DropReason> {
    let hash = symmetric_hash(key, cx.st.flows.secret);
    match cx.st.fragments.lookup(key, hash, cx.now_ms) {
        None => Err(DropReason::Fragment),
        Some(Fragment::Reply(_)) if !from_backend => Err(DropReason::Fragment),
        Some(Fragment::Reply(rn)) => reply_to_client(frame, h, rn, None, cx),
        Some(Fragment::Forward { backend, nat }) => {
            // By the backend's per-packet record, as its flows go: not to a backend that may
            // no longer keep them (gone in a reload, or down; one a reload gave another probe
            // is followed), nor, behind VXLAN, out of a tunnel that is not there.
            let (backend, link) = cx
                .fwd
                .keeping_flows_of(backend)
                .ok_or(DropReason::Fragment)?;
            if nat {
                let address = cx.fwd.backends[backend as usize].address;
                set_address(frame, h, Side::Dst, address)?;
            }
            // Held for the backend's MAC as its first is (a datagram's fragments may arrive
            // in any order).
            let Some(out) = link.egress else {
                return unresolved(cx.fwd, backend);
            };
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
