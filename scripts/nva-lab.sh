#!/usr/bin/env bash
# Hub-and-spoke labs for haports with network virtual appliances (NVAs) behind HA ports, in
# network namespaces (used by tests/nva.rs). Everything carries TAG in its name and lives in
# namespaces of its own; `down` removes all of it.
#
#   nva-lab.sh up TAG MODE      MODE: one-nic | one-nic-2w | two-nic | active-passive | vxlan
#   nva-lab.sh down TAG
#   nva-lab.sh stop-service TAG nN / start-service TAG nN   kill / restart NVA nN's probe target
#
# Spoke A (client `a`, 10.1.0.10) sits behind router `ra`, spoke B (server `b`, 10.2.0.10)
# behind router `rb`. Each router's route to the other spoke points at a frontend address of
# the appliance `lb`, which balances those transit flows over three NVAs `n1`..`n3`: stateful
# nftables firewalls (new connections only from spoke A to spoke B) that forward to the
# destination spoke. `sw` holds the bridges (the segments).
#
#   one-nic, one-nic-2w, active-passive: one hub segment 10.0.0.0/24 (bridge br0): appliance
#     eth0 10.0.0.2, frontend fe1 10.0.0.100, ra 10.0.0.1, rb 10.0.0.3, NVAs 10.0.0.11-13 (eth0,
#     forwarding out the interface they received on). one-nic-2w: two workers (two AF_PACKET
#     queue pairs); active-passive: n1 priority 0, n2 and n3 priority 1.
#   vxlan: the hub as in one-nic, but the NVAs on a segment of their own, 10.9.0.0/24 (bridge
#     br1: n1..n3 10.9.0.11-13 on eth0), behind router `rn` (10.0.0.4 on the hub, 10.9.0.1);
#     the appliance reaches them inside VXLAN (vni 100), each NVA decapsulating with a vxlan
#     device vx0 (MAC 02:00:00:0b:00:1N) and forwarding the inner packets on through rn.
#   two-nic: an untrusted segment 10.0.10.0/24 (bru: appliance eth0 10.0.10.2, frontend fe-u
#     .100, ra .1, NVAs' eth0 .11-13) and a trusted one 10.0.20.0/24 (brt: appliance eth1
#     10.0.20.2, frontend fe-t .100, rb .1, NVAs' eth1 .11-13); two pools of the same instances.
#
# Services: scripts/backend.py on PORTS in `b` (the servers) and in `a` (to show that B->A is
# refused by the firewalls, not for want of a listener); in each NVA on port 9000 (the health
# probe's target). The appliance's config goes to /tmp/haports-nva-lab-TAG/haports.toml.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?up|down|stop-service|start-service}; tag=${2:?TAG}; mode=${3:-one-nic}
dir=/tmp/haports-nva-lab-$tag
PORTS=${PORTS:-$(seq -s' ' 8000 8023)}
PROBE_PORT=9000
NVAS="n1 n2 n3"
SPOKE_A=10.1.0.0/24
SPOKE_B=10.2.0.0/24

# shellcheck source=netns-lib.sh
. "$here/netns-lib.sh"

namespace() {
  ip netns add "$tag-$1"
  ns "$1" ip link set lo up
}

# attach NS DEV BRIDGE [ADDRESS]: NS's DEV on bridge BRIDGE of `sw`.
attach() {
  local n=$1 dev=$2 br=$3 addr=${4:-}
  ip link add "$dev" netns "$tag-$n" type veth peer name "p-$n-$dev" netns "$tag-sw"
  ns sw ip link set "p-$n-$dev" master "$br" up
  quiet_link sw "p-$n-$dev"
  ns "$n" ip link set "$dev" up
  quiet_link "$n" "$dev"
  [ -z "$addr" ] || ns "$n" ip addr add "$addr" dev "$dev"
}

# wire NS1 ADDRESS1 NS2 ADDRESS2: a point-to-point link, eth1 in NS1 to eth0 in NS2.
wire() {
  ip link add eth1 netns "$tag-$1" type veth peer name eth0 netns "$tag-$3"
  ns "$1" ip link set eth1 up; quiet_link "$1" eth1; ns "$1" ip addr add "$2" dev eth1
  ns "$3" ip link set eth0 up; quiet_link "$3" eth0; ns "$3" ip addr add "$4" dev eth0
}

