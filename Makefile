# Two commands for a fresh machine:
#   make demo   install the package + `cli` extra, then run the demo (bundled simulator)
#   make test   install the `dev` extra, then lint, type-check and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per install: the demo needs only the package and its `cli` extra (rich);
# everything else (tests, linters, benchmarks) needs the whole `dev` extra.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[cli]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed-dev

demo: $(VENV)/.installed-demo
	$(BIN)/python -m sendkit_async demo

lint: setup
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

typecheck: setup
	$(BIN)/python -m mypy --strict sendkit_async tests examples

test: lint typecheck
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
