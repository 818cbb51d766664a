#!/usr/bin/env bash
# A virtual segment for haports, built from network namespaces (used by the demo and the
# integration tests). Everything it creates carries TAG in its name and lives inside
# namespaces of its own; `down` removes all of it.
#
#   lab.sh up TAG MODE     MODE: nat (clients on their own subnet, replies routed back
#                          through the appliance) or dsr (backends hold the frontend on lo);
#                          nat6 and dsr6 the same over IPv6; nat-2w: nat with two workers
#                          (two AF_PACKET queues in one fanout group), nat-5w with five (up
#                          to nat-9w); vxlan: DSR over VXLAN
#                          through a router to backends on another subnet; vxlan6: the
#                          same with an IPv6 frontend (IPv6 inside, the tunnel IPv4)
#   lab.sh down TAG
#   lab.sh stop-backend TAG bN / start-backend TAG bN   kill / restart a backend's service
#
# Namespaces: TAG-sw (the bridge), TAG-lb (the appliance: eth0 for DPDK's AF_PACKET PMD),
# TAG-c (the client), TAG-b1..3 (backends running scripts/backend.py on PORTS).
# Addresses: segment 10.0.0.0/24, appliance 10.0.0.2, backends .11-.13, frontend .100;
# nat: client 10.0.1.10/24, the appliance also 10.0.1.2; dsr: client 10.0.0.50.
# vxlan: DSR to backends on another subnet, inside VXLAN (vni 100) through a Linux router:
# TAG-r (10.0.0.1 on br0, 10.9.0.1 on br1), backends 10.9.0.11-13 on br1, each with a vxlan
# device vx0 (MAC 02:00:00:0b:00:1N) and the frontend on lo; client 10.0.0.50.
# The appliance's config is written to /tmp/haports-lab-TAG/haports.toml.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?up|down}; tag=${2:?TAG}; mode=${3:-nat}
# nat6 and dsr6: the same over IPv6 (fd00::/64, client fd00:1::10 or fd00::50, frontend fd00::100).
v6=false; base=$mode
workers=1
case $mode in
  nat6|dsr6) v6=true; base=${mode%6} ;;
  nat-[2-9]w) base=nat; workers=${mode:4:1} ;;
  vxlan) base=vxlan ;;
  vxlan6) base=vxlan; v6=true ;;
  nat|dsr) ;;
  # (The third argument of stop-backend and start-backend is a backend.)
  *) if [ "$cmd" = up ]; then
       echo "unknown mode \"$mode\": nat, dsr, nat6, dsr6, nat-2w to nat-9w, vxlan or vxlan6" >&2
       exit 2
     fi ;;
esac
dir=/tmp/haports-lab-$tag
PORTS=${PORTS:-$(seq -s' ' 8000 8023)}

V6=$v6
# shellcheck source=netns-lib.sh
. "$here/netns-lib.sh"

host() { # host NAME [BRIDGE] [DEV]: a namespace (made if new) with DEV (eth0) on BRIDGE (br0)
  local n=$1 br=${2:-br0} dev=${3:-eth0}
  ip netns list | grep -w "$tag-$n" >/dev/null || ip netns add "$tag-$n"
  ip link add "$dev" netns "$tag-$n" type veth peer name "p-$n-$dev" netns "$tag-sw"
  quiet_link sw "p-$n-$dev"
  ns sw ip link set "p-$n-$dev" master "$br" up
  ns "$n" ip link set lo up
  quiet_link "$n" "$dev"
  ns "$n" ip link set "$dev" up
}

up() {
  # A lab left under this tag (its test killed before its teardown) goes first.
  # (grep reads all: under pipefail, `grep -q` quitting early fails `ip` on a long list.)
  if ip netns list | grep "^$tag-" >/dev/null; then down; fi
  mkdir -p "$dir"
  ip netns add "$tag-sw"
  ns sw ip link add br0 type bridge
  ns sw ip link set br0 up
  # A plain switch: no netfilter on bridged frames (br_netfilter, if loaded, would drop the
  # malformed IP the tests send on purpose).
  for t in iptables ip6tables arptables; do
    ns sw sysctl -qw "net.bridge.bridge-nf-call-$t=0" 2>/dev/null || true
  done
  if [ "$base" = vxlan ]; then up_vxlan; return; fi
  for n in lb c b1 b2 b3; do host "$n"; done

  appliance_ingress_drop eth0

  if [ "$v6" = true ]; then up6; return; fi
  for i in 1 2 3; do
    ns "b$i" ip addr add "10.0.0.1$i/24" dev eth0
    if [ "$base" = dsr ]; then
      ns "b$i" ip addr add 10.0.0.100/32 dev lo
      ns "b$i" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    else
      ns "b$i" ip route add 10.0.1.0/24 via 10.0.0.2
    fi
    start_backend "b$i" nowait
  done
  if [ "$base" = dsr ]; then
    ns c ip addr add 10.0.0.50/24 dev eth0
  else
    ns c ip addr add 10.0.1.10/24 dev eth0
    ns c ip route add 10.0.0.0/24 via 10.0.1.2
  fi
  write_config
  for i in 1 2 3; do wait_backend "b$i"; done
}

