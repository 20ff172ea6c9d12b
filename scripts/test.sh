#!/usr/bin/env bash
# The whole test suite, as CI runs it (README: "Run the tests").
# Installs what the tests need when it is missing (as root, with apt), builds everything,
# then runs the unit, property, adapter, end-to-end and conformance tests. The conformance
# suite runs three times: with the plain view, with every syscall intercepted through the
# hybrid mechanism, and with every syscall intercepted through ptrace.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing $2 (for $1)"
    [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  else
    echo "test.sh: $1 is missing (Debian package $2)" >&2
    exit 1
  fi
}
need setpriv util-linux
need bash bash
need pgrep procps
need cc gcc
need busybox busybox-static
need unshare util-linux
need git git
need python3 python3
need fakeroot fakeroot
need cpio cpio
need make make
need dpkg-deb dpkg
need sqlite3 sqlite3
need pytest-3 python3-pytest

# A minimal Debian root for `dpkg -i` under `-0 -r` (adapters/viewos/tests/fakeroot.rs):
# the .deb files of dpkg and what it runs, downloaded once.
export VIEWOS_DEBS=${VIEWOS_DEBS:-/var/tmp/viewos-debs}
if [ ! -f "$VIEWOS_DEBS/.complete" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "test.sh: downloading the .debs of a minimal Debian root into $VIEWOS_DEBS"
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
  mkdir -p "$VIEWOS_DEBS"
  (cd "$VIEWOS_DEBS" && apt-get download -qq dpkg tar libc6 libc-bin libacl1 libbz2-1.0 liblzma5 libmd0 \
     libpcre2-8-0 libselinux1 zlib1g libzstd1 busybox-static 2>/dev/null) && touch "$VIEWOS_DEBS/.complete"
  chmod -R a+rX "$VIEWOS_DEBS"
fi

# Tests run viewos as uid 65534 too: the build must be reachable by that user.
if [ "$(id -u)" = 0 ] && ! setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$PWD/Cargo.toml" 2>/dev/null; then
  export CARGO_TARGET_DIR=/var/tmp/viewos-target
  mkdir -p "$CARGO_TARGET_DIR" && chmod 755 "$CARGO_TARGET_DIR"
  echo "test.sh: $PWD is not readable by uid 65534; building in $CARGO_TARGET_DIR"
fi

cargo build --workspace --bins --examples
cargo test --workspace
# The adapter's own tests drive the tracer in-process; run them unprivileged as well.
if [ "$(id -u)" = 0 ]; then
  bin=$(cargo test -p viewos-tracer --test decisions --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*decisions[^"]*\)".*/\1/p' | tail -n 1)
  echo "test.sh: adapter tests as uid 65534 ($bin)"
  (cd /tmp && setpriv --reuid=65534 --regid=65534 --clear-groups env TMPDIR=/tmp "$bin" -q)
fi
for opts in "--intercept=all" "--intercept=all --mechanism=ptrace"; do
  echo "test.sh: conformance with VIEWOS_OPTS='$opts'"
  VIEWOS_OPTS="$opts" cargo test -p viewos-conformance -q
done
cargo bench --workspace --no-run
echo "test.sh: all tests passed"
