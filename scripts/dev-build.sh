#!/usr/bin/env bash
# Developer build without pip: compiles the core, the C++ tests and the
# Python extension into build/dev-NAME, and stages an importable package in
# build/dev-NAME/stage. Several people can work side by side, each with a
# NAME of their own:
#
#   scripts/dev-build.sh me && PYTHONPATH=build/dev-me/stage python3 -m pytest -q
#
# CMAKE_ARGS adds CMake options, e.g. CMAKE_ARGS=-DCNNCORE_CUDA=ON (scripts/cuda-build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-default}
dir=build/dev-$name
# The Python extension needs pybind11's CMake files: without them CMake would build only
# the C++ library, and this script would fail at its last step, after the whole build.
if ! pybind11_dir=$(python3 -m pybind11 --cmakedir 2>/dev/null); then
  echo "scripts/dev-build.sh: pybind11 is not installed for $(command -v python3);" \
       "run: python3 -m pip install pybind11 (or pip install '.[dev]')" >&2
  exit 1
fi
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$pybind11_dir" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$dir" -j "${JOBS:-1}"
if ! ls "$dir"/_core*.so >/dev/null 2>&1; then
  echo "scripts/dev-build.sh: the build made no Python extension ($dir/_core*.so);" \
       "see CMake's messages above" >&2
  exit 1
fi
rm -rf "$dir/stage" && mkdir -p "$dir/stage"
cp -r python/cnncore "$dir/stage/"
cp "$dir"/_core*.so "$dir/stage/cnncore/"
echo "staged: PYTHONPATH=$dir/stage"
