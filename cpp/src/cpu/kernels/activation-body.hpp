// Elementwise activation bodies, forward and backward, over one contiguous
// range (serial; the caller splits the array between threads). Included
// inside an anonymous namespace by each kernel level's source file
// (f32-elementwise-level.inc, compiled once per level; T = float) and by activation-parallel.cpp
// (T = double), after exp-tanh-body.hpp. Only builtins: nothing here may
// leak out of a file compiled with wider ISA flags. `kind` is the value of
// cnncore::Activation (relu 0, leaky_relu 1, sigmoid 2, tanh 3).

template <typename T>
inline T sigmoid_body(T x) {
  return T(1) / (T(1) + exp_body(-x));
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
    default:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T y = tanh_body(x[i]);
        dx[i] = g[i] * (T(1) - y * y);
      }
      return;
  }
}
