#include "cpu/kernels/pool-direct.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <climits>
#include <limits>
#include <vector>

#include "cnncore/runtime.hpp"
#include "cpu/kernels/f32-elementwise.hpp"
#include "util/checked.hpp"
#include "util/parallel.hpp"

namespace cnncore::cpu {

using detail::PoolGeometry;

namespace {

using detail::ceil_div;

#include "cpu/kernels/pool-2x2-body.hpp"
#include "cpu/kernels/pool-3x3s2-body.hpp"

// Windows of 2x2 at stride 2 on the last two axes, none on the first, no
// padding and no dilation, so every window lies inside the input; max
// without positions, or the average (whose divisor is then 4 or the
// override): pool-2x2-body.hpp's kernels serve it.
bool pool2x2_serves(const PoolGeometry& g, bool wants_indices) {
  if (g.adaptive || wants_indices || (g.kind != PoolKind::max && g.kind != PoolKind::avg)) return false;
  if (g.k[0] != 1 || g.stride[0] != 1 || g.in[0] != g.out[0]) return false;
  for (int a = 0; a < 3; ++a)
    if (g.pad_before[a] != 0 || g.pad_after[a] != 0 || g.dilation[a] != 1) return false;
  for (int a = 1; a < 3; ++a)
    if (g.k[a] != 2 || g.stride[a] != 2 || g.out[a] != g.in[a] / 2) return false;
  return true;
}

template <typename T>
T pool2x2_divisor(const PoolGeometry& g) {
  return static_cast<T>(g.divisor_override ? g.divisor_override : 4);
}

// Planes (with the first axis folded in: each depth slice is a plane) split
// between the threads.
template <typename F>
void pool2x2_over_planes(const PoolGeometry& g, F&& run) {
  const int64_t planes = g.planes() * g.in[0], work = planes * g.in[1] * g.in[2];
  // these loops run some 4 elements a nanosecond, 4x the "simple element"
  // parallel_pays assumes: LeNet's 301K-element pools were slower on 2 threads
  const int nt = detail::parallel_pays(work / 4) ? get_num_threads() : 1;
  if (nt <= 1) return run(int64_t{0}, planes);
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t p0 = planes * t / n, p1 = planes * (t + 1) / n;
    if (p0 < p1) run(p0, p1 - p0);
  }
}

template <typename T>
void pool2x2_forward(const PoolGeometry& g, const T* src, T* dst) {
  const bool max = g.kind == PoolKind::max;
  const int64_t H = g.in[1], W = g.in[2], isz = H * W, osz = g.out[1] * g.out[2];
  const T d = pool2x2_divisor<T>(g);
  pool2x2_over_planes(g, [&](int64_t p0, int64_t n) {
    if constexpr (sizeof(T) == 4)
      f32_elementwise_kernels_for_current_isa().pool2x2_forward(max, n, H, W, d, src + p0 * isz, dst + p0 * osz);
    else
      pool2x2_forward_body<T>(max, n, H, W, d, src + p0 * isz, dst + p0 * osz);
  });
}

template <typename T>
void pool2x2_avg_backward(const PoolGeometry& g, const T* diff_dst, T* diff_src) {
  const int64_t H = g.in[1], W = g.in[2], isz = H * W, osz = g.out[1] * g.out[2];
  const T d = pool2x2_divisor<T>(g);
  pool2x2_over_planes(g, [&](int64_t p0, int64_t n) {
    if constexpr (sizeof(T) == 4)
      f32_elementwise_kernels_for_current_isa().pool2x2_avg_backward(n, H, W, d, diff_dst + p0 * osz,
                                                                     diff_src + p0 * isz);
    else
      pool2x2_avg_backward_body<T>(n, H, W, d, diff_dst + p0 * osz, diff_src + p0 * isz);
  });
}

// Everything about the windows that does not depend on the data, per axis
// and output: the coordinate of tap 0, the taps [tlo, thi) that read inside
// the input, and the average-pooling divisor factor. For a windowed W axis,
// per tap tw, the outputs [wlo, whi) whose tap tw reads inside; there the
// tap reads column ow * stride + tw * dilation - pad_before.
struct Tables {
  std::vector<int64_t> start[3], tlo[3], thi[3], ext[3];
  std::vector<int64_t> wlo, whi;
  std::vector<double> weight[3];  // weighted_avg: Gaussian per axis, normalised per axis

