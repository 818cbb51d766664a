#!/usr/bin/env bash
# The haports demo on virtual devices: a client, the appliance and three backends on one
# bridge (network namespaces); real kernel TCP and UDP connections to a frontend on 24
# ports, balanced by haports; how many went to each backend; everything torn down after.
#   scripts/demo.sh [nat|dsr]      (needs root)
# The tests run it with HAPORTS_DEMO_BIN (a haports already built: nothing installed or
# built) and HAPORTS_DEMO_TAG (the lab's tag, which their run's teardown knows).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/rust-path.sh
mode=${1:-nat}
case $mode in
  nat | dsr) ;;
  *) echo "usage: $0 [nat|dsr]" >&2; exit 2 ;;
esac
haports=${HAPORTS_DEMO_BIN:-}
if [ -z "$haports" ]; then
  # Everything the labs use, without building the test runner.
  scripts/install-deps.sh --no-nextest
  cargo build --bin haports
  haports=target/debug/haports
fi
tag=${HAPORTS_DEMO_TAG:-demo$$}
dir=/tmp/haports-lab-$tag
# On the way out, whatever the way: stop haports and remove the lab. `lab.sh down` removes
# $dir with haports' log, so a failed demo shows the log's end first; the exit status stays.
finish() {
  local rc=$?
  if [ "$rc" != 0 ] && [ -s "$dir/haports.log" ]; then
    echo "== the demo failed; the end of haports' log:" >&2
    tail -n 20 "$dir/haports.log" >&2
  fi
  scripts/lab.sh down "$tag"
  exit "$rc"
}
trap finish EXIT
echo "== building the lab ($mode): client, appliance, backends 10.0.0.11-13, frontend 10.0.0.100"
scripts/lab.sh up "$tag" "$mode"
ip netns exec "$tag-lb" "$haports" check "$dir/haports.toml"
ip netns exec "$tag-lb" "$haports" run --config "$dir/haports.toml" 2>"$dir/haports.log" &
pid=$!
echo "$pid" >"$dir/haports.pid"
echo "== waiting for haports to resolve the backends"
resolved=false
for _ in $(seq 200); do
  # A haports that exited will not resolve anything: no need to wait out the 20 s.
  kill -0 "$pid" 2>/dev/null || break
  if ip netns exec "$tag-lb" curl -sf http://127.0.0.1:9900/metrics 2>/dev/null \
    | grep -c '^haports_backend_resolved.* 1$' | grep -qx 3; then
    resolved=true
    break
  fi
  sleep 0.1
done
if ! $resolved; then
  if kill -0 "$pid" 2>/dev/null; then
    echo "haports did not resolve the three backends within 20 s" >&2
  else
    echo "haports exited" >&2
  fi
  exit 1
fi
frontend=10.0.0.100
ports=$(seq -s, 8000 8023)
for proto in tcp udp; do
  echo "== 240 $proto exchanges from the client to $frontend on ports 8000-8023"
  ip netns exec "$tag-c" python3 scripts/traffic.py "$proto" "$frontend" --ports "$ports" --count 240 --summary
done
echo "== haports lookup agrees (offline, same code): three flows"
"$haports" lookup --config "$dir/haports.toml" \
  tcp 10.0.1.10:40000 $frontend:8000  udp 10.0.1.10:40001 $frontend:8001  tcp 10.0.1.10:40002 10.0.0.99:80
echo "== haports stats"
ip netns exec "$tag-lb" "$haports" stats --endpoint http://127.0.0.1:9900/metrics
