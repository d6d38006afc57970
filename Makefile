# The two commands of the README. Both create the environment from nothing on first use.
#   make run    create .venv, install, run a short stress campaign and show its result
#   make test   create .venv, install, run the test suite (what .ci/run runs)
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: install run test test-all lint
install: $(BIN)/.installed

run: $(BIN)/.installed
	$(BIN)/migfuzz stress --seconds 30

test: $(BIN)/.installed
	$(BIN)/pytest

test-all: $(BIN)/.installed
	$(BIN)/pytest --run-slow

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
