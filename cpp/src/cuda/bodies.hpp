// The CUDA backend's kernel bodies: one functor per kernel, whose
// operator()(i) computes work item i (an output element, a channel, a plane).
// The same functors run on a CUDA device (backend.cu launches a thread per
// item) and on the host (emulator.cpp loops over the items), so the host
// tests check the code the GPU runs. A body reads only its arguments and the
// memory they point to, writes only what item i owns, never allocates.
//
// Summation orders follow the CPU reference kernels (cpu/ref/) where a body
// computes the same quantity item by item, so the emulator reproduces them.
#pragma once

#include <cstdint>

#include "cnncore/device.hpp"
#include "cnncore/layers.hpp"
#include "cnncore/optim.hpp"
#include "cpu/kernels/dropout-counter.hpp"
#include "cuda/math.hpp"
#include "device/backend.hpp"
#include "ops/axis_geometry.hpp"
#include "ops/conv_geometry.hpp"
#include "ops/pool_geometry.hpp"
#include "util/hd.hpp"

namespace cnncore::device::bodies {

using detail::AxisGeometry;
using detail::ConvGeometry;
using detail::PoolGeometry;

// ---- array primitives ----------------------------------------------------------------

template <typename T>
CNNCORE_HD inline T apply_unary(UnaryOp op, T x) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return dm::exp(x);
    case UnaryOp::log: return dm::log(x);
    case UnaryOp::sqrt: return dm::sqrt(x);
    case UnaryOp::abs: return dm::fabs(x);
    case UnaryOp::sign: return dm::isnan(x) ? x : static_cast<T>((x > T(0)) - (x < T(0)));
    case UnaryOp::square: return x * x;
    case UnaryOp::reciprocal: return T(1) / x;
    case UnaryOp::tanh: return dm::tanh(x);
    case UnaryOp::sigmoid: return T(1) / (T(1) + dm::exp(-x));
    case UnaryOp::floor: return dm::floor(x);
    case UnaryOp::ceil: return dm::ceil(x);
    case UnaryOp::isnan: return dm::isnan(x) ? T(1) : T(0);
  }
  return x;
}

// NumPy's semantics: maximum/minimum propagate NaN, fmax/fmin ignore it.
template <typename T>
CNNCORE_HD inline T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow: return dm::pow(a, b);
    case BinaryOp::maximum: return dm::isnan(a) || a > b ? a : b;
    case BinaryOp::minimum: return dm::isnan(a) || a < b ? a : b;
    case BinaryOp::fmax: return dm::isnan(b) || a > b ? a : b;
    case BinaryOp::fmin: return dm::isnan(b) || a < b ? a : b;
    case BinaryOp::eq: return a == b ? T(1) : T(0);
    case BinaryOp::ne: return a != b ? T(1) : T(0);
    case BinaryOp::lt: return a < b ? T(1) : T(0);
    case BinaryOp::le: return a <= b ? T(1) : T(0);
    case BinaryOp::gt: return a > b ? T(1) : T(0);
    case BinaryOp::ge: return a >= b ? T(1) : T(0);
  }
  return a;
}

template <typename T>
struct Unary {
  UnaryOp op;
  const T* src;
  T* dst;
  CNNCORE_HD void operator()(int64_t i) const { dst[i] = apply_unary(op, src[i]); }
};

template <typename T>
struct BinaryB {
  BinaryOp op;
  Broadcast b;
  const T* x;
  const T* y;
  T* dst;
  CNNCORE_HD void operator()(int64_t i) const { dst[i] = apply_binary(op, x[b.at(0, i)], y[b.at(1, i)]); }
};

template <typename T>
struct BinaryScalar {
  BinaryOp op;
  const T* x;
  T s;
  bool scalar_first;
  T* dst;
  CNNCORE_HD void operator()(int64_t i) const {
    dst[i] = scalar_first ? apply_binary(op, s, x[i]) : apply_binary(op, x[i], s);
  }
};

template <typename T>
struct WhereB {
  Broadcast b;
  const T* cond;
  const T* x;
  const T* y;
  T* dst;
  CNNCORE_HD void operator()(int64_t i) const {
    dst[i] = cond[b.at(0, i)] != T(0) ? x[b.at(1, i)] : y[b.at(2, i)];
  }
};

// np.clip: NaN passes through.
template <typename T>
struct Clip {
  const T* src;
  T lo, hi;
  bool has_lo, has_hi;
  T* dst;
  CNNCORE_HD void operator()(int64_t i) const {
    T v = src[i];
    if (has_lo && v < lo) v = lo;
    if (has_hi && v > hi) v = hi;
    dst[i] = v;
  }
};

// One output element per item, its inputs in row-major order of the reduced axes.
// max/min propagate NaN (np.max); argmax/argmin take the first extreme (a NaN first).
template <typename T>
struct Reduce {
  ReduceOp op;
  Reduction r;
  const T* src;
  T* dst;
  CNNCORE_HD void operator()(int64_t k) const {
    const int64_t base = r.kept.at(k), n = r.reduced.numel();
    switch (op) {
      case ReduceOp::sum: {
        T s = 0;
        for (int64_t j = 0; j < n; ++j) s += src[base + r.reduced.at(j)];
        dst[k] = s;
        return;
      }
      case ReduceOp::prod: {
        T s = 1;
        for (int64_t j = 0; j < n; ++j) s *= src[base + r.reduced.at(j)];
        dst[k] = s;
        return;
      }
      case ReduceOp::any_nan: {
        T s = 0;
        for (int64_t j = 0; j < n; ++j)
          if (dm::isnan(src[base + r.reduced.at(j)])) s = 1;
        dst[k] = s;
        return;
      }
      default: break;
    }
    const bool want_max = op == ReduceOp::max || op == ReduceOp::argmax;
    T best = src[base + r.reduced.at(0)];
    int64_t best_j = 0;
    for (int64_t j = 1; j < n && !dm::isnan(best); ++j) {
      const T v = src[base + r.reduced.at(j)];
      if (dm::isnan(v) || (want_max ? v > best : v < best)) {
        best = v;
        best_j = j;
      }
    }
    dst[k] = op == ReduceOp::argmax || op == ReduceOp::argmin ? static_cast<T>(best_j) : best;
  }
};

