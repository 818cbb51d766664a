//! The only safe wrapper over `dpdk-sys`: EAL, mempools, mbufs, ports and their queues.
//!
//! Every `unsafe` block of the crate outside `dpdk-sys` lives here, each with a `SAFETY:`
//! line. Wrapper types own what they free (`Drop`) and encode ownership rules in their
//! types: a queue belongs to one thread (`Send`, not `Sync`), an `Mbuf` is freed exactly once.

mod eal;
mod error;
mod mbuf;
mod memory;
mod mempool;
mod port;
mod port_info;

pub use eal::{rdtsc, Eal, LcoreId};
pub use error::DpdkError;
pub use mbuf::{free_bulk, Mbuf, MbufBurst, TxBuffer, BURST};
pub use memory::{prefetch, SocketMemory};
pub use mempool::Mempool;
pub use port::{Port, PortConfig, PortStats, RxQueue, TxQueue};
pub use port_info::{fixed_rx_queues, mac_of, max_queues, port_socket};
