# Shell functions the labs share (sourced by scripts/lab.sh, scripts/nva-lab.sh and
# scripts/scale-out-lab.sh).
# Callers set: tag (names' prefix), dir (the lab's files), here (scripts/), and V6=true to keep
# IPv6 on the links.

# ns NAME CMD…: run CMD in the lab's namespace NAME.
ns() { local n=$1; shift; ip netns exec "$tag-$n" "$@"; }

# Offloads off: frames must cross the AF_PACKET PMD whole, MTU-sized and with real checksums
# (before the link comes up, for IPv6's sake: see below).
# Without ethtool they stay on and TCP through the appliance hangs, so a missing ethtool
# stops the lab at once (checked on the first link) rather than being hidden below.
quiet_link() {
  local n=$1 dev=$2
  if [ -z "${ethtool_found:-}" ]; then
    command -v ethtool >/dev/null || {
      echo "ethtool not found: the lab needs it to turn the veths' offloads off (apt-get install ethtool, or scripts/install-deps.sh)" >&2
      exit 1
    }
    ethtool_found=yes
  fi
  ns "$n" ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  if [ "${V6:-false}" = true ]; then
    # No duplicate address detection (run before the link comes up, which makes its
    # link-local address): a link-local address stays tentative for a second or two, and a
    # DSR backend, answering from the frontend's address on lo, asks for no neighbour
    # until its link-local is usable, so the client's first SYN went unanswered for 1 or 3 s.
    ns "$n" sysctl -qw "net.ipv6.conf.$dev.accept_dad=0" >/dev/null 2>&1 || true
  else
    ns "$n" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" >/dev/null 2>&1 || true
  fi
}

# The appliance's kernel must not answer on the devices DPDK owns (the kernel twins hold the
# addresses): drop at the netdev ingress hook, which AF_PACKET taps see frames before.
appliance_ingress_drop() {
  local devs=$1
  ns lb nft -f - <<NFT
table netdev haports_lab {
$(for d in $devs; do printf '  chain in_%s { type filter hook ingress device %s priority 0; policy drop; }\n' "$d" "$d"; done)
}
NFT
}

# EAL memory arguments: in-memory hugepages when 256 are free, else no hugepages.
eal_memory() {
  local free; free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  if [ "${free:-0}" -ge 256 ]; then echo '"--in-memory"'; else echo '"--no-huge", "--no-shconf", "-m", "512"'; fi
}

# EAL's lcores for one worker: the main lcore and the worker's, on CPUs 0 and 1, or both on
# CPU 0 where the machine has one (EAL refuses an lcore on a CPU it does not have).
eal_lcores() {
  if [ "$(nproc)" -ge 2 ]; then echo '"-l", "0-1"'; else echo '"--lcores=0@0,1@0"'; fi
}

# start_service NS NAME PORTS [nowait]: scripts/backend.py as NAME on PORTS in NS, its pid in
# $dir/NS.pid; waits until it listens unless told not to.
start_service() {
  local n=$1 name=$2 ports=$3
  # Not through `ns`: $! must be the service itself (ip netns exec execs it), not a subshell.
  # The log of a service before (a restart) goes first: its `ready` is none of this one's.
  rm -f "$dir/$n.log"
  # shellcheck disable=SC2086
  ip netns exec "$tag-$n" python3 "$here/backend.py" "$name" $ports >"$dir/$n.log" 2>&1 &
  echo $! >"$dir/$n.pid"
  [ "${4:-}" = nowait ] || wait_service "$n"
}

# wait_service NS: until the service in NS listens on every port (its log's line `ready`,
# not a word of a traceback's: "Address already in use"), while it runs.
wait_service() {
  local n=$1
  for _ in $(seq 100); do
    grep -qx ready "$dir/$n.log" 2>/dev/null && return 0
    kill -0 "$(cat "$dir/$n.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "service in $n did not start:"; cat "$dir/$n.log"; exit 1
}

# stop_service NS: kill the service in NS, if it is still there (its pid file outlives it,
# and its number may be another process's on the host by now).
stop_service() {
  local pid
  pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 0
  if [ "$(ip netns identify "$pid" 2>/dev/null)" = "$tag-$1" ]; then
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/$1.pid"
}
