#!/usr/bin/env bash
# Builds cnncore with the CUDA backend (-DCNNCORE_CUDA=ON) into build/dev-cuda and checks
# it: the C++ unit tests, then the CUDA-built module's device report and tests/test_cuda.py.
# On a machine with a GPU those tests run the kernels on it; without one the module must
# import, say why CUDA is unavailable, and pass the same tests on the host emulator.
# .ci/run calls this whenever nvcc is on PATH (compile errors fail CI); scripts/gpu-check.sh
# calls it on the GPU machine. CUDA_ARCHS overrides the architectures (default: sm_90 + PTX).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvcc >/dev/null || { echo "scripts/cuda-build.sh: nvcc is not on PATH" >&2; exit 1; }
args="-DCNNCORE_CUDA=ON"
if [[ -n "${CUDA_ARCHS:-}" ]]; then args="$args -DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS"; fi
nvcc --version | tail -2
CMAKE_ARGS="$args" JOBS="${JOBS:-2}" bash scripts/dev-build.sh cuda
(cd build/dev-cuda && ctest --output-on-failure -j "${JOBS:-2}")
stage=build/dev-cuda/stage
PYTHONPATH=$stage python3 - <<'PY'
import cnncore
info = cnncore._core.cuda_info()
print("cnncore", cnncore.__version__, "CUDA backend:", info)
assert info["built"], "the CUDA build does not report the backend as built"
if not info["available"]:
    assert info["why_unavailable"], "no device and no reason given"
PY
PYTHONPATH=$stage python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py
