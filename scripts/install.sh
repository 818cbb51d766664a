#!/usr/bin/env bash
# Installs haports as a systemd service (as root):
#   scripts/install.sh [--prefix /usr/local] [--sysconfdir /etc] [--unitdir /etc/systemd/system]
#                      [--hugepages 1024] [--binary PATH]
# Builds the release binary (unless --binary names one; with what building it needs,
# install-deps.sh --build-only: no test tools; with --binary, what running it needs,
# --runtime-only), installs it to PREFIX/bin, the
# hugepage helper to PREFIX/lib/haports, the README to PREFIX/share/doc/haports, the unit
# to UNITDIR/haports.service, a starting config to SYSCONFDIR/haports/haports.toml (never
# over an existing one), and tmpfiles.d/haports.conf, which makes /run/haports and the
# routes file BIRD includes at boot. When UNITDIR is one of the system's unit directories,
# that goes to /etc/tmpfiles.d (where systemd reads it, whatever SYSCONFDIR is), /run/haports
# is made now, and systemd, running, reloads. Any other UNITDIR is a scratch install
# (tests/service.rs) that leaves the running system alone: SYSCONFDIR/tmpfiles.d.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/rust-path.sh"
prefix=/usr/local sysconfdir=/etc unitdir=/etc/systemd/system hugepages=1024 binary=""
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --sysconfdir) sysconfdir=$2; shift 2 ;;
    --unitdir) unitdir=$2; shift 2 ;;
    --hugepages) hugepages=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    *) echo "unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  "$here/install-deps.sh" --build-only
  (cd "$root" && cargo build --release --bin haports)
  binary=$root/target/release/haports
else
  "$here/install-deps.sh" --runtime-only
fi
bindir=$prefix/bin libdir=$prefix/lib/haports docdir=$prefix/share/doc/haports confdir=$sysconfdir/haports
install -d "$unitdir"
# Into the system only when the unit goes where systemd looks for it: a scratch UNITDIR must
# not make /run/haports nor have the host's systemd reload.
system=false
case $(cd "$unitdir" && pwd -P) in
  /etc/systemd/system | /usr/local/lib/systemd/system | /usr/lib/systemd/system | /lib/systemd/system)
    system=true ;;
esac
tmpfilesdir=$sysconfdir/tmpfiles.d
$system && tmpfilesdir=/etc/tmpfiles.d
install -d "$bindir" "$libdir" "$docdir" "$confdir" "$tmpfilesdir"
install -m 0755 "$binary" "$bindir/haports"
install -m 0755 "$here/hugepages.sh" "$libdir/hugepages"
install -m 0644 "$root/README.md" "$docdir/README.md"
sed -e "s#@BINDIR@#$bindir#g" -e "s#@LIBDIR@#$libdir#g" -e "s#@CONFDIR@#$confdir#g" \
  -e "s#@DOCDIR@#$docdir#g" -e "s#@HUGEPAGES@#$hugepages#g" \
  "$root/dist/haports.service.in" >"$unitdir/haports.service"
chmod 0644 "$unitdir/haports.service"
install -m 0644 "$root/dist/haports.tmpfiles" "$tmpfilesdir/haports.conf"
if [ -e "$confdir/haports.toml" ]; then
  echo "kept the existing $confdir/haports.toml"
else
  install -m 0644 "$root/dist/haports.toml" "$confdir/haports.toml"
  echo "installed a starting config: edit $confdir/haports.toml for this machine"
fi
if $system; then
  # Now, not only at the next boot: BIRD may be (re)started before haports first runs.
  systemd-tmpfiles --create "$tmpfilesdir/haports.conf"
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
fi
echo "installed; start with: systemctl enable --now haports"
