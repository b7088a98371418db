// FMA peak probe, AVX2 + FMA (8 fp32 lanes). Compiled with -mavx2 -mfma.
#include <cstdint>

namespace {
#include "cpu/kernels/fma-peak-body.hpp"
typedef float v8f __attribute__((vector_size(32)));
}  // namespace

namespace cnncore::cpu {
float f32_fma_chains__avx2_fma(int64_t iters, float seed) { return fma_chains_body<v8f>(iters, seed); }
}  // namespace cnncore::cpu
