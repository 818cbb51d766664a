#!/usr/bin/env bash
# Scale-out lab: three haports instances behind a Linux router that spreads flows over them by
# ECMP, each instance announcing the frontend by BGP through its own BIRD (used by
# tests/scale_out.rs; `demo` shows it end to end).
#
#   scale-out-lab.sh up TAG          build the namespaces, start the BIRDs and the backends
#   scale-out-lab.sh start TAG N     start haports instance N (1-3) in the background
#   scale-out-lab.sh down TAG        remove everything
#   scale-out-lab.sh demo            up, start all three, traffic, kill one, traffic, down;
#                                    exits 1 when a step does not happen in time or a
#                                    connection broke
#
#   clients `c` 10.8.0.10-59 ── eth1 10.8.0.1 [router `r`] eth0 10.1.0.1 ── bridge (in `sw`)
#                                     │ BIRD: BGP + BFD to each instance      ├── lb1 10.1.0.2 ┐ haports
#                                     ├─ m1 172.16.1.1 ── 172.16.1.2 mgmt lb1  ├── lb2 10.1.0.3 ├ (DPDK on eth0,
#                                     ├─ m2 172.16.2.1 ── 172.16.2.2 mgmt lb2  ├── lb3 10.1.0.4 ┘  twin hp-lan)
#                                     └─ m3 172.16.3.1 ── 172.16.3.2 mgmt lb3  └── b1..b3 10.1.0.11-13 (DSR)
#
# The frontends 10.0.0.100 and .101 are on no segment: the router reaches each through
# whichever instances announce it (a 3-way ECMP route, hashed on the five-tuple: fib_multipath_hash_policy = 1).
# Each instance's BIRD peers with the router over a management link (the BGP session must not
# ride on the DPDK port: a killed instance could not send its withdrawal), exports haports'
# static routes (through hp-lan, which dies with the process) with its data-plane address as
# next hop, and runs BFD (100 ms x 5) for the case of a dead machine. The backends hold the
# frontend on lo and answer clients directly through the router (DSR). Every instance has the
# same load balancer config and hash_seed; only the interface address and the paths differ.
# Each instance's directory has haports.toml (frontends fe1 and fe2) and haports-fe1.toml
# (fe1 only: a reload that drops fe2).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/rust-path.sh"
cmd=${1:?up|start|down|demo}; tag=${2:-}
# Every name the lab makes starts with TAG: without one, `up` would make namespaces called
# `-sw`, `-r`… and `down` would go after those. Only `demo` picks its own.
if [ "$cmd" != demo ] && [ -z "$tag" ]; then
  echo "usage: $0 up|down TAG | start TAG N | demo (TAG: a name for the lab)" >&2
  exit 2
fi
dir=/tmp/haports-scale-lab-$tag
FRONTEND=10.0.0.100
FRONTEND2=10.0.0.101
PORT=8000
PROBE_PORT=9000
bin=${HAPORTS_BIN:-$here/../target/debug/haports}

# shellcheck source=netns-lib.sh
. "$here/netns-lib.sh"

namespace() {
  ip netns add "$tag-$1"
  ns "$1" ip link set lo up
}

# attach NS DEV [ADDRESS]: NS's DEV on the lan bridge.
attach() {
  local n=$1 dev=$2 addr=${3:-}
  ip link add "$dev" netns "$tag-$n" type veth peer name "p-$n" netns "$tag-sw"
  ns sw ip link set "p-$n" master br0 up
  quiet_link sw "p-$n"
  ns "$n" ip link set "$dev" up
  quiet_link "$n" "$dev"
  [ -z "$addr" ] || ns "$n" ip addr add "$addr" dev "$dev"
}

