// Scalar maths for kernel bodies that run on the host and on a CUDA device:
// the device's functions under nvcc's device pass, <cmath>'s otherwise.
#pragma once

#include <cmath>
#include <cstdint>

#include "util/hd.hpp"

namespace cnncore::device::dm {

#if defined(__CUDA_ARCH__)
#define CNNCORE_DM_UNARY(name)                                   \
  CNNCORE_HD inline float name(float x) { return ::name##f(x); } \
  CNNCORE_HD inline double name(double x) { return ::name(x); }
CNNCORE_DM_UNARY(exp)
CNNCORE_DM_UNARY(log)
CNNCORE_DM_UNARY(sqrt)
CNNCORE_DM_UNARY(fabs)
CNNCORE_DM_UNARY(tanh)
CNNCORE_DM_UNARY(erf)
CNNCORE_DM_UNARY(floor)
CNNCORE_DM_UNARY(ceil)
#undef CNNCORE_DM_UNARY
CNNCORE_HD inline float pow(float x, float y) { return ::powf(x, y); }
CNNCORE_HD inline double pow(double x, double y) { return ::pow(x, y); }
#else
using std::ceil;
using std::erf;
using std::exp;
using std::fabs;
using std::floor;
using std::log;
using std::pow;
using std::sqrt;
using std::tanh;
#endif

template <typename T>
CNNCORE_HD inline bool isnan(T x) {
  return x != x;
}
template <typename T>
CNNCORE_HD inline T inf() {
  return static_cast<T>(HUGE_VAL);
}

}  // namespace cnncore::device::dm
