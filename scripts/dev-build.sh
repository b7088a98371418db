#!/usr/bin/env bash
# Developer build without pip: compiles the core, the C++ tests and the
# Python extension into build/dev-NAME, and stages an importable package in
# build/dev-NAME/stage. Several people can work side by side, each with a
# NAME of their own:
#
#   scripts/dev-build.sh me && PYTHONPATH=build/dev-me/stage python3 -m pytest -q
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-default}
dir=build/dev-$name
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" >/dev/null
cmake --build "$dir" -j "${JOBS:-1}"
rm -rf "$dir/stage" && mkdir -p "$dir/stage"
cp -r python/cnncore "$dir/stage/"
cp "$dir"/_core*.so "$dir/stage/cnncore/"
echo "staged: PYTHONPATH=$dir/stage"
