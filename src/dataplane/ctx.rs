//! What every stage of one packet's handling is given besides the packet, and the one way
//! a packet goes to the kernel.

use super::action::Action;
use super::exception::KernelShare;
use super::state::WorkerState;
use crate::lb::forwarding::{Forwarding, InterfaceId};
use crate::lb::verdict::DropReason;

/// What every stage of one packet's handling needs besides the packet: the published state,
/// the worker's own, and the burst's clock.
#[derive(Debug)]
pub(super) struct Ctx<'a> {
    pub fwd: &'a Forwarding,
    pub st: &'a mut WorkerState,
    pub now_ms: u64,
}

/// To the kernel twin of `ingress`, within the workers' shared budget for it, `share`'s.
pub(super) fn to_kernel(
    ingress: InterfaceId,
    share: KernelShare,
    cx: &mut Ctx,
) -> Result<Action, DropReason> {
    if cx.st.kernel.admit(cx.now_ms, cx.fwd.kernel_pps, share) {
        Ok(Action::ToKernel { interface: ingress })
    } else {
        Err(DropReason::KernelLimit)
    }
}
