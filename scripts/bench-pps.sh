#!/usr/bin/env bash
# Packets per second of one haports worker core, against dpdk-testpmd on the same vdevs
# (DESIGN §9). A generated pcap of FLOWS distinct UDP flows to a frontend is replayed in
# memory (net_pcap, infinite_rx=1) into port 0; haports balances it (HA ports, destination
# NAT) to backends behind port 1, a net_null sink. testpmd forwards the same pcap port 0 → 1
# in io, macswap and 5tswap modes: the ceiling of this PMD pair on this core.
#
#   sudo scripts/bench-pps.sh [-f "1000 65536 1048576"] [-s SECONDS] [-o OUTDIR] [-l LCORES]
#
# Prints Mpps and haports/testpmd ratios per flow count; writes OUTDIR/pps.csv and, when
# matplotlib is there, OUTDIR/pps.png. LCORES: EAL's -l (main lcore + one worker; default 0-1).
set -euo pipefail
cd "$(dirname "$0")/.."
flows="1000 65536 1048576"; seconds=5; out=bench-out; lcores=0-1
while getopts "f:s:o:l:" o; do
  case $o in f) flows=$OPTARG ;; s) seconds=$OPTARG ;; o) out=$OPTARG ;; l) lcores=$OPTARG ;; *) exit 2 ;; esac
done
scripts/install-deps.sh
dpkg-query -W -f='${Status}' python3-matplotlib 2>/dev/null | grep -q "install ok installed" \
  || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-matplotlib \
  || echo "(python3-matplotlib not installed: no plot)"
