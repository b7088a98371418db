// Elementwise activation bodies, forward and backward, over one contiguous
// range (serial; the caller splits the array between threads). Included
// inside an anonymous namespace by each kernel level's source file
// (f32-elementwise-level.inc, compiled once per level; T = float) and by activation-parallel.cpp
// (T = double), after exp-tanh-body.hpp. Only builtins: nothing here may
// leak out of a file compiled with wider ISA flags. `kind` is the value of
// cnncore::Activation (relu 0, leaky_relu 1, sigmoid 2, tanh 3, silu 4, gelu 5 (exact,
// with erf), gelu_tanh 6 (the tanh approximation)). erf is the compiler's builtin: a
// libm call per element, so the exact GELU does not vectorise.

template <typename T>
inline T sigmoid_body(T x) {
  return T(1) / (T(1) + exp_body(-x));
}

inline float erf_body(float x) { return __builtin_erff(x); }
inline double erf_body(double x) { return __builtin_erf(x); }

// GELU's tanh approximation: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
template <typename T>
inline T gelu_tanh_u(T x) {
  return T(0.7978845608028654) * (x + T(0.044715) * x * x * x);
}

template <typename T>
void activation_forward_body(int kind, T slope, int64_t n, const T* __restrict x, T* __restrict y) {
  switch (kind) {
    case 0:
      // x <= 0 is false for NaN, which passes through.
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] <= T(0) ? T(0) : x[i];
      return;
    case 1:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T neg = x[i] * slope;  // both arms computed, so the select becomes a blend
        y[i] = x[i] > T(0) ? x[i] : neg;
      }
      return;
    case 2:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_body(x[i]);
      return;
    case 4:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid_body(x[i]);
      return;
    case 5:
      for (int64_t i = 0; i < n; ++i) y[i] = T(0.5) * x[i] * (T(1) + erf_body(x[i] * T(0.7071067811865476)));
      return;
    case 6:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = T(0.5) * x[i] * (T(1) + tanh_body(gelu_tanh_u(x[i])));
      return;
    default:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) y[i] = tanh_body(x[i]);
      return;
  }
}

// dx = g * f'(x).
template <typename T>
void activation_backward_body(int kind, T slope, int64_t n, const T* __restrict g, const T* __restrict x,
                              T* __restrict dx) {
  switch (kind) {
    case 0:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = x[i] <= T(0) ? T(0) : g[i];
      return;
    case 1:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T neg = g[i] * slope;
        dx[i] = x[i] > T(0) ? g[i] : neg;
      }
      return;
    case 2:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T y = sigmoid_body(x[i]);
        dx[i] = g[i] * y * (T(1) - y);
      }
      return;
    case 4:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T s = sigmoid_body(x[i]);
        dx[i] = g[i] * (s + x[i] * s * (T(1) - s));
      }
      return;
    case 5:
      // d/dx [x Phi(x)] = Phi(x) + x phi(x)
      for (int64_t i = 0; i < n; ++i) {
        const T cdf = T(0.5) * (T(1) + erf_body(x[i] * T(0.7071067811865476)));
        const T pdf = T(0.3989422804014327) * exp_body(T(-0.5) * x[i] * x[i]);
        dx[i] = g[i] * (cdf + x[i] * pdf);
      }
      return;
    case 6:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T t = tanh_body(gelu_tanh_u(x[i]));
        const T du = T(0.7978845608028654) * (T(1) + T(3 * 0.044715) * x[i] * x[i]);
        dx[i] = g[i] * (T(0.5) * (T(1) + t) + T(0.5) * x[i] * (T(1) - t * t) * du);
      }
      return;
    default:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T y = tanh_body(x[i]);
        dx[i] = g[i] * (T(1) - y * y);
      }
      return;
  }
}
