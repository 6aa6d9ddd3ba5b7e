# The two commands: `make run` (demo portal on http://127.0.0.1:5000) and `make test` (everything CI checks).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# numba: a writable cache and the fork- and thread-safe TBB threading layer (Debian libtbb12).
export NUMBA_CACHE_DIR ?= $(CURDIR)/instance/numba-cache
export NUMBA_THREADING_LAYER ?= tbb
export FLASK_APP := wsgi.py
PORT ?= 5000
TYPED := clinic_portal

.PHONY: run test lint typecheck test-sqlite test-postgres test-browser system-deps test-system-deps migrate seed bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

system-deps:
	scripts/system-deps.sh run

test-system-deps:
	scripts/system-deps.sh test

migrate: $(VENV)/.installed
	$(BIN)/flask db upgrade

seed: migrate
	$(BIN)/flask demo seed --if-empty --patients 60 --days 30 --seed 1

run: system-deps seed
	@echo "Starting the portal on http://127.0.0.1:$(PORT) (Ctrl-C stops it)"
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)

test-sqlite: $(VENV)/.test-installed
	$(BIN)/pytest -q -m "not browser" -p no:cacheprovider

test-postgres: $(VENV)/.test-installed
	scripts/with-postgres.sh $(BIN)/pytest -q -m "not browser" -p no:cacheprovider

test-browser: $(VENV)/.test-installed
	$(BIN)/pytest -q -m browser -p no:cacheprovider

test: test-system-deps lint test-sqlite test-postgres test-browser

bench: $(VENV)/.test-installed
	$(BIN)/python bench/roster.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
