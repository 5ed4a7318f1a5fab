# atomine: set-up, demo, tests, benchmarks and validation.
#
#   make demo      create .venv, install atomine, run the demo, print where the report is
#   make test      the whole test suite (slow tests included) on 2 workers; first installs the system
#                  packages some tests need (chromium, postgresql) when missing and allowed (tools/system-deps.sh)
#   make bench     benchmarks against the tools users would pick instead -> benchmarks/RESULTS.md
#   make validate  statistical acceptance checks (many seeds) -> benchmarks/VALIDATION.md
#   make clean     remove the virtualenv, the demo output and caches
#
# The virtualenv is installed once per change of pyproject.toml (stamp files in .venv),
# so re-running a target does not reinstall anything.

SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-output

# python3.11, else python3 when it is at least 3.11.
PYTHON_SYS ?= $(shell command -v python3.11 2>/dev/null || (python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && command -v python3))

.PHONY: demo test bench validate clean system-deps

$(BIN)/python:
	@if [ -z "$(PYTHON_SYS)" ]; then echo "error: atomine needs python3.11 (or a python3 >= 3.11) on PATH" >&2; exit 1; fi
	$(PYTHON_SYS) -m venv $(VENV) || { echo "error: could not create $(VENV); on Debian/Ubuntu install the python3.11-venv package" >&2; rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench,test]'
	@touch $@

demo: $(VENV)/.installed-base
	$(BIN)/atomine demo --out $(DEMO_DIR) --overwrite
	@echo "Open the report: $(CURDIR)/$(DEMO_DIR)/report.html"

system-deps:
	@bash tools/system-deps.sh

test: system-deps $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/run.py

validate: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/validate.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) build dist .pytest_cache .hypothesis src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.partial' -prune -exec rm -rf {} +
