use std::ffi::{c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::error::{check, DpdkError};

/// An lcore (a thread pinned by EAL) that can run a worker: only [`Eal::worker_lcores`]
/// makes one, so that [`Eal::launch`] is given an enabled worker lcore, never a number
/// beyond EAL's table (which `rte_eal_remote_launch` does not check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcoreId(u32);

impl LcoreId {
    /// EAL's number for it.
    pub fn id(self) -> u32 {
        self.0
    }
}

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Handles alive on DPDK's memory (pools, including those left allocated for buffers still
/// out; started ports; DPDK-allocated tables): while any is, EAL's memory must stay mapped.
/// [`CLOSED`] once `Eal::drop` found none and cleans EAL up: no handle is made after.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// [`LIVE`]'s bit once EAL is cleaned up (set only where no handle was alive).
const CLOSED: usize = 1 << (usize::BITS - 1);

/// EAL initialised and not cleaned up: DPDK's allocators may be called.
static USABLE: AtomicBool = AtomicBool::new(false);

/// A handle on DPDK's memory is about to be made (from any thread): true where EAL is
/// usable, and then it stays so until [`released`]; false, nothing held, where it is not
/// (not initialised, or cleaned up). `Eal::drop` closes [`LIVE`] only from 0, in one step:
/// a handle counted first keeps EAL up, one counted after sees it closed.
pub(super) fn hold() -> bool {
    if !USABLE.load(Ordering::SeqCst) {
        return false;
    }
    if LIVE.fetch_add(1, Ordering::SeqCst) & CLOSED == 0 {
        return true;
    }
    LIVE.fetch_sub(1, Ordering::SeqCst);
    false
}

/// A handle on DPDK's memory was made by the main thread, which holds the [`Eal`]: it
/// cannot be cleaned up meanwhile. [`released`] when it is gone.
pub(super) fn held() {
    LIVE.fetch_add(1, Ordering::SeqCst);
}

/// A handle [`held`] is gone.
pub(super) fn released() {
    LIVE.fetch_sub(1, Ordering::SeqCst);
}

/// The initialised Environment Abstraction Layer. One per process; `rte_eal_cleanup` on drop.
#[derive(Debug)]
pub struct Eal {
    _not_send: std::marker::PhantomData<*const ()>,
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Box<Job>` leaked by `Eal::launch` for exactly this call.
    let job: Box<Job> = unsafe { Box::from_raw(arg.cast::<Job>()) };
    // A panic must not unwind into EAL's C frames (undefined before Rust 1.81, which the
    // minimum version allows; release builds abort on panic anyway): the process stops.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or_else(|_| {
        std::process::abort();
    })
}

impl Eal {
    /// Initialises EAL with `args` (without the program name). Fails on a second call.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::from_code(
                "EAL already initialised in this process",
                114,
            ));
        }
        let mut owned: Vec<CString> = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("haports").expect("no NUL"));
        for a in args {
            owned.push(CString::new(a.as_str()).map_err(|_| DpdkError {
                what: format!("EAL argument {a:?}"),
                code: 22,
                reason: "contains a NUL byte".into(),
            })?);
        }
        // EAL may permute argv, so it gets its own array of pointers, and may write into the
        // strings (it splits `--socket-mem 1024,1024` at its commas in place): each is a
        // buffer of its own, mutable, which outlives the call (EAL copies what it keeps).
        let mut buffers: Vec<Vec<u8>> = owned
            .into_iter()
            .map(CString::into_bytes_with_nul)
            .collect();
        let mut argv: Vec<*mut std::ffi::c_char> =
            buffers.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
        // SAFETY: argv holds argc valid NUL-terminated strings, each in a buffer of its own
        // that may be written and lives across the call.
        let ret = unsafe { dpdk_sys::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if ret < 0 {
            INITIALISED.store(false, Ordering::SeqCst);
            return Err(DpdkError::last(format!("rte_eal_init({})", args.join(" "))));
        }
        USABLE.store(true, Ordering::SeqCst);
        Ok(Eal {
            _not_send: std::marker::PhantomData,
        })
    }

    /// Worker lcores (every enabled lcore but the main one), in order.
    pub fn worker_lcores(&self) -> Vec<LcoreId> {
        let mut out = Vec::new();
        // SAFETY: EAL is initialised; rte_get_next_lcore only reads the lcore config.
        let mut id = unsafe { dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while id < dpdk_sys::RTE_MAX_LCORE {
            out.push(LcoreId(id));
            // SAFETY: as above.
            id = unsafe { dpdk_sys::rte_get_next_lcore(id, 1, 0) };
        }
        out
    }

    /// Runs `job` on worker lcore `lcore`; `wait_all` collects it.
    pub fn launch(
        &self,
        lcore: LcoreId,
        job: impl FnOnce() -> i32 + Send + 'static,
    ) -> Result<(), DpdkError> {
        let boxed: Box<Job> = Box::new(Box::new(job));
        let arg = Box::into_raw(boxed).cast::<c_void>();
        // SAFETY: the trampoline takes back ownership of `arg` exactly once when it runs.
        let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore.0) };
        // -EBUSY: the lcore was not waiting, and nothing was handed to it. After any other
        // failure the job may have been handed over (the wake-up written, its acknowledgement
        // not read), and the trampoline may yet run and take it: it is left to it (leaked if
        // it never runs).
        if ret == -libc::EBUSY {
            // SAFETY: nothing was handed over, so the trampoline never runs and `arg` is ours.
            drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
        }
        check(|| format!("launching a worker on lcore {}", lcore.0), ret).map(|_| ())
    }

    /// Waits for every launched lcore job to return.
    pub fn wait_all(&self) {
        // SAFETY: called from the main lcore after EAL init.
        unsafe { dpdk_sys::rte_eal_mp_wait_lcore() };
    }

    /// The NUMA socket of `lcore` (0 on a single-socket machine), or SOCKET_ID_ANY (-1)
    /// where its CPUs span sockets: memory for it is then taken from any socket.
    pub fn socket_of(&self, lcore: LcoreId) -> i32 {
        // SAFETY: reads EAL's lcore config after init.
        let socket = unsafe { dpdk_sys::rte_lcore_to_socket_id(lcore.0) };
        // SOCKET_ID_ANY comes as u32::MAX: back to -1, which the allocator takes as "any".
        socket as i32
    }

    /// TSC ticks per second.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: no preconditions after EAL init.
        unsafe { dpdk_sys::rte_get_tsc_hz() }
    }

    /// Hot-plugs a virtual device (`net_tap0,iface=…`) and returns its port id.
    pub fn probe_vdev(&self, devargs: &str, name: &str) -> Result<u16, DpdkError> {
        let c = c_string(devargs)?;
        // SAFETY: a valid C string; EAL is initialised.
        check(|| format!("attaching {devargs}"), unsafe {
            dpdk_sys::rte_dev_probe(c.as_ptr())
        })?;
        port_by_name(name)
    }
}

/// `text` for a C call; an error (not a panic) if it holds a NUL byte.
fn c_string(text: &str) -> Result<CString, DpdkError> {
    CString::new(text).map_err(|_| DpdkError {
        what: format!("{text:?}"),
        code: 22,
        reason: "contains a NUL byte".into(),
    })
}

/// Reads the TSC; cheap, no syscall.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: reads the CPU's timestamp counter.
    unsafe { dpdk_sys::rte_rdtsc() }
}

pub(crate) fn port_by_name(name: &str) -> Result<u16, DpdkError> {
    let c = c_string(name)?;
    let mut id = 0u16;
    // SAFETY: valid C string and out-pointer.
    check(|| format!("finding port {name}"), unsafe {
        dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id)
    })?;
    Ok(id)
}

impl Drop for Eal {
    /// Waits for the lcores' jobs, then cleans EAL up (its memory unmapped) unless a handle
    /// on that memory is still alive (a pool, a port, a table dropped after the `Eal`, or a
    /// pool left allocated for buffers still out): then EAL is left as it is, and said so.
    /// While a panic unwinds, neither.
    fn drop(&mut self) {
        // Unwinding from a panic (debug builds; release ones abort): the workers were never
        // told to stop, so waiting for them would hang, and they may still use the memory.
        if std::thread::panicking() {
            return;
        }
        // SAFETY: called from the main lcore after EAL init.
        unsafe { dpdk_sys::rte_eal_mp_wait_lcore() };
        // Closed only where nothing is held, in one step (see `hold`). (EAL cannot be
        // initialised again: `INITIALISED` stays.)
        if let Err(live) = LIVE.compare_exchange(0, CLOSED, Ordering::SeqCst, Ordering::SeqCst) {
            tracing::warn!(live, "DPDK memory still in use: EAL not cleaned up");
            return;
        }
        USABLE.store(false, Ordering::SeqCst);
        // SAFETY: no handle on DPDK's memory is alive and no lcore runs a job.
        unsafe { dpdk_sys::rte_eal_cleanup() };
    }
}
