// Zmm<T>: the AVX-512F vector operations the hand-written kernels are
// written against (lanes, unaligned and masked loads and stores, broadcast,
// fma, horizontal sum). Include only from a file compiled with -mavx512f,
// inside an anonymous namespace, after <immintrin.h>.
#pragma once

template <typename T> struct Zmm;
template <> struct Zmm<float> {
  using V = __m512;
  static constexpr int lanes = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V bcast(const float* p) { return _mm512_set1_ps(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }
  static V load(const float* p, __mmask16 k) { return _mm512_maskz_loadu_ps(k, p); }
  static void store(float* p, V v, __mmask16 k) { _mm512_mask_storeu_ps(p, k, v); }
  static float sum(V v) {  // via memory: GCC 12's _mm512_reduce_add_ps warns of an undefined half
    alignas(64) float t[16];
    _mm512_store_ps(t, v);
    for (int w = 8; w >= 1; w /= 2)
      for (int i = 0; i < w; ++i) t[i] += t[i + w];
    return t[0];
  }
};
template <> struct Zmm<double> {
  using V = __m512d;
  static constexpr int lanes = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V bcast(const double* p) { return _mm512_set1_pd(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static __mmask8 mask(int64_t n) { return n >= 8 ? __mmask8(0xFF) : __mmask8((1u << n) - 1); }
  static V load(const double* p, __mmask8 k) { return _mm512_maskz_loadu_pd(k, p); }
  static void store(double* p, V v, __mmask8 k) { _mm512_mask_storeu_pd(p, k, v); }
  static double sum(V v) {
    alignas(64) double t[8];
    _mm512_store_pd(t, v);
    for (int w = 4; w >= 1; w /= 2)
      for (int i = 0; i < w; ++i) t[i] += t[i + w];
    return t[0];
  }
};
