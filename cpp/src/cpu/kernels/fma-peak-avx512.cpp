// FMA peak probe, AVX-512F (16 fp32 lanes). Compiled with -mavx512f -mfma.
#include <cstdint>

namespace {
#include "cpu/kernels/fma-peak-body.hpp"
typedef float v16f __attribute__((vector_size(64)));
}  // namespace

namespace cnncore::cpu {
float f32_fma_chains__avx512(int64_t iters, float seed) { return fma_chains_body<v16f>(iters, seed); }
}  // namespace cnncore::cpu
