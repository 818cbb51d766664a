#!/usr/bin/env bash
# The haports demo on virtual devices: a client, the appliance and three backends on one
# bridge (network namespaces); real kernel TCP and UDP connections to a frontend on 24
# ports, balanced by haports; how many went to each backend; everything torn down after.
#   scripts/demo.sh [nat|dsr]      (needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-nat}
scripts/install-deps.sh
cargo build --bin haports
tag=demo$$
trap 'kill $(cat /tmp/haports-lab-$tag/haports.pid 2>/dev/null) 2>/dev/null || true; scripts/lab.sh down $tag' EXIT
echo "== building the lab ($mode): client, appliance, backends 10.0.0.11-13, frontend 10.0.0.100"
scripts/lab.sh up "$tag" "$mode"
dir=/tmp/haports-lab-$tag
ip netns exec "$tag-lb" target/debug/haports check "$dir/haports.toml"
ip netns exec "$tag-lb" target/debug/haports run --config "$dir/haports.toml" 2>"$dir/haports.log" &
echo $! >"$dir/haports.pid"
echo "== waiting for haports to resolve the backends"
for _ in $(seq 200); do
  ip netns exec "$tag-lb" curl -sf http://127.0.0.1:9900/metrics 2>/dev/null \
    | grep -c '^haports_backend_resolved.* 1$' | grep -qx 3 && break
  sleep 0.1
done
frontend=10.0.0.100
ports=$(seq -s, 8000 8023)
for proto in tcp udp; do
  echo "== 240 $proto exchanges from the client to $frontend on ports 8000-8023"
  ip netns exec "$tag-c" python3 scripts/traffic.py "$proto" "$frontend" --ports "$ports" --count 240 --summary
done
echo "== haports lookup agrees (offline, same code): three flows"
target/debug/haports lookup --config "$dir/haports.toml" \
  tcp 10.0.1.10:40000 $frontend:8000  udp 10.0.1.10:40001 $frontend:8001  tcp 10.0.1.10:40002 10.0.0.99:80
echo "== haports stats"
ip netns exec "$tag-lb" target/debug/haports stats --endpoint http://127.0.0.1:9900/metrics