# The IPv6 variant of the addresses and routes (nodad: usable at once).
up6() {
  for i in 1 2 3; do
    ns "b$i" ip addr add "fd00::1$i/64" dev eth0 nodad
    if [ "$base" = dsr ]; then
      ns "b$i" ip addr add fd00::100/128 dev lo
    else
      ns "b$i" ip route add fd00:1::/64 via fd00::2
    fi
    start_backend "b$i" nowait
  done
  if [ "$base" = dsr ]; then
    ns c ip addr add fd00::50/64 dev eth0 nodad
  else
    ns c ip addr add fd00:1::10/64 dev eth0 nodad
    ns c ip route add fd00::/64 via fd00:1::2
  fi
  write_config
  for i in 1 2 3; do wait_backend "b$i"; done
}

# The vxlan variant: a router between the appliance's segment (br0) and the backends' (br1).
up_vxlan() {
  ns sw ip link add br1 type bridge
  ns sw ip link set br1 up
  for n in lb c; do host "$n"; done
  appliance_ingress_drop eth0
  host r br0 eth0
  host r br1 eth1
  ns r ip addr add 10.0.0.1/24 dev eth0
  ns r ip addr add 10.9.0.1/24 dev eth1
  ns r sysctl -qw net.ipv4.ip_forward=1
  ns c ip addr add 10.0.0.50/24 dev eth0
  ns c ip route add 10.9.0.0/24 via 10.0.0.1
  if [ "$v6" = true ]; then
    ns r ip addr add fd00::1/64 dev eth0 nodad
    ns r ip addr add fd09::1/64 dev eth1 nodad
    ns r sysctl -qw net.ipv6.conf.all.forwarding=1
    ns c ip addr add fd00::50/64 dev eth0 nodad
  fi
  for i in 1 2 3; do
    host "b$i" br1 eth0
    ns "b$i" ip addr add "10.9.0.1$i/24" dev eth0
    ns "b$i" ip route add default via 10.9.0.1
    # The tunnel's end: VXLAN 100 on 4789, its MAC what the appliance's inner frames go to;
    # the frontend on lo, answered directly (DSR) by the default route.
    ns "b$i" ip link add vx0 address "02:00:00:0b:00:1$i" type vxlan id 100 dstport 4789 \
      local "10.9.0.1$i" dev eth0 nolearning
    ns "b$i" ip link set vx0 up
    ns "b$i" ip addr add 10.0.0.100/32 dev lo
    ns "b$i" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.vx0.rp_filter=0 \
      net.ipv4.conf.default.rp_filter=0
    if [ "$v6" = true ]; then
      # vxlan6: IPv6 inside the same tunnel, the frontend fd00::100 on lo, the answers
      # routed back through the router's fd09::1.
      ns "b$i" ip addr add "fd09::1$i/64" dev eth0 nodad
      ns "b$i" ip route add default via fd09::1
      ns "b$i" ip addr add fd00::100/128 dev lo
    fi
    start_backend "b$i" nowait
  done
  write_config
  for i in 1 2 3; do wait_backend "b$i"; done
}

# Backend $1's service (scripts/backend.py on every port), through netns-lib.sh.
start_backend() { start_service "$1" "$1" "$PORTS" "${2:-}"; }
wait_backend() { wait_service "$1"; }
stop_backend() { stop_service "$1"; }

