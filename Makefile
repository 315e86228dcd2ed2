# The two commands a newcomer needs: `make serve` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: setup serve test test-deps lint bench

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

lint: setup
	$(VENV)/bin/ruff check src tests bench

## Set up everything and run the whole test suite.
test: setup test-deps lint
	$(PY) -m pytest $(ARGS)

bench: setup test-deps
	$(PY) -m bench.run $(ARGS)