# Forwarding on, and no ICMP redirects either way: an NVA on one NIC forwards out the
# interface it received on, which Linux would otherwise answer with a redirect. No reverse
# path filter (the hub is crossed asymmetrically at layer 3 by design).
router() {
  local n=$1 dev
  ns "$n" sysctl -qw net.ipv4.ip_forward=1
  for dev in all default $(ns "$n" ls /sys/class/net); do
    ns "$n" sysctl -qw "net.ipv4.conf.$dev.send_redirects=0" "net.ipv4.conf.$dev.accept_redirects=0" \
      "net.ipv4.conf.$dev.rp_filter=0" >/dev/null
  done
}

# The NVA's stateful firewall: replies and related traffic of known connections pass, new
# connections only from spoke A to spoke B (two-nic: only untrusted eth0 -> trusted eth1),
# everything else is dropped and counted. nf_conntrack_tcp_loose = 0: no connection is
# picked up mid-stream, so a reply reaching an NVA that did not see the SYN is dropped.
firewall() {
  local n=$1 new_from="ip saddr $SPOKE_A ip daddr $SPOKE_B"
  [ "$mode" = two-nic ] && new_from="iifname \"eth0\" oifname \"eth1\" $new_from"
  ns "$n" nft -f - <<NFT
table inet fw {
  counter accepted_new {}
  counter refused {}
  # Spoke traffic arrives with TTL 63: decremented once by the spoke's router and never by
  # the appliance, which changes only the MAC header of a transit packet.
  counter ttl_63 {}
  counter ttl_other {}
  chain prerouting {
    type filter hook prerouting priority -300; policy accept;
    ip saddr { $SPOKE_A, $SPOKE_B } ip ttl 63 counter name ttl_63
    ip saddr { $SPOKE_A, $SPOKE_B } ip ttl != 63 counter name ttl_other
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    $new_from ct state new counter name accepted_new accept
    counter name refused drop
  }
}
NFT
  # Per namespace once the table loaded conntrack; UDP entries outlive a test run.
  ns "$n" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0 \
    net.netfilter.nf_conntrack_udp_timeout=120 net.netfilter.nf_conntrack_udp_timeout_stream=180
}

# The appliance's kernel must not answer on the DPDK ports itself: the kernel twins hold its
# addresses. AF_PACKET taps see frames before the netdev ingress hook drops them.
appliance() { appliance_ingress_drop "$1"; }

up() {
  # A lab left under this tag (its test killed before its teardown) goes first.
  # (grep reads all: under pipefail, `grep -q` quitting early fails `ip` on a long list.)
  if ip netns list | grep "^$tag-" >/dev/null; then down; fi
  mkdir -p "$dir"
  echo "$mode" >"$dir/mode"
  for n in sw lb ra rb a b $NVAS; do namespace "$n"; done
  [ "$mode" = vxlan ] && namespace rn
  # Plain switches: no netfilter on bridged frames (br_netfilter would run conntrack there).
  for t in iptables ip6tables arptables; do
    ns sw sysctl -qw "net.bridge.bridge-nf-call-$t=0" 2>/dev/null || true
  done
  local hub_a hub_b fe_a fe_b
  if [ "$mode" = two-nic ]; then
    for br in bru brt; do ns sw ip link add "$br" type bridge; ns sw ip link set "$br" up; done
    attach lb eth0 bru
    attach lb eth1 brt
    appliance "eth0 eth1"
    attach ra eth0 bru 10.0.10.1/24
    attach rb eth0 brt 10.0.20.1/24
    local i
    for i in 1 2 3; do
      attach "n$i" eth0 bru "10.0.10.1$i/24"
      attach "n$i" eth1 brt "10.0.20.1$i/24"
      ns "n$i" ip route add "$SPOKE_A" via 10.0.10.1
      ns "n$i" ip route add "$SPOKE_B" via 10.0.20.1
    done
    fe_a=10.0.10.100 fe_b=10.0.20.100
  else
    ns sw ip link add br0 type bridge
    ns sw ip link set br0 up
    attach lb eth0 br0
    appliance eth0
    attach ra eth0 br0 10.0.0.1/24
    attach rb eth0 br0 10.0.0.3/24
    if [ "$mode" = vxlan ]; then
      ns sw ip link add br1 type bridge
      ns sw ip link set br1 up
      attach rn eth0 br0 10.0.0.4/24
      attach rn eth1 br1 10.9.0.1/24
      ns rn ip route add "$SPOKE_A" via 10.0.0.1
      ns rn ip route add "$SPOKE_B" via 10.0.0.3
      for i in 1 2 3; do
        attach "n$i" eth0 br1 "10.9.0.1$i/24"
        ns "n$i" ip route add default via 10.9.0.1
        ns "n$i" ip link add vx0 address "02:00:00:0b:00:1$i" type vxlan id 100 dstport 4789 \
          local "10.9.0.1$i" dev eth0 nolearning
        ns "n$i" ip link set vx0 up
      done
    else
      for i in 1 2 3; do
        attach "n$i" eth0 br0 "10.0.0.1$i/24"
        ns "n$i" ip route add "$SPOKE_A" via 10.0.0.1
        ns "n$i" ip route add "$SPOKE_B" via 10.0.0.3
      done
    fi
    fe_a=10.0.0.100 fe_b=10.0.0.100
  fi
  # The spokes: each host behind its router; each router's route to the other spoke points
  # at the frontend (the appliance answers ARP for it).
  wire ra 10.1.0.1/24 a 10.1.0.10/24
  wire rb 10.2.0.1/24 b 10.2.0.10/24
  ns a ip route add default via 10.1.0.1
  ns b ip route add default via 10.2.0.1
  ns ra ip route add "$SPOKE_B" via "$fe_a"
  ns rb ip route add "$SPOKE_A" via "$fe_b"
  for n in ra rb $NVAS; do router "$n"; done
  [ "$mode" = vxlan ] && router rn
  for n in a b; do ns "$n" sysctl -qw net.ipv4.conf.all.accept_redirects=0; done
  for n in $NVAS; do firewall "$n"; done

  for n in $NVAS; do start_nva_service "$n" nowait; done
  start_nva_service a nowait
  start_nva_service b nowait
  write_config
  for n in $NVAS a b; do wait_service "$n"; done
}

