#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the C++ core, its
# unit tests and the Python extension, then the tests under them. Any
# sanitizer report fails the run (UBSan does not recover; ASan aborts).
#
#   scripts/sanitize.sh            # C++ tests (ctest, every ISA level) + the pytest slice
#   scripts/sanitize.sh cpp        # C++ tests only (what .ci/run runs)
#   scripts/sanitize.sh python     # pytest slice only (builds what it needs)
#   PYTEST_ARGS="tests/test_pool_reference.py" scripts/sanitize.sh python
#
# The build lives in build/sanitize (SANITIZE_DIR overrides). The extension
# is loaded into an ordinary python3 with the ASan runtime preloaded; leak
# detection is off there because the interpreter itself keeps memory at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
dir=${SANITIZE_DIR:-build/sanitize}
jobs=${JOBS:-2}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"

configure=(-S . -B "$dir" -DCMAKE_BUILD_TYPE=Sanitize
           "-DCMAKE_CXX_FLAGS_SANITIZE=$flags" "-DCMAKE_C_FLAGS_SANITIZE=$flags"
           "-DCMAKE_EXE_LINKER_FLAGS_SANITIZE=-fsanitize=address,undefined"
           "-DCMAKE_SHARED_LINKER_FLAGS_SANITIZE=-fsanitize=address,undefined"
           "-DCMAKE_MODULE_LINKER_FLAGS_SANITIZE=-fsanitize=address,undefined")
if [[ $what == cpp ]]; then
  configure+=(-DCNNCORE_BUILD_PYTHON=OFF)
elif python3 -m pybind11 --cmakedir >/dev/null 2>&1; then
  configure+=(-DCNNCORE_BUILD_PYTHON=ON "-Dpybind11_DIR=$(python3 -m pybind11 --cmakedir)")
else
  echo "scripts/sanitize.sh: the extension needs pybind11 (pip install pybind11)" >&2
  exit 2
fi
cmake "${configure[@]}" >/dev/null

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Freed tensor buffers go straight back to the allocator (no host cache), so
# AddressSanitizer sees every use after free.
export CNNCORE_HOST_CACHE_MB=0
if [[ $what == all || $what == cpp ]]; then
  cmake --build "$dir" -j "$jobs" --target cnncore_tests
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ctest --test-dir "$dir" --output-on-failure -R '^cnncore_tests'
fi
if [[ $what == all || $what == python ]]; then
  cmake --build "$dir" -j "$jobs" --target _core
  stage=$dir/stage
  rm -rf "$stage" && mkdir -p "$stage" && cp -r python/cnncore "$stage/" && cp "$dir"/_core*.so "$stage/cnncore/"
  # libstdc++ is preloaded with the ASan runtime: python3 does not link it, and
  # ASan's __cxa_throw interceptor must find the real one at start-up.
  preload="$(${CXX:-c++} -print-file-name=libasan.so) $(${CXX:-c++} -print-file-name=libstdc++.so)"
  # The pytest slice: every op family's reference, error and robustness tests
  # and the bad-input corpus (hypothesis at its CI profile).
  slice=${PYTEST_ARGS:-"tests/test_robustness.py tests/test_bad_inputs.py tests/test_conv2d_reference.py
    tests/test_conv2d_errors.py tests/test_pool_reference.py tests/test_pool_errors.py tests/test_layers_reference.py
    tests/test_layers_errors.py tests/test_conv_transpose.py tests/test_local_conv.py tests/test_tiled_conv.py
    tests/test_pad.py tests/test_conv_fft.py tests/test_empty_batches.py"}
  # shellcheck disable=SC2086
  LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 CNNCORE_SANITIZED=1 \
    PYTHONPATH=$stage python3 -m pytest -q -p no:cacheprovider $slice
fi
