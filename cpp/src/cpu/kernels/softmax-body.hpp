// Softmax / log-softmax bodies for one task of softmax-blocked.hpp's scheme:
// one contiguous row (inner == 1) or a block of w <= kSoftmaxBlock
// neighbouring columns of an L x inner plane. Included inside an anonymous
// namespace by each kernel level's source file (f32-elementwise-level.inc, compiled once per level;
// T = float) and by softmax-blocked.cpp (T = double), after
// exp-tanh-body.hpp. Only builtins: nothing here may leak out of a file
// compiled with wider ISA flags.

constexpr int64_t kSoftmaxBlock = 64;

// One contiguous row of length L. Without `log`, leaves exp(x - max) / sum in y.
template <typename T>
void softmax_row_forward(int64_t L, bool log, const T* x, T* y) {
  T m = neg_inf_body<T>();
#pragma omp simd reduction(max : m)
  for (int64_t a = 0; a < L; ++a) m = x[a] > m ? x[a] : m;  // NaN is skipped here, and poisons the sum
  T s = 0;
  if (log) {
#pragma omp simd reduction(+ : s)
    for (int64_t a = 0; a < L; ++a) s += exp_body(x[a] - m);
    const T ls = log_body(s);
#pragma omp simd
    for (int64_t a = 0; a < L; ++a) y[a] = (x[a] - m) - ls;
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t a = 0; a < L; ++a) {
      y[a] = exp_body(x[a] - m);
      s += y[a];
    }
    const T r = T(1) / s;
#pragma omp simd
    for (int64_t a = 0; a < L; ++a) y[a] *= r;
  }
}

template <typename T>
void softmax_row_backward(int64_t L, bool log, const T* dy, const T* x, T* dx) {
  softmax_row_forward(L, false, x, dx);  // dx = softmax(x) for now
  T s = 0;
  if (log) {
#pragma omp simd reduction(+ : s)
    for (int64_t a = 0; a < L; ++a) s += dy[a];
#pragma omp simd
    for (int64_t a = 0; a < L; ++a) dx[a] = dy[a] - dx[a] * s;
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t a = 0; a < L; ++a) s += dy[a] * dx[a];
#pragma omp simd
    for (int64_t a = 0; a < L; ++a) dx[a] = dx[a] * (dy[a] - s);
  }
}

// `w` <= kSoftmaxBlock neighbouring columns of an L x inner plane starting at x.
template <typename T>
void softmax_block_forward(int64_t L, int64_t inner, int64_t w, bool log, const T* x, T* y) {
  T m[kSoftmaxBlock], s[kSoftmaxBlock];
  for (int64_t j = 0; j < w; ++j) {
    m[j] = neg_inf_body<T>();
    s[j] = 0;
  }
  for (int64_t a = 0; a < L; ++a) {
    const T* xr = x + a * inner;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
  }
  for (int64_t a = 0; a < L; ++a) {
    const T* xr = x + a * inner;
    T* yr = y + a * inner;
    if (log) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) s[j] += exp_body(xr[j] - m[j]);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        yr[j] = exp_body(xr[j] - m[j]);
        s[j] += yr[j];
      }
    }
  }
  for (int64_t j = 0; j < w; ++j) s[j] = log ? log_body(s[j]) : T(1) / s[j];
  for (int64_t a = 0; a < L; ++a) {
    const T* xr = x + a * inner;
    T* yr = y + a * inner;
    if (log) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) yr[j] = (xr[j] - m[j]) - s[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) yr[j] *= s[j];
    }
  }
}

template <typename T>
void softmax_block_backward(int64_t L, int64_t inner, int64_t w, bool log, const T* dy, const T* x, T* dx) {
  softmax_block_forward(L, inner, w, false, x, dx);
  T s[kSoftmaxBlock];
  for (int64_t j = 0; j < w; ++j) s[j] = 0;
  for (int64_t a = 0; a < L; ++a) {
    const T* gr = dy + a * inner;
    const T* yr = dx + a * inner;
    if (log) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) s[j] += gr[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) s[j] += gr[j] * yr[j];
    }
  }
  for (int64_t a = 0; a < L; ++a) {
    const T* gr = dy + a * inner;
    T* r = dx + a * inner;
    if (log) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) r[j] = gr[j] - r[j] * s[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) r[j] = r[j] * (gr[j] - s[j]);
    }
  }
}

// One task: a row when inner == 1 (w ignored), else a block of w columns.
template <typename T>
void softmax_task_forward(int64_t L, int64_t inner, int64_t w, bool log, const T* x, T* y) {
  if (inner == 1)
    softmax_row_forward(L, log, x, y);
  else
    softmax_block_forward(L, inner, w, log, x, y);
}

template <typename T>
void softmax_task_backward(int64_t L, int64_t inner, int64_t w, bool log, const T* dy, const T* x, T* dx) {
  if (inner == 1)
    softmax_row_backward(L, log, dy, x, dx);
  else
    softmax_block_backward(L, inner, w, log, dy, x, dx);
}