# Starts service $1 (NVA: its probe target on PROBE_PORT; a, b: every port of PORTS);
# waits for it unless $2.
# NVA nN's probe target (port 9000) or a spoke's servers, through netns-lib.sh.
start_nva_service() {
  local n=$1 ports=$PORTS
  case $n in n*) ports=$PROBE_PORT ;; esac
  start_service "$n" "$n" "$ports" "${2:-}"
}

write_config() {
  local memory; memory=$(eal_memory)
  local eal workers=1 vdev='"--vdev=net_af_packet0,iface=eth0"'
  eal=$(eal_lcores)
  if [ "$mode" = one-nic-2w ]; then
    # Two workers need three lcores (the main one runs the control thread); on a two-CPU
    # machine they share: the control thread floats, each worker has a CPU. qpairs=2: two
    # AF_PACKET sockets in one fanout group, whose hash is symmetric (both directions of a
    # flow reach one worker).
    eal='"--lcores=0@(0-1),1@0,2@1"' workers=2 vdev='"--vdev=net_af_packet0,iface=eth0,qpairs=2"'
  elif [ "$mode" = two-nic ]; then
    vdev='"--vdev=net_af_packet0,iface=eth0", "--vdev=net_af_packet1,iface=eth1"'
  fi
  {
    cat <<TOML
# Generated by scripts/nva-lab.sh for lab $tag ($mode): three NVAs behind HA ports. The spoke
# routers' routes point at a frontend; packets for other addresses arriving there (transit)
# are balanced by that frontend's floating HA-ports rule and reach an NVA unchanged but for
# their MAC header.
[dpdk]
# --no-pci: never touch this machine's own NICs; the lab's veths come in by AF_PACKET.
eal_args = [$eal, "--no-pci", $memory, "--file-prefix", "$tag", $vdev]

[dataplane]
workers = $workers
flow_table_capacity = 65536

[control]
metrics_listen = "127.0.0.1:9900"
socket = "$dir/haports.sock"

TOML
    if [ "$mode" = two-nic ]; then
      cat <<'TOML'
# One DPDK port per segment, each with its kernel twin (hp-NAME) holding its address. A
# transit packet's frontend is the first HA-ports frontend in its interface's subnets.
[[interface]]
name = "untrusted"
port = 0
address = "10.0.10.2/24"

[[interface]]
name = "trusted"
port = 1
address = "10.0.20.2/24"

# One internal load balancer, a frontend on each segment, a pool of the NVAs' NICs on each
# segment. Both pools hold the same instances (nva1..nva3), and Maglev hashes instances, so
# a flow and its reply (symmetric hash) pick the same NVA through either frontend. Several
# HA-ports frontends on one load balancer must all be floating (seed rule 5).
[[load_balancer]]
name = "nva"
kind = "internal"

  [[load_balancer.frontend]]
  name = "fe-u"
  address = "10.0.10.100"

  [[load_balancer.frontend]]
  name = "fe-t"
  address = "10.0.20.100"

  [[load_balancer.backend_pool]]
  name = "untrusted"
  backends = [
    { address = "10.0.10.11", instance = "nva1" },
    { address = "10.0.10.12", instance = "nva2" },
    { address = "10.0.10.13", instance = "nva3" },
  ]

  [[load_balancer.backend_pool]]
  name = "trusted"
  backends = [
    { address = "10.0.20.11", instance = "nva1" },
    { address = "10.0.20.12", instance = "nva2" },
    { address = "10.0.20.13", instance = "nva3" },
  ]

  # Each NVA runs a listener on 9000 (both NICs); an instance is healthy only when all of
  # its probed addresses are.
  [[load_balancer.probe]]
  name = "nva"
  protocol = "tcp"
  port = 9000
  interval_ms = 100
  unhealthy_threshold = 2
  healthy_threshold = 2

  [[load_balancer.rule]]
  name = "from-untrusted"
  frontend = "fe-u"
  backend_pool = "untrusted"
  probe = "nva"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = true

  [[load_balancer.rule]]
  name = "from-trusted"
  frontend = "fe-t"
  backend_pool = "trusted"
  probe = "nva"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = true
TOML
    else
      local n1='{ address = "10.0.0.11" }' n2='{ address = "10.0.0.12" }' n3='{ address = "10.0.0.13" }'
      local pool_note='  # n-active: every healthy NVA takes a share of the flows.'
      local routes=""
      if [ "$mode" = vxlan ]; then
        n1='{ address = "10.9.0.11", mac = "02:00:00:0b:00:11" }'
        n2='{ address = "10.9.0.12", mac = "02:00:00:0b:00:12" }'
        n3='{ address = "10.9.0.13", mac = "02:00:00:0b:00:13" }'
        pool_note='  # Behind router rn, inside VXLAN 100 to each NVA'"'"'s vxlan device (its mac).
  encap = "vxlan"
  vni = 100'
        routes='routes = [{ to = "10.9.0.0/24", via = "10.0.0.4" }]'
      fi
      if [ "$mode" = active-passive ]; then
        n2='{ address = "10.0.0.12", priority = 1 }' n3='{ address = "10.0.0.13", priority = 1 }'
        pool_note='  # Active-passive: n1 takes every flow while healthy (lower priority wins), then n2, n3.'
      fi
      cat <<TOML
# One DPDK port on the hub; its kernel twin hp-hub holds 10.0.0.2.
[[interface]]
name = "hub"
port = 0
address = "10.0.0.2/24"
$routes

# The spoke routers' next hop: frontend fe1. Its floating HA-ports rule balances every
# transit flow over the NVAs; the symmetric hash sends both directions to the same one.
[[load_balancer]]
name = "nva"
kind = "internal"

  [[load_balancer.frontend]]
  name = "fe1"
  address = "10.0.0.100"

  [[load_balancer.backend_pool]]
  name = "nvas"
$pool_note
  backends = [$n1, $n2, $n3]

  # Each NVA runs a listener on 9000.
  [[load_balancer.probe]]
  name = "nva"
  protocol = "tcp"
  port = 9000
  interval_ms = 100
  unhealthy_threshold = 2
  healthy_threshold = 2

  [[load_balancer.rule]]
  name = "transit"
  frontend = "fe1"
  backend_pool = "nvas"
  probe = "nva"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = true
TOML
    fi
  } >"$dir/haports.toml"
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
  for n in a b ra rb rn n1 n2 n3 lb sw; do
    ip netns pids "$tag-$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$tag-$n" 2>/dev/null || true
  done
  rm -rf "$dir"
  # EAL's runtime directory of the appliance's `--file-prefix`.
  [[ $tag == */* ]] || rm -rf "/var/run/dpdk/$tag"
}

case $cmd in
  up)
    case $mode in one-nic|one-nic-2w|two-nic|active-passive|vxlan) ;; *) echo "unknown mode $mode" >&2; exit 2 ;; esac
    up ;;
  down) down ;;
  stop-service) stop_service "${3:?nN}" ;;
  start-service) start_nva_service "${3:?nN}" ;;
  *) echo "usage: $0 up TAG MODE | down TAG | stop-service|start-service TAG nN" >&2; exit 2 ;;
esac
