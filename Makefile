# make run: set up and run the main job on the embedded default data.
# make test: set up and run ruff and every test.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

.PHONY: run test test-plain-python lint bench ui clean

# The engine's tests again with the kernels as plain Python (no compilation).
ENGINE_TESTS := tests/test_ledger.py tests/test_orders.py tests/test_costs_and_cash.py \
	tests/test_phase_order.py tests/test_sealed_state.py tests/test_invariants.py \
	tests/test_properties.py tests/test_trades.py tests/test_kernels.py

DAGSTER_HOME := $(CURDIR)/.dagster_home
UI_PORT ?= 3000

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(RUNTIME): pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

$(DEV): pyproject.toml $(RUNTIME)
	$(PIP) install -q -e '.[dev]'
	$(PY) -m engine.peers.zipline --setup
	touch $@

run: $(RUNTIME)
	$(VENV)/bin/tradegap run

lint: $(DEV)
	$(VENV)/bin/ruff check .

test: $(DEV)
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q
	$(MAKE) test-plain-python

test-plain-python: $(DEV)
	NUMBA_DISABLE_JIT=1 $(VENV)/bin/pytest -q -p no:cacheprovider $(ENGINE_TESTS)

ui: $(RUNTIME) $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME) $(VENV)/bin/dagster dev -h 127.0.0.1 -p $(UI_PORT) -w workspace.yaml

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\n' > $@

bench: $(DEV)
	$(PY) bench/engine_vs_vectorbt.py
	$(PY) bench/make_run.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
