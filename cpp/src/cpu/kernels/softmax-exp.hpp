// exp(x) for float written so that compilers vectorise it inside `omp simd`
// loops (libm's expf is an opaque call that keeps those loops scalar; at SSE2
// width this takes about half the instructions). Used by the fast softmax,
// cross-entropy and sigmoid kernels; the references use std::exp.
//
//   exp(x) = 2^n * exp(r),  n = round(x / ln 2),  r = x - n ln 2 (Cody-Waite, |r| <= ln2 / 2)
//
// exp(r) is its degree-7 Taylor polynomial (truncation error below 0.1 ulp);
// 2^n is built from exponent bits in two halves so that results down to the
// subnormals and up to overflow (inf) come out right. Measured error: at most
// 1 ulp from glibc's expf over [-104, 88.7]; NaN gives NaN.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace cnncore::cpu {

template <typename T>
inline T exp_poly(T x);

namespace detail_exp {

template <typename To, typename From>
inline To bits(From v) {
  static_assert(sizeof(To) == sizeof(From), "same size");
  To r;
  std::memcpy(&r, &v, sizeof(r));
  return r;
}

}  // namespace detail_exp

// Out-of-range arguments are handled by a final select on the argument's
// bits rather than by clamping it first: a floating-point clamp would let GCC
// specialise the arithmetic per branch, and under -ftrapping-math it then
// refuses to if-convert (and vectorise) the loop.
template <>
inline float exp_poly<float>(float x) {
  using detail_exp::bits;
  const float shift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low bits
  const float k = x * 1.44269504088896341f + shift;
  const uint32_t n = bits<uint32_t>(k) - bits<uint32_t>(shift);  // n = round(x / ln2), mod 2^32
  const float nf = k - shift;
  const float r = (x - nf * 0.693359375f) - nf * -2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t n1 = static_cast<uint32_t>(static_cast<int32_t>(n) >> 1), n2 = n - n1;
  const float y = p * bits<float>((n1 + 127u) << 23) * bits<float>((n2 + 127u) << 23);
  // exp(x) rounds to 0 below -104 and overflows above 88.73 (n then leaves
  // the range the two halves cover); NaN is not caught and gives NaN.
  const uint32_t b = bits<uint32_t>(x), a = b & 0x7fffffffu;
  const bool out = a <= 0x7f800000u && a > ((b >> 31) ? 0x42d00000u /* 104 */ : 0x42b175c3u /* 88.73 */);
  return out ? ((b >> 31) ? 0.0f : bits<float>(0x7f800000u)) : y;
}

// Double: libm's exp. A polynomial version does not vectorise below AVX-512
// (no packed 64-bit integer compares and shifts) and then costs more
// instructions than glibc's table-driven exp.
template <>
inline double exp_poly<double>(double x) {
  return std::exp(x);
}

}  // namespace cnncore::cpu
