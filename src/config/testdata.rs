//! Config texts shared by the config module's tests.

/// The example of DESIGN §4, verbatim: the contract users copy from.
pub(crate) const DESIGN_EXAMPLE: &str = r#"
[dpdk]
eal_args = ["-l", "0-1", "--in-memory", "--vdev=net_af_packet0,iface=lb0"]

[dataplane]
workers = 1                  # worker lcores, one RX/TX queue pair each
maglev_table_size = 65537    # prime
flow_table_capacity = 1048576   # per worker
hash_seed = 0

[control]
metrics_listen = "127.0.0.1:9900"   # Prometheus text at /metrics

[[interface]]
name = "lan"
port = 0                     # DPDK port id
# mac = "02:00:00:00:00:01"  # optional: set the port's MAC address
address = "10.0.0.2/24"      # its own address on this segment; or a list: ["10.0.0.2/24", "fd00::2/64"]
routes = [{ to = "10.9.0.0/16", via = "10.0.0.1" }]   # optional: off-link destinations (see §6)

[[load_balancer]]
name = "ilb"
kind = "internal"            # "internal" | "public"

  [[load_balancer.frontend]]
  name = "fe1"
  address = "10.0.0.100"     # IPv4 or IPv6

  [[load_balancer.backend_pool]]
  name = "nvas"
  backends = [
    { address = "10.0.0.11" },
    { address = "10.0.0.12", weight = 2 },
    { address = "10.0.0.13", priority = 1, mac = "02:00:00:00:00:13" },  # priority: lower wins (active-passive); mac: optional, else ARP/ND
  ]
  # A backend may name its `instance` (default: its address). Maglev hashes instances, so pools
  # that hold the same instances (an NVA's NIC on each side: { address = "10.1.0.11", instance = "nva1" })
  # make the same choice for a flow: symmetry across pools, frontends and interfaces.

  [[load_balancer.probe]]
  name = "tcp22"
  protocol = "tcp"           # "tcp" (connect) | "http" (GET path, 2xx = healthy)
  port = 22
  path = "/"                 # http only
  interval_ms = 200
  unhealthy_threshold = 2
  healthy_threshold = 2

  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe1"
  backend_pool = "nvas"
  probe = "tcp22"            # optional: without a probe every backend counts as healthy
  protocol = "all"           # "all" | "tcp" | "udp"
  frontend_port = 0          # 0 with protocol "all" = HA ports
  backend_port = 0
  floating_ip = false        # false: DNAT to the backend address; true: DSR, destination kept
  idle_timeout_s = 240
"#;

/// A small valid config: one interface, one internal load balancer with an HA-ports rule.
pub(crate) const MINIMAL: &str = r#"
[[interface]]
name = "lan"
port = 0
address = "10.0.0.2/24"

[[load_balancer]]
name = "ilb"
kind = "internal"

  [[load_balancer.frontend]]
  name = "fe1"
  address = "10.0.0.100"

  [[load_balancer.backend_pool]]
  name = "nvas"
  backends = [{ address = "10.0.0.11" }, { address = "10.0.0.12" }]

  [[load_balancer.probe]]
  name = "tcp22"
  protocol = "tcp"
  port = 22

  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe1"
  backend_pool = "nvas"
  probe = "tcp22"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
"#;