template <typename T>
struct Gather {
  View v;
  const T* src;
  T* dst;
  CNNCORE_HD void operator()(int64_t k) const { dst[k] = src[v.at(k)]; }
};

template <typename T>
struct Scatter {
  View v;
  Broadcast b;
  const T* src;
  T* dst;
  CNNCORE_HD void operator()(int64_t k) const { dst[v.at(k)] = src[b.at(0, k)]; }
};

template <typename T>
struct Fill {
  T value;
  T* dst;
  CNNCORE_HD void operator()(int64_t i) const { dst[i] = value; }
};

template <typename S, typename D>
struct Cast {
  const S* src;
  D* dst;
  CNNCORE_HD void operator()(int64_t i) const { dst[i] = static_cast<D>(src[i]); }
};

// c[b] (M, N) = a[b] (M, K) @ b[b] (K, N); one output element per item.
template <typename T>
struct MatMul {
  int64_t M, N, K;
  const T* a;
  const T* b;
  T* c;
  CNNCORE_HD void operator()(int64_t i) const {
    const int64_t n = i % N, m = (i / N) % M, batch = i / (M * N);
    const T* ar = a + (batch * M + m) * K;
    const T* bc = b + batch * K * N + n;
    T s = 0;
    for (int64_t k = 0; k < K; ++k) s += ar[k] * bc[k * N];
    c[i] = s;
  }
};

// ---- split sums: out[item] = scale * sum over j in [0, len) of term(item, j) -------------
//
// A sum that one work item would run alone for long (a weight gradient over
// the batch, a channel's statistics) is cut into `splits` contiguous ranges:
// pass one writes one partial per (item, range), pass two adds an item's
// partials in range order. The split depends on the sizes only, so results
// repeat run to run.

template <class Term, typename Acc>
struct PartialSums {
  Term term;
  int64_t len, splits;
  Acc* partial;
  CNNCORE_HD void operator()(int64_t k) const {
    const int64_t item = k / splits, r = k % splits;
    const int64_t lo = len * r / splits, hi = len * (r + 1) / splits;
    Acc a = 0;
    for (int64_t j = lo; j < hi; ++j) a += static_cast<Acc>(term(item, j));
    partial[k] = a;
  }
};

template <typename Acc, typename Out>
struct FinishSums {
  const Acc* partial;
  int64_t splits;
  double scale;
  Out* out;
  CNNCORE_HD void operator()(int64_t item) const {
    Acc a = 0;
    for (int64_t r = 0; r < splits; ++r) a += partial[item * splits + r];
    out[item] = static_cast<Out>(scale == 1.0 ? a : static_cast<Acc>(a * scale));
  }
};

// Element (n, c, i) of an (outer, axis, inner) tensor, j = n * inner + i.
template <typename T>
struct ChannelTerm {
  AxisGeometry g;
  const T* src;
  CNNCORE_HD T operator()(int64_t c, int64_t j) const { return src[((j / g.inner) * g.axis + c) * g.inner + j % g.inner]; }
};

// (x - mean_c)^2, in double.
template <typename T>
struct CenteredSquareTerm {
  AxisGeometry g;
  const T* src;
  const double* mean;
  CNNCORE_HD double operator()(int64_t c, int64_t j) const {
    const double d = src[((j / g.inner) * g.axis + c) * g.inner + j % g.inner] - mean[c];
    return d * d;
  }
};

// dy * xhat, xhat = (x - mean_c) * invstd_c, in double.
template <typename T>
struct DyXhatTerm {
  AxisGeometry g;
  const T* dy;
  const T* src;
  const double* mean;
  const double* invstd;
  CNNCORE_HD double operator()(int64_t c, int64_t j) const {
    const int64_t k = ((j / g.inner) * g.axis + c) * g.inner + j % g.inner;
    return dy[k] * (src[k] - mean[c]) * invstd[c];
  }
};

// ---- convolution -----------------------------------------------------------------------

// Source index on axis a for output position o and tap t (-1: a padding zero),
// as the CPU reference computes it.
CNNCORE_HD inline int64_t conv_src_index(const ConvGeometry& g, int a, int64_t o, int64_t t) {
  const int64_t tap = g.flip ? g.k[a] - 1 - t : t;
  return detail::padded_source_index(o * g.stride[a] + tap * g.dilation[a] - g.pad_before[a], g.in[a], g.mode);
}

