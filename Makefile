# migfuzz: `make fuzz` runs a real campaign on the embedded defaults; `make test` runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-packages fuzz test bench soak clean

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

test: setup system-packages
	@if [ "$$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then \
	  echo "running the tests in a fresh network namespace (loopback only)"; \
	  unshare -n sh -c 'ip link set lo up && exec $(PYTEST)'; \
	else \
	  $(PYTEST); \
	fi

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
