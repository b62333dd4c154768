# sipha: `make test` and `make demo` set up everything they need on a fresh Debian machine (as root).
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
LOCK      := requirements/lock.txt
UV_VERSION := 0.13.9
DEB_PKGS  := sip-tester kamailio kamailio-tls-modules redis-server keepalived iproute2 procps curl \
             baresip-core chromium nftables stress-ng ethtool gcc python3-dev openssh-server
DEB_BINS  := sipp kamailio redis-server keepalived ip ps curl baresip chromium nft stress-ng \
             ethtool gcc sshd
# The SIP core compiled by mypyc (setup.py): rebuilt when a source of it changes.
CORE_SRC  := $(shell find src/sipha/sip -name '*.py') setup.py
COMPILED  := $(VENV)/.compiled

.PHONY: test demo lint typecheck unit setup deps venv bench clean lock

setup: deps venv

# Debian packages the tests use as real peers; installed only when one is missing.
deps:
	@missing=""; for b in $(DEB_BINS); do command -v $$b >/dev/null 2>&1 || missing=1; done; \
	ls /usr/lib/*/kamailio/modules/tls.so >/dev/null 2>&1 || missing=1; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $(DEB_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS) >/dev/null; \
	fi; \
	for b in $(DEB_BINS); do command -v $$b >/dev/null 2>&1 || { echo "missing $$b after install" >&2; exit 1; }; done; \
	ls /usr/lib/*/kamailio/modules/tls.so >/dev/null 2>&1 || { echo "missing kamailio's tls module after install" >&2; exit 1; }

venv: $(STAMP) $(COMPILED)

# Exactly the versions in the lock, each checked against its hash: a new release of any package
# can never change what a fresh clone installs. sipha itself is installed without build isolation,
# so the build tools come from the lock too.
$(STAMP): pyproject.toml $(LOCK)
	@# Debian splits venv (and its ensurepip) out of python3: install both when either is missing.
	@$(PY) -c 'import ensurepip, venv' 2>/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip >/dev/null; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	@touch $(STAMP)

# sipha itself, editable. mypyc compiles the SIP core into C extensions next to its sources
# (gcc and Python's headers: python3-dev for Debian's python3); rebuilt when a source of the core
# changes. SIPHA_PURE=1 make setup leaves them out (a pure build).
$(COMPILED): $(STAMP) $(CORE_SRC)
	@$(PY) -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc python3-dev >/dev/null; }
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	@touch $(COMPILED)

# Refresh the lock to the newest versions pyproject.toml allows. Then run `make test` on the new
# lock (the venv is rebuilt from it) before committing requirements/lock.txt.
lock:
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q 'uv==$(UV_VERSION)'
	$(BIN)/uv pip compile -q pyproject.toml requirements/build.in --extra dev --upgrade \
	  --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  --no-header -o $(LOCK)
	@rm -f $(STAMP)
	@echo "lock refreshed: run 'make test' before committing $(LOCK)"

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

unit: setup
	$(BIN)/python -bb -m pytest --durations=15

test: setup lint typecheck unit

# The paper's case C: two testers at 100 calls/s through the dispatcher pair; the active
# dispatcher is killed and restarted; once in the paper's profile and once in sipha's.
# Prints both summaries and where the reports are.
demo: setup
	$(BIN)/sipha run plans/case-c-dispatcher-failure.toml --profile both --out results/demo
	@echo "the same across hosts of their own (network namespaces, the pair in ip mode; root):"
	@echo "  $(BIN)/sipha run plans/case-c-dispatcher-failure.toml --profile both --hosts netns --out results/demo-netns"

# Every benchmark, sipha and its peer side by side (about 45 minutes; not part of make test).
# The figures and the commands that produced them are in docs/performance.md.
bench: setup
	$(BIN)/python bench/bench_parser.py --seconds 2
	$(BIN)/python bench/bench_server.py --seconds 4 --rates 300,600,900,1200,1500 --cpu-rate 300
	$(BIN)/python bench/bench_dispatcher.py --seconds 4 --rates 500,1000,1500,2000,2500 --cpu-rate 500
	$(BIN)/python bench/bench_dispatcher_memory.py --dialogs 100000
	$(BIN)/python bench/bench_loadtest.py --seconds 4 --rates 2000,4000,5000,6000,7000,8000
	$(BIN)/python bench/bench_failover.py --runs 10

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist
	find src -name '*.so' -delete
