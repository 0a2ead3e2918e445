#!/usr/bin/env bash
# Developer build without pip: compiles fastvision/_C*.so in place (build/inplace holds the
# objects), so `PYTHONPATH=. python -m pytest` runs against this tree.
#   PYTHON=/path/to/python tools/build_inplace.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PYBIND11_DIR=$("$PY" -m pybind11 --cmakedir)
cmake -S . -B build/inplace -G Ninja -DFASTVISION_INPLACE=ON -DCMAKE_BUILD_TYPE=Release \
  -DPython_EXECUTABLE="$(command -v "$PY")" -Dpybind11_DIR="$PYBIND11_DIR" "$@" >/dev/null
cmake --build build/inplace