// One output element (n, o, od, oh, ow) per item: bias, then channel by
// channel and tap by tap, as cpu::ref::conv_forward. Padding zeros are
// multiplied like any value (a NaN weight poisons the border too).
template <typename T>
struct ConvForward {
  ConvGeometry g;
  const T* src;
  const T* w;
  const T* bias;
  T* dst;
  CNNCORE_HD void operator()(int64_t i) const {
    const int64_t osz = g.out_size(), isz = g.in_size(), ksz = g.k_size();
    const int64_t p = i % osz, no = i / osz, o = no % g.C_out, n = no / g.C_out;
    const int64_t ow = p % g.out[2], oh = (p / g.out[2]) % g.out[1], od = p / (g.out[2] * g.out[1]);
    const int64_t grp = o / g.C_out_g;
    const T* x = src + (n * g.C_in + grp * g.C_in_g) * isz;
    const T* wo = w + o * g.C_in_g * ksz;
    T acc = bias ? bias[o] : T(0);
    for (int64_t c = 0; c < g.C_in_g; ++c)
      for (int64_t td = 0; td < g.k[0]; ++td) {
        const int64_t sd = conv_src_index(g, 0, od, td);
        for (int64_t th = 0; th < g.k[1]; ++th) {
          const int64_t sh = conv_src_index(g, 1, oh, th);
          for (int64_t tw = 0; tw < g.k[2]; ++tw) {
            const int64_t sw = conv_src_index(g, 2, ow, tw);
            const bool inside = sd >= 0 && sh >= 0 && sw >= 0;
            const T xv = inside ? x[c * isz + (sd * g.in[1] + sh) * g.in[2] + sw] : T(0);
            acc += wo[c * ksz + (td * g.k[1] + th) * g.k[2] + tw] * xv;
          }
        }
      }
    dst[i] = acc;
  }
};

// The gradient of the padded input (extent in + pad_before + pad_after per
// axis, every mode treated as zeros there): one padded element per item, a
// gather over the output channels of its group and the taps that reach it.
template <typename T>
struct ConvBackwardPadded {
  ConvGeometry g;
  int64_t P[3];  // padded extents
  const T* dy;
  const T* w;
  T* padded;
  CNNCORE_HD void operator()(int64_t i) const {
    const int64_t psz = P[0] * P[1] * P[2], osz = g.out_size(), ksz = g.k_size();
    const int64_t q = i % psz, nc = i / psz, c = nc % g.C_in, n = nc / g.C_in;
    const int64_t pos[3] = {q / (P[1] * P[2]), (q / P[2]) % P[1], q % P[2]};
    const int64_t grp = c / g.C_in_g, cg = c % g.C_in_g;
    T acc = 0;
    for (int64_t o = grp * g.C_out_g; o < (grp + 1) * g.C_out_g; ++o) {
      const T* dyo = dy + (n * g.C_out + o) * osz;
      const T* wo = w + (o * g.C_in_g + cg) * ksz;
      for (int64_t td = 0; td < g.k[0]; ++td) {
        const int64_t od = out_of(0, pos[0], td);
        if (od < 0) continue;
        for (int64_t th = 0; th < g.k[1]; ++th) {
          const int64_t oh = out_of(1, pos[1], th);
          if (oh < 0) continue;
          for (int64_t tw = 0; tw < g.k[2]; ++tw) {
            const int64_t ow = out_of(2, pos[2], tw);
            if (ow < 0) continue;
            acc += wo[(td * g.k[1] + th) * g.k[2] + tw] * dyo[(od * g.out[1] + oh) * g.out[2] + ow];
          }
        }
      }
    }
    padded[i] = acc;
  }
  // The output position whose tap t reads padded coordinate p on axis a, or -1.
  CNNCORE_HD int64_t out_of(int a, int64_t p, int64_t t) const {
    const int64_t tap = g.flip ? g.k[a] - 1 - t : t;
    const int64_t r = p - tap * g.dilation[a];
    if (r < 0 || r % g.stride[a] != 0) return -1;
    const int64_t o = r / g.stride[a];
    return o < g.out[a] ? o : -1;
  }
};

// Padding of one plane box (pad and the convolution's padded gradient):
// destination coordinate p on axis a copies source padded_source_index(p - before).
// (PadBox is in device/backend.hpp.)

// pad forward: one destination element per item; constant-mode padding gets `value`.
template <typename T>
struct PadGather {
  PadBox b;
  T value;
  const T* src;
  T* dst;
  CNNCORE_HD void operator()(int64_t i) const {
    const int64_t osz = b.out[0] * b.out[1] * b.out[2], q = i % osz, plane = i / osz;
    const int64_t o[3] = {q / (b.out[1] * b.out[2]), (q / b.out[2]) % b.out[1], q % b.out[2]};
    int64_t s[3];
    for (int a = 0; a < 3; ++a) {
      s[a] = detail::padded_source_index(o[a] - b.before[a], b.in[a], b.mode);
      if (s[a] < 0) {
        dst[i] = value;
        return;
      }
    }
    dst[i] = src[plane * b.in[0] * b.in[1] * b.in[2] + (s[0] * b.in[1] + s[1]) * b.in[2] + s[2]];
  }
};

