# stepdag — two commands on a fresh machine: `make demo` and `make test`.
# Both bootstrap .venv themselves; the stamp file makes the second call fast.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
EXAMPLE ?= statemachines/etl.py:wf

.PHONY: help venv demo test lint typecheck unit compile-check clean

help:
	@echo "make demo   run an example workflow locally (bootstraps .venv)"
	@echo "make test   lint, type-check and run the whole test suite"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

demo: venv
	@bash scripts/demo.sh $(BIN)

lint: venv
	$(BIN)/ruff check functions tests benchmarks statemachines
	$(BIN)/ruff format --check functions tests benchmarks statemachines

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -q

test: lint typecheck unit

clean:
	rm -rf $(VENV) .stepdag .pytest_cache .mypy_cache .ruff_cache
