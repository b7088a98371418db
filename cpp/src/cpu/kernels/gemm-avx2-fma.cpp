// AVX2 + FMA GEMM micro-kernels (cpu/kernels/gemm-2v-body.hpp on ymm
// registers: 6 x 2 vectors, 12 accumulators of 16). This file alone is
// compiled with -mavx2 -mfma; its kernels run only after cpu/dispatch found
// both features.
#include <immintrin.h>

#include <cstdint>

namespace {

// Lane masks for maskload/maskstore: the first n lanes (n <= lanes) set.
inline __m256i first_lanes32(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}
inline __m256i first_lanes64(int64_t n) {
  const __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), idx);
}

template <typename T> struct Ymm;
template <> struct Ymm<float> {
  using V = __m256;
  static constexpr int lanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static __m256i mask(int64_t n) { return first_lanes32(n); }
  static V load(const float* p, __m256i k) { return _mm256_maskload_ps(p, k); }
  static void store(float* p, V v, __m256i k) { _mm256_maskstore_ps(p, k, v); }
};
template <> struct Ymm<double> {
  using V = __m256d;
  static constexpr int lanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static V bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static __m256i mask(int64_t n) { return first_lanes64(n); }
  static V load(const double* p, __m256i k) { return _mm256_maskload_pd(p, k); }
  static void store(double* p, V v, __m256i k) { _mm256_maskstore_pd(p, k, v); }
};

#include "cpu/kernels/gemm-2v-body.hpp"

}  // namespace

namespace cnncore::cpu {

void f32_gemm_6x16__avx2_fma(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                     int64_t m, int64_t n, bool accumulate) {
  gemm_2v_kernel<Ymm<float>, 6>(kc, APacked<float, 6>{a}, BStrided<float>{b, ldb}, c, ldc, m, n, accumulate);
}

void f32_igemm_6x16__avx2_fma(int64_t kc, const float* a, int64_t lda, const float* b, const int64_t* off,
                      float* c, int64_t ldc, int64_t m, int64_t n, bool accumulate) {
  gemm_2v_kernel<Ymm<float>, 6>(kc, AStrided<float, 6>(a, lda, m), BShifted<float>{b, off}, c, ldc, m, n, accumulate);
}

void f32_wgemm_6x16__avx2_fma(int64_t kc, const float* a, const int64_t* off, const float* b, int64_t ldb,
                      float* c, int64_t ldc, int64_t m, int64_t n, bool accumulate) {
  gemm_2v_kernel<Ymm<float>, 6>(kc, AOffsets<float, 6>(a, off, m), BStrided<float>{b, ldb}, c, ldc, m, n, accumulate);
}

void f64_gemm_6x8__avx2_fma(int64_t kc, const double* a, const double* b, int64_t ldb, double* c, int64_t ldc,
                     int64_t m, int64_t n, bool accumulate) {
  gemm_2v_kernel<Ymm<double>, 6>(kc, APacked<double, 6>{a}, BStrided<double>{b, ldb}, c, ldc, m, n, accumulate);
}

void f64_igemm_6x8__avx2_fma(int64_t kc, const double* a, int64_t lda, const double* b, const int64_t* off,
                      double* c, int64_t ldc, int64_t m, int64_t n, bool accumulate) {
  gemm_2v_kernel<Ymm<double>, 6>(kc, AStrided<double, 6>(a, lda, m), BShifted<double>{b, off}, c, ldc, m, n, accumulate);
}

void f64_wgemm_6x8__avx2_fma(int64_t kc, const double* a, const int64_t* off, const double* b, int64_t ldb,
                      double* c, int64_t ldc, int64_t m, int64_t n, bool accumulate) {
  gemm_2v_kernel<Ymm<double>, 6>(kc, AOffsets<double, 6>(a, off, m), BStrided<double>{b, ldb}, c, ldc, m, n, accumulate);
}

}  // namespace cnncore::cpu
