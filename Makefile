# The gateway's commands. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GATEWAY_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
export GATEWAY_TEST_POSTGRES_URL

.PHONY: install run test lint format clean

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

lint: $(STAMP)
	$(BIN)/ruff check gateway tests
	$(BIN)/ruff format --check gateway tests

format: $(STAMP)
	$(BIN)/ruff check --fix gateway tests
	$(BIN)/ruff format gateway tests

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
