// GCC: let the vectoriser turn selects into blends even where the arms do
// floating-point arithmetic (with -ftrapping-math it keeps such loops scalar).
// These kernels never read the floating-point exception flags. Before every
// include, so that all functions of this file are compiled alike.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "cpu/kernels/activation-simd.hpp"

#include <cmath>

#include "cnncore/runtime.hpp"

namespace cnncore::cpu {

namespace {

// Applies f to every element; the loops are short enough to inline per op.
template <typename T, typename F>
void map1(int64_t n, const T* x, T* y, F f) {
#pragma omp parallel for simd schedule(static) num_threads(get_num_threads())
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <typename T, typename F>
void map2(int64_t n, const T* g, const T* x, T* dx, F f) {
#pragma omp parallel for simd schedule(static) num_threads(get_num_threads())
  for (int64_t i = 0; i < n; ++i) dx[i] = f(g[i], x[i]);
}

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + exp_poly(-x));
}

}  // namespace

template <typename T>
void activation_forward(const ActivationParams& p, int64_t n, const T* src, T* dst) {
  switch (p.kind) {
    case Activation::relu:
      // x <= 0 is false for NaN, which passes through.
      return map1(n, src, dst, [](T x) { return x <= T(0) ? T(0) : x; });
    case Activation::leaky_relu: {
      const T s = static_cast<T>(p.negative_slope);
      return map1(n, src, dst, [s](T x) {
        const T neg = x * s;  // both arms computed, so the select becomes a blend
        return x > T(0) ? x : neg;
      });
    }
    case Activation::sigmoid: return map1(n, src, dst, [](T x) { return sigmoid(x); });
    case Activation::tanh: return map1(n, src, dst, [](T x) { return tanh_poly(x); });
  }
}

template <typename T>
void activation_backward(const ActivationParams& p, int64_t n, const T* diff_dst, const T* src, T* diff_src) {
  switch (p.kind) {
    case Activation::relu: return map2(n, diff_dst, src, diff_src, [](T g, T x) { return x <= T(0) ? T(0) : g; });
    case Activation::leaky_relu: {
      const T s = static_cast<T>(p.negative_slope);
      return map2(n, diff_dst, src, diff_src, [s](T g, T x) {
        const T neg = g * s;
        return x > T(0) ? g : neg;
      });
    }
    case Activation::sigmoid:
      return map2(n, diff_dst, src, diff_src, [](T g, T x) {
        const T y = sigmoid(x);
        return g * y * (T(1) - y);
      });
    case Activation::tanh:
      return map2(n, diff_dst, src, diff_src, [](T g, T x) {
        const T y = tanh_poly(x);
        return g * (T(1) - y * y);
      });
  }
}

template void activation_forward<float>(const ActivationParams&, int64_t, const float*, float*);
template void activation_forward<double>(const ActivationParams&, int64_t, const double*, double*);
template void activation_backward<float>(const ActivationParams&, int64_t, const float*, const float*, float*);
template void activation_backward<double>(const ActivationParams&, int64_t, const double*, const double*, double*);

}  // namespace cnncore::cpu