cargo build --release --bin haports
mkdir -p "$out"
work=$(mktemp -d /tmp/haports-bench.XXXX)
ns=hpbench$$
cleanup() {
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns" && ip netns exec "$ns" ip link set lo up   # haports' kernel twins live here, away from the host's interfaces

# EAL memory: the whole pcap sits in mbufs; without hugepages EAL needs about 5 KB each.
eal_memory() {
  local mbufs=$1 mb=$(( ($1 * 50 / 10000) + 1024 ))
  local free; free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  local size; size=$(awk '/Hugepagesize/ {print $2}' /proc/meminfo)
  if [ $(( ${free:-0} * ${size:-0} / 1024 )) -ge "$mb" ]; then echo '"--in-memory"'
  else echo "\"--no-huge\", \"--no-shconf\", \"-m\", \"$mb\""; fi
}

# Samples the sink port's TX counter over the run: Mpps.
haports_pps() {
  local pcap=$1 n=$2 mbufs=$(( $2 + 65536 ))
  cat >"$work/haports.toml" <<TOML
[dpdk]
eal_args = ["-l", "$lcores", "--no-pci", $(eal_memory $mbufs), "--file-prefix", "hpbench$$",
            "--vdev=net_pcap0,rx_pcap=$pcap,infinite_rx=1", "--vdev=net_null0,no-rx=1"]
[dataplane]
workers = 1
flow_table_capacity = $(( n * 2 > 1024 ? n * 2 : 1024 ))
mbufs = $mbufs
[control]
metrics_listen = "127.0.0.1:9901"
[[interface]]
name = "in"
port = 0
address = "10.0.0.2/24"
routes = [{ to = "10.64.0.0/10", via = "10.0.0.1" }]
[[interface]]
name = "out"
port = 1
address = "10.9.0.2/24"
[[load_balancer]]
name = "ilb"
kind = "internal"
  [[load_balancer.frontend]]
  name = "fe"
  address = "10.0.0.100"
  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [
    { address = "10.9.0.11", mac = "02:00:00:00:09:11" },
    { address = "10.9.0.12", mac = "02:00:00:00:09:12" },
    { address = "10.9.0.13", mac = "02:00:00:00:09:13" },
    { address = "10.9.0.14", mac = "02:00:00:00:09:14" },
  ]
  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
TOML
  ip netns exec "$ns" target/release/haports run --config "$work/haports.toml" 2>"$work/haports.log" &
  local pid=$!
  tx() {
    ip netns exec "$ns" curl -sf http://127.0.0.1:9901/metrics 2>/dev/null \
      | awk '/^haports_port_tx_packets_total\{port="1"/ {print $2}'
  }
  for _ in $(seq 600); do [ -n "$(tx)" ] && [ "$(tx)" != 0 ] && break; sleep 0.1; done
  [ -n "$(tx)" ] || { echo "haports did not start:" >&2; tail -20 "$work/haports.log" >&2; exit 1; }
  sleep 1
  local t0 a t1 b
  t0=$(date +%s.%N); a=$(tx); sleep "$seconds"; t1=$(date +%s.%N); b=$(tx)
  kill -TERM "$pid"; wait "$pid" || true
  awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f\n", (b - a) / (t1 - t0) / 1e6 }'
}

# testpmd's own per-second report for port 1 (the sink): mean TX pps over the run.
testpmd_pps() {
  local pcap=$1 n=$2 mode=$3 mbufs=$(( $2 + 65536 ))
  local mem; mem=$(eal_memory $mbufs | tr -d '",')
  # shellcheck disable=SC2086
  timeout $(( seconds + 180 )) dpdk-testpmd -l "$lcores" --no-pci $mem --file-prefix "tpbench$$" \
    --vdev "net_pcap0,rx_pcap=$pcap,infinite_rx=1" --vdev "net_null0,no-rx=1" -- \
    --forward-mode="$mode" --nb-cores=1 --total-num-mbufs="$mbufs" --stats-period=1 \
    --no-flush-rx </dev/null >"$work/testpmd-$mode.log" 2>&1 &
  local pid=$!
  # Loading a large pcap into mbufs takes a while: time the run from its first report.
  for _ in $(seq 1200); do grep -q "NIC statistics" "$work/testpmd-$mode.log" 2>/dev/null && break; sleep 0.1; done
  sleep $(( seconds + 2 ))
  kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  # Each report has a "NIC statistics for port N" block; keep port 1's Tx-pps, skipping the
  # first report (warm-up).
  awk '/NIC statistics for port/ { for (i = 1; i < NF; i++) if ($i == "port") port = $(i + 1) }
       /Tx-pps:/ && port == 1 { v[++k] = $2 }
       END { s = 0; c = 0; for (i = 2; i <= k; i++) { s += v[i]; c++ } printf "%.3f\n", c ? s / c / 1e6 : 0 }' \
    "$work/testpmd-$mode.log"
}

csv=$out/pps.csv
echo "flows,haports_mpps,testpmd_io_mpps,testpmd_macswap_mpps,testpmd_5tswap_mpps" >"$csv"
printf '%9s %10s %10s %10s %10s %8s %8s %8s\n' flows haports io macswap 5tswap "/io" "/macswap" "/5tswap"
for n in $flows; do
  pcap=$work/flows-$n.pcap
  python3 scripts/gen-flows.py "$n" "$pcap"
  h=$(haports_pps "$pcap" "$n")
  io=$(testpmd_pps "$pcap" "$n" io)
  ms=$(testpmd_pps "$pcap" "$n" macswap)
  ft=$(testpmd_pps "$pcap" "$n" 5tswap)
  echo "$n,$h,$io,$ms,$ft" >>"$csv"
  awk -v n="$n" -v h="$h" -v io="$io" -v ms="$ms" -v ft="$ft" 'BEGIN {
    printf "%9d %10.3f %10.3f %10.3f %10.3f %8.2f %8.2f %8.2f\n", n, h, io, ms, ft,
      io ? h / io : 0, ms ? h / ms : 0, ft ? h / ft : 0 }'
  rm -f "$pcap"
done
echo "Mpps of one worker core; CSV: $csv"
/usr/bin/python3 - "$csv" "$out/pps.png" <<'PY' || echo "(no plot: python3-matplotlib not installed)"
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open(sys.argv[1])))
x = [int(r["flows"]) for r in rows]
for key, label in [("haports_mpps", "haports (HA ports, NAT)"), ("testpmd_io_mpps", "testpmd io"),
                   ("testpmd_macswap_mpps", "testpmd macswap"), ("testpmd_5tswap_mpps", "testpmd 5tswap")]:
    plt.plot(x, [float(r[key]) for r in rows], marker="o", label=label)
plt.xscale("log"); plt.xlabel("flows"); plt.ylabel("Mpps (one core)"); plt.legend(); plt.grid(True, alpha=0.3)
plt.title("haports vs dpdk-testpmd: net_pcap (infinite_rx) -> net_null")
plt.savefig(sys.argv[2], dpi=100, bbox_inches="tight")
print("plot:", sys.argv[2])
PY
