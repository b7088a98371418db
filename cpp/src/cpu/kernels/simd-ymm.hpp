// Ymm<T>: the AVX2 + FMA vector operations the hand-written kernels are
// written against (the same interface as Zmm<T> in simd-zmm.hpp; masks are
// lane vectors for maskload/maskstore). Include only from a file compiled
// with -mavx2 -mfma, inside an anonymous namespace, after <immintrin.h>.
#pragma once

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
  static float sum(V v) {
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
  }
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
  static double sum(V v) {
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  }
};
