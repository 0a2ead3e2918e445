# Developer entry points. Each target creates what it needs: the virtual environment
# (.venv), the build tools, and an editable build of fastvision that rebuilds changed C++ on
# import. Needs Python 3.10+ and a C++17 compiler; nothing else.
#
#   make bench-smoke   the main job (until the training stack lands): a kernel benchmark smoke run
#   make test          the whole test suite
#   make bench         the full kernel benchmark -> bench/results/cpu.md, .jsonl, .png
#   make dev           just the venv + editable build
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
BUILD_DEPS := scikit-build-core>=0.10 pybind11>=2.12 cmake>=3.18 ninja
TEST_DEPS  := numpy pytest hypothesis
BENCH_DEPS := matplotlib threadpoolctl

.PHONY: dev test bench bench-smoke clean

$(VENV)/.deps: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(BUILD_DEPS) $(TEST_DEPS) $(BENCH_DEPS)
	touch $@

$(VENV)/.installed: $(VENV)/.deps CMakeLists.txt pyproject.toml
	$(PIP) install -q --no-build-isolation -e .
	touch $@

dev: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

bench-smoke: $(VENV)/.installed
	$(PY) bench/bench_kernels.py --quick --threads 2

bench: $(VENV)/.installed
	$(PY) bench/bench_kernels.py --threads 2

clean:
	rm -rf build $(VENV) fastvision/_C*.so
