#!/bin/sh
# Reserves COUNT 2 MB hugepages (at least; more already reserved stay) and mounts a
# hugetlbfs of 2 MB pages where none is mounted, for DPDK. The service runs it before
# haports; by hand: scripts/hugepages.sh 1024   (as root)
set -eu
count=${1:-1024}
pool=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
case $count in '' | *[!0-9]*) echo "usage: $0 COUNT (2 MB pages)" >&2; exit 2 ;; esac
[ -e "$pool" ] || { echo "this kernel has no 2 MB hugepages ($pool is missing: another base page size, or no hugetlbfs)" >&2; exit 1; }
[ -w "$pool" ] || { echo "$pool is not writable: run as root" >&2; exit 1; }
if [ "$(cat "$pool")" -lt "$count" ]; then
  echo "$count" >"$pool"
fi
got=$(cat "$pool")
if [ "$got" -lt "$count" ]; then
  echo "only $got of $count 2 MB hugepages could be reserved (memory too fragmented: reserve them at boot, hugepages=$count on the kernel command line)" >&2
  exit 1
fi
if ! grep -q 'hugetlbfs .*pagesize=2M' /proc/mounts; then
  mkdir -p /dev/hugepages-2M
  mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages-2M
fi
echo "$got 2 MB hugepages reserved"
