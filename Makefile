# The two commands of the quick start are `make reproduce` and `make test`; both set up the environment first.
# `make test-fast` is the tier to run after every change (unit, parity, golden traces, mutations: ~4 min);
# `make test` runs it, then the end-to-end tests (pretraining budgets, table scripts, the micro regression).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
ARGS ?=

.PHONY: setup test test-fast lint reproduce reproduce-all format clean

setup:
	@bash scripts/setup_env.sh

test-fast: setup
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

test: test-fast
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

reproduce: setup
	@if [ ! -f reproduce/table1.py ]; then \
	  echo "make reproduce: Table 1 is not built yet (reproduce/table1.py lands with the ImageNet-1K protocols)"; \
	  exit 2; \
	fi
	$(PY) reproduce/table1.py $(ARGS)

# every table of RESULTS.md in one run (reproduce/all.py): Tables 1-5 on the default budget, one progress display
reproduce-all: setup
	$(PY) reproduce/all.py $(ARGS)

clean:
	rm -rf work_dirs .pytest_cache
