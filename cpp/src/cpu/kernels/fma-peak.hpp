// The machine's fp32 FMA peak, measured: independent chains of vector FMAs
// on registers only (no memory traffic), one per thread, timed together.
#pragma once

#include <cstdint>

#include "cnncore/runtime.hpp"

namespace cnncore::cpu {

// Runs `iters` rounds of 12 independent FMA chains of one vector each and
// returns a value that depends on every result (so the work is not elided).
// The flops done are 2 * 12 * lanes * iters.
float f32_fma_chains__generic(int64_t iters, float seed);
float f32_fma_chains__avx2_fma(int64_t iters, float seed);    // 8 lanes
float f32_fma_chains__avx512(int64_t iters, float seed);      // 16 lanes

struct FmaPeak {
  double gflops;   // all threads together
  double seconds;  // wall time of the timed run
  int threads;
  Isa isa;
};

// Times the chains on `threads` threads at kernel level `isa` (at most the
// CPU's best) for about `seconds`.
FmaPeak measure_fma_peak(int threads, Isa isa, double seconds);

}  // namespace cnncore::cpu