router_bird() {
  {
    cat <<BIRD
# The upstream router: learns the frontend from every instance by BGP and installs one
# multipath route (ECMP) into the kernel. BFD drops a silent instance in 100 ms x 5.
router id 172.16.0.1;
log "$dir/r/bird.log" all;
protocol device { scan time 10; }
# The instances announce their data-plane address (10.1.0.x) as next hop: resolved
# recursively through the connected lan.
protocol direct { ipv4; interface "eth0"; }
protocol kernel {
  ipv4 { export where source = RTS_BGP; };
  merge paths on;      # one route with a next hop per instance
}
protocol bfd {
  interface "m*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 5; };
}
template bgp lb_instance {
  local as 65000;
  connect delay time 1;  # a lab: peers come up within a second, not BIRD's default 5 s
  connect retry time 1;
  bfd on;
  ipv4 { import all; export none; gateway recursive; igp table master4; };
}
BIRD
    for i in 1 2 3; do
      echo "protocol bgp lb$i from lb_instance { neighbor 172.16.$i.2 as 65001; source address 172.16.$i.1; }"
    done
  } >"$dir/r/bird.conf"
}

instance_bird() {
  local i=$1
  cat >"$dir/lb$i/bird.conf" <<BIRD
# Instance $i: announces what haports writes into routes.conf (static protocols haports4 and
# haports6, routes through the twin hp-lan) to the router, with its data-plane address as the
# next hop.
router id 172.16.$i.2;
log "$dir/lb$i/bird.log" all;
protocol device { scan time 10; }
include "$dir/lb$i/routes.conf";
protocol bfd {
  interface "mgmt" { min rx interval 100 ms; min tx interval 100 ms; multiplier 5; };
}
protocol bgp upstream {
  local 172.16.$i.2 as 65001;
  neighbor 172.16.$i.1 as 65000;
  connect delay time 1;
  connect retry time 1;
  bfd on;
  ipv4 {
    import none;
    export where proto = "haports4";
    next hop address 10.1.0.$((i + 1));
  };
}
BIRD
  # haports rewrites it at start; BIRD needs it to exist before.
  : >"$dir/lb$i/routes.conf"
}

haports_config() {
  local i=$1 memory; memory=$(eal_memory)
  {
    cat <<TOML
# Instance $i of three. Everything but [[interface]].address and the paths is the same in
# all three: the same hash_seed and pools make every instance decide a flow alike.
[dpdk]
eal_args = [$(eal_lcores), "--no-pci", $memory, "--file-prefix", "$tag-lb$i", "--vdev=net_af_packet0,iface=eth0"]

[dataplane]
flow_table_capacity = 65536
hash_seed = 7

[control]
metrics_listen = "127.0.0.1:9900"
socket = "$dir/lb$i/haports.sock"

[[interface]]
name = "lan"
port = 0
address = "10.1.0.$((i + 1))/24"

# Each frontend with a healthy backend goes into routes.conf, which this instance's BIRD
# includes and exports; SIGTERM withdraws them all and keeps forwarding for drain_s.
[announce]
bird_socket = "$dir/lb$i/bird.ctl"
routes_file = "$dir/lb$i/routes.conf"
drain_s = 2

[[load_balancer]]
name = "ilb"
kind = "internal"

  [[load_balancer.frontend]]
  name = "fe1"
  address = "$FRONTEND"

  [[load_balancer.backend_pool]]
  name = "servers"
  backends = [{ address = "10.1.0.11" }, { address = "10.1.0.12" }, { address = "10.1.0.13" }]

  [[load_balancer.probe]]
  name = "tcp$PROBE_PORT"
  protocol = "tcp"
  port = $PROBE_PORT
  interval_ms = 200
  unhealthy_threshold = 2
  healthy_threshold = 2

  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe1"
  backend_pool = "servers"
  probe = "tcp$PROBE_PORT"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = true
TOML
  } >"$dir/lb$i/haports-fe1.toml"
  # The same with a second frontend (several HA-ports frontends: all floating, seed rule 5).
  {
    cat "$dir/lb$i/haports-fe1.toml"
    cat <<TOML

  [[load_balancer.frontend]]
  name = "fe2"
  address = "$FRONTEND2"

  [[load_balancer.rule]]
  name = "ha2"
  frontend = "fe2"
  backend_pool = "servers"
  probe = "tcp$PROBE_PORT"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = true
TOML
  } >"$dir/lb$i/haports.toml"
}

