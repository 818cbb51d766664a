/* The one piece of DPDK that is neither a function nor a plain variable: the per-lcore
 * (thread-local) rte_errno. Everything else comes from bindgen's static-fn wrappers. */
#include "wrapper.h"

int haports_rte_errno(void) { return rte_errno; }

/* RSS hash-function flags are function-like macros (RTE_BIT64) that bindgen cannot
 * evaluate; export the set haports asks for: IPv4/IPv6 addresses and TCP/UDP ports. */
uint64_t haports_rss_hf_l3_l4(void) { return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP; }

/* The IPv4 header checksum RX offload flag (RTE_BIT64 as well). */
uint64_t haports_rx_offload_ipv4_cksum(void) { return RTE_ETH_RX_OFFLOAD_IPV4_CKSUM; }
