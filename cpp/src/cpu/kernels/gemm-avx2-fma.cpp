// AVX2 + FMA GEMM micro-kernels. This file alone is compiled with
// -mavx2 -mfma; its kernels run only after cpu/dispatch found both features.
#include <cstdint>

namespace {
#include "cpu/kernels/gemm-ukernel.hpp"
}

namespace cnncore::cpu {

void f32_gemm_6x16__avx2_fma(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m,
                             int64_t n, bool accumulate) {
  gemm_ukernel_body<float, 6, 16>(kc, a, b, c, ldc, m, n, accumulate);
}

void f64_gemm_6x8__avx2_fma(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, int64_t m,
                            int64_t n, bool accumulate) {
  gemm_ukernel_body<double, 6, 8>(kc, a, b, c, ldc, m, n, accumulate);
}

}  // namespace cnncore::cpu
