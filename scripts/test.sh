#!/usr/bin/env bash
# Runs every test of haports: unit and property tests, the command line, and the
# end-to-end tests (real DPDK on AF_PACKET in network namespaces; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/rust-path.sh
scripts/install-deps.sh
# This run's mark in its labs' tags (tests/common's lab_tag): a test killed (Ctrl-C, or
# nextest's timeout) never runs its lab's teardown, so the run's end tears down whatever
# labs of this run are left, and no other run's.
export HAPORTS_TEST_RUN=r$$p
hp=/sys/kernel/mm/hugepages/hugepages-2048kB
hugepages_before=""
finish() {
  local rc=$? tag
  # A second Ctrl-C must not cut the teardown short.
  trap '' INT TERM
  for tag in $(ip netns list 2>/dev/null | awk '{print $1}' \
    | grep -E "^hp[tns]$HAPORTS_TEST_RUN[0-9]+x[0-9]+-" | sed 's/-[^-]*$//' | sort -u); do
    case $tag in
      hpt*) bash scripts/lab.sh down "$tag" ;;
      hpn*) bash scripts/nva-lab.sh down "$tag" ;;
      hps*) bash scripts/scale-out-lab.sh down "$tag" ;;
    esac >/dev/null 2>&1 || true
  done
  # The hugepage reservation as it was (pages a process still holds are released when it
  # exits); the tests' own status.
  if [ -n "$hugepages_before" ]; then echo "$hugepages_before" >"$hp/nr_hugepages" || true; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Built first: the reservation below takes 2 GiB the compiler and linker may want (the few
# doc tests are built by their run, at the end).
cargo build --workspace --all-targets --locked
# 2 MB hugepages, as users run: the labs and the start-up tests use them when at least 256
# are free (a start-up crash happened only with them). 1024 more (2 GiB) when fewer are free.
if [ -w "$hp/nr_hugepages" ] && [ "$(cat "$hp/free_hugepages")" -lt 256 ]; then
  hugepages_before=$(cat "$hp/nr_hugepages")
  echo $(( hugepages_before + 1024 )) > "$hp/nr_hugepages" || true
fi
cargo nextest run --workspace --no-fail-fast "$@"
cargo test --workspace --doc
