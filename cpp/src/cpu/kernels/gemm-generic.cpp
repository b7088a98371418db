// Baseline-ISA GEMM micro-kernels (any x86-64 / aarch64).
#include <cstdint>

namespace {
#include "cpu/kernels/gemm-ukernel.hpp"
}

namespace cnncore::cpu {

void f32_gemm_4x8__generic(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m,
                           int64_t n, bool accumulate) {
  gemm_ukernel_body<float, 4, 8>(kc, a, b, ldb, c, ldc, m, n, accumulate);
}

void f64_gemm_4x4__generic(int64_t kc, const double* a, const double* b, int64_t ldb, double* c, int64_t ldc, int64_t m,
                           int64_t n, bool accumulate) {
  gemm_ukernel_body<double, 4, 4>(kc, a, b, ldb, c, ldc, m, n, accumulate);
}

}  // namespace cnncore::cpu