  explicit Tables(const PoolGeometry& g) {
    for (int a = 0; a < 3; ++a) {
      const auto n = static_cast<std::size_t>(g.out[a]);
      start[a].resize(n);
      tlo[a].resize(n);
      thi[a].resize(n);
      ext[a].resize(n);
      for (int64_t o = 0; o < g.out[a]; ++o) {
        const auto i = static_cast<std::size_t>(o);
        const int64_t st = g.window_start(a, o), taps = g.window_taps(a, o), d = g.dilation[a];
        const int64_t lo = std::clamp<int64_t>(ceil_div(-st, d), 0, taps);
        const int64_t hi = std::clamp<int64_t>(ceil_div(g.in[a] - st, d), lo, taps);
        start[a][i] = st;
        tlo[a][i] = lo;
        thi[a][i] = hi;
        ext[a][i] = g.avg_extent(a, st, taps, hi - lo);
      }
      if (g.kind == PoolKind::weighted_avg) {
        // Squared distances relative to the central taps' (0 for odd k,
        // 1/4 for even k), so those weigh 1 and a small sigma cannot
        // underflow every weight to 0 (0/0 in the normalisation).
        const double nearest = g.k[a] % 2 == 0 ? 0.25 : 0.0;
        double total = 0;
        for (int64_t t = 0; t < g.k[a]; ++t) {
          const double d = static_cast<double>(t) - 0.5 * static_cast<double>(g.k[a] - 1);
          weight[a].push_back(std::exp(-0.5 * ((d * d - nearest) / g.sigma[a] / g.sigma[a])));
          total += weight[a].back();
        }
        for (double& w : weight[a]) w /= total;
      }
    }
    if (!g.adaptive) {
      const int64_t s = g.stride[2];
      for (int64_t tw = 0; tw < g.k[2]; ++tw) {
        // o * s + off in [0, in)  <=>  o in [ceil(-off / s), ceil((in - off) / s))
        const int64_t off = tw * g.dilation[2] - g.pad_before[2];
        const int64_t lo = std::clamp<int64_t>(ceil_div(-off, s), 0, g.out[2]);
        wlo.push_back(lo);
        whi.push_back(std::clamp<int64_t>(ceil_div(g.in[2] - off, s), lo, g.out[2]));
      }
    }
  }
};

// f(row offset in the plane, td, th) for every input row that output row
// (od, oh) reads inside the input, in scan order.
template <typename F>
inline void for_each_row(const PoolGeometry& g, const Tables& tb, int64_t od, int64_t oh, F&& f) {
  const auto d_ = static_cast<std::size_t>(od), h_ = static_cast<std::size_t>(oh);
  for (int64_t td = tb.tlo[0][d_]; td < tb.thi[0][d_]; ++td) {
    const int64_t d = tb.start[0][d_] + td * g.dilation[0];
    for (int64_t th = tb.tlo[1][h_]; th < tb.thi[1][h_]; ++th) {
      const int64_t h = tb.start[1][h_] + th * g.dilation[1];
      f((d * g.in[1] + h) * g.in[2], td, th);
    }
  }
}

// f(ow, column, tw) for every output of a row and every tap of its window
// that reads inside the input; per output, taps come in increasing tw.
// Windowed: tap-major with the output loop vectorised (for a fixed tap the
// outputs read and write distinct columns). Adaptive: output-major.
// Strides 1 and 2 are compile-time constants (S), so their strided loads
// vectorise; S = 0 reads the stride from the geometry.
template <int64_t S, typename F>
inline void w_taps_windowed(const PoolGeometry& g, const Tables& tb, F& f) {
  const int64_t s = S ? S : g.stride[2];
  for (int64_t tw = 0; tw < g.k[2]; ++tw) {
    const int64_t off = tw * g.dilation[2] - g.pad_before[2];
    const int64_t lo = tb.wlo[static_cast<std::size_t>(tw)], hi = tb.whi[static_cast<std::size_t>(tw)];
#pragma omp simd
    for (int64_t ow = lo; ow < hi; ++ow) f(ow, ow * s + off, tw);
  }
}

template <typename F>
inline void for_each_w_tap(const PoolGeometry& g, const Tables& tb, F&& f) {
  if (!g.adaptive) {
    if (g.stride[2] == 1)
      w_taps_windowed<1>(g, tb, f);
    else if (g.stride[2] == 2)
      w_taps_windowed<2>(g, tb, f);
    else
      w_taps_windowed<0>(g, tb, f);
  } else {
    for (int64_t ow = 0; ow < g.out[2]; ++ow) {
      const auto i = static_cast<std::size_t>(ow);
      const int64_t st = tb.start[2][i], hi = tb.thi[2][i];
      for (int64_t tw = tb.tlo[2][i]; tw < hi; ++tw) f(ow, st + tw, tw);
    }
  }
}

template <typename T>
inline T sign(T v) {
  return static_cast<T>((v > T(0)) - (v < T(0)));
}

struct Identity {
  template <typename T>
  T operator()(T v) const { return v; }
};
struct Abs {
  template <typename T>
  T operator()(T v) const { return std::fabs(v); }
};

// Row buffers of one thread: a, b and idx per output of a row (positions as
// I, see with_index_type), in per input column.
template <typename T, typename I>
struct Buffers {
  std::vector<T> a, b, in;
  std::vector<I> idx;
  explicit Buffers(const PoolGeometry& g)
      : a(static_cast<std::size_t>(g.out[2])),
        b(static_cast<std::size_t>(g.out[2])),
        in(static_cast<std::size_t>(g.in[2])),
        idx(static_cast<std::size_t>(g.out[2])) {}
};

// The first maximum of value(x) in scan order per output of row (od, oh),
// NaN beating every number: best value into `y`, its plane index into `ir`
// (-1 and -inf when no tap is inside). The vector loop only takes strictly
// larger values (float compares only, so it vectorises with I as wide as T);
// windows left without a position hold nothing above -inf and get their
// first tap inside afterwards.
template <typename T, typename I, typename V>
void argmax_row(const PoolGeometry& g, const Tables& tb, const T* x, int64_t od, int64_t oh, T* y, I* ir, V value) {
  const int64_t W = g.out[2];
  std::fill(y, y + W, -std::numeric_limits<T>::infinity());
  std::fill(ir, ir + W, I(-1));
  for_each_row(g, tb, od, oh, [&](int64_t base, int64_t, int64_t) {
    const T* row = x + base;
    const I ibase = static_cast<I>(base);
    for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t) {
      const T v = value(row[col]);
      const T b = y[ow];
      const bool take = (v > b) | ((v != v) & (b == b));
      y[ow] = take ? v : b;
      ir[ow] = take ? ibase + static_cast<I>(col) : ir[ow];
    });
  });
  const auto d_ = static_cast<std::size_t>(od), h_ = static_cast<std::size_t>(oh);
  if (tb.tlo[0][d_] >= tb.thi[0][d_] || tb.tlo[1][h_] >= tb.thi[1][h_]) return;
  const int64_t base = ((tb.start[0][d_] + tb.tlo[0][d_] * g.dilation[0]) * g.in[1] + tb.start[1][h_] +
                        tb.tlo[1][h_] * g.dilation[1]) * g.in[2];
  for (int64_t ow = 0; ow < W; ++ow) {
    const auto w_ = static_cast<std::size_t>(ow);
    if (ir[ow] >= 0 || tb.tlo[2][w_] >= tb.thi[2][w_]) continue;
    ir[ow] = static_cast<I>(base + tb.start[2][w_] + tb.tlo[2][w_] * g.dilation[2]);
  }
}

