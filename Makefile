# Two commands do everything from nothing: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hybridsim-installed

.PHONY: demo test lint format bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hybridsim demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	JAX_PLATFORMS=cpu $(BIN)/pytest -n 2 --dist loadgroup -q tests

bench: $(STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python benchmarks/throughput.py
	JAX_PLATFORMS=cpu $(BIN)/python benchmarks/compile_time.py

clean:
	rm -rf $(VENV) build dist *.egg-info hybridsim_out
