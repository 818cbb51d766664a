#!/usr/bin/env bash
# Installs what haports is built, run and tested with, where missing: the Debian packages
# (needs root) and cargo-nextest. Rust itself (cargo and rustc, at least Cargo.toml's
# rust-version) is checked, not installed: Debian's is too old; this says how to get it.
#   scripts/install-deps.sh                everything: build, tests, demo, labs and benches
#                                          (bench-pps.sh adds its plot's matplotlib and -I's
#                                          valgrind itself)
#   scripts/install-deps.sh --no-nextest   everything but the test runner (the demos, benches)
#   scripts/install-deps.sh --build-only   what building and running haports needs (install.sh)
#   scripts/install-deps.sh --runtime-only what running a built haports needs (install.sh
#                                          --binary): DPDK's libraries and iproute2, no Rust
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/rust-path.sh"
build_only=false runtime_only=false nextest=true
case ${1:-} in
  "") ;;
  --no-nextest) nextest=false ;;
  --build-only) build_only=true ;;
  --runtime-only) build_only=true runtime_only=true ;;
  *) echo "usage: $0 [--no-nextest | --build-only | --runtime-only]" >&2; exit 2 ;;
esac
# DPDK 22.11's libraries: `dpdk` itself holds only its tools and merely recommends them,
# which --no-install-recommends skips; the meta packages bring EAL, ethdev, mbuf and
# mempool, every NIC and virtual PMD (AF_PACKET, AF_XDP, TAP for the kernel twins), the
# buses and the mempool handlers (ring, the default).
packages=(
  dpdk librte-meta-net librte-meta-bus librte-meta-mempool
  iproute2                           # the kernel twins are set up with `ip`
)
$runtime_only || packages+=(
  libdpdk-dev                        # DPDK's headers
  clang libclang-dev pkg-config      # bindgen over DPDK's headers (clang is also cc)
)
$build_only || packages+=(
  dpdk-dev                           # dpdk-testpmd, the benches' yardstick
  nftables ethtool conntrack         # the labs' filters, NVAs' conntrack
  iputils-ping python3 curl          # test traffic and probes
  procps                             # sysctl in the labs, kill in the tests
  util-linux                         # setpriv: the tests' haports dies with its test
  python3-scapy                      # hand-made malformed frames in the tests
  tcpreplay                          # the SYN flood test replays a million-source pcap
  tcpdump                            # what reaches the backends, in the hostile-traffic test
  bird2                              # BGP announcements: the scale-out lab's router and instances
  systemd                            # systemd-analyze verify, for the service unit
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

$runtime_only && exit 0
# Rust: cargo and rustc at least the rust-version the workspace declares.
need=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)
problem=""
for tool in cargo rustc; do
  if ! version=$("$tool" --version 2>/dev/null); then
    problem="no $tool that runs in PATH=$PATH"
    break
  fi
  have=$(echo "$version" | awk '{print $2}')
  have=${have%%-*}
  if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" != "$need" ]; then
    problem="$tool $have at $(command -v "$tool") is older"
    break
  fi
done
if [ -n "$problem" ]; then
  cat >&2 <<EOF
haports needs Rust $need or newer (rust-version in Cargo.toml): $problem.
Debian's rustc and cargo packages are older. Install Rust with rustup (https://rustup.rs)
as the user that runs this script (root, for the demo, the tests and install.sh):

  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh

then open a new shell (or run: . "\$HOME/.cargo/env") and run this again. Where rustup is
installed already: rustup update stable && rustup default stable.
EOF
  command -v curl >/dev/null || echo "(curl first: apt-get install curl ca-certificates)" >&2
  exit 1
fi

if ! $build_only && $nextest && ! cargo nextest --version >/dev/null 2>&1; then
  # Pinned: 0.9.85 is the newest cargo-nextest whose rust-version (1.75) is not above ours;
  # later releases need newer Rust (0.9.86: 1.81), and plain --locked takes the latest.
  cargo install cargo-nextest --version 0.9.85 --locked
fi
