# The two commands of the README. Both create the environment from nothing on first use.
#   make run    create .venv, install, run a short stress campaign and show its result
#   make test   create .venv, install, run the whole test suite, slow tests included, on
#               every core (pytest-xdist; what .ci/run runs: bench/ci_time.md)
#   make test-fast   the same without the slow tests (what a plain `pytest` runs)
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: install run test test-fast test-all lint browser
install: $(BIN)/.installed

run: $(BIN)/.installed
	$(BIN)/migfuzz stress --seconds 30

# -n auto: one pytest worker per core; worksteal: a worker that runs out of tests takes half
# of another's queue, so the long slow tests do not leave a core idle at the end.
test: $(BIN)/.installed browser
	$(BIN)/pytest --run-slow -n auto --dist worksteal

test-fast: $(BIN)/.installed browser
	$(BIN)/pytest

test-all: test

# tests/test_report_browser.py renders the nightly report in Debian's chromium (it fails, not
# skips, under CI=true without it): installed here when missing, if apt-get can (root).
browser:
	@[ -x /usr/bin/chromium ] || ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ] || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	    >/dev/null; } || echo "warning: could not install chromium; the browser test needs it"

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
