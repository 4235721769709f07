# Two commands on a fresh machine: `make build` compiles rules/ into build/, `make test` runs the tests
# and replays every bundled rule's test cases through its shipped KQL (`entra-sigma test --strict rules`).
# Both install what they need first (Python packages into .venv, Kusto.Language into tools/kusto-check).
# `make test-fast` is the edit loop: the tests not marked slow, kusto or replay (docs/ci.md).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
NODE_DEPS := tools/kusto-check/node_modules/.installed
# pytest-xdist workers (the machines have two cores); each test file runs on one worker, so its
# module fixtures run once (and one worker builds the wheel from the checkout at a time)
WORKERS ?= 2
PARALLEL := -n $(WORKERS) --dist loadfile

.PHONY: setup build test test-fast check-docs clean

setup: $(VENV)/.installed $(NODE_DEPS)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

$(NODE_DEPS): tools/kusto-check/package.json tools/kusto-check/package-lock.json
	npm ci --prefix tools/kusto-check --no-audit --no-fund --loglevel=error
	touch $@

build: setup
	$(BIN)/entra-sigma build rules --env prod --out build

test: setup
	$(BIN)/python -m pytest $(PARALLEL)
	$(BIN)/entra-sigma test --strict rules

test-fast: setup
	$(BIN)/python -m pytest $(PARALLEL) -q -m "not slow and not kusto and not replay"

clean:
	rm -rf build dist .setuptools-build .pytest_cache