// Largest value(x) per output of row (od, oh), starting from `init`, NaN
// sticking; no positions, so the same result as argmax_row's values.
template <typename T, typename V>
void max_row(const PoolGeometry& g, const Tables& tb, const T* x, int64_t od, int64_t oh, T* y, T init, V value) {
  std::fill(y, y + g.out[2], init);
  for_each_row(g, tb, od, oh, [&](int64_t base, int64_t, int64_t) {
    const T* row = x + base;
    for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t) {
      const T v = value(row[col]);
      const T b = y[ow];
      y[ow] = (v > b || v != v) ? v : b;
    });
  });
}

// One output row of any kind (the forward definition). `indices` (max only)
// may be null; `buf` and `ibuf` are scratch of the row's length.
template <typename T, typename I>
void forward_row(const PoolGeometry& g, const Tables& tb, const T* x, int64_t od, int64_t oh, T* y, int64_t* indices,
                 T* buf, I* ibuf) {
  const int64_t W = g.out[2];
  const auto d_ = static_cast<std::size_t>(od), h_ = static_cast<std::size_t>(oh);
  switch (g.kind) {
    case PoolKind::max:
      if (indices) {
        argmax_row(g, tb, x, od, oh, y, ibuf, Identity{});
        std::copy(ibuf, ibuf + W, indices);
      } else
        max_row(g, tb, x, od, oh, y, -std::numeric_limits<T>::infinity(), Identity{});
      return;
    case PoolKind::avg: {
      std::fill(y, y + W, T(0));
      for_each_row(g, tb, od, oh, [&](int64_t base, int64_t, int64_t) {
        const T* row = x + base;
        for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t) { y[ow] += row[col]; });
      });
      if (g.divisor_override) {
        const T d = static_cast<T>(g.divisor_override);
        for (int64_t ow = 0; ow < W; ++ow) y[ow] /= d;
      } else {
        const int64_t dh = tb.ext[0][d_] * tb.ext[1][h_];
        const int64_t* ew = tb.ext[2].data();
        for (int64_t ow = 0; ow < W; ++ow) y[ow] /= static_cast<T>(dh * ew[ow]);
      }
      return;
    }
    case PoolKind::weighted_avg: {
      std::fill(y, y + W, T(0));
      const double* ww = tb.weight[2].data();
      for_each_row(g, tb, od, oh, [&](int64_t base, int64_t td, int64_t th) {
        const T* row = x + base;
        const double wdh = tb.weight[0][static_cast<std::size_t>(td)] * tb.weight[1][static_cast<std::size_t>(th)];
        for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t tw) {
          y[ow] += static_cast<T>(wdh * ww[tw]) * row[col];
        });
      });
      return;
    }
    case PoolKind::lp: {
      if (g.p == 1) {
        std::fill(y, y + W, T(0));
        for_each_row(g, tb, od, oh, [&](int64_t base, int64_t, int64_t) {
          const T* row = x + base;
          for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t) { y[ow] += std::fabs(row[col]); });
        });
        return;
      }
      // m = max |x| (NaN sticks); then m * (sum (|x|/m)^p)^(1/p).
      max_row(g, tb, x, od, oh, buf, T(0), Abs{});
      if (std::isinf(g.p)) {
        std::copy(buf, buf + W, y);
        return;
      }
      std::fill(y, y + W, T(0));
      const bool square = g.p == 2;
      const T p = static_cast<T>(g.p);
      for_each_row(g, tb, od, oh, [&](int64_t base, int64_t, int64_t) {
        const T* row = x + base;
        if (square)
          for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t) {
            const T r = std::fabs(row[col]) / buf[ow];
            y[ow] += r * r;
          });
        else
          for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t) {
            y[ow] += std::pow(std::fabs(row[col]) / buf[ow], p);
          });
      });
      const T inv_p = static_cast<T>(1.0 / g.p);
      for (int64_t ow = 0; ow < W; ++ow) {
        const T m = buf[ow];
        y[ow] = (m == 0 || !std::isfinite(m)) ? m : m * (square ? std::sqrt(y[ow]) : std::pow(y[ow], inv_p));
      }
      return;
    }
  }
}

