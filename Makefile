# make run: set up, compile the kernels once (make warm) and run the main job on the
#   embedded default data.
# make test: set up and run ruff, `dg check defs` and every test.
# make check: ruff and the fast tier (every test without a tier marker; see docs/testing.md).
# make ui: the Dagster UI (dg dev) on the embedded SQLite instance.
# make postgres / make ui-postgres / make postgres-stop: the deployment instance on a
#   project-local PostgreSQL server (see docs/operations.md).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

.PHONY: run warm test check test-plain-python lint bench ui ui-postgres postgres postgres-stop \
	system-packages clean

# The engine's tests again with the kernels as plain Python (no compilation).
ENGINE_TESTS := tests/test_ledger.py tests/test_orders.py tests/test_costs_and_cash.py \
	tests/test_phase_order.py tests/test_sealed_state.py tests/test_invariants.py \
	tests/test_properties.py tests/test_trades.py tests/test_kernels.py \
	tests/test_resting_orders.py tests/test_risk_rules.py tests/test_resting_invariants.py \
	tests/test_bracket_placement.py

DAGSTER_HOME := $(CURDIR)/.dagster_home
PG_HOME := $(CURDIR)/.dagster_home_postgres
UI_HOST ?= 127.0.0.1
UI_PORT ?= 3000
PG_DIR ?= $(CURDIR)/.postgres
PG_PORT ?= 55432

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(RUNTIME): pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

# Compile every kernel of this checkout once, so the first run loads them from the cache.
# The cache lives in the checkout, one folder per version of the kernels: a new clone or a
# changed kernel is compiled here; when the cache is complete this does nothing.
warm: $(RUNTIME)
	$(PY) -m engine.warmup

$(DEV): pyproject.toml $(RUNTIME)
	$(PIP) install -q -e '.[dev]'
	$(PY) -m engine.peers.zipline --setup
	$(PY) -m engine.peers.nautilus --setup
	touch $@

run: warm
	$(VENV)/bin/tradegap run

lint: $(DEV)
	$(VENV)/bin/ruff check .

# Debian packages the tests need: chromium (UI test), postgresql (Postgres instance test).
system-packages:
	@if ! command -v chromium >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql; \
	fi

test: $(DEV) system-packages
	$(VENV)/bin/ruff check .
	DAGSTER_HOME=$$(mktemp -d) $(VENV)/bin/dg check defs
	$(VENV)/bin/pytest -q
	$(MAKE) test-plain-python

# The fast tier: the tests that carry none of the markers declared in pyproject.toml.
FAST := not (slow or peers or ui or postgres or dask or corpus)

check: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q -m "$(FAST)"

test-plain-python: $(DEV)
	NUMBA_DISABLE_JIT=1 $(VENV)/bin/pytest -q -p no:cacheprovider $(ENGINE_TESTS)

ui: export DAGSTER_HOME = $(CURDIR)/.dagster_home
ui: warm $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m pipelines.ui --host $(UI_HOST) --port $(UI_PORT)

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster-local.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

postgres: $(RUNTIME)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)
	$(PY) deploy/postgres.py start --dir $(PG_DIR) --port $(PG_PORT)

postgres-stop:
	$(PY) deploy/postgres.py stop --dir $(PG_DIR)

ui-postgres: export DAGSTER_HOME = $(PG_HOME)
ui-postgres: export TRADEGAP_PG_PORT = $(PG_PORT)
ui-postgres: export TRADEGAP_PG_HOST ?= 127.0.0.1
ui-postgres: export TRADEGAP_PG_USER ?= tradegap
ui-postgres: export TRADEGAP_PG_PASSWORD ?= tradegap
ui-postgres: export TRADEGAP_PG_DB ?= tradegap
ui-postgres: postgres $(PG_HOME)/dagster.yaml
	$(PY) -m pipelines.ui --host $(UI_HOST) --port $(UI_PORT)

$(PG_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(PG_HOME)
	cp $< $@

bench: $(DEV)
	$(PY) bench/engine_vs_vectorbt.py
	$(PY) bench/stops_vs_vectorbt.py
	$(PY) bench/gap_speed.py
	$(PY) bench/gap_drawn.py
	$(PY) bench/make_run.py
	$(PY) bench/cold_start.py
	$(PY) bench/sweep_dask.py
	$(PY) bench/sweep_grid.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