# The appliance's config for this lab ($dir/haports.toml): one interface on the AF_PACKET
# PMD over the appliance's eth0, one internal load balancer with an HA-ports rule,
# non-floating in nat mode and floating in dsr mode.
# The pool's backends as TOML (behind VXLAN: 10.9.0.1N, with their vxlan devices' MACs).
backend_list() {
  if [ "$base" = vxlan ]; then
    echo '{ address = "10.9.0.11", mac = "02:00:00:0b:00:11" }, { address = "10.9.0.12", mac = "02:00:00:0b:00:12" }, { address = "10.9.0.13", mac = "02:00:00:0b:00:13" }'
  else
    echo "{ address = \"${backends[0]}\" }, { address = \"${backends[1]}\" }, { address = \"${backends[2]}\" }"
  fi
}

write_config() {
  local memory; memory=$(eal_memory)
  local addresses='["10.0.0.2/24", "10.0.1.2/24"]' floating=false
  local frontend=10.0.0.100 backends=("10.0.0.11" "10.0.0.12" "10.0.0.13")
  local eal vdev='"--vdev=net_af_packet0,iface=eth0"'
  eal=$(eal_lcores)
  if [ "$workers" -gt 1 ]; then
    # N workers need N + 1 lcores (the main one runs the control thread); on a two-CPU
    # machine they share: the control thread floats, workers take the CPUs in turn (two
    # workers: one each). qpairs=N: N AF_PACKET sockets in one fanout group, so a NAT flow's
    # replies (another five-tuple) may reach another worker.
    local lcores="0@(0-1)" w
    for (( w = 1; w <= workers; w++ )); do lcores="$lcores,$w@$(( (w + 1) % 2 ))"; done
    eal="\"--lcores=$lcores\"" vdev="\"--vdev=net_af_packet0,iface=eth0,qpairs=$workers\""
  fi
  [ "$base" = dsr ] && addresses='"10.0.0.2/24"' && floating=true
  local routes="" encap=""
  if [ "$base" = vxlan ]; then
    addresses='"10.0.0.2/24"' floating=true
    routes='routes = [{ to = "10.9.0.0/24", via = "10.0.0.1" }]'
    encap='encap = "vxlan"
  vni = 100'
  fi
  if [ "$v6" = true ]; then
    addresses='["fd00::2/64", "fd00:1::2/64"]'; frontend=fd00::100
    backends=("fd00::11" "fd00::12" "fd00::13")
    [ "$base" = dsr ] && addresses='"fd00::2/64"'
    # Behind VXLAN the tunnel itself is IPv4: its source is the IPv4 address.
    [ "$base" = vxlan ] && addresses='["10.0.0.2/24", "fd00::2/64"]'
  fi
  cat >"$dir/haports.toml" <<TOML
# Generated by scripts/lab.sh for lab $tag ($mode).
[dpdk]
# --no-pci: never touch this machine's own NICs; the lab's veth comes in by AF_PACKET.
eal_args = [$eal, "--no-pci", $memory, "--file-prefix", "$tag", $vdev]

[dataplane]
workers = $workers
flow_table_capacity = 65536

[control]
metrics_listen = "127.0.0.1:9900"
socket = "$dir/haports.sock"          # haports reload / haports status

[[interface]]
name = "lan"
port = 0
address = $addresses
$routes

[[load_balancer]]
name = "ilb"
kind = "internal"

  [[load_balancer.frontend]]
  name = "fe1"
  address = "$frontend"

  [[load_balancer.backend_pool]]
  name = "nvas"
  $encap
  backends = [$(backend_list)]

  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe1"
  backend_pool = "nvas"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = $floating
TOML
}

down() {
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    # Only a process still in one of the lab's namespaces: a pid file outlives its process,
    # and its number may be another's on the host by now.
    case $(ip netns identify "$(cat "$f")" 2>/dev/null) in
      "$tag"-*) kill "$(cat "$f")" 2>/dev/null || true ;;
    esac
  done
  for n in c b1 b2 b3 r lb sw; do
    ip netns pids "$tag-$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$tag-$n" 2>/dev/null || true
  done
  rm -rf "$dir"
  # EAL leaves its runtime directory (/var/run/dpdk/PREFIX, the telemetry socket's) behind
  # at every run; the lab's config names its own prefix, the tag. Never a path outside that
  # folder, whatever TAG is.
  [[ $tag == */* ]] || rm -rf "/var/run/dpdk/$tag"
}

case $cmd in
  up) up ;;
  down) down ;;
  stop-backend) stop_backend "${3:?bN}" ;;
  start-backend) start_backend "${3:?bN}" ;;
  *) echo "usage: $0 up|down|stop-backend|start-backend TAG [nat|dsr|bN]" >&2; exit 2 ;;
esac
