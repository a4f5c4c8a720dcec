# Everything the project needs is installed from here: a fresh Debian machine
# needs only make, python3 and root (or sudo) for Debian's Dovecot.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= /tmp/onplatform-demo

.PHONY: install install-dovecot demo test lint typecheck unit bench soak clean

install: $(STAMP) install-dovecot

$(STAMP): pyproject.toml scripts/ensure-python-venv
	scripts/ensure-python-venv $(PYTHON)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install-dovecot:
	scripts/ensure-dovecot

demo: install
	$(BIN)/python -m tests.support.demo --dir $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check daemon detectors config templates tests scripts
	$(BIN)/ruff format --check daemon detectors config templates tests

typecheck: $(STAMP)
	scripts/typecheck $(BIN)

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not integration" -q

test: install lint typecheck
	$(BIN)/python -m pytest tests -q

# Benchmarks are scripts that print figures, not tests (see BENCHMARKS.md).
bench: install
	$(BIN)/python -m bench.run_all

# Long crash and fault runs, beyond what `make test` keeps within its budget.
soak: install
	ONPLATFORM_SOAK=1 $(BIN)/python -m pytest tests -q -m soak

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