// The adjoint of PadGather: one source element per item adds every
// destination element that copies it (constant mode: only the interior one).
template <typename T>
struct PadFold {
  PadBox b;
  const T* dy;
  T* dx;
  CNNCORE_HD void operator()(int64_t i) const {
    const int64_t isz = b.in[0] * b.in[1] * b.in[2], osz = b.out[0] * b.out[1] * b.out[2];
    const int64_t q = i % isz, plane = i / isz;
    const int64_t s[3] = {q / (b.in[1] * b.in[2]), (q / b.in[2]) % b.in[1], q % b.in[2]};
    const T* d = dy + plane * osz;
    if (b.mode == PaddingMode::zeros) {  // (a negative `before` crops: then s may fall outside)
      int64_t o[3];
      for (int a = 0; a < 3; ++a) {
        o[a] = s[a] + b.before[a];
        if (o[a] < 0 || o[a] >= b.out[a]) {
          dx[i] = T(0);
          return;
        }
      }
      dx[i] = d[(o[0] * b.out[1] + o[1]) * b.out[2] + o[2]];
      return;
    }
    T acc = 0;
    for (int64_t p0 = 0; p0 < b.out[0]; ++p0) {
      if (detail::padded_source_index(p0 - b.before[0], b.in[0], b.mode) != s[0]) continue;
      for (int64_t p1 = 0; p1 < b.out[1]; ++p1) {
        if (detail::padded_source_index(p1 - b.before[1], b.in[1], b.mode) != s[1]) continue;
        for (int64_t p2 = 0; p2 < b.out[2]; ++p2)
          if (detail::padded_source_index(p2 - b.before[2], b.in[2], b.mode) == s[2])
            acc += d[(p0 * b.out[1] + p1) * b.out[2] + p2];
      }
    }
    dx[i] = acc;
  }
};

// The weight gradient as a split sum: item = weight element (o, c, td, th, tw),
// j = n * out_size + output position; term = dy * x (x = 0 on padding zeros).
template <typename T>
struct ConvWeightTerm {
  ConvGeometry g;
  const T* dy;
  const T* src;
  CNNCORE_HD T operator()(int64_t item, int64_t j) const {
    const int64_t ksz = g.k_size(), osz = g.out_size();
    const int64_t t = item % ksz, oc = item / ksz, c = oc % g.C_in_g, o = oc / g.C_in_g;
    const int64_t tw = t % g.k[2], th = (t / g.k[2]) % g.k[1], td = t / (g.k[2] * g.k[1]);
    const int64_t n = j / osz, p = j % osz;
    const int64_t ow = p % g.out[2], oh = (p / g.out[2]) % g.out[1], od = p / (g.out[2] * g.out[1]);
    const int64_t sd = conv_src_index(g, 0, od, td), sh = conv_src_index(g, 1, oh, th),
                  sw = conv_src_index(g, 2, ow, tw);
    const T x = sd >= 0 && sh >= 0 && sw >= 0
                    ? src[(n * g.C_in + (o / g.C_out_g) * g.C_in_g + c) * g.in_size() + (sd * g.in[1] + sh) * g.in[2] + sw]
                    : T(0);
    return dy[(n * g.C_out + o) * osz + p] * x;
  }
};

// ---- pooling ---------------------------------------------------------------------------

struct PoolWindow {
  int64_t start[3], taps[3], inside[3];
  CNNCORE_HD PoolWindow(const PoolGeometry& g, const int64_t o[3]) {
    for (int a = 0; a < 3; ++a) {
      start[a] = g.window_start(a, o[a]);
      taps[a] = g.window_taps(a, o[a]);
      inside[a] = 0;
      for (int64_t t = 0; t < taps[a]; ++t) {
        const int64_t c = start[a] + t * g.dilation[a];
        if (c >= 0 && c < g.in[a]) ++inside[a];
      }
    }
  }
  // Flat index in the plane of tap (td, th, tw), or -1 outside the input.
  CNNCORE_HD int64_t index(const PoolGeometry& g, int64_t td, int64_t th, int64_t tw) const {
    const int64_t d = start[0] + td * g.dilation[0], h = start[1] + th * g.dilation[1],
                  x = start[2] + tw * g.dilation[2];
    if (d < 0 || d >= g.in[0] || h < 0 || h >= g.in[1] || x < 0 || x >= g.in[2]) return -1;
    return (d * g.in[1] + h) * g.in[2] + x;
  }
};

// The first maximum of v(x) over the window in scan order (NaN beats every
// number), or -1 when no tap is inside; abs selects |x| (Lp with p = inf).
template <typename T>
CNNCORE_HD inline int64_t pool_argmax(const PoolGeometry& g, const PoolWindow& w, const T* x, bool abs) {
  int64_t best_i = -1;
  T best = -dm::inf<T>();
  for (int64_t td = 0; td < w.taps[0]; ++td)
    for (int64_t th = 0; th < w.taps[1]; ++th)
      for (int64_t tw = 0; tw < w.taps[2]; ++tw) {
        const int64_t i = w.index(g, td, th, tw);
        if (i < 0) continue;
        const T v = abs ? dm::fabs(x[i]) : x[i];
        if (best_i < 0 || v > best || (dm::isnan(v) && !dm::isnan(best))) {
          best = v;
          best_i = i;
        }
      }
  return best_i;
}

template <typename T>
CNNCORE_HD inline T pool_avg_divisor(const PoolGeometry& g, const PoolWindow& w) {
  if (g.divisor_override) return static_cast<T>(g.divisor_override);
  int64_t d = 1;
  for (int a = 0; a < 3; ++a) d *= g.avg_extent(a, w.start[a], w.taps[a], w.inside[a]);
  return static_cast<T>(d);
}

