#!/usr/bin/env bash
# Regenerates python/cnncore/_core.pyi (the signatures editors and type
# checkers see for the private extension) from a built extension:
#   scripts/dev-build.sh me && scripts/gen-stubs.sh build/dev-me/stage
# tests/test_stubs.py fails when the stub and the extension disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-build/dev-default/stage}
python3 -m pip install -q pybind11-stubgen
out=$(mktemp -d)
PYTHONPATH="$stage" python3 -m pybind11_stubgen cnncore._core -o "$out"
cp "$out/cnncore/_core.pyi" python/cnncore/_core.pyi
rm -rf "$out"
echo "wrote python/cnncore/_core.pyi"
