//! What the worker decides for a packet: where it goes.

use crate::lb::forwarding::{BackendId, InterfaceId};
use crate::lb::verdict::DropReason;

/// Where a packet goes. A 32-bit tag keeps every field aligned, so the burst's array of
/// actions is written and read back without partial-word stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Action {
    /// Out of an interface's port (to a backend when `backend` is set).
    Transmit {
        interface: InterfaceId,
        backend: Option<BackendId>,
    },
    /// To an interface's kernel twin.
    ToKernel {
        interface: InterfaceId,
    },
    /// Out of an interface once its next hop's MAC is known: held meanwhile
    /// ([`Held`](super::neighbours::Held)), rewritten and sent when the control thread
    /// publishes it.
    Hold {
        interface: InterfaceId,
    },
    /// To a backend once its MAC is known (a backend a reload added, not resolved yet): held
    /// meanwhile as [`Action::Hold`] is, its MACs written and sent when it is published.
    HoldForBackend {
        backend: BackendId,
    },
    Drop(DropReason),
}
