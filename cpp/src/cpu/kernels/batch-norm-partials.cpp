#include "cpu/kernels/batch-norm-partials.hpp"

#include <array>
#include <cmath>
#include <vector>

#include "cnncore/runtime.hpp"
#include "cpu/kernels/f32-elementwise.hpp"
#include "util/checked.hpp"
#include "util/parallel.hpp"

namespace cnncore::cpu {

using detail::AxisGeometry;

namespace {

#include "cpu/kernels/batch-norm-body.hpp"

// Rows shorter than this (the deep layers' 1x1 and 2x2 maps, BatchNorm1d's
// single values) run the inline bodies: a call through the level table per
// row would cost more than the row.
constexpr int64_t kTinyPlane = 8;

// The row kernels: float's from the current kernel level (the inline body
// for tiny rows), double's from the baseline body.
template <typename T>
struct Rows {
  explicit Rows(int64_t) {}
  double sum(int64_t n, const T* x) const { return bn_row_sum_body<T>(n, x); }
  double sq_dev(int64_t n, const T* x, double m) const { return bn_row_sq_dev_body<T>(n, x, m); }
  void grad_sums(int64_t n, const T* dy, const T* x, double m, double* out) const {
    bn_row_grad_sums_body<T>(n, dy, x, m, out);
  }
  void scale_shift(int64_t n, const T* x, T scale, T shift, T* y) const {
    bn_row_scale_shift_body<T>(n, x, scale, shift, y);
  }
  void grad(int64_t n, const T* dy, const T* x, T a, T mdy, T m, T k, T* dx) const {
    bn_row_grad_body<T>(n, dy, x, a, mdy, m, k, dx);
  }
};

template <>
struct Rows<float> {
  const F32ElementwiseKernels* k;  // null: the inline bodies
  explicit Rows(int64_t inner) : k(inner < kTinyPlane ? nullptr : &f32_elementwise_kernels_for_rows(inner)) {}
  double sum(int64_t n, const float* x) const { return k ? k->bn_row_sum(n, x) : bn_row_sum_body<float>(n, x); }
  double sq_dev(int64_t n, const float* x, double m) const {
    return k ? k->bn_row_sq_dev(n, x, m) : bn_row_sq_dev_body<float>(n, x, m);
  }
  void grad_sums(int64_t n, const float* dy, const float* x, double m, double* out) const {
    if (k)
      k->bn_row_grad_sums(n, dy, x, m, out);
    else
      bn_row_grad_sums_body<float>(n, dy, x, m, out);
  }
  void scale_shift(int64_t n, const float* x, float scale, float shift, float* y) const {
    if (k)
      k->bn_row_scale_shift(n, x, scale, shift, y);
    else
      bn_row_scale_shift_body<float>(n, x, scale, shift, y);
  }
  void grad(int64_t n, const float* dy, const float* x, float a, float mdy, float m, float kk, float* dx) const {
    if (k)
      k->bn_row_grad(n, dy, x, a, mdy, m, kk, dx);
    else
      bn_row_grad_body<float>(n, dy, x, a, mdy, m, kk, dx);
  }
};

// Runs f(c, rows_parallel) for every channel. Channels go to threads whole
// when there are enough of them: a channel's rows of all images are then
// read from memory by one thread once, and its later passes find them in
// that thread's cache (ResNet's 64-channel 56x56 maps at batch 16: 400 KB
// of x and grad_out a channel). With fewer channels than two a thread, the
// channels run one after another and each pass spreads its rows instead.
template <typename F>
void for_each_channel(const AxisGeometry& g, F&& f) {
  const int nt = get_num_threads();
  const bool par = nt > 1 && detail::parallel_pays(g.outer * g.axis * g.inner);
  if (par && g.axis < 2 * nt) {
    for (int64_t c = 0; c < g.axis; ++c) f(c, true);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
  for (int64_t c = 0; c < g.axis; ++c) f(c, false);
}

// The K sums over images of row(n, out) (K values a row), added in image
// order whichever thread formed each row's: the result does not depend on
// the thread count.
template <int K, typename F>
std::array<double, K> image_sums(int64_t N, bool par, F&& row) {
  std::array<double, K> s{};
  if (!par) {
    for (int64_t n = 0; n < N; ++n) {
      double r[K];
      row(n, r);
      for (int j = 0; j < K; ++j) s[j] += r[j];
    }
    return s;
  }
  std::vector<double> part(static_cast<std::size_t>(N * K));
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
  for (int64_t n = 0; n < N; ++n) row(n, part.data() + n * K);
  for (int64_t n = 0; n < N; ++n)
    for (int j = 0; j < K; ++j) s[j] += part[static_cast<std::size_t>(n * K + j)];
  return s;
}

template <typename F>
void each_image(int64_t N, bool par, F&& row) {
  if (!par) {  // not through an inactive parallel region: that costs as much as a short channel
    for (int64_t n = 0; n < N; ++n) row(n);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
  for (int64_t n = 0; n < N; ++n) row(n);
}

// Channel c's mean and biased variance (two passes over its rows).
template <typename T>
void channel_stats(const AxisGeometry& g, const Rows<T>& rows, const T* src, int64_t c, bool par, double* mean,
                   double* var) {
  const int64_t C = g.axis, inner = g.inner;
  const double M = static_cast<double>(g.outer * inner);
  auto row = [&](int64_t n) { return src + (n * C + c) * inner; };
  const auto s = image_sums<1>(g.outer, par, [&](int64_t n, double* r) { r[0] = rows.sum(inner, row(n)); });
  const double m = s[0] / M;
  const auto v = image_sums<1>(g.outer, par, [&](int64_t n, double* r) { r[0] = rows.sq_dev(inner, row(n), m); });
  *mean = m;
  *var = v[0] / M;
}

// y = x * scale + shift over channel c's rows, with scale = invstd * w and
// shift = b - mean * scale.
template <typename T>
void channel_apply(const AxisGeometry& g, const Rows<T>& rows, const T* src, int64_t c, bool par, double mean,
                   double invstd, const T* w, const T* b, T* dst) {
  const int64_t C = g.axis, inner = g.inner;
  const double sc = invstd * (w ? static_cast<double>(w[c]) : 1.0);
  const T scale = static_cast<T>(sc), shift = static_cast<T>((b ? static_cast<double>(b[c]) : 0.0) - mean * sc);
  each_image(g.outer, par, [&](int64_t n) {
    const int64_t at = (n * C + c) * inner;
    rows.scale_shift(inner, src + at, scale, shift, dst + at);
  });
}

}  // namespace

int64_t batch_norm_workspace_bytes(const AxisGeometry& g) {
  const char* op = "batch_norm";
  return detail::checked_mul(detail::checked_mul(g.outer, 2, op), 2 * sizeof(double), op);
}

template <typename T>
void batch_norm_forward_training(const AxisGeometry& g, double eps, const T* src, const T* w, const T* b, T* dst,
                                 double* mean, double* var) {
  const Rows<T> rows(g.inner);
  for_each_channel(g, [&](int64_t c, bool par) {
    channel_stats(g, rows, src, c, par, mean + c, var + c);
    channel_apply(g, rows, src, c, par, mean[c], 1.0 / std::sqrt(var[c] + eps), w, b, dst);
  });
}

template <typename T>
void batch_norm_apply(const AxisGeometry& g, const T* src, const double* mean, const double* invstd, const T* w,
                      const T* b, T* dst) {
  const Rows<T> rows(g.inner);
  for_each_channel(g, [&](int64_t c, bool par) { channel_apply(g, rows, src, c, par, mean[c], invstd[c], w, b, dst); });
}

template <typename T>
void batch_norm_backward(const AxisGeometry& g, bool training, double eps, const T* diff_dst, const T* src,
                         const double* mean, const double* invstd, const T* w, T* diff_src, T* diff_w, T* diff_b) {
  const int64_t C = g.axis, inner = g.inner;
  const double M = static_cast<double>(g.outer * inner);
  const Rows<T> rows(inner);
  for_each_channel(g, [&](int64_t c, bool par) {
    double m, is;
    if (training) {
      double var;
      channel_stats(g, rows, src, c, par, &m, &var);
      is = 1.0 / std::sqrt(var + eps);
    } else {
      m = mean[c];
      is = invstd[c];
    }
    // sum(dy) and sum(dy * (x - mean)); times invstd the latter is sum(dy * xhat)
    const auto s = image_sums<2>(g.outer, par, [&](int64_t n, double* r) {
      const int64_t at = (n * C + c) * inner;
      rows.grad_sums(inner, diff_dst + at, src + at, m, r);
    });
    if (diff_w) diff_w[c] = static_cast<T>(s[1] * is);
    if (diff_b) diff_b[c] = static_cast<T>(s[0]);
    if (!diff_src) return;
    // dx = a * (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy * (x - mean))), a = invstd * w
    const T a = static_cast<T>(is * (w ? static_cast<double>(w[c]) : 1.0));
    const T mdy = static_cast<T>(s[0] / M), mt = static_cast<T>(m), k = static_cast<T>(is * is * s[1] / M);
    each_image(g.outer, par, [&](int64_t n) {
      const int64_t at = (n * C + c) * inner;
      if (training)
        rows.grad(inner, diff_dst + at, src + at, a, mdy, mt, k, diff_src + at);
      else
        rows.scale_shift(inner, diff_dst + at, a, T(0), diff_src + at);
    });
  });
}

#define CNNCORE_INSTANTIATE(T)                                                                                 \
  template void batch_norm_forward_training<T>(const AxisGeometry&, double, const T*, const T*, const T*, T*,  \
                                               double*, double*);                                              \
  template void batch_norm_apply<T>(const AxisGeometry&, const T*, const double*, const double*, const T*,     \
                                    const T*, T*);                                                             \
  template void batch_norm_backward<T>(const AxisGeometry&, bool, double, const T*, const T*, const double*,   \
                                       const double*, const T*, T*, T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
