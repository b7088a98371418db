// exp(x) for float written so that compilers vectorise it inside `omp simd`
// loops (libm's expf is an opaque call that keeps those loops scalar). Used by
// baseline code and the C++ tests; the references use std::exp. The algorithm
// and its error bounds are in exp-tanh-body.hpp, which every kernel level
// (f32-elementwise-level.inc, compiled once per level) also compiles for itself.
#pragma once

#include <cmath>
#include <cstdint>

namespace cnncore::cpu {

template <typename T>
inline T exp_poly(T x);

// Baseline copies of the bodies (external linkage; only baseline code includes this file).
namespace detail_exp {
#include "cpu/kernels/exp-tanh-body.hpp"
}  // namespace detail_exp

template <>
inline float exp_poly<float>(float x) {
  return detail_exp::exp_poly_f32(x);
}

// Double: libm's exp. A polynomial version does not vectorise below AVX-512
// (no packed 64-bit integer compares and shifts) and then costs more
// instructions than glibc's table-driven exp.
template <>
inline double exp_poly<double>(double x) {
  return std::exp(x);
}

}  // namespace cnncore::cpu
