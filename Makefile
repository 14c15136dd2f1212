# The gateway's commands. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GATEWAY_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
export GATEWAY_TEST_POSTGRES_URL

.PHONY: install run test test-fast lint format clean bench

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

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

## Measure the gateway's overhead against a direct baseline; results under var/bench/ (issue 7).
## DATABASE_URL=postgresql://... benchmarks PostgreSQL (in a throwaway schema); SOAK=1800 adds a soak.
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m bench.run $(if $(SOAK),--soak $(SOAK)) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
