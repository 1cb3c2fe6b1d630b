# migfuzz: `make fuzz` runs a real campaign on the embedded defaults; `make test` runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-packages kernels fuzz test test-fast bench soak clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -e '.[test]'
	touch $(STAMP)

fuzz: setup
	$(BIN)/migfuzz fuzz --execs 4000 --seed 1

# As root, the tests run in a fresh network namespace with only loopback up, so no packet
# can leave the machine (Ray, Chromium and PostgreSQL all work over loopback/unix sockets).
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
# Debian packages the tests use, installed here (outside the namespace, as root): Chromium
# for the dashboard's browser tests, PostgreSQL for the store tests.
TEST_PACKAGES := chromium postgresql
system-packages:
	@sh tests/system-packages.sh $(TEST_PACKAGES)

# The real-kernel lane's preparation (kernels/ci-lane.sh): the Debian packages it needs
# (kernel sources, build tools, QEMU, busybox), the 6.1.192 and 6.12.117 kernels built once
# per machine (cached under $$MIGFUZZ_CACHE, default ~/.cache/migfuzz: ~7 min each on a
# quiet 2-core machine, seconds once cached) and their initramfs, and 7.2.13 (Debian sid's
# source, fetched with a private apt state) with schedule points and with the H2b fix
# (docs/kernel-h2b.md: 7.8 CPU-min cold, the fix kernel 0.3 min seeded from it). Outside
# the namespace: it needs the package registry.
KERNEL_RELEASES := 6.1 6.12 7.2
kernels: setup
	@sh kernels/ci-lane.sh $(KERNEL_RELEASES)

# The model's fidelity check (fuzzer/kernel/sources.toml, docs/model.md): every model step's
# kernel function fingerprinted against Debian's 6.1.192 and 6.12.117 source packages,
# installed here first (outside any network namespace: it needs the package registry).
# 0.5 s per release once the sources are unpacked; the first run unpacks each tarball into
# the cache kernels/build.py keeps (12 s for 6.1 on this 2-core machine).
.PHONY: check-source
check-source: setup
	@sh tests/system-packages.sh linux-source-6.1 linux-source-6.12
	$(BIN)/migfuzz model check-source --release 6.1.192
	$(BIN)/migfuzz model check-source --release 6.12.117

# make test: everything, the real kernels included (with MIGFUZZ_KERNEL_LANE=1 a lane that
# cannot run fails instead of skipping). make test-fast: the same without the tests that
# boot a kernel (pytest -m "not kernel"), for a quick loop while developing.
RUN_TESTS = if [ "$$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then \
	  echo "running the tests in a fresh network namespace (loopback only)"; \
	  unshare -n sh -c 'ip link set lo up && exec $(PYTEST) $(1)'; \
	else \
	  $(PYTEST) $(1); \
	fi
test: setup system-packages kernels
	@export MIGFUZZ_KERNEL_LANE=1; $(call RUN_TESTS,)

test-fast: setup system-packages
	@$(call RUN_TESTS,-m "not kernel")

# The soak check (bench/soak.py): 10-minute campaigns in process and on a 2-worker Ray
# farm, into SQLite and PostgreSQL, then every triage command on what they stored (~45 min).
SOAK_ARGS ?=
soak: setup system-packages
	@if [ "$$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then \
	  unshare -n sh -c 'ip link set lo up && exec $(BIN)/python bench/soak.py $(SOAK_ARGS)'; \
	else \
	  $(BIN)/python bench/soak.py $(SOAK_ARGS); \
	fi

bench: setup
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) build *.egg-info
