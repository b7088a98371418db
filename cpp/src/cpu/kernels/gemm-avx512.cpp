// AVX-512F GEMM micro-kernels (cpu/kernels/gemm-2v-body.hpp on zmm
// registers). This file alone is compiled with -mavx512f -mfma; its kernels run only
// after cpu/dispatch found AVX-512F.
#include <immintrin.h>

#include <cstdint>

namespace {

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
};

#include "cpu/kernels/gemm-2v-body.hpp"

}  // namespace

namespace cnncore::cpu {

CNNCORE_DEFINE_GEMM_VARIANTS(float, 8, (gemm_2v_kernel<Zmm<float>, 8>), f32_gemm_8x32__avx512, f32_igemm_8x32__avx512,
                             f32_wgemm_8x32__avx512)
CNNCORE_DEFINE_GEMM_VARIANTS(double, 8, (gemm_2v_kernel<Zmm<double>, 8>), f64_gemm_8x16__avx512, f64_igemm_8x16__avx512,
                             f64_wgemm_8x16__avx512)

}  // namespace cnncore::cpu
