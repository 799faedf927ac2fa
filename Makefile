# gridactor: `make run` serves config/infinispan.xml; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= config/infinispan.xml
ARGS ?=

.PHONY: install install-test run test lint typecheck unit clean bench bench-quick bench-deps

# Idempotent: re-runs pip only when pyproject.toml changed since the last install.
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e .
	touch $@

install-test: $(VENV)/.installed-test
$(VENV)/.installed-test: $(VENV)/.installed scripts/install-test-deps.sh
	bash scripts/install-test-deps.sh
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,kerberos]'
	touch $@

run: install
	$(VENV)/bin/gridactor run -c $(CONFIG) $(ARGS)

test: install-test
	bash scripts/install-test-deps.sh
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m mypy
	$(PY) -m pytest -q

unit: install-test
	$(PY) -m pytest -q tests/unit

lint: install-test
	$(PY) -m ruff check src tests benchmarks

typecheck: install-test
	$(PY) -m mypy

bench-deps:
	bash scripts/install-bench-deps.sh

# Starts its own servers and a Redis reference; prints a table, writes benchmarks/results/.
bench: install-test bench-deps
	$(PY) -m benchmarks.run $(ARGS)

bench-quick: install-test bench-deps
	$(PY) -m benchmarks.run --quick $(ARGS)

clean:
	rm -rf $(VENV) tests/interop/node/node_modules .pytest_cache .mypy_cache .ruff_cache
