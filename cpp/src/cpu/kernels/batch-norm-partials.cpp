#include "cpu/kernels/batch-norm-partials.hpp"

#include <vector>

#include "cnncore/runtime.hpp"
#include "util/checked.hpp"
#include "util/parallel.hpp"

namespace cnncore::cpu {

using detail::AxisGeometry;

namespace {

// Planes of fewer elements than this (the deep layers' 1x1 and 2x2 maps) are
// summed channel-vectorised in one serial pass, not row by row.
constexpr int64_t kTinyPlane = 8;

// part[n * C + c] = f over row (n, c); then out[c] = sum_n part[n * C + c].
template <typename F>
void channel_sums(const AxisGeometry& g, std::vector<double>& part, double* out, F&& row_sum) {
  const int64_t N = g.outer, C = g.axis;
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads()) \
    if (detail::parallel_pays(N * C * g.inner))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) part[static_cast<std::size_t>(n * C + c)] = row_sum(n, c);
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) s += part[static_cast<std::size_t>(n * C + c)];
    out[c] = s;
  }
}

}  // namespace

int64_t batch_norm_workspace_bytes(const AxisGeometry& g) {
  const char* op = "batch_norm";
  return detail::checked_mul(detail::checked_mul(g.outer, g.axis, op), 2 * sizeof(double), op);
}

template <typename T>
void batch_norm_stats(const AxisGeometry& g, const T* src, double* mean, double* var) {
  const int64_t C = g.axis, inner = g.inner;
  const double M = static_cast<double>(g.outer * inner);
  if (inner < kTinyPlane) {
    // the same sums (per image and channel, then over images in order)
    std::vector<double> row(static_cast<std::size_t>(C));
    for (int pass = 0; pass < 2; ++pass) {
      double* out = pass == 0 ? mean : var;
      std::fill(out, out + C, 0.0);
      for (int64_t n = 0; n < g.outer; ++n) {
        const T* x = src + n * C * inner;
        for (int64_t c = 0; c < C; ++c) {
          double r = 0;
          const double m = pass == 0 ? 0.0 : mean[c];
          for (int64_t i = 0; i < inner; ++i) {
            const double d = static_cast<double>(x[c * inner + i]) - m;
            r += pass == 0 ? d : d * d;
          }
          out[c] += r;
        }
      }
      for (int64_t c = 0; c < C; ++c) out[c] /= M;
    }
    return;
  }
  std::vector<double> part(static_cast<std::size_t>(g.outer * C));
  channel_sums(g, part, mean, [&](int64_t n, int64_t c) {
    const T* x = src + (n * C + c) * inner;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < inner; ++i) s += static_cast<double>(x[i]);
    return s;
  });
  for (int64_t c = 0; c < C; ++c) mean[c] /= M;
  channel_sums(g, part, var, [&](int64_t n, int64_t c) {
    const T* x = src + (n * C + c) * inner;
    const double m = mean[c];
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < inner; ++i) {
      const double d = static_cast<double>(x[i]) - m;
      s += d * d;
    }
    return s;
  });
  for (int64_t c = 0; c < C; ++c) var[c] /= M;
}

template <typename T>
void batch_norm_apply(const AxisGeometry& g, const T* src, const double* mean, const double* invstd, const T* w,
                      const T* b, T* dst) {
  const int64_t N = g.outer, C = g.axis, inner = g.inner;
  // y = x * scale + shift
  std::vector<T> scales(static_cast<std::size_t>(C)), shifts(static_cast<std::size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const double sc = invstd[c] * (w ? static_cast<double>(w[c]) : 1.0);
    scales[static_cast<std::size_t>(c)] = static_cast<T>(sc);
    shifts[static_cast<std::size_t>(c)] = static_cast<T>((b ? static_cast<double>(b[c]) : 0.0) - mean[c] * sc);
  }
  if (inner == 1) {  // 1x1 maps: each image's channels in one vector loop
    const T *sc = scales.data(), *sh = shifts.data();
    for (int64_t n = 0; n < N; ++n) {
      const T* x = src + n * C;
      T* y = dst + n * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) y[c] = x[c] * sc[c] + sh[c];
    }
    return;
  }
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads()) \
    if (detail::parallel_pays(N * C * inner))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T scale = scales[static_cast<std::size_t>(c)], shift = shifts[static_cast<std::size_t>(c)];
      const T* x = src + (n * C + c) * inner;
      T* y = dst + (n * C + c) * inner;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) y[i] = x[i] * scale + shift;
    }
}

