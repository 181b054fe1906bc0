# orderdesk — `make run` serves the API on SQLite, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
LINT_PATHS := src tests $(wildcard bench)

.PHONY: run test lint format lock clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "orderdesk needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs come from the compiled locks only; the project itself is installed
# without dependencies and without build isolation, so nothing unpinned is fetched.
.deps-runtime.stamp: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

.deps-dev.stamp: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-deps -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@ .deps-runtime.stamp

run: .deps-runtime.stamp
	$(BIN)/orderdesk migrate upgrade
	$(BIN)/orderdesk seed-demo
	$(BIN)/orderdesk serve --host $(HOST) --port $(PORT)

test: .deps-dev.stamp
	$(BIN)/pytest $(PYTEST_ARGS)

lint: .deps-dev.stamp
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy src

format: .deps-dev.stamp
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

# Re-pin after changing pyproject.toml dependencies.
lock: .deps-dev.stamp
	$(BIN)/uv pip compile pyproject.toml --extra build --universal --python-version 3.11 -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra build --extra dev --universal --python-version 3.11 -q -o requirements-dev.lock

clean:
	rm -rf $(VENV) .deps-*.stamp .mypy_cache .ruff_cache .pytest_cache
