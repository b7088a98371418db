// AVX-512F GEMM micro-kernels (32 zmm registers: an 8-row tile of two
// vectors per row keeps 16 accumulators live). This file alone is compiled
// with -mavx512f -mfma; its kernels run only after cpu/dispatch found AVX-512F.
#include <cstdint>

namespace {
#include "cpu/kernels/gemm-ukernel.hpp"
}

namespace cnncore::cpu {

void f32_gemm_8x32__avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m, int64_t n,
                           bool accumulate) {
  gemm_ukernel_body<float, 8, 32>(kc, a, b, c, ldc, m, n, accumulate);
}

void f64_gemm_8x16__avx512(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, int64_t m,
                           int64_t n, bool accumulate) {
  gemm_ukernel_body<double, 8, 16>(kc, a, b, c, ldc, m, n, accumulate);
}

}  // namespace cnncore::cpu