template <typename T>
void batch_norm_backward(const AxisGeometry& g, bool training, const T* diff_dst, const T* src, const double* mean,
                         const double* invstd, const T* w, T* diff_src, T* diff_w, T* diff_b) {
  const int64_t N = g.outer, C = g.axis, inner = g.inner;
  const double M = static_cast<double>(N * inner);
  std::vector<double> part(static_cast<std::size_t>(N * C));
  std::vector<double> sum_dy(static_cast<std::size_t>(C)), sum_dy_xc(static_cast<std::size_t>(C));
  if (inner < kTinyPlane) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        const T* dy = diff_dst + (n * C + c) * inner;
        const T* x = src + (n * C + c) * inner;
        double a = 0, b = 0;
        for (int64_t i = 0; i < inner; ++i) {
          a += static_cast<double>(dy[i]);
          b += static_cast<double>(dy[i]) * (static_cast<double>(x[i]) - mean[c]);
        }
        sum_dy[static_cast<std::size_t>(c)] += a;
        sum_dy_xc[static_cast<std::size_t>(c)] += b;
      }
  } else {
  channel_sums(g, part, sum_dy.data(), [&](int64_t n, int64_t c) {
    const T* dy = diff_dst + (n * C + c) * inner;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < inner; ++i) s += static_cast<double>(dy[i]);
    return s;
  });
  // sum(dy * (x - mean)); times invstd it is sum(dy * xhat).
  channel_sums(g, part, sum_dy_xc.data(), [&](int64_t n, int64_t c) {
    const T* dy = diff_dst + (n * C + c) * inner;
    const T* x = src + (n * C + c) * inner;
    const double m = mean[c];
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < inner; ++i) s += static_cast<double>(dy[i]) * (static_cast<double>(x[i]) - m);
    return s;
  });
  }
  for (int64_t c = 0; c < C; ++c) {
    if (diff_w) diff_w[c] = static_cast<T>(sum_dy_xc[static_cast<std::size_t>(c)] * invstd[c]);
    if (diff_b) diff_b[c] = static_cast<T>(sum_dy[static_cast<std::size_t>(c)]);
  }
  if (!diff_src) return;
  // dx = k1 * (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy * (x - mean))), per channel:
  // [0] k1, [1] mean(dy), [2] mean, [3] invstd^2 * mean(dy * (x - mean))
  std::vector<T> k(static_cast<std::size_t>(4 * C));
  for (int64_t c = 0; c < C; ++c) {
    T* kc = k.data() + 4 * c;
    kc[0] = static_cast<T>(invstd[c] * (w ? static_cast<double>(w[c]) : 1.0));
    kc[1] = static_cast<T>(sum_dy[static_cast<std::size_t>(c)] / M);
    kc[2] = static_cast<T>(mean[c]);
    kc[3] = static_cast<T>(invstd[c] * invstd[c] * sum_dy_xc[static_cast<std::size_t>(c)] / M);
  }
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads()) \
    if (detail::parallel_pays(N * C * inner))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T* kc = k.data() + 4 * c;
      const T* dy = diff_dst + (n * C + c) * inner;
      const T* x = src + (n * C + c) * inner;
      T* dx = diff_src + (n * C + c) * inner;
      if (!training) {
        const T kk = kc[0];
#pragma omp simd
        for (int64_t i = 0; i < inner; ++i) dx[i] = dy[i] * kk;
        continue;
      }
      const T a = kc[0], mdy = kc[1], m = kc[2], k3 = kc[3];
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) dx[i] = a * (dy[i] - mdy - (x[i] - m) * k3);
    }
}

#define CNNCORE_INSTANTIATE(T)                                                                                 \
  template void batch_norm_stats<T>(const AxisGeometry&, const T*, double*, double*);                          \
  template void batch_norm_apply<T>(const AxisGeometry&, const T*, const double*, const double*, const T*,     \
                                    const T*, T*);                                                             \
  template void batch_norm_backward<T>(const AxisGeometry&, bool, const T*, const T*, const double*,           \
                                       const double*, const T*, T*, T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
