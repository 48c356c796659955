# The two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKERS ?= 2
# The browser tests drive Debian's chromium through Playwright (whose own browser download
# is not used); `make install` installs it when missing, so a fresh CI machine has it.
export CHROMIUM ?= /usr/bin/chromium

.PHONY: run test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP) $(CHROMIUM)

$(CHROMIUM):
	@if command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "no apt-get: install Chromium and set CHROMIUM=/path/to/it for the browser tests"; fi

## make run: install, migrate, start the API and its workers (Ctrl-C stops all)
run: install
	$(BIN)/coursereg run --workers $(WORKERS)

## make test: install, then lint, type-check and the whole suite (real Postgres and Redis)
test: install lint
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
