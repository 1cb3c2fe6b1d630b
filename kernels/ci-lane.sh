#!/bin/sh
# The real-kernel lane's CI preparation: install what it needs (apt, OUTSIDE any network
# namespace: it needs the package registry), then build the kernels (cached under
# $MIGFUZZ_CACHE, default ~/.cache/migfuzz: a second run on the same machine takes seconds)
# and the hmm-tests initramfs, printing how long each step took.
#
#   kernels/ci-lane.sh [RELEASE...]        default: 6.1 6.12
#   kernels/ci-lane.sh 7.2                 the H2b kernels (docs/kernel-h2b.md; make test builds them): fetch
#       Debian sid's linux-source-7.2 with a private apt state (no apt-get install), build
#       `--patch mf_sched` cold (7.8 CPU-min) and the fix kernel seeded from it (~0.3 min);
#       then `MIGFUZZ_KERNEL_LANE=1 MIGFUZZ_KERNEL_RELEASES=7.2 ... -m kernel
#       tests/kernels/test_h2b_kernel.py`. No hmm-tests initramfs for 7.2.
#
# Then run the lane's tests with MIGFUZZ_KERNEL_LANE=1 so a lane that cannot run FAILS:
#   MIGFUZZ_KERNEL_LANE=1 .venv/bin/python -m pytest -q -p no:cacheprovider -m kernel tests/kernels
# Exit status: 0 ready, 2 something could not be installed or built (the line says what).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
py="$here/.venv/bin/python"
[ -x "$py" ] || py=python3
releases=${*:-"6.1 6.12"}
pkgs="flex bison libelf-dev libssl-dev bc cpio dwarves busybox-static qemu-system-x86 make gcc xz-utils"
for r in $releases; do
    case $r in 7.2) ;;      # not in the system's apt sources: fetched privately by the build
    *) pkgs="$pkgs linux-source-$r" ;;
    esac
done

now() { date +%s; }
step() { echo "ci-lane: $1: $(( $(now) - $2 ))s"; }

t=$(now)
missing=""
for p in $pkgs; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "ci-lane: missing packages: run \`apt-get install -y$missing\` as root" >&2
        exit 2
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null 2>&1
    if ! apt-get install -y -q $missing >/dev/null; then
        echo "ci-lane: \`apt-get install -y$missing\` failed" >&2
        exit 2
    fi
fi
step "packages${missing:+ (installed$missing)}" "$t"

cd "$here" || exit 2
for r in $releases; do
    t=$(now)
    if [ "$r" = 7.2 ]; then
        "$py" -m migfuzz kernel build --release 7.2 --patch mf_sched || exit 2
        step "kernel 7.2+mf_sched (fetch, build or cache)" "$t"
        t=$(now)
        "$py" -c "from migfuzz.kernels.h2b import kernel_for; print(kernel_for('fix').bzimage)" || exit 2
        step "kernel 7.2+h2b_fix+mf_sched (seeded build or cache)" "$t"
        continue
    fi
    "$py" -m migfuzz kernel build --release "$r" || exit 2
    step "kernel $r (build or cache)" "$t"
    t=$(now)
    "$py" -c "from migfuzz.kernels.initramfs import build_initramfs; print(build_initramfs('$r'))" || exit 2
    step "initramfs $r (hmm-tests)" "$t"
done
exit 0
