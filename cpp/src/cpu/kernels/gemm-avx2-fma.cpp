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

CNNCORE_DEFINE_GEMM_VARIANTS(float, 6, (gemm_2v_kernel<Ymm<float>, 6>), f32_gemm_6x16__avx2_fma, f32_igemm_6x16__avx2_fma,
                             f32_wgemm_6x16__avx2_fma)
CNNCORE_DEFINE_GEMM_VARIANTS(double, 6, (gemm_2v_kernel<Ymm<double>, 6>), f64_gemm_6x8__avx2_fma, f64_igemm_6x8__avx2_fma,
                             f64_wgemm_6x8__avx2_fma)

}  // namespace cnncore::cpu
