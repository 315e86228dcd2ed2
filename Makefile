# The two commands a newcomer needs: `make serve` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: setup serve test test-fast test-deps lint bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

## Set up and start the registry on its embedded default (SQLite + files in one data directory).
serve: setup
	$(VENV)/bin/moorage serve $(ARGS)

## Install the real clients and servers the tests use (Debian packages; needs root).
test-deps:
	scripts/install-test-deps

## Style (ruff), types (mypy: all of src/moorage, strict on moorage.core), dead code (vulture); pyproject.toml
## configures each.
lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/vulture

## Set up everything and run the whole test suite: both tiers, real processes and in-process.
test: setup test-deps lint
	$(PY) -m pytest $(ARGS)

## The fast tier alone (tests marked `fast`: in-process, no server, no client; see tests/conftest.py), in
## seconds. Selecting no test is a failure: pytest then exits 5, and make stops on any non-zero status.
test-fast: setup
	$(PY) -m pytest -m fast -q $(ARGS)

bench: setup test-deps
	$(PY) -m bench.run $(ARGS)
