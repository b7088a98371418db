// The row kernels of batch normalisation (batch-norm-partials.cpp): one
// contiguous (image, channel) row of n values. Sums are formed in double for
// both dtypes. Included inside an anonymous namespace by
// f32-elementwise-level.inc (float, once per kernel level) and by
// batch-norm-partials.cpp (double, baseline flags).

// sum(x)
template <typename T>
double bn_row_sum_body(int64_t n, const T* x) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

// sum((x - m)^2)
template <typename T>
double bn_row_sq_dev_body(int64_t n, const T* x, double m) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - m;
    s += d * d;
  }
  return s;
}

// out[0] = sum(dy), out[1] = sum(dy * (x - m))
template <typename T>
void bn_row_grad_sums_body(int64_t n, const T* dy, const T* x, double m, double* out) {
  double a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int64_t i = 0; i < n; ++i) {
    const double g = static_cast<double>(dy[i]);
    a += g;
    b += g * (static_cast<double>(x[i]) - m);
  }
  out[0] = a;
  out[1] = b;
}

// y = x * scale + shift
template <typename T>
void bn_row_scale_shift_body(int64_t n, const T* x, T scale, T shift, T* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale + shift;
}

// dx = a * (dy - mdy - (x - m) * k)
template <typename T>
void bn_row_grad_body(int64_t n, const T* dy, const T* x, T a, T mdy, T m, T k, T* dx) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dx[i] = a * (dy[i] - mdy - (x[i] - m) * k);
}
