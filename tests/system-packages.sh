#!/bin/sh
# Install the Debian packages the tests need, before `make test` enters the loopback-only
# network namespace (inside it no package registry can be reached): Chromium for the
# dashboard's browser tests, PostgreSQL for the store tests. Usage: system-packages.sh PKG...
# Already installed: nothing to do. Missing and not root: one line saying what to run, exit 2.
set -u
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "migfuzz: the tests need these packages:$missing (no apt-get here: install them by hand)" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "migfuzz: the tests need these packages:$missing; run 'sudo apt-get install -y$missing' first" >&2
  exit 2
fi
echo "installing system packages for the tests:$missing"
export DEBIAN_FRONTEND=noninteractive
# a fresh machine has no package lists yet: update once, then install
if ! apt-get install -y -qq $missing >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1
  if ! apt-get install -y -qq $missing >/tmp/migfuzz-apt.log 2>&1; then
    echo "migfuzz: could not install$missing (apt-get's output: /tmp/migfuzz-apt.log)" >&2
    exit 2
  fi
fi