template <typename T, typename I>
void backward_row(const PoolGeometry& g, const Tables& tb, const T* x, const T* dy, int64_t od, int64_t oh, T* dx,
                  Buffers<T, I>& buf) {
  const int64_t W = g.out[2];
  const auto d_ = static_cast<std::size_t>(od), h_ = static_cast<std::size_t>(oh);
  T* a = buf.a.data();
  T* b = buf.b.data();
  I* ir = buf.idx.data();
  switch (g.kind) {
    case PoolKind::max:
    case PoolKind::lp:
      if (g.kind == PoolKind::max || std::isinf(g.p)) {
        const bool on_abs = g.kind == PoolKind::lp;
        if (on_abs)
          argmax_row(g, tb, x, od, oh, a, ir, Abs{});
        else
          argmax_row(g, tb, x, od, oh, a, ir, Identity{});
        for (int64_t ow = 0; ow < W; ++ow) {
          const int64_t i = ir[ow];
          if (i >= 0) dx[i] += on_abs ? dy[ow] * sign(x[i]) : dy[ow];
        }
        return;
      }
      {
        // dy/dx = sign(x) (|x| / y)^(p-1); 0 where y = 0 (an all-zero window).
        forward_row(g, tb, x, od, oh, a, nullptr, b, ir);
        for (int64_t ow = 0; ow < W; ++ow) {
          b[ow] = a[ow] == 0 ? T(0) : dy[ow];
          a[ow] = a[ow] == 0 ? T(1) : a[ow];
        }
        const T pm1 = static_cast<T>(g.p - 1);
        for_each_row(g, tb, od, oh, [&](int64_t base, int64_t, int64_t) {
          const T* row = x + base;
          T* drow = dx + base;
          if (g.p == 1)
            for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t) { drow[col] += b[ow] * sign(row[col]); });
          else if (g.p == 2)
            for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t) { drow[col] += b[ow] * (row[col] / a[ow]); });
          else
            for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t) {
              const T v = row[col];
              drow[col] += b[ow] * sign(v) * std::pow(std::fabs(v) / a[ow], pm1);
            });
        });
        return;
      }
    case PoolKind::avg:
    case PoolKind::weighted_avg: {
      // Linear and separable: the W part of every window of the row goes into
      // one input-row buffer (L1-resident scatter), which is then added,
      // contiguously, to each input row the windows read, scaled by its D/H weight.
      const bool avg = g.kind == PoolKind::avg;
      if (!avg)
        std::copy(dy, dy + W, b);
      else if (g.divisor_override)
        for (int64_t ow = 0; ow < W; ++ow) b[ow] = dy[ow] / static_cast<T>(g.divisor_override);
      else {
        const int64_t dh = tb.ext[0][d_] * tb.ext[1][h_];
        const int64_t* ew = tb.ext[2].data();
        for (int64_t ow = 0; ow < W; ++ow) b[ow] = dy[ow] / static_cast<T>(dh * ew[ow]);
      }
      T* r = buf.in.data();
      const int64_t IW = g.in[2];
      std::fill(r, r + IW, T(0));
      if (avg) {
        for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t) { r[col] += b[ow]; });
      } else {
        const double* ww = tb.weight[2].data();
        for_each_w_tap(g, tb, [&](int64_t ow, int64_t col, int64_t tw) { r[col] += static_cast<T>(ww[tw]) * b[ow]; });
      }
      for_each_row(g, tb, od, oh, [&](int64_t base, int64_t td, int64_t th) {
        T* drow = dx + base;
        if (avg) {
#pragma omp simd
          for (int64_t iw = 0; iw < IW; ++iw) drow[iw] += r[iw];
        } else {
          const T f = static_cast<T>(tb.weight[0][static_cast<std::size_t>(td)] *
                                     tb.weight[1][static_cast<std::size_t>(th)]);
#pragma omp simd
          for (int64_t iw = 0; iw < IW; ++iw) drow[iw] += f * r[iw];
        }
      });
      return;
    }
  }
}

}  // namespace

