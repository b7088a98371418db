#!/usr/bin/env bash
# The prepared check for a machine with an NVIDIA GPU (sized for about 8 minutes):
#   1. build cnncore with the CUDA backend for sm_90 (+ PTX) into build/dev-cuda and run
#      tests/test_cuda.py there: every CUDA op against the CPU reference on the real GPU
#      (scripts/cuda-build.sh; SKIP_CTEST=1 leaves out the C++ unit tests for time);
#   2. benchmarks/cuda_vs_torch.py: ResNet-18 forward and training step at batch 32, 224x224, and the
#      per-layer convolution suite against PyTorch CUDA (TF32 off and on), then the
#      100-step device-memory leak check.
# Everything goes to the log (LOG, default $OUT/gpu-check.log when $OUT is set, else
# build/gpu-check.log); the summary lines are at its end.
set -uo pipefail
cd "$(dirname "$0")/.."
log=${LOG:-${OUT:+$OUT/gpu-check.log}}
log=${log:-build/gpu-check.log}
mkdir -p "$(dirname "$log")"
exec > >(tee "$log") 2>&1
echo "== gpu-check $(date -u +%FT%TZ) on $(hostname)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "nvidia-smi failed"
python3 -c "import numpy, pybind11, pytest; print('numpy', numpy.__version__, 'pybind11', pybind11.__version__)" \
  || { echo "gpu-check: numpy, pybind11 and pytest are needed"; exit 1; }
status=0
export JOBS=${JOBS:-$(nproc)}
if [[ "${SKIP_CTEST:-1}" == 1 ]]; then
  # the same as scripts/cuda-build.sh without ctest
  CMAKE_ARGS="-DCNNCORE_CUDA=ON ${CUDA_ARCHS:+-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS}" bash scripts/dev-build.sh cuda \
    || { echo "gpu-check: the CUDA build failed"; exit 1; }
  PYTHONPATH=build/dev-cuda/stage python3 -c "import cnncore; print(cnncore._core.cuda_info())"
  PYTHONPATH=build/dev-cuda/stage timeout 300 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py \
    || status=1
else
  bash scripts/cuda-build.sh || status=1
fi
# on this machine a GPU must be seen: without one the tests skip and the benchmark exits 0
PYTHONPATH=build/dev-cuda/stage python3 -c "import cnncore, sys; sys.exit(0 if cnncore.cuda.is_available() else 1)" \
  || { echo "gpu-check: FAILED: the CUDA build sees no GPU (cuda_info above says why)"; status=1; }
echo "== benchmarks/cuda_vs_torch.py"
PYTHONPATH=build/dev-cuda/stage:benchmarks timeout 300 python3 benchmarks/cuda_vs_torch.py --repeat "${REPEAT:-10}" || status=1
echo "== gpu-check finished: status $status"
exit $status