// (sum |x|^p)^(1/p) scaled by the largest |x|, as the CPU reference.
template <typename T>
CNNCORE_HD inline T pool_lp_norm(const PoolGeometry& g, const PoolWindow& w, const T* x) {
  T m = 0;
  const bool one = g.p == 1;
  for (int64_t td = 0; td < w.taps[0]; ++td)
    for (int64_t th = 0; th < w.taps[1]; ++th)
      for (int64_t tw = 0; tw < w.taps[2]; ++tw) {
        const int64_t i = w.index(g, td, th, tw);
        if (i < 0) continue;
        const T a = dm::fabs(x[i]);
        if (one)
          m += a;
        else if (a > m || dm::isnan(a))
          m = a;
      }
  if (one || g.p == dm::inf<double>() || m == 0 || dm::isnan(m) || m == dm::inf<T>()) return m;
  T s = 0;
  for (int64_t td = 0; td < w.taps[0]; ++td)
    for (int64_t th = 0; th < w.taps[1]; ++th)
      for (int64_t tw = 0; tw < w.taps[2]; ++tw) {
        const int64_t i = w.index(g, td, th, tw);
        if (i >= 0) s += dm::pow(dm::fabs(x[i]) / m, static_cast<T>(g.p));
      }
  return m * dm::pow(s, static_cast<T>(1.0 / g.p));
}

template <typename T>
CNNCORE_HD inline void pool_unflatten(const PoolGeometry& g, int64_t q, int64_t o[3]) {
  o[2] = q % g.out[2];
  o[1] = (q / g.out[2]) % g.out[1];
  o[0] = q / (g.out[2] * g.out[1]);
}

// One output element per item.
template <typename T>
struct PoolForward {
  PoolGeometry g;
  const T* src;
  const double* tw;  // weighted_avg tap weights (scan order over the full kernel)
  T* dst;
  CNNCORE_HD void operator()(int64_t i) const {
    const int64_t osz = g.out_size(), plane = i / osz;
    int64_t o[3];
    pool_unflatten<T>(g, i % osz, o);
    const PoolWindow w(g, o);
    const T* x = src + plane * g.in_size();
    switch (g.kind) {
      case PoolKind::max: {
        const int64_t j = pool_argmax(g, w, x, false);
        dst[i] = j < 0 ? -dm::inf<T>() : x[j];
        return;
      }
      case PoolKind::avg: {
        T s = 0;
        for (int64_t td = 0; td < w.taps[0]; ++td)
          for (int64_t th = 0; th < w.taps[1]; ++th)
            for (int64_t t2 = 0; t2 < w.taps[2]; ++t2) {
              const int64_t j = w.index(g, td, th, t2);
              if (j >= 0) s += x[j];
            }
        dst[i] = s / pool_avg_divisor<T>(g, w);
        return;
      }
      case PoolKind::lp: dst[i] = pool_lp_norm(g, w, x); return;
      case PoolKind::weighted_avg: {
        T s = 0;
        for (int64_t td = 0; td < w.taps[0]; ++td)
          for (int64_t th = 0; th < w.taps[1]; ++th)
            for (int64_t t2 = 0; t2 < w.taps[2]; ++t2) {
              const int64_t j = w.index(g, td, th, t2);
              if (j >= 0) s += static_cast<T>(tw[(td * w.taps[1] + th) * w.taps[2] + t2]) * x[j];
            }
        dst[i] = s;
        return;
      }
    }
  }
};

// One plane per item, its outputs in order, scattering into the plane's
// gradient as cpu::ref::pool_backward does (so overlapping windows add in the
// same order and the result is deterministic).
template <typename T>
struct PoolBackward {
  PoolGeometry g;
  const T* dy;
  const T* src;
  const double* tw;
  T* dx;
  CNNCORE_HD void operator()(int64_t plane) const {
    const int64_t isz = g.in_size(), osz = g.out_size();
    const T* x = src + plane * isz;
    const T* d = dy + plane * osz;
    T* out = dx + plane * isz;
    for (int64_t j = 0; j < isz; ++j) out[j] = T(0);
    for (int64_t q = 0; q < osz; ++q) {
      int64_t o[3];
      pool_unflatten<T>(g, q, o);
      const PoolWindow w(g, o);
      if (g.kind == PoolKind::max || (g.kind == PoolKind::lp && g.p == dm::inf<double>())) {
        const bool abs = g.kind == PoolKind::lp;
        const int64_t j = pool_argmax(g, w, x, abs);
        if (j >= 0) out[j] += abs ? d[q] * sign(x[j]) : d[q];
        continue;
      }
      T scale = 0, yo = 0;
      if (g.kind == PoolKind::avg) scale = pool_avg_divisor<T>(g, w);
      if (g.kind == PoolKind::lp) {
        yo = pool_lp_norm(g, w, x);
        if (yo == 0) continue;
      }
      for (int64_t td = 0; td < w.taps[0]; ++td)
        for (int64_t th = 0; th < w.taps[1]; ++th)
          for (int64_t t2 = 0; t2 < w.taps[2]; ++t2) {
            const int64_t j = w.index(g, td, th, t2);
            if (j < 0) continue;
            if (g.kind == PoolKind::avg)
              out[j] += d[q] / scale;
            else if (g.kind == PoolKind::lp)
              out[j] += d[q] * sign(x[j]) * dm::pow(dm::fabs(x[j]) / yo, static_cast<T>(g.p - 1));
            else
              out[j] += static_cast<T>(tw[(td * w.taps[1] + th) * w.taps[2] + t2]) * d[q];
          }
    }
  }
  CNNCORE_HD static T sign(T v) { return static_cast<T>((v > T(0)) - (v < T(0))); }
};

// ---- activations -----------------------------------------------------------------------

