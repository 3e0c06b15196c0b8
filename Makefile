# Confab: `make run` to try it, `make test` to check everything. Nothing else is needed first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The PostgreSQL run of the suite (the machine's server; see tests/tools/ensure-system.sh).
PG_URL ?= postgres://postgres:postgres@127.0.0.1:5432/confab
REDIS_TEST_URL ?= redis://127.0.0.1:6379/0

.PHONY: run run-cluster test lint typecheck test-sqlite test-postgres test-browser bench messages clean

$(BIN)/daphne: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(BIN)/daphne
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## run: one process, SQLite, in-memory channel layer, DEBUG on, on http://127.0.0.1:8000
run: $(BIN)/daphne
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	@echo "Confab is at http://$(HOST):$(PORT)/"
	DEBUG=1 $(BIN)/daphne -b $(HOST) -p $(PORT) config.asgi:application

## run-cluster: N daphne workers behind nginx on Redis (deploy/run-cluster.sh)
run-cluster: $(BIN)/daphne
	deploy/run-cluster.sh

## test: system packages and services, lint, types, the suite on SQLite, on PostgreSQL
## with Redis, and the browser suite in a loopback-only network namespace
test: $(VENV)/.dev-installed
	tests/tools/ensure-system.sh
	$(MAKE) --no-print-directory lint typecheck test-sqlite test-postgres test-browser

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy .

test-sqlite: $(VENV)/.dev-installed
	$(BIN)/pytest -m "not browser and not cluster" -p no:cacheprovider

test-postgres: $(VENV)/.dev-installed
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest -m "not browser" -p no:cacheprovider

# Browser tests run where WebRTC can only see loopback (docs: shared browser notes);
# everything they need (daphne, coturn, redis) starts inside the namespace.
test-browser: $(VENV)/.dev-installed
	unshare --net sh -c 'ip link set lo up && exec $(BIN)/pytest -m browser -p no:cacheprovider tests/browser'

## bench: the signaling benchmark, then browser call setup in a loopback-only namespace
## (about 30 minutes); writes bench/results/latest.json and docs/performance.md
bench: $(VENV)/.dev-installed
	tests/tools/ensure-system.sh
	$(BIN)/python -m bench.run
	unshare --net sh -c 'ip link set lo up && exec $(BIN)/python -m bench.call_setup'
	unshare --net sh -c 'ip link set lo up && exec $(BIN)/python -m bench.sfu'

clean:
	rm -rf $(VENV) staticfiles test-output .mypy_cache .ruff_cache