int64_t pool_direct_workspace_bytes(const PoolGeometry& g, int64_t elem_size, int threads) {
  // Tables: 4 per-axis vectors per output, 2 per W tap, 1 weight per tap;
  // per thread: two value rows and one index row of outputs, one input row.
  const int64_t tables = 8 * (4 * (g.out[0] + g.out[1] + g.out[2]) + 3 * (g.k[0] + g.k[1] + g.k[2]));
  return tables + static_cast<int64_t>(threads) * (g.out[2] * (2 * elem_size + 8) + g.in[2] * elem_size);
}

// Plane positions are computed as I: int32_t next to float (so the argmax
// vectorises with matching lanes) when a plane has fewer than 2^31 elements,
// otherwise int64_t.
template <typename T, typename F>
void with_index_type(const PoolGeometry& g, F&& f) {
  if (sizeof(T) == 4 && g.in_size() <= std::numeric_limits<int32_t>::max())
    f(int32_t{});
  else
    f(int64_t{});
}

// Max pooling over 3x3 windows at stride 2, at most one padding row and
// column a side, in 2-D, with or without positions (pool-3x3s2-body.hpp):
// the row engine's per-row tables and scratch cost more than its nine
// compares on the short rows of small maps (ResNet at 32x32 inputs, 8
// outputs a row: 1.1 ms for 32x64 planes of 16x16 on one thread, 0.15 here).
bool pool3x3s2_serves(const PoolGeometry& g) {
  if (g.adaptive || g.kind != PoolKind::max || g.in[0] != 1 || g.k[0] != 1) return false;
  for (int a = 0; a < 3; ++a)
    if (g.dilation[a] != 1) return false;
  for (int a = 1; a < 3; ++a)
    if (g.k[a] != 3 || g.stride[a] != 2 || g.pad_before[a] > 1) return false;
  return g.in_size() <= INT32_MAX;  // 32-bit positions, as wide as float's lanes
}

