// GCC: let the vectoriser turn selects into blends even where the arms do
// floating-point arithmetic (with -ftrapping-math it keeps such loops scalar).
// These kernels never read the floating-point exception flags. Before every
// include, so that all functions of this file are compiled alike.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "cpu/kernels/softmax-blocked.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cnncore/runtime.hpp"
#include "cpu/kernels/softmax-exp.hpp"

namespace cnncore::cpu {

using detail::AxisGeometry;

namespace {

constexpr int64_t kBlock = 64;

// One contiguous row of length L. Without `log`, leaves exp(x - max) / sum in y.
template <typename T>
void row_forward(int64_t L, bool log, const T* x, T* y) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t a = 0; a < L; ++a) m = x[a] > m ? x[a] : m;  // NaN is skipped here, and poisons the sum
  T s = 0;
  if (log) {
#pragma omp simd reduction(+ : s)
    for (int64_t a = 0; a < L; ++a) s += exp_poly(x[a] - m);
    const T ls = std::log(s);
#pragma omp simd
    for (int64_t a = 0; a < L; ++a) y[a] = (x[a] - m) - ls;
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t a = 0; a < L; ++a) {
      y[a] = exp_poly(x[a] - m);
      s += y[a];
    }
    const T r = T(1) / s;
#pragma omp simd
    for (int64_t a = 0; a < L; ++a) y[a] *= r;
  }
}

template <typename T>
void row_backward(int64_t L, bool log, const T* dy, const T* x, T* dx) {
  row_forward(L, false, x, dx);  // dx = softmax(x) for now
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

// `w` <= kBlock neighbouring columns of an L x inner plane starting at x.
template <typename T>
void block_forward(int64_t L, int64_t inner, int64_t w, bool log, const T* x, T* y) {
  T m[kBlock], s[kBlock];
  for (int64_t j = 0; j < w; ++j) {
    m[j] = -std::numeric_limits<T>::infinity();
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
      for (int64_t j = 0; j < w; ++j) s[j] += exp_poly(xr[j] - m[j]);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        yr[j] = exp_poly(xr[j] - m[j]);
        s[j] += yr[j];
      }
    }
  }
  for (int64_t j = 0; j < w; ++j) s[j] = log ? std::log(s[j]) : T(1) / s[j];
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
void block_backward(int64_t L, int64_t inner, int64_t w, bool log, const T* dy, const T* x, T* dx) {
  block_forward(L, inner, w, false, x, dx);
  T s[kBlock];
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

// Runs f(offset, width) over every row (inner == 1) or column block.
template <typename F>
void for_each_task(const AxisGeometry& g, F&& f) {
  const int64_t plane = g.axis * g.inner;
  if (g.inner == 1) {
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
    for (int64_t o = 0; o < g.outer; ++o) f(o * plane, int64_t{1});
    return;
  }
  const int64_t blocks = (g.inner + kBlock - 1) / kBlock;
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads())
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t b = 0; b < blocks; ++b) f(o * plane + b * kBlock, std::min(kBlock, g.inner - b * kBlock));
}

}  // namespace

template <typename T>
void softmax_forward(const AxisGeometry& g, bool log, const T* src, T* dst) {
  if (g.numel() == 0) return;
  for_each_task(g, [&](int64_t off, int64_t w) {
    if (g.inner == 1)
      row_forward(g.axis, log, src + off, dst + off);
    else
      block_forward(g.axis, g.inner, w, log, src + off, dst + off);
  });
}

template <typename T>
void softmax_backward(const AxisGeometry& g, bool log, const T* diff_dst, const T* src, T* diff_src) {
  if (g.numel() == 0) return;
  for_each_task(g, [&](int64_t off, int64_t w) {
    if (g.inner == 1)
      row_backward(g.axis, log, diff_dst + off, src + off, diff_src + off);
    else
      block_backward(g.axis, g.inner, w, log, diff_dst + off, src + off, diff_src + off);
  });
}

template void softmax_forward<float>(const AxisGeometry&, bool, const float*, float*);
template void softmax_forward<double>(const AxisGeometry&, bool, const double*, double*);
template void softmax_backward<float>(const AxisGeometry&, bool, const float*, const float*, float*);
template void softmax_backward<double>(const AxisGeometry&, bool, const double*, const double*, double*);

}  // namespace cnncore::cpu