up() {
  # A lab left under this tag (its test killed before its teardown) goes first.
  # (grep reads all: under pipefail, `grep -q` quitting early fails `ip` on a long list.)
  if ip netns list | grep "^$tag-" >/dev/null; then down; fi
  mkdir -p "$dir/r"
  for n in sw r c lb1 lb2 lb3 b1 b2 b3; do namespace "$n"; done
  for t in iptables ip6tables arptables; do
    ns sw sysctl -qw "net.bridge.bridge-nf-call-$t=0" 2>/dev/null || true
  done
  ns sw ip link add br0 type bridge
  ns sw ip link set br0 up

  # The router: clients on eth1, the lan on eth0, a management link to each instance.
  attach r eth0 10.1.0.1/24
  ip link add eth1 netns "$tag-r" type veth peer name eth0 netns "$tag-c"
  ns r ip link set eth1 up; quiet_link r eth1; ns r ip addr add 10.8.0.1/24 dev eth1
  ns c ip link set eth0 up; quiet_link c eth0
  local a
  for a in $(seq 10 59); do ns c ip addr add "10.8.0.$a/24" dev eth0; done
  ns c ip route add default via 10.8.0.1
  ns r sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.send_redirects=0

  local i
  for i in 1 2 3; do
    mkdir -p "$dir/lb$i"
    ip link add "m$i" netns "$tag-r" type veth peer name mgmt netns "$tag-lb$i"
    ns r ip link set "m$i" up; ns r ip addr add "172.16.$i.1/30" dev "m$i"
    ns "lb$i" ip link set mgmt up; ns "lb$i" ip addr add "172.16.$i.2/30" dev mgmt
    attach "lb$i" eth0
    ns "lb$i" nft -f - <<NFT
table netdev haports_lab {
  chain in_eth0 { type filter hook ingress device eth0 priority 0; policy drop; }
}
NFT
    instance_bird "$i"
    haports_config "$i"
    ns "lb$i" bird -c "$dir/lb$i/bird.conf" -s "$dir/lb$i/bird.ctl" -P "$dir/lb$i/bird.pid"
  done
  router_bird
  ns r bird -c "$dir/r/bird.conf" -s "$dir/r/bird.ctl" -P "$dir/r/bird.pid"

  # Backends: the frontend on lo (DSR), answering clients through the router.
  for i in 1 2 3; do
    attach "b$i" eth0 "10.1.0.1$i/24"
    ns "b$i" ip addr add "$FRONTEND/32" dev lo
    ns "b$i" ip addr add "$FRONTEND2/32" dev lo
    ns "b$i" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    ns "b$i" ip route add default via 10.1.0.1
    start_service "b$i" "b$i" "$PORT $PROBE_PORT" nowait
  done
  for i in 1 2 3; do wait_service "b$i"; done
}

# start N: haports instance N in the background; its pid in $dir/lbN/haports.pid.
start() {
  local i=${1:?N}
  ip netns exec "$tag-lb$i" "$bin" run --config "$dir/lb$i/haports.toml" \
    >"$dir/lb$i/haports.log" 2>&1 &
  echo $! >"$dir/lb$i/haports.pid"
}

# The router's next hops for the frontend, one a line.
paths() {
  ns r ip -j route show "$FRONTEND" | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    for h in r.get("nexthops", [r]):
        print(h["gateway"])'
}

down() {
  local f
  for f in "$dir"/*/*.pid "$dir"/*.pid; do
    [ -e "$f" ] || continue
    # Only a process still in one of the lab's namespaces: a pid file outlives its process,
    # and its number may be another's on the host by now.
    case $(ip netns identify "$(cat "$f")" 2>/dev/null) in
      "$tag"-*) kill -9 "$(cat "$f")" 2>/dev/null || true ;;
    esac
  done
  for n in c r lb1 lb2 lb3 b1 b2 b3 sw; do
    ip netns pids "$tag-$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$tag-$n" 2>/dev/null || true
  done
  rm -rf "$dir"
  # EAL leaves its runtime directory (/var/run/dpdk/PREFIX) behind at every run; the
  # instances' configs name theirs TAG-lbN. Never a path outside that folder, whatever TAG is.
  [[ $tag == */* ]] || rm -rf "/var/run/dpdk/$tag-lb1" "/var/run/dpdk/$tag-lb2" "/var/run/dpdk/$tag-lb3"
}

# demo_fail WHAT: the demo stops, saying why; demo_end then shows the instances' logs.
demo_fail() {
  echo "demo failed: $1" >&2
  exit 1
}

