use std::ffi::CStr;

/// A failed DPDK call: what was attempted and DPDK's own explanation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {reason} (errno {code})")]
pub struct DpdkError {
    pub what: String,
    pub code: i32,
    pub reason: String,
}

impl DpdkError {
    /// From a negative return value (`-errno`) or a positive `rte_errno`.
    pub fn from_code(what: impl Into<String>, code: i32) -> DpdkError {
        let code = code.abs();
        // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated
        // string for any errno value, valid at least until the next call on this thread.
        let reason = unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(code)) }
            .to_string_lossy()
            .into_owned();
        DpdkError {
            what: what.into(),
            code,
            reason,
        }
    }

    /// From the calling thread's `rte_errno`, after a call that returned NULL or -1.
    pub fn last(what: impl Into<String>) -> DpdkError {
        // SAFETY: reads a thread-local integer; no preconditions.
        let code = unsafe { dpdk_sys::haports_rte_errno() };
        DpdkError::from_code(what, code)
    }
}

/// Turns DPDK's "negative errno on failure" convention into a `Result`.
pub(crate) fn check(what: impl FnOnce() -> String, ret: i32) -> Result<i32, DpdkError> {
    if ret < 0 {
        Err(DpdkError::from_code(what(), ret))
    } else {
        Ok(ret)
    }
}
