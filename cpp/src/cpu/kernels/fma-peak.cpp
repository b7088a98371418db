#include "cpu/kernels/fma-peak.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>

namespace {
#include "cpu/kernels/fma-peak-body.hpp"
typedef float v4f __attribute__((vector_size(16)));
}  // namespace

namespace cnncore::cpu {

float f32_fma_chains__generic(int64_t iters, float seed) { return fma_chains_body<v4f>(iters, seed); }

namespace {

using ChainsFn = float (*)(int64_t, float);

ChainsFn chains_for(Isa isa, int* lanes) {
#if defined(CNNCORE_HAVE_AVX512_KERNELS)
  if (isa >= Isa::avx512) {
    *lanes = 16;
    return &f32_fma_chains__avx512;
  }
#endif
#if defined(CNNCORE_HAVE_AVX2_KERNELS)
  if (isa >= Isa::avx2) {
    *lanes = 8;
    return &f32_fma_chains__avx2_fma;
  }
#endif
  (void)isa;
  *lanes = 4;
  return &f32_fma_chains__generic;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

FmaPeak measure_fma_peak(int threads, Isa isa, double seconds) {
  isa = std::min(isa, best_supported_isa());
  int lanes = 4;
  const ChainsFn fn = chains_for(isa, &lanes);
  threads = std::max(1, threads);
  seconds = std::clamp(seconds, 0.01, 60.0);
  // Calibrate on one thread: iterations for about a tenth of the time.
  int64_t iters = 1 << 16;
  volatile float sink = 0;
  for (;;) {
    const double t0 = now();
    sink = sink + fn(iters, 1.0f);
    const double dt = now() - t0;
    if (dt > seconds / 10 || iters > (int64_t(1) << 40)) {
      iters = static_cast<int64_t>(static_cast<double>(iters) * seconds / std::max(dt, 1e-9));
      break;
    }
    iters *= 4;
  }
  iters = std::max<int64_t>(iters, 1);
  double t_start = 0, t_end = 0;
#pragma omp parallel num_threads(threads)
  {
    // A first short round wakes every thread before the clock starts.
    sink = sink + fn(iters / 64 + 1, 2.0f);
#pragma omp barrier
#pragma omp single
    t_start = now();
    const float r = fn(iters, 3.0f + static_cast<float>(omp_get_thread_num()));
#pragma omp critical
    sink = sink + r;
#pragma omp barrier
#pragma omp single
    t_end = now();
  }
  const double dt = std::max(t_end - t_start, 1e-9);
  const double flops = 2.0 * 12 * lanes * static_cast<double>(iters) * threads;
  return FmaPeak{flops / dt * 1e-9, dt, threads, isa};
}

}  // namespace cnncore::cpu
