#!/usr/bin/env bash
# Packets per second of haports' worker cores, against dpdk-testpmd on the same vdevs
# (DESIGN §9). A generated pcap of FLOWS distinct UDP flows to a frontend (every flow once a
# lap, each lap in its own random order) is replayed in memory (net_pcap, infinite_rx=1) into
# port 0; haports balances it with an HA-ports rule, in NAT (floating_ip = false) and DSR
# (floating_ip = true) mode, to backends behind port 1, a net_null sink. The config is the
# one a user gets by default (flow_table_capacity included); haports is measured only once
# its flow tables hold every flow. testpmd forwards the same pcap port 0 → 1 in io, macswap
# and 5tswap modes: the ceiling of this PMD pair on these cores.
#
#   sudo scripts/bench-pps.sh [-f "1000 65536 1048576"] [-m "nat floating"] [-w WORKERS]
#                             [-s SECONDS] [-o OUTDIR] [-l LCORES] [-H HUGEPAGES] [-b BINARY]
#                             [-r RUNS] [-I]
#
# Prints Mpps and haports/testpmd ratios per mode and flow count, and whether hugepages were
# used; writes OUTDIR/pps.csv (the medians, and the flows a worker's table held when
# measured, the least of the rounds), OUTDIR/pps-rounds.csv (every round's figures,
# for their spread) and, when matplotlib is there, OUTDIR/pps.png.
# -m: the modes, nat and floating (DSR: "dsr" is taken for floating); others are refused.
# WORKERS: worker cores, 1 to 16 (default 1; each gets its own RX queue replaying the pcap;
# net_pcap has 16); without -l the machine needs WORKERS + 1 CPUs.
# LCORES: EAL's -l (main lcore + WORKERS; default 0-WORKERS). HUGEPAGES: reserve this many
# 2 MB hugepages for the run, then put the reservation back as it was (default: use what
# is reserved; none means --no-huge).
# BINARY: the haports binary to measure (default: build target/release/haports).
# RUNS: rounds, each measuring every figure once (testpmd's and haports' in turn, each a fresh
# process); Mpps are the rounds' median, ratios the median of each round's own ratio
# (default 1). On a virtual machine single runs differ by up to ±20%, one process to the next,
# and the machine's speed drifts over minutes.
# -I: instructions a packet instead, counted by valgrind's callgrind (the same count every
# run, where Mpps are not): haports' worker thread once its flow table holds every flow
# (packets: its bursts, each of 64, which infinite_rx always fills) and testpmd 5tswap's
# forwarding thread over its whole run (packets: those it reports sent); then haports'
# costliest functions. Slow (about 50 times): SECONDS of 10 to 30, and 1000 or 65536 flows.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/rust-path.sh
flows="1000 65536 1048576"; modes="nat floating"; workers=1; seconds=5; out=bench-out
lcores=""; hugepages=""; binary=""; runs=1; instructions=""
while getopts "f:m:w:s:o:l:H:b:r:I" o; do
  case $o in
    f) flows=$OPTARG ;; m) modes=$OPTARG ;; w) workers=$OPTARG ;; s) seconds=$OPTARG ;;
    o) out=$OPTARG ;; l) lcores=$OPTARG ;; H) hugepages=$OPTARG ;; b) binary=$OPTARG ;;
    r) runs=$OPTARG ;; I) instructions=1 ;;
    *) exit 2 ;;
  esac
done
# The modes haports is measured in: nat (floating_ip = false) and floating (floating_ip =
# true, which README calls DSR; "dsr" is taken for it). Anything else would run as NAT under
# its own name, so it is refused.
wanted=""
for mode in $modes; do
  case $mode in
    nat | floating) ;;
    dsr) mode=floating ;;
    *) echo "-m: unknown mode \"$mode\" (nat, floating or dsr)" >&2; exit 2 ;;
  esac
  case " $wanted " in *" $mode "*) ;; *) wanted="$wanted $mode" ;; esac