template <typename T>
CNNCORE_HD inline T sigmoid(T x) {
  return T(1) / (T(1) + dm::exp(-x));
}
template <typename T>
CNNCORE_HD inline T gelu_u(T x) {
  return T(0.7978845608028654) * (x + T(0.044715) * x * x * x);
}

// kind: relu 0, leaky_relu 1, sigmoid 2, tanh 3, silu 4, gelu 5, gelu_tanh 6.
template <typename T>
struct ActivationForward {
  int kind;
  T slope;
  const T* src;
  T* dst;
  CNNCORE_HD void operator()(int64_t i) const {
    const T x = src[i];
    switch (kind) {
      case 0: dst[i] = x <= T(0) ? T(0) : x; return;
      case 1: dst[i] = x > T(0) ? x : x * slope; return;
      case 2: dst[i] = sigmoid(x); return;
      case 4: dst[i] = x * sigmoid(x); return;
      case 5: dst[i] = T(0.5) * x * (T(1) + dm::erf(x * T(0.7071067811865476))); return;
      case 6: dst[i] = T(0.5) * x * (T(1) + dm::tanh(gelu_u(x))); return;
      default: dst[i] = dm::tanh(x); return;
    }
  }
};

template <typename T>
struct ActivationBackward {
  int kind;
  T slope;
  const T* g;
  const T* src;
  T* dx;
  CNNCORE_HD void operator()(int64_t i) const {
    const T x = src[i], gi = g[i];
    switch (kind) {
      case 0: dx[i] = x <= T(0) ? T(0) : gi; return;
      case 1: dx[i] = x > T(0) ? gi : gi * slope; return;
      case 2: {
        const T y = sigmoid(x);
        dx[i] = gi * y * (T(1) - y);
        return;
      }
      case 4: {
        const T s = sigmoid(x);
        dx[i] = gi * (s + x * s * (T(1) - s));
        return;
      }
      case 5: {
        const T cdf = T(0.5) * (T(1) + dm::erf(x * T(0.7071067811865476)));
        const T pdf = T(0.3989422804014327) * dm::exp(T(-0.5) * x * x);
        dx[i] = gi * (cdf + x * pdf);
        return;
      }
      case 6: {
        const T t = dm::tanh(gelu_u(x));
        const T du = T(0.7978845608028654) * (T(1) + T(3 * 0.044715) * x * x);
        dx[i] = gi * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
        return;
      }
      default: {
        const T y = dm::tanh(x);
        dx[i] = gi * (T(1) - y * y);
        return;
      }
    }
  }
};

// ---- softmax / cross-entropy: one (o, i) row of the class axis per item --------------

template <typename T>
CNNCORE_HD inline int64_t axis_at(const AxisGeometry& g, int64_t o, int64_t a, int64_t i) {
  return (o * g.axis + a) * g.inner + i;
}

// The row's maximum and sum of exp(x - max), as cpu::ref::softmax_forward.
template <typename T>
CNNCORE_HD inline void softmax_row(const AxisGeometry& g, const T* src, int64_t o, int64_t i, T* m, T* s) {
  T mx = -dm::inf<T>();
  for (int64_t a = 0; a < g.axis; ++a)
    if (src[axis_at<T>(g, o, a, i)] > mx) mx = src[axis_at<T>(g, o, a, i)];
  T sum = 0;
  for (int64_t a = 0; a < g.axis; ++a) sum += dm::exp(src[axis_at<T>(g, o, a, i)] - mx);
  *m = mx;
  *s = sum;
}

template <typename T>
struct SoftmaxForward {
  AxisGeometry g;
  bool log;
  const T* src;
  T* dst;
  CNNCORE_HD void operator()(int64_t r) const {
    const int64_t o = r / g.inner, i = r % g.inner;
    T m, s;
    softmax_row(g, src, o, i, &m, &s);
    for (int64_t a = 0; a < g.axis; ++a) {
      const T x = src[axis_at<T>(g, o, a, i)];
      dst[axis_at<T>(g, o, a, i)] = log ? (x - m) - dm::log(s) : dm::exp(x - m) / s;
    }
  }
};

// dx_a = y_a (dy_a - sum_b dy_b y_b) (softmax), dy_a - y_a sum_b dy_b (log_softmax).
template <typename T>
struct SoftmaxBackward {
  AxisGeometry g;
  bool log;
  const T* dy;
  const T* src;
  T* dx;
  CNNCORE_HD void operator()(int64_t r) const {
    const int64_t o = r / g.inner, i = r % g.inner;
    T m, s;
    softmax_row(g, src, o, i, &m, &s);
    T dot = 0;
    for (int64_t a = 0; a < g.axis; ++a) {
      const int64_t k = axis_at<T>(g, o, a, i);
      dot += log ? dy[k] : dy[k] * (dm::exp(src[k] - m) / s);
    }
    for (int64_t a = 0; a < g.axis; ++a) {
      const int64_t k = axis_at<T>(g, o, a, i);
      const T y = dm::exp(src[k] - m) / s;
      dx[k] = log ? dy[k] - y * dot : y * (dy[k] - dot);
    }
  }
};

