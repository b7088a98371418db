// Elementwise activations, forward and backward: the array is split between
// threads, and each piece goes to the current kernel level's float32 kernel
// (f32-elementwise.hpp) or, for double, to the baseline body
// (activation-body.hpp).
#pragma once

#include <cmath>
#include <cstdint>

#include "cnncore/layers.hpp"
#include "cpu/kernels/exp-tanh.hpp"

namespace cnncore::cpu {

// tanh that vectorises (float; double uses libm): exp-tanh-body.hpp's
// tanh_poly_f32, within 3 ulp of libm's tanhf.
inline float tanh_poly(float x) { return detail_exp::tanh_poly_f32(x); }
inline double tanh_poly(double x) { return std::tanh(x); }

template <typename T>
void activation_forward(const ActivationParams& p, int64_t n, const T* src, T* dst);

// diff_src = diff_dst * f'(src).
template <typename T>
void activation_backward(const ActivationParams& p, int64_t n, const T* diff_dst, const T* src, T* diff_src);

}  // namespace cnncore::cpu