template <typename T>
void pool3x3s2_forward(const PoolGeometry& g, const T* src, T* dst, int64_t* indices) {
  const int64_t hi = g.in[1], wi = g.in[2], ho = g.out[1], wo = g.out[2], isz = g.in_size(), osz = g.out_size();
  pool2x2_over_planes(g, [&](int64_t p0, int64_t n) {
    int64_t* ix = indices ? indices + p0 * osz : nullptr;
    if constexpr (sizeof(T) == 4)
      f32_elementwise_kernels_for_current_isa().pool3x3s2_max(n, hi, wi, ho, wo, g.pad_before[1], g.pad_before[2],
                                                              src + p0 * isz, dst + p0 * osz, ix);
    else
      pool3x3s2_max_body<T>(n, hi, wi, ho, wo, g.pad_before[1], g.pad_before[2], src + p0 * isz, dst + p0 * osz, ix);
  });
}

template <typename T>
void pool_forward_direct(const PoolGeometry& g, const T* src, T* dst, int64_t* indices) {
  if (pool2x2_serves(g, indices != nullptr)) return pool2x2_forward(g, src, dst);
  if (pool3x3s2_serves(g)) return pool3x3s2_forward(g, src, dst, indices);
  const Tables tb(g);
  const int64_t isz = g.in_size(), osz = g.out_size(), W = g.out[2];
  with_index_type<T>(g, [&](auto itag) {
    using I = decltype(itag);
#pragma omp parallel num_threads(get_num_threads()) if (detail::parallel_pays(g.planes() * (isz + osz * g.k[1] * g.k[2])))
    {
      Buffers<T, I> buf(g);
#pragma omp for schedule(static)
      for (int64_t plane = 0; plane < g.planes(); ++plane) {
        const T* x = src + plane * isz;
        for (int64_t od = 0; od < g.out[0]; ++od)
          for (int64_t oh = 0; oh < g.out[1]; ++oh) {
            const int64_t o = plane * osz + (od * g.out[1] + oh) * W;
            forward_row(g, tb, x, od, oh, dst + o, indices ? indices + o : nullptr, buf.a.data(), buf.idx.data());
          }
      }
    }
  });
}

template <typename T>
void pool_backward_direct(const PoolGeometry& g, const T* diff_dst, const T* src, T* diff_src) {
  // Max pooling's gradient needs the positions, so only the average goes the 2x2 way.
  if (g.kind == PoolKind::avg && pool2x2_serves(g, false)) return pool2x2_avg_backward(g, diff_dst, diff_src);
  const Tables tb(g);
  const int64_t isz = g.in_size(), osz = g.out_size(), W = g.out[2];
  with_index_type<T>(g, [&](auto itag) {
    using I = decltype(itag);
#pragma omp parallel num_threads(get_num_threads()) if (detail::parallel_pays(g.planes() * (isz + osz * g.k[1] * g.k[2])))
    {
      Buffers<T, I> buf(g);
#pragma omp for schedule(static)
      for (int64_t plane = 0; plane < g.planes(); ++plane) {
        T* dx = diff_src + plane * isz;
        std::memset(dx, 0, sizeof(T) * static_cast<std::size_t>(isz));
        for (int64_t od = 0; od < g.out[0]; ++od)
          for (int64_t oh = 0; oh < g.out[1]; ++oh)
            backward_row(g, tb, src + plane * isz, diff_dst + plane * osz + (od * g.out[1] + oh) * W, od, oh, dx,
                         buf);
      }
    }
  });
}

template <typename T>
void max_pool_backward_indices_direct(const PoolGeometry& g, const T* diff_dst, const int64_t* indices, T* diff_src) {
  const int64_t isz = g.in_size(), osz = g.out_size();
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) \
    if (detail::parallel_pays(g.planes() * (isz + osz)))
  for (int64_t plane = 0; plane < g.planes(); ++plane) {
    T* dx = diff_src + plane * isz;
    const T* dy = diff_dst + plane * osz;
    const int64_t* ix = indices + plane * osz;
    std::memset(dx, 0, sizeof(T) * static_cast<std::size_t>(isz));
    for (int64_t o = 0; o < osz; ++o)
      if (ix[o] >= 0) dx[ix[o]] += dy[o];
  }
}

#define CNNCORE_INSTANTIATE(T)                                                                        \
  template void pool_forward_direct<T>(const PoolGeometry&, const T*, T*, int64_t*);                 \
  template void pool_backward_direct<T>(const PoolGeometry&, const T*, const T*, T*);                \
  template void max_pool_backward_indices_direct<T>(const PoolGeometry&, const T*, const int64_t*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
