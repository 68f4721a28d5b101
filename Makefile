# ogad: `make demo` builds the sample run and serves the dashboard; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
STAMP_RUN := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(VENV)/bin/ogad demo

test: $(STAMP)
	$(PY) -m ruff check ogad_core dashboard tests benchmarks
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo 'pytest: no tests collected'; fi; exit $$rc

lint: $(STAMP)
	$(PY) -m ruff check ogad_core dashboard tests benchmarks
	$(PY) -m ruff format --check ogad_core dashboard tests benchmarks

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

clean:
	rm -rf runs .pytest_cache .ruff_cache
