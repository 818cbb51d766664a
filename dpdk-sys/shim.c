/* The one piece of DPDK that is neither a function nor a plain variable: the per-lcore
 * (thread-local) rte_errno. Everything else comes from bindgen's static-fn wrappers. */
#include "wrapper.h"

int haports_rte_errno(void) { return rte_errno; }
