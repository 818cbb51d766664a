#!/usr/bin/env bash
# Installs the Debian packages haports builds, runs and is tested with (needs root).
set -euo pipefail
packages=(
  libdpdk-dev dpdk dpdk-dev          # DPDK 22.11: headers, PMDs, dpdk-testpmd
  clang libclang-dev pkg-config      # bindgen over DPDK's headers
  iproute2 nftables ethtool conntrack   # namespaces, veths, the labs' filters, NVAs' conntrack
  iputils-ping python3 curl          # test traffic and probes
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
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
