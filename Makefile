# Every target creates .venv and installs what it needs: nothing has to be preinstalled.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench bench-serve clean vectors

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src

unit: $(STAMP)
	$(VENV)/bin/pytest --cov --cov-branch --cov-report=term --cov-fail-under=90

test: lint typecheck unit

vectors: $(STAMP)
	$(PY) tests/vectors/make_vectors.py

bench: $(STAMP)
	$(PY) bench/run.py

bench-serve: $(STAMP)
	$(PY) bench/serve_load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
