#!/usr/bin/env bash
# Runs every test of haports: unit and property tests, the command line, and the
# end-to-end tests (real DPDK on AF_PACKET in network namespaces; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/rust-path.sh
scripts/install-deps.sh
# 2 MB hugepages, as users run: the labs and the start-up tests use them when at least 256
# are free (a start-up crash happened only with them). 1024 more (2 GiB) when fewer are free.
hp=/sys/kernel/mm/hugepages/hugepages-2048kB
if [ -w "$hp/nr_hugepages" ] && [ "$(cat "$hp/free_hugepages")" -lt 256 ]; then
  hugepages_before=$(cat "$hp/nr_hugepages")
  # Put the reservation back as it was once the tests end, however they end (pages a process
  # still holds are released when it exits), and exit with the tests' own status.
  restore_hugepages() {
    local rc=$?
    echo "$hugepages_before" >"$hp/nr_hugepages" || true
    exit "$rc"
  }
  trap restore_hugepages EXIT
  echo $(( hugepages_before + 1024 )) > "$hp/nr_hugepages" || true
fi
cargo build --workspace --all-targets --locked
cargo nextest run --workspace --no-fail-fast "$@"
cargo test --workspace --doc
