# Every target creates .venv and installs what it needs: nothing has to be preinstalled.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench bench-serve bench-delta clean vectors fuzz mutation

# The first run takes about a minute: say so, and let pip show each package it fetches.
$(STAMP): pyproject.toml
	@echo "make: setting up $(VENV) (first run, or pyproject.toml changed): otaseal and its dev tools, about a minute"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)
	@echo "make: $(VENV) is ready"

demo: $(STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples fuzz
	$(VENV)/bin/ruff format --check src tests bench examples fuzz

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src

# System programs the tests start: PostgreSQL's initdb/pg_ctl and headless Chromium (the status
# page test). Installed from Debian only when missing and we are root (or have sudo); otherwise
# those tests skip and name the package.
sysdeps:
	@if command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		echo "sysdeps: pg_ctl found"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "sysdeps: no pg_ctl; running apt-get install -y --no-install-recommends postgresql"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; \
	elif command -v sudo >/dev/null 2>&1; then \
		echo "sysdeps: no pg_ctl; running sudo apt-get install -y --no-install-recommends postgresql"; \
		sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; \
	else \
		echo "sysdeps: no pg_ctl and not root: PostgreSQL tests will skip (install Debian's postgresql)"; \
	fi
	@if command -v chromium >/dev/null 2>&1; then \
		echo "sysdeps: chromium found"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "sysdeps: no chromium; running apt-get install -y --no-install-recommends chromium"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	elif command -v sudo >/dev/null 2>&1; then \
		echo "sysdeps: no chromium; running sudo apt-get install -y --no-install-recommends chromium"; \
		sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	else \
		echo "sysdeps: no chromium and not root: the HTML status page test will skip (install Debian's chromium)"; \
	fi

# The suite runs with a TMPDIR of its own that must be empty again after a passing run: a test
# (or a server or CLI it starts) that leaves a temp file behind fails `make test`, naming it.
# (A failing run keeps its failed tests' tmp_path folders; they go with the TMPDIR.)
unit: $(STAMP) sysdeps
	@tmp=$$(mktemp -d); chmod 755 "$$tmp"; \
	TMPDIR=$$tmp $(VENV)/bin/pytest --cov --cov-branch --cov-report=term --cov-fail-under=90; \
	status=$$?; \
	left=$$(cd "$$tmp" && find . -mindepth 1 -maxdepth 2 | head -20); \
	rm -rf "$$tmp"; \
	if [ $$status = 0 ] && [ -n "$$left" ]; then \
		echo "make: the test suite left these in its temp dir (remove them in the test):"; \
		echo "$$left"; \
		exit 1; \
	fi; \
	exit $$status

test: lint typecheck unit

vectors: $(STAMP)
	$(PY) tests/vectors/make_vectors.py

# Mutation testing (docs/TESTING.md): mutmut mutates the decision modules listed in pyproject's
# [tool.mutmut] and runs only the tests that exercise them; about 10 minutes on 2 cores. Each run
# starts from a clean mutants/ so a new test is always counted. MUTANTS='otaseal.trust.*' runs a
# subset; MUTATION_JOBS sets the workers (keep it low on a shared machine). Ends with the score
# per module and the surviving mutants (`.venv/bin/mutmut show NAME` prints one's diff).
MUTATION_JOBS ?= 2
MUTANTS ?=
mutation: $(STAMP)
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS)
	@$(VENV)/bin/mutmut results --all true | awk '$$2 == "not" { next } \
		{ m = $$1; sub(/\.x.*$$/, "", m); total[m]++; \
		  if ($$2 == "killed") killed[m]++; else left[m] = left[m] "\n    " $$1 " " $$2 } \
		END { for (m in total) { k += killed[m]; t += total[m]; \
			printf "%-24s %4d/%4d killed %5.1f %%%s\n", m, killed[m], total[m], 100 * killed[m] / total[m], left[m] } \
			if (t) printf "%-24s %4d/%4d killed %5.1f %%\n", "all", k, t, 100 * k / t }'

bench: $(STAMP)
	$(PY) bench/run.py

bench-serve: $(STAMP)
	$(PY) bench/serve_load.py

# Bytes per update, full against delta (issue 13): monaco 0.56.0 -> 0.57.0 (npm pack, cached in
# bench/.cache/delta), a 300-chunk app with a one-line change, an index.html-only release.
bench-delta: $(STAMP)
	$(PY) bench/delta.py

# Coverage-guided fuzzing (atheris): each target in fuzz/ for FUZZ_SECONDS, one after another;
# writes fuzz/REPORT.md and keeps every finding in fuzz/crashes/ (which `make test` replays).
FUZZ_SECONDS ?= 300
fuzz: $(STAMP)
	$(PY) fuzz/run.py --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage mutants
