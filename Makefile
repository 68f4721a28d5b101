# ogad: `make demo` builds the sample run and serves the dashboard; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
STAMP_RUN := $(VENV)/.installed

.PHONY: demo test test-fast lint types bench clean
CODE := ogad_core dashboard tests benchmarks

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(STAMP_RUN)

# make demo PORT=8600 serves the dashboard on another port
demo: $(STAMP_RUN)
	$(VENV)/bin/ogad demo $(if $(PORT),--port $(PORT))

# the gates, then the whole suite (browser and slow tests included)
test: $(STAMP) lint types
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo 'pytest: no tests collected'; fi; exit $$rc

# the inner loop: the gates and every test but the browser and slow ones
test-fast: $(STAMP) lint types
	$(PY) -m pytest -q -m "not browser and not slow"

lint: $(STAMP)
	$(PY) -m ruff check $(CODE)
	$(PY) -m ruff format --check $(CODE)

types: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

clean:
	rm -rf runs .pytest_cache .ruff_cache
