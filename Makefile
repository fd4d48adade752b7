# Campaign Pulse: `make run` starts everything on this machine, `make test` checks everything.
# Needs only Python 3.11+ (set PYTHON=/path/to/python3.x to choose one).

.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The first of these that is Python 3.11 or newer, unless PYTHON is given.
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { echo $$p; break; }; done)

.PHONY: help install run test lint bench clean

help:
	@echo "make run    start Campaign Pulse (Redis, database, server, worker, desktop app)"
	@echo "make test   lint, type-check and run the tests"
	@echo "make lint   only lint and type-check"
	@echo "make bench  run the benchmarks"
	@echo "make clean  remove $(VENV) (your data stays where 'pulse up' prints it)"

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then \
		echo "Campaign Pulse needs Python 3.11 or newer and none was found." >&2; \
		echo "Install it (Debian/Ubuntu: sudo apt install python3 python3-venv;" \
			"macOS: brew install python@3.12), or run: make PYTHON=/path/to/python3.11" >&2; \
		exit 1; \
	fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "$(PYTHON) is older than Python 3.11; run: make PYTHON=/path/to/python3.11" >&2; \
		exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "Could not create $(VENV). On Debian/Ubuntu: sudo apt install python3-venv" >&2; \
		exit 1; }

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/pulse up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Three test processes share the two cores (most tests wait on servers, workers and timers);
# the fault-injection tests, which time what real processes do under faults, run alone after.
test: lint
	$(BIN)/pytest -m "not faults" -n 3
	$(BIN)/pytest -m faults

# Each prints its own table; the figures from this machine are in README.md.
bench: $(STAMP)
	$(BIN)/python -m bench.launch --members 100000
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.members_import --members 100000
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/desktop_bench.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m bench.desktop_login --campaigns 1000,10000
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m bench.commit_to_cell
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m bench.desktop_export --rows 10000
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m bench.desktop_offline --campaigns 1000,10000
	$(BIN)/python -m bench.fanout --subscribers 100,1000,10000

clean:
	rm -rf $(VENV)
