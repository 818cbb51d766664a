#!/usr/bin/env bash
# Runs every test of haports: unit and property tests, the command line, and the
# end-to-end tests (real DPDK on AF_PACKET in network namespaces; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --workspace --all-targets --locked 2>/dev/null || cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast "$@"
cargo test --workspace --doc
