#!/usr/bin/env bash
# Builds this tree in place (tools/build_inplace.sh) and keeps a copy of the package under
# build/ab/NAME for tools/ab_kernels.py, then removes the in-place module again.
#   PYTHON=.venv/bin/python tools/ab_build.sh old   # e.g. after `git stash`
#   PYTHON=.venv/bin/python tools/ab_build.sh new   # after `git stash pop`
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: tools/ab_build.sh NAME}
PY=${PYTHON:-python3}
PATH="$(dirname "$(command -v "$PY")"):$PATH" PYTHON="$PY" tools/build_inplace.sh >/dev/null
rm -rf "build/ab/$name" && mkdir -p "build/ab/$name" && cp -r fastvision "build/ab/$name/"
rm -f fastvision/_C*.so