# demo_alive: every instance still running (else there is nothing to wait for).
demo_alive() {
  local i
  for i in 1 2 3; do
    kill -0 "$(cat "$dir/lb$i/haports.pid")" 2>/dev/null || demo_fail "haports instance $i exited"
  done
}

# demo_end: on the way out of the demo, whatever the way. `down` removes the instances' logs,
# so a failed demo shows their ends first; the exit status stays the demo's.
demo_end() {
  local rc=$? i
  if [ "$rc" != 0 ]; then
    for i in 1 2 3; do
      [ -s "$dir/lb$i/haports.log" ] || continue
      echo "== the end of instance $i's log ($dir/lb$i/haports.log):" >&2
      tail -n 10 "$dir/lb$i/haports.log" >&2
    done
  fi
  down
  exit "$rc"
}

demo() {
  tag=scale$$
  dir=/tmp/haports-scale-lab-$tag
  "$here/install-deps.sh" --no-nextest
  (cd "$here/.." && cargo build --bin haports)
  trap demo_end EXIT
  echo "== building the lab: router with BIRD, three haports instances, three backends"
  up
  for i in 1 2 3; do start "$i"; done
  disown -a   # their ends, at `down`, are no news
  echo "== waiting for the router's three-way ECMP route to $FRONTEND"
  local ok=false
  for _ in $(seq 300); do
    demo_alive
    [ "$(paths | wc -l)" = 3 ] && { ok=true; break; }
    sleep 0.1
  done
  ns r ip route show "$FRONTEND"
  $ok || demo_fail "the router has no three-way route to $FRONTEND after 30 s"
  echo "== 300 long-lived TCP connections from 50 client addresses"
  exec 3> >(ns c python3 "$here/long-flows.py" "$FRONTEND" "$PORT" --sources 10.8.0.10-59 \
    --per-source 6 >"$dir/flows.json")
  ok=false
  for _ in $(seq 300); do
    demo_alive
    grep -q '^ready ' "$dir/flows.json" 2>/dev/null && { ok=true; break; }
    grep -q '^not ready' "$dir/flows.json" 2>/dev/null && break
    sleep 0.1
  done
  $ok || demo_fail "the connections were not all open and answered after 30 s"
  sleep 2
  for i in 1 2 3; do
    printf 'instance %s sent %s packets to the backends\n' "$i" "$(ns "lb$i" curl -s http://127.0.0.1:9900/metrics \
      | awk '/^haports_backend_packets_total/ {n += $2} END {print n}')"
  done
  echo "== kill -9 of instance 1"
  kill -9 "$(cat "$dir/lb1/haports.pid")"
  ok=false
  for _ in $(seq 100); do [ "$(paths | wc -l)" = 2 ] && { ok=true; break; }; sleep 0.01; done
  ns r ip route show "$FRONTEND"
  $ok || demo_fail "the router still does not have two paths to $FRONTEND"
  sleep 3
  echo stop >&3
  exec 3>&-
  ok=false
  for _ in $(seq 200); do [ "$(wc -l <"$dir/flows.json")" -ge 2 ] && { ok=true; break; }; sleep 0.1; done
  $ok || demo_fail "long-flows.py did not report its connections after 20 s"
  # The point of the demo: not one of the 300 connections broken. Exits 1 otherwise.
  python3 - "$dir/flows.json" 300 <<'PY' || demo_fail "not every connection held"
import json, sys, collections
lines = open(sys.argv[1]).read().splitlines()
want = int(sys.argv[2])
conns = json.loads(lines[-1])["connections"]
broken = [c for c in conns if c["error"]]
print(f"{len(conns)} connections, {len(broken)} broken, "
      f"{sum(c['bytes'] for c in conns)} bytes echoed and checked; per backend:",
      dict(collections.Counter(c["backend"] for c in conns)))
for c in broken[:5]:
    print(f"  broken: {c['src']}:{c['sport']} to {c['backend']}: {c['error']}")
sys.exit(1 if broken or len(conns) != want else 0)
PY
}

case $cmd in
  up) up ;;
  start) start "${3:?N}" ;;
  down) down ;;
  demo) demo ;;
  *) echo "usage: $0 up|down TAG | start TAG N | demo" >&2; exit 2 ;;
esac
