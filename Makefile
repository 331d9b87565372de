# The README's two commands are `make run` and `make test`; CI (.ci/run) calls `make test`.
# Both create ./.venv on first use, with nothing but python3 (>= 3.11), pip and make.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test test-core test-lower lint typecheck unit serve simulate-all clean manifests

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[sim]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

## run: the main job on the embedded default: a simulated week of a mybinder-like hub under
## upstream kube-scheduler defaults, z2jh's user-scheduler and our extender; prints the table
## and the plot paths (about 30 s on a 2-core machine)
run: $(VENV)/.installed
	$(BIN)/scheduler-extender simulate --scenario mybinder-week --seeds 1 --jobs 2 \
		--out sim-results/mybinder-week

## serve: the extender service over the embedded demo cluster (Ctrl-C to stop)
serve: $(VENV)/.installed
	$(BIN)/scheduler-extender serve

## simulate-all: regenerate every table and plot in benchmarks/results/ (several minutes)
simulate-all: $(VENV)/.installed
	$(BIN)/python benchmarks/run_simulations.py --jobs 2

## manifests: regenerate the chart's values.schema.json and the plain manifests (a test fails
## when they are stale)
manifests: $(VENV)/.installed-dev
	$(BIN)/python manifests/render.py

## test: lint, types, architecture contract and the whole test suite
test: $(VENV)/.installed-dev lint typecheck unit

## test-core: the developer's inner loop, the pure-core tests only (tests/core/, marker `core`)
test-core: $(VENV)/.installed-dev
	$(BIN)/pytest -q -m core

## test-lower: the suite against the oldest dependency versions pyproject.toml admits
## (.ci/lower-bounds.txt), in its own venv, so a floor that stopped working fails CI
LOWER := .venv-lower
$(LOWER)/.installed: pyproject.toml .ci/lower-bounds.txt
	$(PYTHON) -m venv $(LOWER)
	$(LOWER)/bin/python -m pip install --quiet --upgrade pip
	$(LOWER)/bin/pip install --quiet -c .ci/lower-bounds.txt -e '.[dev]'
	touch $@

test-lower: $(LOWER)/.installed
	$(LOWER)/bin/pytest -q -p no:cacheprovider

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) $(LOWER) .pytest_cache .mypy_cache .ruff_cache .hypothesis sim-results
