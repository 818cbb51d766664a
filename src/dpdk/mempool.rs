use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use super::error::DpdkError;

/// A packet-buffer pool (`rte_pktmbuf_pool_create`), freed when its last handle is dropped:
/// the ports started on it hold one each, as their RX queues allocate from it.
///
/// DPDK's mempool is safe to use from many threads at once (per-lcore caches, lock-free
/// ring; a handler that is not, [`Mempool::new`] refuses), so the handle is `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Mempool {
    inner: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    raw: NonNull<dpdk_sys::rte_mempool>,
}

// SAFETY: rte_mempool get/put are thread-safe by design (per-lcore caches + lock-free ring).
unsafe impl Send for Pool {}
// SAFETY: as above; the pointer is only read after creation.
unsafe impl Sync for Pool {}

impl Mempool {
    /// `count` mbufs of the default data room, with a per-lcore cache of `cache`, in the
    /// memory of NUMA `socket` (`None`: the calling lcore's; `u32::MAX`, DPDK's
    /// SOCKET_ID_ANY: any socket's).
    pub fn new(
        name: &str,
        count: u32,
        cache: u32,
        socket: Option<u32>,
    ) -> Result<Mempool, DpdkError> {
        // Held from before the first call into DPDK (EAL is not cleaned up meanwhile), and
        // given back unless a pool is made.
        if !super::eal::hold() {
            return Err(DpdkError::from_code(
                format!("creating mempool {name}: EAL is not initialised"),
                libc::EINVAL,
            ));
        }
        let made = Mempool::create(name, count, cache, socket);
        if made.is_err() {
            super::eal::released();
        }
        made
    }

    /// [`Mempool::new`]'s pool, EAL held.
    fn create(
        name: &str,
        count: u32,
        cache: u32,
        socket: Option<u32>,
    ) -> Result<Mempool, DpdkError> {
        // The pool's handler (EAL's `--mbuf-pool-ops-name`, else the platform's): every
        // thread puts and gets at once, which the single-producer or -consumer rings break.
        // SAFETY: EAL initialised; a static NUL-terminated name.
        let ops = unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_mbuf_best_mempool_ops()) };
        let ops = ops.to_string_lossy();
        if matches!(&*ops, "ring_sp_sc" | "ring_mp_sc" | "ring_sp_mc") {
            return Err(DpdkError::from_code(
                format!(
                    "creating mempool {name}: its handler {ops} is not safe for several \
                     threads at once, which haports' workers and control thread are \
                     (leave --mbuf-pool-ops-name out, or give ring_mp_mc)"
                ),
                libc::EINVAL,
            ));
        }
        // SAFETY: no preconditions after EAL init (checked above).
        let socket = socket.unwrap_or_else(|| unsafe { dpdk_sys::rte_socket_id() });
        let cname = CString::new(name).map_err(|_| {
            DpdkError::from_code(format!("mempool name {name:?} holds a NUL"), libc::EINVAL)
        })?;
        // SAFETY: valid C string; EAL initialised (checked above).
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                count,
                cache,
                0,
                dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
                socket as i32,
            )
        };
        let pool = NonNull::new(raw)
            .map(|raw| Mempool {
                inner: Arc::new(Pool { raw }),
            })
            .ok_or_else(|| DpdkError::last(format!("creating mempool {name} of {count} mbufs")))?;
        Ok(pool)
    }

    /// As [`Mempool::new`] on `socket`'s memory; where it cannot be made there (too little
    /// memory: hugepages reserved on some sockets only), on any socket's, with a warning
    /// naming why: slower across the interconnect, but running. Where it cannot be made on
    /// any socket either, the first error.
    pub fn near(name: &str, count: u32, cache: u32, socket: u32) -> Result<Mempool, DpdkError> {
        Mempool::new(name, count, cache, Some(socket)).or_else(|e| {
            // SOCKET_ID_ANY (-1) as the unsigned socket the allocator is given.
            let pool = Mempool::new(name, count, cache, Some(u32::MAX)).map_err(|_| e.clone())?;
            tracing::warn!(
                socket,
                error = %e,
                "packet buffers not made in their ports' NUMA socket's memory: taken from any \
                 socket's (reserve hugepages on that socket)"
            );
            Ok(pool)
        })
    }

    /// The pools a set of ports takes its buffers from: one for each NUMA socket among
    /// `sockets` (each port's, `None` for one on no socket in particular), in order of first
    /// appearance, and for each port the index of its socket's. A device writes what it
    /// receives into its pool: on its own socket, not across the interconnect. A port on no
    /// socket in particular (a virtual device, often) takes the first socket's pool, where
    /// another port has one, rather than a pool of its own (each pool holds `mbufs`: a
    /// second one would double the memory for nothing).
    pub fn per_socket(sockets: &[Option<u32>]) -> (Vec<Option<u32>>, Vec<usize>) {
        let mut distinct: Vec<Option<u32>> = Vec::new();
        let first = sockets.iter().find(|s| s.is_some()).copied().flatten();
        let index = sockets
            .iter()
            .map(|s| s.or(first))
            .map(|s| {
                distinct.iter().position(|d| *d == s).unwrap_or_else(|| {
                    distinct.push(s);
                    distinct.len() - 1
                })
            })
            .collect();
        (distinct, index)
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.inner.raw.as_ptr()
    }

    /// Mbufs currently free in the pool (approximate while workers run).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.as_ptr()) }
    }
}

impl Drop for Pool {
    /// Frees the pool once every mbuf is back in it; one still out (held by a port's
    /// descriptors, a queue or an `Mbuf` not yet dropped) would be freed into freed memory
    /// later, so then the pool is left allocated (until the process ends) and that is logged.
    fn drop(&mut self) {
        // SAFETY: the pool is alive; the count includes the lcores' caches.
        let out = unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) };
        if out != 0 {
            // Still held, so that EAL is not cleaned up under those buffers.
            tracing::warn!("mempool dropped with {out} mbufs still out: left allocated");
            return;
        }
        // SAFETY: every mbuf is back (checked just now), and this is the pool's last handle
        // (the ports on it hold theirs): nothing refers to it once it is gone.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) };
        super::eal::released();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_take_the_pool_of_their_own_socket() {
        let (pools, of) = Mempool::per_socket(&[Some(1), None, Some(0), Some(1), Some(0)]);
        // The port on no socket in particular takes the first socket's.
        assert_eq!(pools, vec![Some(1), Some(0)]);
        assert_eq!(of, vec![0, 0, 1, 0, 1]);
        // Ports on no socket in particular alone: one pool, on the lcore's socket.
        assert_eq!(Mempool::per_socket(&[None, None]), (vec![None], vec![0, 0]));
        assert_eq!(Mempool::per_socket(&[]), (vec![], vec![]));
    }
}
