// The vectorisable float exp and tanh (and the scalar helpers the fast
// softmax / cross-entropy / activation bodies use), as a body to be included
// inside a namespace: exp-tanh.hpp includes it in cnncore::cpu::detail_exp
// for baseline code, and each kernel level's source file
// (f32-elementwise-level.inc, compiled once per level) includes it inside an anonymous namespace,
// so that copies compiled with different ISA flags never merge at link time.
// No #pragma once (each includer wants its own copy); the includer provides
// <cstdint>. Only compiler builtins, no library templates: nothing compiled
// for a wider ISA may leak out of its file.
//
// exp(x) = 2^n * exp(r),  n = round(x / ln 2),  r = x - n ln 2 (Cody-Waite, |r| <= ln2 / 2)
//
// exp(r) is its degree-7 Taylor polynomial (truncation error below 0.1 ulp);
// 2^n is built from exponent bits in two halves so that results down to the
// subnormals and up to overflow (inf) come out right. Measured error: at most
// 1 ulp from glibc's expf over [-104, 88.7] (with or without FMA contraction);
// NaN gives NaN.
//
// Out-of-range arguments are handled by a final select on the argument's
// bits rather than by clamping it first: a floating-point clamp would let GCC
// specialise the arithmetic per branch, and under -ftrapping-math it then
// refuses to if-convert (and vectorise) the loop.

inline uint32_t f32_bits(float v) {
  uint32_t r;
  __builtin_memcpy(&r, &v, sizeof(r));
  return r;
}

inline float f32_from_bits(uint32_t v) {
  float r;
  __builtin_memcpy(&r, &v, sizeof(r));
  return r;
}

inline float exp_poly_f32(float x) {
  const float shift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low bits
  const float k = x * 1.44269504088896341f + shift;
  const uint32_t n = f32_bits(k) - f32_bits(shift);  // n = round(x / ln2), mod 2^32
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
  const float y = p * f32_from_bits((n1 + 127u) << 23) * f32_from_bits((n2 + 127u) << 23);
  // exp(x) rounds to 0 below -104 and overflows above 88.73 (n then leaves
  // the range the two halves cover); NaN is not caught and gives NaN.
  const uint32_t b = f32_bits(x), a = b & 0x7fffffffu;
  const bool out = a <= 0x7f800000u && a > ((b >> 31) ? 0x42d00000u /* 104 */ : 0x42b175c3u /* 88.73 */);
  return out ? ((b >> 31) ? 0.0f : f32_from_bits(0x7f800000u)) : y;
}

// tanh that vectorises: for |x| < 0.625 the odd polynomial x + x^3 P(x^2) (a
// least-squares fit of degree 4 in x^2, within 0.9 ulp there), beyond it
// 1 - 2 / (exp(2|x|) + 1) with x's sign (no cancellation: the result is
// >= 0.55). Within 3 ulp of libm's tanhf over every float in [-12, 12] (beyond,
// both give +-1); tanh(+-inf) = +-1, NaN gives NaN.
inline float tanh_poly_f32(float x) {
  const float a = __builtin_fabsf(x), u = x * x;
  float p = -0.005798204879413292f;
  p = p * u + 0.020720367702076477f;
  p = p * u - 0.05376382495109292f;
  p = p * u + 0.13331718845793616f;
  p = p * u - 0.33333291520028224f;
  const float small = x + x * u * p;
  const float big = __builtin_copysignf(1.0f - 2.0f / (exp_poly_f32(2.0f * a) + 1.0f), x);
  return a < 0.625f ? small : big;
}

// The overloads the templated bodies call. Double goes to libm (a polynomial
// exp does not vectorise below AVX-512 and costs more than glibc's); only
// baseline code instantiates the double bodies.
inline float exp_body(float x) { return exp_poly_f32(x); }
inline double exp_body(double x) { return __builtin_exp(x); }
inline float tanh_body(float x) { return tanh_poly_f32(x); }
inline double tanh_body(double x) { return __builtin_tanh(x); }
inline float log_body(float x) { return __builtin_logf(x); }
inline double log_body(double x) { return __builtin_log(x); }
template <typename T>
inline T neg_inf_body() {
  return -static_cast<T>(__builtin_inf());
}