done
modes=${wanted# }
[ -n "$modes" ] || { echo "-m: no mode (nat, floating or dsr)" >&2; exit 2; }
# net_pcap gives a port at most 16 RX queues (RTE_PMD_PCAP_MAX_QUEUES), one per worker here.
[[ $workers =~ ^[0-9]+$ ]] && (( 10#$workers >= 1 && 10#$workers <= 16 )) \
  || { echo "-w: 1 to 16 workers (net_pcap's most queues), not \"$workers\"" >&2; exit 2; }
workers=$(( 10#$workers ))
if [ -z "$lcores" ] && (( workers + 1 > $(nproc) )); then
  echo "-w $workers needs $(( workers + 1 )) CPUs (a main lcore and one per worker); this" \
    "machine has $(nproc): give fewer workers, or -l" >&2
  exit 2
fi
lcores=${lcores:-0-$workers}
scripts/install-deps.sh --no-nextest
# The bench's own extras (the plot, and valgrind for -I), with the package lists refreshed
# where they are missing or stale.
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "$@"; }
}
dpkg-query -W -f='${Status}' python3-matplotlib 2>/dev/null | grep -q "install ok installed" \
  || apt_install python3-matplotlib \
  || echo "(python3-matplotlib not installed: no plot)"
if [ -z "$binary" ]; then
  cargo build --release --bin haports
  binary=target/release/haports
fi
nr_hugepages=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
# A machine without the 2 MB pool (a sandboxed kernel) runs --no-huge; -H is refused there.
hugepages_before=$(cat "$nr_hugepages" 2>/dev/null || echo none)
if [ -n "$hugepages" ] && [ "$hugepages_before" = none ]; then
  echo "-H: this kernel has no 2 MB hugepage pool" >&2; exit 2
fi
mkdir -p "$out"
work=$(mktemp -d /tmp/haports-bench.XXXX)
ns=hpbench$$
cleanup() {
  # testpmd runs outside the namespace, under `timeout`, which puts itself and testpmd in a
  # process group of their own, so Ctrl-C does not reach them: end that group by the pid
  # testpmd_pps recorded (it runs in a command substitution, whose variables are lost).
  if [ -s "$work/testpmd.pid" ]; then kill -9 -- "-$(cat "$work/testpmd.pid")" 2>/dev/null || true; fi
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
  # EAL's runtime directories (/var/run/dpdk/PREFIX), left behind by every run: only this
  # run's prefixes.
  rm -rf "/var/run/dpdk/hpbench$$" "/var/run/dpdk/tpbench$$"
  # -H's reservation back as it was (pages still held by a process that has not exited yet
  # are released to the system when it does).
  if [ -n "$hugepages" ]; then echo "$hugepages_before" >"$nr_hugepages" || true; fi
}
trap cleanup EXIT
# Reserved only once the trap that puts it back is set.
if [ -n "$hugepages" ]; then echo "$hugepages" >"$nr_hugepages"; fi
ip netns add "$ns" && ip netns exec "$ns" ip link set lo up   # haports' kernel twins live here, away from the host's interfaces

# EAL memory: the whole pcap sits in mbufs (once per worker queue) beside the flow tables
# (64 MiB per worker at the default capacity); without enough 2 MB hugepages EAL runs --no-huge (about 5 KB an mbuf).
huge_mb() {
  awk '/^HugePages_Free/ {f=$2} /^Hugepagesize/ {s=$2} END {print int(f * s / 1024)}' /proc/meminfo
}
eal_memory() {
  local mbufs=$1 mb=$(( ($1 * 50 / 10000) + 1024 + 64 * workers ))
  if [ -z "$instructions" ] && [ "$(huge_mb)" -ge "$mb" ]; then echo '"--in-memory"'
  else echo "\"--no-huge\", \"--no-shconf\", \"-m\", \"$mb\""; fi
}
uses_hugepages() { eal_memory "$1" | grep -q in-memory && echo yes || echo no; }

# The pcap once per worker: net_pcap gives each rx_pcap its own RX queue.
pcap_vdev() {
  local pcap=$1 args="net_pcap0" i
  for (( i = 0; i < workers; i++ )); do args="$args,rx_pcap=$pcap"; done
  echo "$args,infinite_rx=1"
}

# The sum of the haports metrics matching a pattern, as a whole number (`%.0f`: mawk's `%d`
# stops at 2^31, which a TX counter passes within a minute at 30 Mpps).
metric_sum() {
  ip netns exec "$ns" curl -sf http://127.0.0.1:9901/metrics 2>/dev/null \
    | awk -v m="$1" '$1 ~ "^" m { s += $2; n++ } END { if (n) printf "%.0f\n", s }'
}

# Samples the sink port's TX counter over the run: Mpps.
haports_pps() {
  local pcap=$1 n=$2 packets=$3 mode=$4 mbufs=$(( ($3 + 8192) * workers + 65536 ))
  local floating=false; [ "$mode" = floating ] && floating=true
  cat >"$work/haports.toml" <<TOML
[dpdk]
eal_args = ["-l", "$lcores", "--no-pci", $(eal_memory $mbufs), "--file-prefix", "hpbench$$",
            "--vdev=$(pcap_vdev "$pcap")", "--vdev=net_null0,no-rx=1"]
[dataplane]
workers = $workers
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
  floating_ip = $floating
TOML
  # Its stdout too goes to the log: this runs in a command substitution, which waits until
  # every writer of its pipe is gone, so a haports left holding it would hang the bench.
  # shellcheck disable=SC2046  # under: empty, or the valgrind command line, split into words
  ip netns exec "$ns" $(under "$work/cg-haports") "$binary" run --config "$work/haports.toml" \
    >"$work/haports-$mode-$n.log" 2>&1 &
  local pid=$!
  tx() { metric_sum 'haports_port_tx_packets_total[{]port="1"'; }
  for _ in $(seq 1200); do
    [ -n "$(tx)" ] && [ "$(tx)" != 0 ] && break
    kill -0 "$pid" 2>/dev/null || break   # exited: no need to wait out the two minutes
    sleep 0.1
  done
  # (Inside the `$(...)` that records its figure, an `exit 1` here fails the whole bench.)
  if [ -z "$(tx)" ] || [ "$(tx)" = 0 ]; then
    echo "haports did not start forwarding:" >&2; tail -20 "$work/haports-$mode-$n.log" >&2
    kill -9 "$pid" 2>/dev/null || true
    exit 1
  fi
  gone() {
    echo "haports exited $1:" >&2; tail -20 "$work/haports-$mode-$n.log" >&2
    exit 1
  }
  # Measured once every worker's table holds every flow (each worker sees all of them), or,
  # for a table filled to its capacity, once it stops growing: the few flows that find no
  # room are forwarded by the Maglev decision alone (the count is printed).
  local want=$(( n * workers )) held=0 before=-1
  for _ in $(seq 120); do
    kill -0 "$pid" 2>/dev/null || gone "while its flow tables filled"
    held=$(metric_sum 'haports_flow_table_entries[{]'); held=${held:-0}
    [ "$held" -ge "$want" ] && break
    [ "$held" -gt 0 ] && [ "$held" = "$before" ] && break
    before=$held; sleep 1
  done
  [ "$held" -ge "$want" ] || echo "(flow tables hold $held of $want flows: full)" >&2
  echo "$held" >>"$work/held-$mode-$n"   # the CSV's flows_held: the least of the rounds
  sleep 1
  if [ -n "$instructions" ]; then
    callgrind_control -z "$pid" >/dev/null 2>&1; sleep "$seconds"
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill -TERM "$pid"; wait "$pid" || true
    per_packet "$work/cg-haports.1" bursts >"$work/functions-$mode-$n"
    head -1 "$work/functions-$mode-$n"; rm -f "$work"/cg-haports*
    return
  fi
  local t0 a t1 b
  t0=$(date +%s.%N); a=$(tx); sleep "$seconds"; t1=$(date +%s.%N); b=$(tx)
  kill -0 "$pid" 2>/dev/null || gone "while it was measured"
  kill -TERM "$pid"
  wait "$pid" || gone "with status $? when stopped (SIGTERM: 0 expected)"
  # Two readings of the counter, the second above the first: else no figure.
  if ! [[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] || (( b <= a )); then
    echo "haports' TX counter read \"$a\" then \"$b\": no rate" >&2; exit 1
  fi
  awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f\n", (b - a) / (t1 - t0) / 1e6 }'
}

# testpmd's own per-second report for port 1 (the sink): mean TX pps over the run.
testpmd_pps() {
  local pcap=$1 n=$2 packets=$3 mode=$4 mbufs=$(( ($3 + 8192) * workers + 65536 ))
  local mem; mem=$(eal_memory $mbufs | tr -d '",')
  # shellcheck disable=SC2046,SC2086  # under, and $mem: word lists
  timeout $(( seconds + 180 )) $(under "$work/cg-testpmd") dpdk-testpmd -l "$lcores" --no-pci $mem --file-prefix "tpbench$$" \
    --vdev "$(pcap_vdev "$pcap")" --vdev "net_null0,no-rx=1" -- \
    --forward-mode="$mode" --nb-cores="$workers" --rxq="$workers" --txq="$workers" \
    --total-num-mbufs="$mbufs" --stats-period=1 --no-flush-rx --burst=64 \
    </dev/null >"$work/testpmd-$mode.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$work/testpmd.pid"   # for cleanup, should the bench be stopped meanwhile
  # Loading a large pcap into mbufs takes a while: time the run from its first report.
  for _ in $(seq 1200); do
    grep -q "NIC statistics" "$work/testpmd-$mode.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q "NIC statistics" "$work/testpmd-$mode.log"; then
    echo "testpmd did not start:" >&2; tail -20 "$work/testpmd-$mode.log" >&2
    exit 1
  fi
  sleep $(( seconds + 2 ))
  kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  rm -f "$work/testpmd.pid"
  if [ -n "$instructions" ]; then
    # The packets it sent: port 1's TX-packets in its final statistics.
    per_packet "$work/cg-testpmd" "$(awk '/Forward statistics for port 1/ { p = 1 }
      p && /TX-packets:/ { print $2; exit }' "$work/testpmd-$mode.log")" >"$work/testpmd-functions"
    head -1 "$work/testpmd-functions"; rm -f "$work"/cg-testpmd*
    return
  fi
  # Each report has a "NIC statistics for port N" block; keep port 1's Tx-pps, skipping the
  # first report (warm-up). Fewer than two reports is no figure: the bench fails.
  awk '/NIC statistics for port/ { for (i = 1; i < NF; i++) if ($i == "port") port = $(i + 1) }
       /Tx-pps:/ && port == 1 { v[++k] = $2 }
       END { s = 0; c = 0; for (i = 2; i <= k; i++) { s += v[i]; c++ }
             if (!c || s <= 0) { print "testpmd reported no rate" > "/dev/stderr"; exit 1 }
             printf "%.3f\n", s / c / 1e6 }' \
    "$work/testpmd-$mode.log"
}

# With -I, the command line that runs a program under callgrind, one profile per thread.
under() {
  [ -n "$instructions" ] && echo "valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=$1"
}

# Instructions a packet of the busiest thread in the callgrind profiles PREFIX-NN, for
# PACKETS packets (or "bursts": its calls of haports' stage 2, 64 packets each); then its
# costliest functions, by their own instructions a packet.
per_packet() {
  python3 - "$@" <<'PY'
import collections, glob, re, sys
prefix, packets = sys.argv[1], sys.argv[2]
names, threads = {}, []
for path in sorted(glob.glob(prefix + "-*")):
    own, calls, fn, cfn, skip = collections.Counter(), collections.Counter(), None, None, False
    for line in open(path, errors="replace"):
        m = re.match(r"(c?)fn=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3)
            if m.group(1):
                cfn = m.group(2)
            else:
                fn = m.group(2)
        elif line.startswith("calls="):
            calls[cfn] += int(line.split()[0][6:])
            skip = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if not skip:
                own[fn] += int(line.split()[-1])
            skip = False
    threads.append((sum(own.values()), own, calls))
total, own, calls = max(threads, key=lambda t: t[0])
if packets == "bursts":
    n = 64 * sum(c for f, c in calls.items() if names.get(f, "").endswith("pipeline::decide_burst"))
else:
    n = int(packets or 0)
print(f"{total / n:.1f}" if n else "0")
for f, c in own.most_common(12):
    print(f"{c / n:8.1f} {names.get(f, f)[:100]}")
PY
}

# The median of a list of numbers (of an even count, the mean of the middle two).
median() {
  tr ' ' '\n' | grep . | sort -n \
    | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# The median of the ratios of two lists, pair by pair (round by round).
paired_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    n = split(a, x, " "); split(b, y, " "); k = 0
    for (i = 1; i <= n; i++) if (y[i] > 0) r[++k] = x[i] / y[i]
    if (!k) { print 0; exit }
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
    print (k % 2 ? r[(k + 1) / 2] : (r[k / 2] + r[k / 2 + 1]) / 2) }'
}

csv=$out/pps.csv; unit=mpps
if [ -n "$instructions" ]; then
  csv=$out/instructions.csv; unit=instructions
  command -v valgrind >/dev/null || apt_install valgrind
fi
echo "mode,flows,workers,hugepages,haports_$unit,testpmd_io_$unit,testpmd_macswap_$unit,testpmd_5tswap_$unit,ratio_5tswap,flows_held" >"$csv"
rounds_csv=${csv%.csv}-rounds.csv
echo "mode,flows,round,haports_$unit,testpmd_io_$unit,testpmd_macswap_$unit,testpmd_5tswap_$unit" >"$rounds_csv"
echo "haports: $("$binary" --version 2>/dev/null || echo "$binary"); $workers worker(s) on lcores $lcores;" \
  "flow_table_capacity: the default (1048576 per worker); $(nproc) CPUs: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
printf '%9s %9s %6s %10s %10s %10s %10s %8s %8s %8s\n' mode flows huge haports io macswap 5tswap "/io" "/macswap" "/5tswap"
for n in $flows; do
  pcap=$work/flows-$n.pcap
  packets=$(( n > 65536 ? n : 65536 ))
  python3 scripts/gen-flows.py "$n" "$pcap" --packets "$packets"
  packets=$(( (packets + n - 1) / n * n ))
  huge=$(uses_hugepages $(( (packets + 8192) * workers + 65536 )))
  # Each round measures every figure once, testpmd's and haports' in turn, so that a machine
  # whose speed drifts (a virtual machine's does) slows them alike; a ratio is the median of
  # the rounds' own ratios, not a ratio of medians taken minutes apart.
  declare -A runs_of=()
  for (( round = 0; round < runs; round++ )); do
    for fwd in io macswap 5tswap; do
      runs_of[$fwd]+=" $(testpmd_pps "$pcap" "$n" "$packets" "$fwd")"
    done
    for mode in $modes; do
      runs_of[$mode]+=" $(haports_pps "$pcap" "$n" "$packets" "$mode")"
    done
  done
  for mode in $modes; do
    paste -d, <(tr ' ' '\n' <<<"${runs_of[$mode]}" | grep .) \
      <(tr ' ' '\n' <<<"${runs_of[io]}" | grep .) <(tr ' ' '\n' <<<"${runs_of[macswap]}" | grep .) \
      <(tr ' ' '\n' <<<"${runs_of[5tswap]}" | grep .) | awk -v m="$mode" -v n="$n" \
      '{ print m "," n "," NR "," $0 }' >>"$rounds_csv"
  done
  io=$(median <<<"${runs_of[io]}"); ms=$(median <<<"${runs_of[macswap]}")
  ft=$(median <<<"${runs_of[5tswap]}")
  for mode in $modes; do
    h=$(median <<<"${runs_of[$mode]}")
    # haports' share of testpmd's speed: for instructions, testpmd's count over haports'.
    ratio() { if [ -n "$instructions" ]; then paired_ratio "$2" "$1"; else paired_ratio "$1" "$2"; fi; }
    r_io=$(ratio "${runs_of[$mode]}" "${runs_of[io]}")
    r_ms=$(ratio "${runs_of[$mode]}" "${runs_of[macswap]}")
    r_ft=$(ratio "${runs_of[$mode]}" "${runs_of[5tswap]}")
    # The flows each table held when measured (all workers' entries over the workers: each
    # sees every flow).
    held=$(sort -n "$work/held-$mode-$n" 2>/dev/null | head -1)
    held=${held:+$(( held / workers ))}
    echo "$mode,$n,$workers,$huge,$h,$io,$ms,$ft,$r_ft,${held:-}" >>"$csv"
    awk -v m="$mode" -v n="$n" -v hp="$huge" -v h="$h" -v io="$io" -v ms="$ms" -v ft="$ft" \
      -v a="$r_io" -v b="$r_ms" -v c="$r_ft" 'BEGIN {
      printf "%9s %9d %6s %10.3f %10.3f %10.3f %10.3f %8.2f %8.2f %8.2f\n", m, n, hp, h, io, ms, ft, a, b, c }'
  done
  unset runs_of
  rm -f "$pcap"
done
if [ -n "$instructions" ]; then
  echo "Instructions a packet (callgrind) of one worker thread, median of $runs round(s); ratios:" \
    "testpmd's count over haports'; CSV: $csv"
  for f in "$work"/functions-*; do
    echo "haports' costliest functions, ${f##*/functions-} (own instructions a packet):"
    tail -n +2 "$f"
  done
  exit 0
fi
echo "Mpps of $workers worker core(s), median of $runs round(s), each running every figure once;" \
  "ratios: the median of the rounds' own ratios; CSV: $csv (each round: $rounds_csv)"
/usr/bin/python3 - "$csv" "$out/pps.png" <<'PY' || echo "(no plot: python3-matplotlib not installed)"
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open(sys.argv[1])))
for mode in sorted({r["mode"] for r in rows}):
    sel = [r for r in rows if r["mode"] == mode]
    plt.plot([int(r["flows"]) for r in sel], [float(r["haports_mpps"]) for r in sel], marker="o",
             label=f"haports (HA ports, {'DSR' if mode == 'floating' else 'NAT'})")
first = [r for r in rows if r["mode"] == rows[0]["mode"]]
for key, label in [("testpmd_io_mpps", "testpmd io"), ("testpmd_macswap_mpps", "testpmd macswap"),
                   ("testpmd_5tswap_mpps", "testpmd 5tswap")]:
    plt.plot([int(r["flows"]) for r in first], [float(r[key]) for r in first], marker=".", linestyle="--", label=label)
plt.xscale("log"); plt.xlabel("flows"); plt.ylabel(f"Mpps ({rows[0]['workers']} worker core(s))")
plt.legend(); plt.grid(True, alpha=0.3)
plt.title("haports vs dpdk-testpmd: net_pcap (infinite_rx) -> net_null")
plt.savefig(sys.argv[2], dpi=100, bbox_inches="tight")
print("plot:", sys.argv[2])
PY