template <typename T>
struct CrossEntropyForward {
  AxisGeometry g;
  const T* src;
  const T* w;
  const int64_t* target;
  int64_t ignore;
  double smoothing;
  T* loss;
  CNNCORE_HD void operator()(int64_t p) const {
    const int64_t n = p / g.inner, i = p % g.inner, tp = target[p];
    T l = 0;
    if (tp != ignore) {
      T m, s;
      softmax_row(g, src, n, i, &m, &s);
      const T ls = dm::log(s);
      const T wt = w ? w[tp] : T(1);
      T smooth = 0;
      for (int64_t c = 0; c < g.axis; ++c) smooth -= (w ? w[c] : T(1)) * ((src[axis_at<T>(g, n, c, i)] - m) - ls);
      l = -static_cast<T>(1.0 - smoothing) * wt * ((src[axis_at<T>(g, n, tp, i)] - m) - ls) +
          static_cast<T>(smoothing / double(g.axis)) * smooth;
    }
    loss[p] = l;
  }
};

template <typename T>
struct CrossEntropyBackward {
  AxisGeometry g;
  const T* dy;
  int64_t dstride;
  double factor;
  const T* src;
  const T* w;
  const int64_t* target;
  int64_t ignore;
  double smoothing;
  T* dx;
  CNNCORE_HD void operator()(int64_t p) const {
    const int64_t n = p / g.inner, i = p % g.inner, tp = target[p];
    if (tp == ignore) {
      for (int64_t c = 0; c < g.axis; ++c) dx[axis_at<T>(g, n, c, i)] = T(0);
      return;
    }
    T m, s;
    softmax_row(g, src, n, i, &m, &s);
    T wsum = 0;
    for (int64_t c = 0; c < g.axis; ++c) wsum += w ? w[c] : T(1);
    const T scale = static_cast<T>(static_cast<double>(dy[p * dstride]) * factor);
    const T wt = w ? w[tp] : T(1);
    for (int64_t c = 0; c < g.axis; ++c) {
      const int64_t k = axis_at<T>(g, n, c, i);
      const T pc = dm::exp(src[k] - m) / s, wc = w ? w[c] : T(1);
      dx[k] = scale * (static_cast<T>(1.0 - smoothing) * wt * (pc - (c == tp ? T(1) : T(0))) +
                       static_cast<T>(smoothing / double(g.axis)) * (pc * wsum - wc));
    }
  }
};

template <typename T>
struct NllForward {
  AxisGeometry g;
  const T* src;
  const T* w;
  const int64_t* target;
  int64_t ignore;
  T* loss;
  CNNCORE_HD void operator()(int64_t p) const {
    const int64_t o = p / g.inner, i = p % g.inner, t = target[p];
    double l = 0;
    if (t != ignore) l = -(w ? double(w[t]) : 1.0) * double(src[axis_at<T>(g, o, t, i)]);
    loss[p] = static_cast<T>(l);
  }
};

template <typename T>
struct NllBackward {
  AxisGeometry g;
  const T* dy;
  int64_t dstride;
  double factor;
  const T* w;
  const int64_t* target;
  int64_t ignore;
  T* dx;
  CNNCORE_HD void operator()(int64_t p) const {
    const int64_t o = p / g.inner, i = p % g.inner, t = target[p];
    for (int64_t c = 0; c < g.axis; ++c) dx[axis_at<T>(g, o, c, i)] = T(0);
    if (t == ignore) return;
    const double wt = w ? double(w[t]) : 1.0;
    dx[axis_at<T>(g, o, t, i)] = static_cast<T>(-wt * factor * double(dy[p * dstride]));
  }
};

// ---- dropout: the CPU's counter-based mask, element by element ----------------------

template <typename T>
struct Dropout {
  cpu::DropoutKey key;
  bool all;  // p >= 1: every element dropped
  T scale;
  const T* src;
  T* dst;
  CNNCORE_HD void operator()(int64_t i) const {
    dst[i] = !all && cpu::dropout_keep(key, static_cast<uint64_t>(i)) ? src[i] * scale : T(0);
  }
};

// ---- local response normalisation across channels (axis of AxisGeometry) -----------

template <typename T>
CNNCORE_HD inline T lrn_scale(const AxisGeometry& g, const LrnParams& p, const T* src, int64_t o, int64_t c,
                              int64_t i) {
  T sum = 0;
  for (int64_t q = c - p.size / 2; q <= c + (p.size - 1) / 2; ++q)
    if (q >= 0 && q < g.axis) sum += src[axis_at<T>(g, o, q, i)] * src[axis_at<T>(g, o, q, i)];
  return static_cast<T>(p.k) + static_cast<T>(p.alpha / static_cast<double>(p.size)) * sum;
}

template <typename T>
struct LrnForward {
  AxisGeometry g;
  LrnParams p;
  const T* src;
  T* dst;
  CNNCORE_HD void operator()(int64_t k) const {
    const int64_t i = k % g.inner, c = (k / g.inner) % g.axis, o = k / (g.inner * g.axis);
    dst[k] = src[k] / dm::pow(lrn_scale(g, p, src, o, c, i), static_cast<T>(p.beta));
  }
};

// dx_j = dy_j s_j^-beta - 2 alpha/size beta x_j sum_{c: j in W(c)} dy_c x_c s_c^(-beta-1).
template <typename T>
struct LrnBackward {
  AxisGeometry g;
  LrnParams p;
  const T* dy;
  const T* src;
  T* dx;
  CNNCORE_HD void operator()(int64_t k) const {
    const int64_t i = k % g.inner, j = (k / g.inner) % g.axis, o = k / (g.inner * g.axis);
    const T beta = static_cast<T>(p.beta);
    const T coef = static_cast<T>(2.0 * p.alpha / static_cast<double>(p.size) * p.beta);
    const T xj = src[k];
    T d = dy[k] / dm::pow(lrn_scale(g, p, src, o, j, i), beta);
    for (int64_t c = 0; c < g.axis; ++c) {
      if (!(c - p.size / 2 <= j && j <= c + (p.size - 1) / 2)) continue;
      const T s = lrn_scale(g, p, src, o, c, i);
      d -= coef * xj * dy[axis_at<T>(g, o, c, i)] * src[axis_at<T>(g, o, c, i)] / (dm::pow(s, beta) * s);
    }
    dx[k] = d;
  }
};

