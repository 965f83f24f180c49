# The two commands of the quick start are `make reproduce` and `make test`; both set up the environment first.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
ARGS ?=

.PHONY: setup test lint reproduce format clean

setup:
	@bash scripts/setup_env.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

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

clean:
	rm -rf work_dirs tables/out .pytest_cache
