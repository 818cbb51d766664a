#!/usr/bin/env bash
# A virtual segment for haports, built from network namespaces (used by the demo and the
# integration tests). Everything it creates carries TAG in its name and lives inside
# namespaces of its own; `down` removes all of it.
#
#   lab.sh up TAG MODE     MODE: nat (clients on their own subnet, replies routed back
#                          through the appliance) or dsr (backends hold the frontend on lo)
#   lab.sh down TAG
#
# Namespaces: TAG-sw (the bridge), TAG-lb (the appliance: eth0 for DPDK's AF_PACKET PMD),
# TAG-c (the client), TAG-b1..3 (backends running scripts/backend.py on PORTS).
# Addresses: segment 10.0.0.0/24, appliance 10.0.0.2, backends .11-.13, frontend .100;
# nat: client 10.0.1.10/24, the appliance also 10.0.1.2; dsr: client 10.0.0.50.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?up|down}; tag=${2:?TAG}; mode=${3:-nat}
dir=/tmp/haports-lab-$tag
PORTS=${PORTS:-$(seq -s' ' 8000 8023)}

ns() { local n=$1; shift; ip netns exec "$tag-$n" "$@"; }

# Offloads off: frames must cross the AF_PACKET PMD whole, MTU-sized and with real checksums.
quiet_link() {
  local n=$1 dev=$2
  ns "$n" ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  ns "$n" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" >/dev/null 2>&1 || true
}

host() { # host NAME: a namespace with eth0 on the bridge
  local n=$1
  ip netns add "$tag-$n"
  ip link add eth0 netns "$tag-$n" type veth peer name "p-$n" netns "$tag-sw"
  ns sw ip link set "p-$n" master br0 up
  quiet_link sw "p-$n"
  ns "$n" ip link set lo up
  ns "$n" ip link set eth0 up
  quiet_link "$n" eth0
}

up() {
  mkdir -p "$dir"
  ip netns add "$tag-sw"
  ns sw ip link add br0 type bridge
  ns sw ip link set br0 up
  for n in lb c b1 b2 b3; do host "$n"; done

  # The appliance's kernel must not answer on eth0 itself: DPDK owns that port and the
  # kernel twin holds the addresses. Taps (AF_PACKET) see frames before tc ingress drops them.
  ns lb nft -f - <<'NFT'
table netdev haports_lab {
  chain ingress { type filter hook ingress device eth0 priority 0; policy drop; }
}
NFT

  for i in 1 2 3; do
    ns "b$i" ip addr add "10.0.0.1$i/24" dev eth0
    if [ "$mode" = dsr ]; then
      ns "b$i" ip addr add 10.0.0.100/32 dev lo
      ns "b$i" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    else
      ns "b$i" ip route add 10.0.1.0/24 via 10.0.0.2
    fi
    ns "b$i" python3 "$here/backend.py" "b$i" $PORTS >"$dir/b$i.log" 2>&1 &
    echo $! >"$dir/b$i.pid"
  done
  if [ "$mode" = dsr ]; then
    ns c ip addr add 10.0.0.50/24 dev eth0
  else
    ns c ip addr add 10.0.1.10/24 dev eth0
    ns c ip route add 10.0.0.0/24 via 10.0.1.2
  fi
  ns lb ip link show eth0 | awk '/link\/ether/ {print $2}' >"$dir/lb.mac"
  # Wait until every backend listens on every port.
  for i in 1 2 3; do
    for _ in $(seq 100); do
      grep -q ready "$dir/b$i.log" 2>/dev/null && break
      sleep 0.1
    done
    grep -q ready "$dir/b$i.log" || { echo "backend b$i did not start:"; cat "$dir/b$i.log"; exit 1; }
  done
}

down() {
  for f in "$dir"/*.pid; do
    [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  for n in c b1 b2 b3 lb sw; do
    ip netns pids "$tag-$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$tag-$n" 2>/dev/null || true
  done
  rm -rf "$dir"
}

case $cmd in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down TAG [nat|dsr]" >&2; exit 2 ;;
esac