// ---- batch norm (statistics by split sums in double, as the CPU sums in double) -----------------

template <typename T>
struct BatchNormFinish {
  int64_t M;
  bool training;
  double eps, momentum;
  double* mean;
  double* var;
  double* invstd;
  T* rm;
  T* rv;
  CNNCORE_HD void operator()(int64_t c) const {
    if (!training) {
      mean[c] = static_cast<double>(rm[c]);
      var[c] = static_cast<double>(rv[c]);
    } else if (rm) {
      const double unbias = double(M) / double(M - 1);
      rm[c] = static_cast<T>((1.0 - momentum) * double(rm[c]) + momentum * mean[c]);
      rv[c] = static_cast<T>((1.0 - momentum) * double(rv[c]) + momentum * var[c] * unbias);
    }
    invstd[c] = 1.0 / dm::sqrt(var[c] + eps);
  }
};

template <typename T>
struct BatchNormApply {
  AxisGeometry g;
  const T* src;
  const double* mean;
  const double* invstd;
  const T* w;
  const T* b;
  T* dst;
  CNNCORE_HD void operator()(int64_t k) const {
    const int64_t c = (k / g.inner) % g.axis;
    const double xhat = (src[k] - mean[c]) * invstd[c];
    dst[k] = static_cast<T>(xhat * (w ? double(w[c]) : 1.0) + (b ? double(b[c]) : 0.0));
  }
};

template <typename T>
struct BatchNormBackward {
  AxisGeometry g;
  bool training;
  const T* dy;
  const T* src;
  const double* mean;
  const double* invstd;
  const T* w;
  const double* partials;
  T* dx;
  CNNCORE_HD void operator()(int64_t k) const {
    const int64_t c = (k / g.inner) % g.axis;
    const double M = static_cast<double>(g.outer * g.inner);
    const double wc = w ? double(w[c]) : 1.0, d = dy[k];
    const double xhat = (src[k] - mean[c]) * invstd[c];
    dx[k] = static_cast<T>(training ? wc * invstd[c] * (d - partials[c] / M - xhat * partials[g.axis + c] / M)
                                    : wc * invstd[c] * d);
  }
};

// ---- linear: one output element per item, as cpu::ref ---------------------------------

template <typename T>
struct LinearForward {
  LinearDims d;
  const T* x;
  const T* w;
  const T* b;
  T* y;
  CNNCORE_HD void operator()(int64_t i) const {
    const int64_t r = i / d.out, o = i % d.out;
    T s = b ? b[o] : T(0);
    for (int64_t k = 0; k < d.in; ++k) s += x[r * d.in + k] * w[o * d.in + k];
    y[i] = s;
  }
};

template <typename T>
struct LinearBackwardData {
  LinearDims d;
  const T* dy;
  const T* w;
  T* dx;
  CNNCORE_HD void operator()(int64_t i) const {
    const int64_t r = i / d.in, k = i % d.in;
    T s = 0;
    for (int64_t o = 0; o < d.out; ++o) s += dy[r * d.out + o] * w[o * d.in + k];
    dx[i] = s;
  }
};

template <typename T>
struct LinearBackwardWeight {
  LinearDims d;
  const T* dy;
  const T* x;
  T* dw;
  CNNCORE_HD void operator()(int64_t i) const {
    const int64_t o = i / d.in, k = i % d.in;
    T s = 0;
    for (int64_t r = 0; r < d.rows; ++r) s += dy[r * d.out + o] * x[r * d.in + k];
    dw[i] = s;
  }
};

// ---- optimiser updates: the formulas of ops/optim.cpp, element by element --------------

template <typename T>
struct Sgd {
  T* w;
  const T* g;
  T* buf;
  T lr, mom, keep, wd;
  bool decay, init, nesterov;
  CNNCORE_HD void operator()(int64_t i) const {
    T gi = g[i];
    if (decay) gi = gi + wd * w[i];
    T d = gi;
    if (buf) {
      const T b = init ? gi : mom * buf[i] + keep * gi;
      buf[i] = b;
      d = nesterov ? gi + mom * b : b;
    }
    w[i] = w[i] - lr * d;
  }
};

template <typename T>
struct Adam {
  T* w;
  const T* g;
  T* m;
  T* v;
  T* vmax;
  T b1, b2, one_b1, one_b2, wd, shrink, step, root_bc2, eps;
  bool decay, decoupled;
  CNNCORE_HD void operator()(int64_t i) const {
    T gi = g[i], wi = w[i];
    if (decay) {
      if (decoupled)
        wi = wi * shrink;
      else
        gi = gi + wd * wi;
    }
    const T mi = b1 * m[i] + one_b1 * gi;
    T vi = b2 * v[i] + one_b2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    if (vmax) {
      const T a = vmax[i];
      vi = a > vi || a != a ? a : vi;
      vmax[i] = vi;
    }
    w[i] = wi - step * (mi / (dm::sqrt(vi) / root_bc2 + eps));
  }
};

}  // namespace cnncore::device::bodies
