# Two commands for a fresh machine:
#   make demo   set up, then run the demo against the bundled simulator
#   make test   set up, then lint, type-check and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/python -m sendkit_async demo

lint: setup
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

typecheck: setup
	$(BIN)/python -m mypy --strict sendkit_async tests

test: lint typecheck
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
