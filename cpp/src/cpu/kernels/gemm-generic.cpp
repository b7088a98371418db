// Baseline-ISA GEMM micro-kernels (any x86-64 / aarch64).
#include <cstdint>

namespace {
#include "cpu/kernels/gemm-ukernel.hpp"
}

namespace cnncore::cpu {

void f32_gemm_4x8__generic(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                     int64_t m, int64_t n, bool accumulate) {
  gemm_ukernel_body<float, 4, 8>(kc, APacked<float, 4>{a}, BStrided<float>{b, ldb}, c, ldc, m, n, accumulate);
}

void f32_igemm_4x8__generic(int64_t kc, const float* a, int64_t lda, const float* b, const int64_t* off,
                      float* c, int64_t ldc, int64_t m, int64_t n, bool accumulate) {
  gemm_ukernel_body<float, 4, 8>(kc, AStrided<float, 4>(a, lda, m), BShifted<float>{b, off}, c, ldc, m, n, accumulate);
}

void f32_wgemm_4x8__generic(int64_t kc, const float* a, const int64_t* off, const float* b, int64_t ldb,
                      float* c, int64_t ldc, int64_t m, int64_t n, bool accumulate) {
  gemm_ukernel_body<float, 4, 8>(kc, AOffsets<float, 4>(a, off, m), BStrided<float>{b, ldb}, c, ldc, m, n, accumulate);
}

void f64_gemm_4x4__generic(int64_t kc, const double* a, const double* b, int64_t ldb, double* c, int64_t ldc,
                     int64_t m, int64_t n, bool accumulate) {
  gemm_ukernel_body<double, 4, 4>(kc, APacked<double, 4>{a}, BStrided<double>{b, ldb}, c, ldc, m, n, accumulate);
}

void f64_igemm_4x4__generic(int64_t kc, const double* a, int64_t lda, const double* b, const int64_t* off,
                      double* c, int64_t ldc, int64_t m, int64_t n, bool accumulate) {
  gemm_ukernel_body<double, 4, 4>(kc, AStrided<double, 4>(a, lda, m), BShifted<double>{b, off}, c, ldc, m, n, accumulate);
}

void f64_wgemm_4x4__generic(int64_t kc, const double* a, const int64_t* off, const double* b, int64_t ldb,
                      double* c, int64_t ldc, int64_t m, int64_t n, bool accumulate) {
  gemm_ukernel_body<double, 4, 4>(kc, AOffsets<double, 4>(a, off, m), BStrided<double>{b, ldb}, c, ldc, m, n, accumulate);
}

}  // namespace cnncore::cpu
