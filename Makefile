# Two commands do everything from nothing: `make demo` and `make test`.
#   make demo: a venv with hybridsim and its core dependencies only, plus JAX's CUDA plugin
#              when `nvidia-smi -L` lists a GPU (extra `gpu`, CUDA 13; `gpu-cuda12` when the
#              driver only supports CUDA 12); then `hybridsim demo` (backend auto: warp on a
#              GPU, MuJoCo C on a CPU).
#   make test: the same install plus the `test` extra (pytest, ruff, Gymnasium, PettingZoo,
#              SB3 with torch's CPU build, Brax, Playground); then lint and the test suite.
# Each install step leaves a stamp in the venv, so a rerun installs nothing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
DEMO_STAMP := $(VENV)/.hybridsim-demo
TEST_STAMP := $(VENV)/.hybridsim-test

.PHONY: demo test lint format bench install clean lerobot-env test-lerobot

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@extra=""; \
	if nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then \
	  cuda=$$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\).*/\1/p' | head -n 1); \
	  if [ -n "$$cuda" ] && [ "$$cuda" -lt 13 ]; then extra="[gpu-cuda12]"; else extra="[gpu]"; fi; \
	  echo "NVIDIA GPU found (driver CUDA $${cuda:-unknown}): installing hybridsim$$extra with JAX's CUDA plugin"; \
	else \
	  echo "no NVIDIA GPU (nvidia-smi -L lists none): installing hybridsim for the CPU"; \
	fi; \
	echo "$(PIP) install -q -e .$$extra"; \
	$(PIP) install -q -e ".$$extra"
	touch $@

$(TEST_STAMP): $(DEMO_STAMP)
	$(PIP) install -q -e ".[test]"
	touch $@

install: $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/hybridsim demo

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	JAX_PLATFORMS=cpu $(BIN)/pytest -n 2 --dist loadgroup -q tests

bench: $(DEMO_STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python benchmarks/throughput.py
	JAX_PLATFORMS=cpu $(BIN)/python benchmarks/compile_time.py

# LeRobot 0.4.4 in its own venv (it needs torch < 2.11), to check that LeRobot loads what
# `hybridsim data export` writes: `make test-lerobot`. PyPI's Linux torch pulls CUDA wheels.
LEROBOT_PYTHON ?= python3.11
LEROBOT_VENV := .venv-lerobot
LEROBOT_STAMP := $(LEROBOT_VENV)/.hybridsim-lerobot

$(LEROBOT_STAMP):
	test -x $(LEROBOT_VENV)/bin/python || $(LEROBOT_PYTHON) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/python -m pip install -q --upgrade pip
	$(LEROBOT_VENV)/bin/python -m pip install -q lerobot==0.4.4 torch==2.9.1 torchvision==0.24.1
	touch $@

lerobot-env: $(LEROBOT_STAMP)

test-lerobot: lerobot-env $(TEST_STAMP)
	$(PIP) install -q -e ".[data]"
	JAX_PLATFORMS=cpu HYBRIDSIM_LEROBOT_PYTHON=$(LEROBOT_VENV)/bin/python \
	  $(BIN)/pytest -q tests/test_data_export.py -k lerobot_loads_export

clean:
	rm -rf $(VENV) build dist *.egg-info hybridsim_out
