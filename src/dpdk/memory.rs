//! Zeroed arrays on hugepages on a given NUMA socket (DPDK's allocator), for per-worker
//! tables that are allocated once at start and read on every packet; and a port's queues
//! on its socket, or any where its own has too little.

use std::alloc::Layout;
use std::ptr::NonNull;

use bytemuck::Zeroable;

use super::error::{check, DpdkError};

const HUGE_PAGE: usize = 2 << 20;

/// A fixed, zero-initialised array of `T`: from `rte_zmalloc_socket` (hugepages, the
/// worker's socket) or, where that fails or no EAL runs (tests, offline tools), the heap.
pub struct SocketMemory<T: Zeroable> {
    ptr: NonNull<T>,
    len: usize,
    from_dpdk: bool,
}

// SAFETY: the memory is owned exclusively by this value, like a `Box<[T]>`.
unsafe impl<T: Zeroable + Send> Send for SocketMemory<T> {}

impl<T: Zeroable> std::fmt::Debug for SocketMemory<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketMemory")
            .field("len", &self.len)
            .field("from_dpdk", &self.from_dpdk)
            .finish()
    }
}

impl<T: Zeroable> SocketMemory<T> {
    /// `len` zeroed elements on the heap.
    pub fn heap(len: usize) -> Self {
        let layout = Self::layout(len);
        if layout.size() == 0 {
            return SocketMemory {
                ptr: NonNull::dangling(),
                len,
                from_dpdk: false,
            };
        }
        // SAFETY: the layout has a non-zero size; all-zero bytes are a valid `T` (Zeroable).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
        let ptr = NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        if layout.size() >= HUGE_PAGE {
            // Transparent huge pages where the kernel allows them (`madvise` mode): a table
            // read at random on every packet should not miss the TLB on every lookup.
            // SAFETY: the range is this allocation's own; the advice changes no contents.
            let _ =
                unsafe { libc::madvise(ptr.as_ptr().cast(), layout.size(), libc::MADV_HUGEPAGE) };
        }
        SocketMemory {
            ptr,
            len,
            from_dpdk: false,
        }
    }

    /// `len` zeroed elements from DPDK's allocator on `socket` (hugepages when EAL has
    /// them). Falls back to the heap, saying so, when DPDK has no room or EAL is not
    /// initialised.
    pub fn on_socket(len: usize, socket: i32, name: &str) -> Self {
        let layout = Self::layout(len);
        let cname = std::ffi::CString::new(name).unwrap_or_default();
        // Held from before the call into DPDK (EAL is not cleaned up meanwhile), and given
        // back unless DPDK's memory is taken.
        if !super::eal::hold() {
            tracing::warn!(name, "EAL not initialised: table on the ordinary heap");
            return Self::heap(len);
        }
        // SAFETY: EAL is initialised (checked above); a NULL return means no memory.
        let ptr = unsafe {
            dpdk_sys::rte_zmalloc_socket(
                cname.as_ptr(),
                layout.size().max(1),
                layout.align().max(64) as u32,
                socket,
            )
        };
        match NonNull::new(ptr.cast::<T>()) {
            Some(ptr) => SocketMemory {
                ptr,
                len,
                from_dpdk: true,
            },
            None => {
                super::eal::released();
                tracing::warn!(
                    name,
                    socket,
                    bytes = layout.size(),
                    "DPDK memory exhausted: table on the ordinary heap instead"
                );
                Self::heap(len)
            }
        }
    }

    /// Whether the memory came from DPDK (hugepages when EAL runs with them).
    pub fn from_dpdk(&self) -> bool {
        self.from_dpdk
    }

    /// Large arrays are aligned to a huge page so that the kernel can back them with some.
    fn layout(len: usize) -> Layout {
        let layout = Layout::array::<T>(len).expect("table size overflows the address space");
        if layout.size() >= HUGE_PAGE {
            layout
                .align_to(HUGE_PAGE)
                .expect("2 MB is a valid alignment")
        } else {
            layout
        }
    }
}

impl<T: Zeroable> AsRef<[T]> for SocketMemory<T> {
    #[inline]
    fn as_ref(&self) -> &[T] {
        // SAFETY: `ptr` holds `len` initialised elements owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> AsMut<[T]> for SocketMemory<T> {
    #[inline]
    fn as_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `as_ref`, and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> Drop for SocketMemory<T> {
    fn drop(&mut self) {
        if self.from_dpdk {
            // SAFETY: allocated by rte_zmalloc_socket and freed exactly once.
            unsafe { dpdk_sys::rte_free(self.ptr.as_ptr().cast()) };
            super::eal::released();
        } else if Self::layout(self.len).size() != 0 {
            // SAFETY: allocated by alloc_zeroed with this layout and freed exactly once.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), Self::layout(self.len)) };
        }
    }
}

/// Asks the CPU to bring `value`'s cache line in; never faults, changes nothing.
#[inline]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; any address is allowed and `value` is a valid reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (value as *const T).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Sets a queue up (`setup`, given a socket) in `socket`'s memory; where that fails (too
/// little memory: hugepages reserved on some sockets only), in any socket's, with a warning
/// naming why, as the packet buffers are ([`super::Mempool::near`]). Where it fails on any socket
/// too, the first error.
pub(super) fn on_socket_or_any(
    port: u16,
    socket: u32,
    queue: &str,
    mut setup: impl FnMut(u32) -> i32,
) -> Result<(), DpdkError> {
    const SOCKET_ID_ANY: u32 = u32::MAX;
    let what = || format!("port {port}: setting up {queue}");
    let first = check(what, setup(socket));
    match first {
        Err(e) if socket != SOCKET_ID_ANY => {
            check(what, setup(SOCKET_ID_ANY)).map_err(|_| e.clone())?;
            tracing::warn!(
                port,
                socket,
                error = %e,
                "{queue} not set up in its port's NUMA socket's memory: taken from any \
                 socket's (reserve hugepages on that socket)"
            );
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_memory_is_zeroed_and_writable() {
        let mut m = SocketMemory::<[u64; 8]>::heap(1000);
        assert!(m.as_ref().iter().all(|x| *x == [0; 8]));
        m.as_mut()[999][7] = 5;
        assert_eq!(m.as_ref()[999][7], 5);
        assert!(!m.from_dpdk());
        let empty = SocketMemory::<u64>::heap(0);
        assert!(empty.as_ref().is_empty());
    }

    /// A queue that cannot be set up on its socket is set up on any; one that fails on any
    /// socket too gives the first error, and one on no socket in particular is tried once.
    #[test]
    fn a_queue_goes_to_any_socket_where_its_own_fails() {
        let mut tried = Vec::new();
        let mut setup = |ret_on_1: i32, ret_on_any: i32| {
            tried.clear();
            let result = on_socket_or_any(0, 1, "RX queue 0", |socket| {
                tried.push(socket);
                if socket == 1 {
                    ret_on_1
                } else {
                    ret_on_any
                }
            });
            (result.map_err(|e| e.code), tried.clone())
        };
        assert_eq!(setup(-libc::ENOMEM, 0), (Ok(()), vec![1, u32::MAX]));
        assert_eq!(setup(0, 0), (Ok(()), vec![1]));
        assert_eq!(
            setup(-libc::ENOMEM, -libc::EINVAL),
            (Err(libc::ENOMEM), vec![1, u32::MAX])
        );
        let mut once = 0;
        let any = on_socket_or_any(0, u32::MAX, "TX queue 0", |_| {
            once += 1;
            -libc::ENOMEM
        });
        assert_eq!((any.map_err(|e| e.code), once), (Err(libc::ENOMEM), 1));
    }
}
