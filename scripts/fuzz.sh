#!/usr/bin/env bash
# Coverage-guided fuzzing of the whole per-packet path (fuzz/fuzz_targets/pipeline.rs, body
# in src/fuzzing.rs) with cargo-fuzz (libFuzzer) on stable Rust (no sanitizer: the code
# under test has no unsafe; panics and disagreements between the paths are the findings).
#
#   scripts/fuzz.sh [SECONDS]   default 60; installs what building haports needs
#                               (install-deps.sh --build-only) and cargo-fuzz when missing
#
# Starts from the committed seeds (fuzz/corpus/pipeline/seed-*, written by fuzz/seeds.py)
# and keeps what it finds in that folder (git ignores all but the seeds). A crash is saved
# under fuzz/artifacts/pipeline/; replay it with
#   cargo fuzz run -s none pipeline fuzz/artifacts/pipeline/crash-…
# The ordinary tests replay every seed (`fuzzing::tests`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/rust-path.sh
seconds=${1:-60}
# The fuzz crate builds haports, which needs DPDK's headers and libclang (bindgen over them),
# and a recent enough Rust: what install-deps.sh --build-only installs or checks.
scripts/install-deps.sh --build-only
cd fuzz
# Pinned: 0.12.0's lock file (version 3, its dependencies of 2022) builds with the Rust
# Cargo.toml asks for; the newest needs Rust 1.91.
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz --version 0.12.0
cargo fuzz run -s none pipeline corpus/pipeline -- \
  -max_total_time="$seconds" -max_len=16384 -print_final_stats=1
