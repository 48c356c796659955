# The two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKERS ?= 2
# API processes of `make run` (empty: WEB_CONCURRENCY, else one per core; README "Processes")
PROCESSES ?=
# The browser tests drive Debian's chromium through Playwright (whose own browser download
# is not used); `make install` installs it when missing, so a fresh CI machine has it.
export CHROMIUM ?= /usr/bin/chromium

.PHONY: run demo webapp test test-bare faults explore install lint documents bench bench-subscribers bench-cluster clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,embedded]'
	touch $(STAMP)

# The tests' OpenID provider (tests/oidc/provider, oidc-provider pinned by its lockfile):
# npm ci only when the lockfile changed since the last install, so an offline rerun works.
OIDC_PROVIDER := tests/oidc/provider
OIDC_PROVIDER_STAMP := $(OIDC_PROVIDER)/node_modules/.installed
$(OIDC_PROVIDER_STAMP): $(OIDC_PROVIDER)/package-lock.json $(OIDC_PROVIDER)/package.json
	cd $(OIDC_PROVIDER) && npm ci --no-audit --no-fund
	touch $(OIDC_PROVIDER_STAMP)

install: $(STAMP) $(CHROMIUM) $(OIDC_PROVIDER_STAMP)

$(CHROMIUM):
	@if command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "no apt-get: install Chromium and set CHROMIUM=/path/to/it for the browser tests"; fi

## make run: install, migrate, start the API (PROCESSES processes, default one per core)
## and WORKERS workers (Ctrl-C stops all). With no DATABASE_URL / REDIS_URL it starts
## embedded PostgreSQL and Valkey (data in .data/).
## DEMO=1 (or `make demo`) loads the demo catalog and prints a staff token and the URLs.
run: install
	$(BIN)/coursereg run --workers $(WORKERS) $(if $(PROCESSES),--processes $(PROCESSES)) $(if $(DEMO),--demo)

demo:
	COURSEREG_DEMO_LOGIN=true $(MAKE) run DEMO=1

## make webapp: after a change of webapp/package.json, vendor the student app's libraries
## (npm ci from the lockfile, then webapp/vendor.mjs copies them with their sha384 hashes
## into infrastructure/http/pages/static/app/vendor/ and the page's import map). The output
## is committed: `make run` and `make test` need no npm and no network.
webapp:
	cd webapp && npm ci --no-audit --no-fund
	node webapp/vendor.mjs

## make test: install, then lint, type-check and the whole suite: on TEST_DATABASE_URL /
## TEST_REDIS_URL when set (.ci/run sets them), else on embedded servers it starts.
## Three tests at a time (pytest-xdist): each has its own database and key prefix, and the
## suite mostly waits (serial: 14 min for 5 min of CPU; -n 3: 5 min 15 s, same 2 cores).
TEST_PROCESSES ?= 3
test: install lint
	$(BIN)/pytest -q -n $(TEST_PROCESSES)

## make faults: only the fault tests (tests/faults, also in make test), with their figures
faults: install
	$(BIN)/pytest -q -s tests/faults

## make explore: the interleaving explorer (tests/explorer, whose fixed seeds make test runs)
## on fresh seeds for SECONDS (default 60); prints each failing seed with its shrunk step
## list. SEED=n replays one seed and shrinks it if it fails. EXPLORE_TOLERATE=kind,... looks
## past violations of those kinds (a finding whose fix has not landed yet).
SECONDS ?= 60
explore: install
	@if [ -n "$(SEED)" ]; then \
	  EXPLORE_SEED=$(SEED) $(BIN)/pytest -q -s tests/explorer/test_explorer.py; \
	else \
	  EXPLORE_SECONDS=$(SECONDS) $(BIN)/pytest -q -s tests/explorer/fresh_seeds.py; \
	fi

## make test-bare: the suite as on a machine without database servers: no URLs set and, as
## root, in a network namespace of its own where this machine's services cannot be reached
BARE_ENV := env -u TEST_DATABASE_URL -u TEST_REDIS_URL -u DATABASE_URL -u REDIS_URL
test-bare: install
	@if [ "$$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null; then \
	  $(BARE_ENV) unshare --net sh -c 'ip link set lo up && exec $(BIN)/pytest -q'; \
	else \
	  echo "not root: no network namespace, only the URLs unset"; $(BARE_ENV) $(BIN)/pytest -q; \
	fi

## make documents: the student app's operations (webapp/operations/<Name>.graphql) as the
## server's trusted-document manifest and the app's operations.js, in
## infrastructure/http/pages/static/app/ (committed; make test fails when they are stale)
documents: install
	$(BIN)/python -m infrastructure.http.documents build webapp/operations \
	  infrastructure/http/pages/static/app

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

## make bench-subscribers: 10,000 seatUpdates subscribers on one API process (and a few on a
## second): change-to-push latency p50/p99, same replica and across replicas. Needs this
## machine's PostgreSQL and Redis (DATABASE_URL, REDIS_URL); ARGS="--help" lists options.
bench-subscribers: install
	$(BIN)/python -m bench.subscribers $(ARGS)

## make bench: the rush measured against the framework ceiling and a naive Postgres baseline,
## all in one run (under 10 minutes, progress shown), then bench-subscribers as item 5 and the
## import of 5,000 sections and 50,000 students from CSV (bench/imports.py) as item 6;
## results in docs/benchmarks/. Uses the PostgreSQL and Redis of DATABASE_URL / REDIS_URL
## (this machine's by default) with a database and key prefix of its own, and wrk.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	@command -v wrk >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench.run $(ARGS)

## make bench-cluster: the rush on one Redis server and on a Redis Cluster of three (both
## private to the run: redis-server, redis-cli and wrk on PATH), one and two API processes,
## and the CPU each side used; results in docs/benchmarks/cluster.{json,md}.
bench-cluster: install $(BENCH_STAMP)
	$(BIN)/python -m bench.cluster $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
