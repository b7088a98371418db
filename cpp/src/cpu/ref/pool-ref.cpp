#include "cpu/ref/pool-ref.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cnncore/runtime.hpp"

namespace cnncore::cpu::ref {

using detail::PoolGeometry;

// Normalised Gaussian weight of every tap of a weighted_avg window, in scan
// order, from the Euclidean distance to the centre in sigma units. The
// squared distance is taken relative to the nearest tap's (per axis: 0 for
// odd k, 1/4 for even k, before scaling by sigma), so the nearest taps weigh
// exactly 1 before normalising: with an even kernel and a small sigma every
// plain exp(-r2/2) underflowed to 0 and the sum gave 0/0.
std::vector<double> pool_gaussian_weights(const PoolGeometry& g) {
  std::vector<double> w;
  double total = 0;
  for (int64_t td = 0; td < g.k[0]; ++td)
    for (int64_t th = 0; th < g.k[1]; ++th)
      for (int64_t tw = 0; tw < g.k[2]; ++tw) {
        const int64_t t[3] = {td, th, tw};
        double r2 = 0;
        for (int a = 0; a < 3; ++a) {
          const double d = static_cast<double>(t[a]) - 0.5 * static_cast<double>(g.k[a] - 1);
          const double nearest = g.k[a] % 2 == 0 ? 0.25 : 0.0;
          r2 += (d * d - nearest) / g.sigma[a] / g.sigma[a];
        }
        w.push_back(std::exp(-0.5 * r2));
        total += w.back();
      }
  for (double& v : w) v /= total;
  return w;
}

namespace {

// One window: per axis the coordinate of tap 0, the number of taps and how
// many of them fall inside the input.
struct Window {
  int64_t start[3], taps[3], inside[3];
};

Window window_of(const PoolGeometry& g, const int64_t o[3]) {
  Window w;
  for (int a = 0; a < 3; ++a) {
    w.start[a] = g.window_start(a, o[a]);
    w.taps[a] = g.window_taps(a, o[a]);
    w.inside[a] = 0;
    for (int64_t t = 0; t < w.taps[a]; ++t) {
      const int64_t c = w.start[a] + t * g.dilation[a];
      if (c >= 0 && c < g.in[a]) ++w.inside[a];
    }
  }
  return w;
}

// f(flat index in the plane, tap number in scan order) for every tap of `w`
// inside the input, in scan order (D, then H, then W).
template <typename F>
void for_each_inside(const PoolGeometry& g, const Window& w, F&& f) {
  for (int64_t td = 0; td < w.taps[0]; ++td) {
    const int64_t d = w.start[0] + td * g.dilation[0];
    if (d < 0 || d >= g.in[0]) continue;
    for (int64_t th = 0; th < w.taps[1]; ++th) {
      const int64_t h = w.start[1] + th * g.dilation[1];
      if (h < 0 || h >= g.in[1]) continue;
      for (int64_t tw = 0; tw < w.taps[2]; ++tw) {
        const int64_t x = w.start[2] + tw * g.dilation[2];
        if (x < 0 || x >= g.in[2]) continue;
        f((d * g.in[1] + h) * g.in[2] + x, (td * w.taps[1] + th) * w.taps[2] + tw);
      }
    }
  }
}

// f(output offset in the plane, window) for every output of one plane.
template <typename F>
void for_each_output(const PoolGeometry& g, F&& f) {
  int64_t o[3];
  for (o[0] = 0; o[0] < g.out[0]; ++o[0])
    for (o[1] = 0; o[1] < g.out[1]; ++o[1])
      for (o[2] = 0; o[2] < g.out[2]; ++o[2]) f((o[0] * g.out[1] + o[1]) * g.out[2] + o[2], window_of(g, o));
}

// First maximum in scan order; NaN beats every number. -1 when no tap is inside.
template <typename T, typename V>
int64_t argmax(const PoolGeometry& g, const Window& w, const T* x, V&& value) {
  int64_t best_i = -1;
  T best = -std::numeric_limits<T>::infinity();
  for_each_inside(g, w, [&](int64_t i, int64_t) {
    const T v = value(x[i]);
    if (best_i < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
      best = v;
      best_i = i;
    }
  });
  return best_i;
}

template <typename T>
T avg_divisor(const PoolGeometry& g, const Window& w) {
  if (g.divisor_override) return static_cast<T>(g.divisor_override);
  int64_t d = 1;
  for (int a = 0; a < 3; ++a) d *= g.avg_extent(a, w.start[a], w.taps[a], w.inside[a]);
  return static_cast<T>(d);
}

// (sum |x|^p)^(1/p) over the window: the plain sum for p = 1, max |x| for
// p = inf, otherwise scaled by the largest |x| so that no power overflows.
template <typename T>
T lp_norm(const PoolGeometry& g, const Window& w, const T* x) {
  T m = 0;
  if (g.p == 1) {
    for_each_inside(g, w, [&](int64_t i, int64_t) { m += std::fabs(x[i]); });
    return m;
  }
  for_each_inside(g, w, [&](int64_t i, int64_t) {
    const T a = std::fabs(x[i]);
    if (a > m || std::isnan(a)) m = a;  // NaN sticks
  });
  if (std::isinf(g.p) || m == 0 || !std::isfinite(m)) return m;
  T s = 0;
  for_each_inside(g, w, [&](int64_t i, int64_t) { s += std::pow(std::fabs(x[i]) / m, static_cast<T>(g.p)); });
  return m * std::pow(s, static_cast<T>(1.0 / g.p));
}

template <typename T>
T tap_weight(const std::vector<double>& w, int64_t t) {
  return static_cast<T>(w[static_cast<std::size_t>(t)]);
}

template <typename T>
T sign(T v) {
  return static_cast<T>((v > 0) - (v < 0));
}

}  // namespace

template <typename T>
void pool_forward(const PoolGeometry& g, const T* src, T* dst, int64_t* indices) {
  const int64_t isz = g.in_size(), osz = g.out_size();
  const std::vector<double> gw = g.kind == PoolKind::weighted_avg ? pool_gaussian_weights(g) : std::vector<double>();
#pragma omp parallel for schedule(dynamic) num_threads(get_num_threads())
  for (int64_t plane = 0; plane < g.planes(); ++plane) {
    const T* x = src + plane * isz;
    T* y = dst + plane * osz;
    int64_t* idx = indices ? indices + plane * osz : nullptr;
    for_each_output(g, [&](int64_t o, const Window& w) {
      switch (g.kind) {
        case PoolKind::max: {
          const int64_t i = argmax(g, w, x, [](T v) { return v; });
          y[o] = i < 0 ? -std::numeric_limits<T>::infinity() : x[i];
          if (idx) idx[o] = i;
          break;
        }
        case PoolKind::avg: {
          T s = 0;
          for_each_inside(g, w, [&](int64_t i, int64_t) { s += x[i]; });
          y[o] = s / avg_divisor<T>(g, w);
          break;
        }
        case PoolKind::lp: y[o] = lp_norm(g, w, x); break;
        case PoolKind::weighted_avg: {
          T s = 0;
          for_each_inside(g, w, [&](int64_t i, int64_t t) { s += tap_weight<T>(gw, t) * x[i]; });
          y[o] = s;
          break;
        }
      }
    });
  }
}

template <typename T>
void pool_backward(const PoolGeometry& g, const T* diff_dst, const T* src, T* diff_src) {
  const int64_t isz = g.in_size(), osz = g.out_size();
  const std::vector<double> gw = g.kind == PoolKind::weighted_avg ? pool_gaussian_weights(g) : std::vector<double>();
#pragma omp parallel for schedule(dynamic) num_threads(get_num_threads())
  for (int64_t plane = 0; plane < g.planes(); ++plane) {
    const T* x = src + plane * isz;
    const T* dy = diff_dst + plane * osz;
    T* dx = diff_src + plane * isz;
    std::memset(dx, 0, sizeof(T) * static_cast<std::size_t>(isz));
    for_each_output(g, [&](int64_t o, const Window& w) {
      switch (g.kind) {
        case PoolKind::max: {
          const int64_t i = argmax(g, w, x, [](T v) { return v; });
          if (i >= 0) dx[i] += dy[o];
          break;
        }
        case PoolKind::avg: {
          const T d = avg_divisor<T>(g, w);
          for_each_inside(g, w, [&](int64_t i, int64_t) { dx[i] += dy[o] / d; });
          break;
        }
        case PoolKind::lp: {
          if (std::isinf(g.p)) {
            const int64_t i = argmax(g, w, x, [](T v) { return std::fabs(v); });
            if (i >= 0) dx[i] += dy[o] * sign(x[i]);
            break;
          }
          const T yo = lp_norm(g, w, x);
          if (yo == 0) break;  // all zeros: subgradient 0
          for_each_inside(g, w, [&](int64_t i, int64_t) {
            dx[i] += dy[o] * sign(x[i]) * std::pow(std::fabs(x[i]) / yo, static_cast<T>(g.p - 1));
          });
          break;
        }
        case PoolKind::weighted_avg:
          for_each_inside(g, w, [&](int64_t i, int64_t t) { dx[i] += tap_weight<T>(gw, t) * dy[o]; });
          break;
      }
    });
  }
}

#define CNNCORE_INSTANTIATE(T)                                                      \
  template void pool_forward<T>(const PoolGeometry&, const T*, T*, int64_t*);      \
  template void pool_backward<T>(const PoolGeometry&, const T*, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu::ref
