# Developer entry points. Each target creates what it needs: the virtual environment
# (.venv), the build tools, and an editable build of fastvision that rebuilds changed C++ on
# import. Needs Python 3.10+ and a C++17 compiler; nothing else.
#
#   make mnist         the main job: train the reference CNN on MNIST (5 epochs, batch 64, Adam)
#   make test          the whole test suite
#   make bench-smoke   a validated kernel benchmark smoke run
#   make bench         the full kernel benchmark -> bench/results/cpu.md, .jsonl, .png
#   make dev           just the venv + editable build
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
BUILD_DEPS := "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.18" ninja
TEST_DEPS  := numpy pytest hypothesis
BENCH_DEPS := matplotlib threadpoolctl

# MNIST: the project's shared copy when present, else $FASTVISION_DATA, else ~/.cache/fastvision
# (downloaded there from the standard mirrors, MD5-checked, on first use).
MNIST_DATA ?= $(firstword $(wildcard ../shared/datasets/mnist) $(FASTVISION_DATA))
MNIST_ARGS ?= --epochs 5 --batch-size 64 --seed 0

.PHONY: dev test mnist bench bench-smoke clean

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

mnist: $(VENV)/.installed
	$(PY) examples/mnist_cnn.py $(if $(MNIST_DATA),--data $(MNIST_DATA)) $(MNIST_ARGS)

bench-smoke: $(VENV)/.installed
	$(PY) bench/bench_kernels.py --quick --threads 2

bench: $(VENV)/.installed
	$(PY) bench/bench_kernels.py --threads 2

clean:
	rm -rf build $(VENV) fastvision/_C*.so
