// AVX2 + FMA locally connected convolution micro-kernels. This file alone is
// compiled with -mavx2 -mfma; its kernels run only after cpu/dispatch found both.
#include <cstdint>

namespace {
#include "cpu/kernels/local-conv-ukernel.hpp"
}

namespace cnncore::cpu {

void f32_local_dot_nt__avx2(int64_t M, int64_t O, int64_t K, const float* P, int64_t ldp, const float* W,
                            const float* Wt, float* Y, int64_t ldy) {
  local_dot_nt_body<float, 8, 2>(M, O, K, P, ldp, W, Wt, Y, ldy);
}
void f64_local_dot_nt__avx2(int64_t M, int64_t O, int64_t K, const double* P, int64_t ldp, const double* W,
                            const double* Wt, double* Y, int64_t ldy) {
  local_dot_nt_body<double, 4, 2>(M, O, K, P, ldp, W, Wt, Y, ldy);
}
void f32_local_gemm_bcast__avx2(int64_t M, int64_t N, int64_t Kd, const float* A, int64_t sai, int64_t sap,
                                const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  local_gemm_bcast_body<float, 8>(M, N, Kd, A, sai, sap, B, ldb, C, ldc, accumulate);
}
void f64_local_gemm_bcast__avx2(int64_t M, int64_t N, int64_t Kd, const double* A, int64_t sai, int64_t sap,
                                const double* B, int64_t ldb, double* C, int64_t ldc, bool accumulate) {
  local_gemm_bcast_body<double, 4>(M, N, Kd, A, sai, sap, B, ldb, C, ldc, accumulate);
}

}  // namespace cnncore::cpu
