# Two commands do all the set-up on a fresh machine with Python >= 3.11:
#   make example   create .venv, install manylm, run the bundled example
#   make test      create .venv, install manylm with test extras, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: example test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

example: $(VENV)/.installed
	$(BIN)/manylm example

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet ruff mypy pandas-stubs
	$(BIN)/ruff check src tests bench tools
	$(BIN)/mypy

bench: $(VENV)/.installed
	$(BIN)/python bench/bench_core.py
	$(BIN)/python bench/bench_counts.py

clean:
	rm -rf $(VENV) manylm-example
