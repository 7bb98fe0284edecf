# Two commands set everything up: `make demo` and `make test`.
# Each installs what it needs on first use (a virtualenv in .venv, npm tools for
# the contract tests, the Kafka broker's jars in the user cache directory).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_TOOLS := tests/tooling/node_modules/.installed
# Kills per kill test of the fault suite (tests/faults) in `make test`; `make faults`
# runs the full mode documented in docs/guarantees.md.
FAULT_TRIALS ?= 1
# Test processes of `make pytest` (pytest-xdist, each with a broker of its own): the
# broker tests mostly wait on workers, brokers and timers, so two processes nearly
# halve the run on a 2-core machine. A file's tests stay in one process, in the
# order collected (the long broker files first, the many short unit files last).
# PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2

.PHONY: demo test test-fast lint typecheck pytest faults install node-tools kafka-up kafka-down clean

# pip's own progress shows while it works: the first install takes a minute or two.
$(STAMP): pyproject.toml
	@echo "Installing Palaute and its tools into $(VENV) (once; a minute or two)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	@touch $@

install: $(STAMP)

$(NODE_TOOLS): tests/tooling/package.json tests/tooling/package-lock.json
	cd tests/tooling && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node-tools: $(NODE_TOOLS)

demo: $(STAMP)
	$(BIN)/palaute demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(NODE_TOOLS)
	PALAUTE_FAULT_TRIALS=$(FAULT_TRIALS) $(BIN)/pytest \
		-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# Unit, property and the in-memory behaviour suite: no broker, about a minute.
test-fast: $(STAMP) $(NODE_TOOLS)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not integration" tests/unit tests/property tests/behaviour

faults: $(STAMP)
	PALAUTE_FAULT_TRIALS=20 $(BIN)/pytest tests/faults

test: lint typecheck pytest

kafka-up: $(STAMP)
	$(BIN)/palaute kafka up

kafka-down: $(STAMP)
	$(BIN)/palaute kafka down

clean:
	rm -rf $(VENV) tests/tooling/node_modules .pytest_cache .mypy_cache .ruff_cache out
