# The gateway's commands. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GATEWAY_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
export GATEWAY_TEST_POSTGRES_URL

.PHONY: install run test test-fast lint format clean bench

LOCK := requirements.lock
UV_VERSION := 0.13.8

.PHONY: lock

# Installs exactly what requirements.lock pins, each file checked against its hash (the ranges in
# setup.cfg stay for library use); then the gateway itself, editable, with nothing more fetched.
# pip check fails when setup.cfg names a package the lock lacks: run `make lock` then.
$(STAMP): setup.cfg pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

## Re-resolve setup.cfg's ranges (runtime + dev, and setuptools to build) into requirements.lock, with hashes.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	echo 'setuptools>=61' | $(BIN)/uv pip compile setup.cfg - --extra dev --universal \
		--python-version 3.11 --generate-hashes --custom-compile-command 'make lock' -o $(LOCK)

## Start the gateway on http://$${GATEWAY_BIND:-127.0.0.1:8000} (SQLite + mock provider by default).
run: $(STAMP)
	$(BIN)/gateway db init
	$(BIN)/gunicorn -c gunicorn.conf.py

## Run the whole suite (PostgreSQL cases use GATEWAY_TEST_POSTGRES_URL).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Run all but the live tests (gunicorn, nginx, the browser) on every core, SQLite and PostgreSQL alike.
test-fast: $(STAMP)
	GATEWAY_TEST_EXAMPLES=0.1 $(BIN)/python -m pytest -m "not live" -n auto $(PYTEST_ARGS)

## Lint and type-check: ruff on everything, mypy on gateway/ (settings in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix gateway tests bench
	$(BIN)/ruff format gateway tests bench

## The gateway against the floor (bench/floor.py) and direct, on SQLite and, when it answers (DATABASE_URL
## or GATEWAY_TEST_POSTGRES_URL), PostgreSQL; prints issue 16's ratios. BENCH_ARGS=--quick: a few minutes.
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m bench.run $(if $(SOAK),--soak $(SOAK)) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
