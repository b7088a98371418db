// Elementwise activations, forward and backward: one implementation for every
// kernel level, `omp parallel for simd` over the flat array.
#pragma once

#include <cmath>
#include <cstdint>

#include "cnncore/layers.hpp"
#include "cpu/kernels/softmax-exp.hpp"

namespace cnncore::cpu {

// tanh that vectorises (float; double uses libm): for |x| < 0.625 the odd
// polynomial x + x^3 P(x^2) (a least-squares fit of degree 4 in x^2, within
// 0.9 ulp there), beyond it 1 - 2 / (exp(2|x|) + 1) with x's sign (no
// cancellation: the result is >= 0.55). Within 2 ulp of libm's tanhf over every
// float in [-12, 12] (beyond, both give +-1); tanh(+-inf)
// = +-1, NaN gives NaN.
inline float tanh_poly(float x) {
  const float a = std::fabs(x), u = x * x;
  float p = -0.005798204879413292f;
  p = p * u + 0.020720367702076477f;
  p = p * u - 0.05376382495109292f;
  p = p * u + 0.13331718845793616f;
  p = p * u - 0.33333291520028224f;
  const float small = x + x * u * p;
  const float big = std::copysign(1.0f - 2.0f / (exp_poly(2.0f * a) + 1.0f), x);
  return a < 0.625f ? small : big;
}
inline double tanh_poly(double x) { return std::tanh(x); }

template <typename T>
void activation_forward(const ActivationParams& p, int64_t n, const T* src, T* dst);

// diff_src = diff_dst * f'(src).
template <typename T>
void activation_backward(const ActivationParams& p, int64_t n, const T* diff_dst, const T* src, T* diff_src);

}  // namespace cnncore::cpu
