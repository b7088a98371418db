#include "cpu/ref/layers-ref.hpp"

#include <cmath>
#include <limits>
#include <vector>

namespace cnncore::cpu::ref {

using detail::AxisGeometry;

namespace {

// Element (o, a, i) of the view.
inline int64_t at(const AxisGeometry& g, int64_t o, int64_t a, int64_t i) { return (o * g.axis + a) * g.inner + i; }

}  // namespace

// ---- softmax ----------------------------------------------------------------------

template <typename T>
void softmax_forward(const AxisGeometry& g, bool log, const T* src, T* dst) {
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t i = 0; i < g.inner; ++i) {
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t a = 0; a < g.axis; ++a)
        if (src[at(g, o, a, i)] > m) m = src[at(g, o, a, i)];
      T s = 0;
      for (int64_t a = 0; a < g.axis; ++a) s += std::exp(src[at(g, o, a, i)] - m);
      for (int64_t a = 0; a < g.axis; ++a) {
        const T x = src[at(g, o, a, i)];
        dst[at(g, o, a, i)] = log ? (x - m) - std::log(s) : std::exp(x - m) / s;
      }
    }
}

// dx_a = sum_b dy_b dy_b/dx_a with dy_b/dx_a = y_b ([a == b] - y_a) (softmax)
// or [a == b] - y_a (log_softmax), written out as that double loop.
template <typename T>
void softmax_backward(const AxisGeometry& g, bool log, const T* diff_dst, const T* src, T* diff_src) {
  const AxisGeometry row{1, g.axis, 1};
  std::vector<T> x(static_cast<std::size_t>(g.axis)), y(static_cast<std::size_t>(g.axis));
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t i = 0; i < g.inner; ++i) {
      for (int64_t a = 0; a < g.axis; ++a) x[static_cast<std::size_t>(a)] = src[at(g, o, a, i)];
      softmax_forward(row, false, x.data(), y.data());
      for (int64_t a = 0; a < g.axis; ++a) {
        T s = 0;
        for (int64_t b = 0; b < g.axis; ++b) {
          const T yb = y[static_cast<std::size_t>(b)], ya = y[static_cast<std::size_t>(a)];
          const T jac = log ? (a == b ? T(1) : T(0)) - ya : yb * ((a == b ? T(1) : T(0)) - ya);
          s += diff_dst[at(g, o, b, i)] * jac;
        }
        diff_src[at(g, o, a, i)] = s;
      }
    }
}

// ---- cross-entropy ----------------------------------------------------------------

template <typename T>
double cross_entropy_forward(const AxisGeometry& g, const T* src, const T* weights, const CrossEntropyTerms& t,
                             T* loss) {
  std::vector<T> logp(static_cast<std::size_t>(g.numel()));
  softmax_forward(g, true, src, logp.data());
  const int64_t C = g.axis;
  double total = 0;
  for (int64_t n = 0; n < g.outer; ++n)
    for (int64_t i = 0; i < g.inner; ++i) {
      const int64_t p = n * g.inner + i, tp = t.target[p];
      T l = 0;
      if (tp != t.ignore_index) {
        const T wt = weights ? weights[tp] : T(1);
        T smooth = 0;
        for (int64_t c = 0; c < C; ++c) smooth -= (weights ? weights[c] : T(1)) * logp[at(g, n, c, i)];
        l = -static_cast<T>(1.0 - t.smoothing) * wt * logp[at(g, n, tp, i)] +
            static_cast<T>(t.smoothing / double(C)) * smooth;
      }
      if (loss) loss[p] = l;
      total += l;
    }
  return total;
}

// dl/dx_c = (1 - eps) w_t (p_c - [c == t]) + eps / C * (p_c sum_k w_k - w_c).
template <typename T>
double nll_loss_forward(const AxisGeometry& g, const T* src, const T* weights, const int64_t* target, int64_t ignore,
                        T* loss) {
  double total = 0;
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t i = 0; i < g.inner; ++i) {
      const int64_t p = o * g.inner + i, t = target[p];
      double l = 0;
      if (t != ignore) l = -(weights ? double(weights[t]) : 1.0) * double(src[(o * g.axis + t) * g.inner + i]);
      if (loss) loss[p] = static_cast<T>(l);
      total += l;
    }
  return total;
}

template <typename T>
void nll_loss_backward(const AxisGeometry& g, const T* diff_dst, int64_t dstride, double factor, const T* weights,
                       const int64_t* target, int64_t ignore, T* diff_src) {
  for (int64_t k = 0; k < g.numel(); ++k) diff_src[k] = T(0);
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t i = 0; i < g.inner; ++i) {
      const int64_t p = o * g.inner + i, t = target[p];
      if (t == ignore) continue;
      const double w = weights ? double(weights[t]) : 1.0;
      diff_src[(o * g.axis + t) * g.inner + i] = static_cast<T>(-w * factor * double(diff_dst[p * dstride]));
    }
}

template <typename T>
void cross_entropy_backward(const AxisGeometry& g, const T* diff_dst, int64_t dstride, double factor, const T* src,
                            const T* weights, const CrossEntropyTerms& t, T* diff_src) {
  std::vector<T> prob(static_cast<std::size_t>(g.numel()));
  softmax_forward(g, false, src, prob.data());
  const int64_t C = g.axis;
  T wsum = 0;
  for (int64_t c = 0; c < C; ++c) wsum += weights ? weights[c] : T(1);
  for (int64_t n = 0; n < g.outer; ++n)
    for (int64_t i = 0; i < g.inner; ++i) {
      const int64_t p = n * g.inner + i, tp = t.target[p];
      const T s = static_cast<T>(static_cast<double>(diff_dst[p * dstride]) * factor);
      for (int64_t c = 0; c < C; ++c) {
        // Ignored positions get exactly 0, even when the scale is inf or NaN.
        T d = 0;
        if (tp != t.ignore_index) {
          const T pc = prob[at(g, n, c, i)];
          const T wt = weights ? weights[tp] : T(1), wc = weights ? weights[c] : T(1);
          d = s * (static_cast<T>(1.0 - t.smoothing) * wt * (pc - (c == tp ? T(1) : T(0))) +
                   static_cast<T>(t.smoothing / double(C)) * (pc * wsum - wc));
        }
        diff_src[at(g, n, c, i)] = d;
      }
    }
}

// ---- local response normalisation -------------------------------------------------

namespace {

// k + alpha/size * sum of squares over the window of channel c.
template <typename T>
T lrn_scale(const AxisGeometry& g, const LrnParams& p, const T* src, int64_t o, int64_t c, int64_t i) {
  T sum = 0;
  for (int64_t q = c - p.size / 2; q <= c + (p.size - 1) / 2; ++q)
    if (q >= 0 && q < g.axis) sum += src[at(g, o, q, i)] * src[at(g, o, q, i)];
  return static_cast<T>(p.k) + static_cast<T>(p.alpha / static_cast<double>(p.size)) * sum;
}

}  // namespace

template <typename T>
void lrn_forward(const AxisGeometry& g, const LrnParams& p, const T* src, T* dst) {
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t c = 0; c < g.axis; ++c)
      for (int64_t i = 0; i < g.inner; ++i)
        dst[at(g, o, c, i)] = src[at(g, o, c, i)] / std::pow(lrn_scale(g, p, src, o, c, i), static_cast<T>(p.beta));
}

// y_c = x_c s_c^-beta: dy_c/dx_j = [c == j] s_c^-beta - 2 alpha/size beta x_c x_j s_c^(-beta-1) [j in W(c)].
template <typename T>
void lrn_backward(const AxisGeometry& g, const LrnParams& p, const T* diff_dst, const T* src, T* diff_src) {
  const T beta = static_cast<T>(p.beta);
  const T coef = static_cast<T>(2.0 * p.alpha / static_cast<double>(p.size) * p.beta);
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t j = 0; j < g.axis; ++j)
      for (int64_t i = 0; i < g.inner; ++i) {
        const T xj = src[at(g, o, j, i)];
        T d = diff_dst[at(g, o, j, i)] / std::pow(lrn_scale(g, p, src, o, j, i), beta);
        for (int64_t c = 0; c < g.axis; ++c) {
          if (!(c - p.size / 2 <= j && j <= c + (p.size - 1) / 2)) continue;
          const T s = lrn_scale(g, p, src, o, c, i);
          d -= coef * xj * diff_dst[at(g, o, c, i)] * src[at(g, o, c, i)] / (std::pow(s, beta) * s);
        }
        diff_src[at(g, o, j, i)] = d;
      }
}

// ---- batch normalisation ----------------------------------------------------------

template <typename T>
void batch_norm_stats(const AxisGeometry& g, const T* src, double* mean, double* var) {
  const double M = static_cast<double>(g.outer * g.inner);
  for (int64_t c = 0; c < g.axis; ++c) {
    double s = 0;
    for (int64_t n = 0; n < g.outer; ++n)
      for (int64_t i = 0; i < g.inner; ++i) s += src[at(g, n, c, i)];
    mean[c] = s / M;
    double v = 0;
    for (int64_t n = 0; n < g.outer; ++n)
      for (int64_t i = 0; i < g.inner; ++i) v += (src[at(g, n, c, i)] - mean[c]) * (src[at(g, n, c, i)] - mean[c]);
    var[c] = v / M;
  }
}

template <typename T>
void batch_norm_apply(const AxisGeometry& g, const T* src, const double* mean, const double* invstd, const T* w,
                      const T* b, T* dst) {
  for (int64_t n = 0; n < g.outer; ++n)
    for (int64_t c = 0; c < g.axis; ++c)
      for (int64_t i = 0; i < g.inner; ++i) {
        const double xhat = (src[at(g, n, c, i)] - mean[c]) * invstd[c];
        dst[at(g, n, c, i)] = static_cast<T>(xhat * (w ? double(w[c]) : 1.0) + (b ? double(b[c]) : 0.0));
      }
}

template <typename T>
void batch_norm_backward(const AxisGeometry& g, bool training, const T* diff_dst, const T* src, const double* mean,
                         const double* invstd, const T* w, T* diff_src, T* diff_w, T* diff_b) {
  const double M = static_cast<double>(g.outer * g.inner);
  for (int64_t c = 0; c < g.axis; ++c) {
    double sdy = 0, sdyx = 0;
    for (int64_t n = 0; n < g.outer; ++n)
      for (int64_t i = 0; i < g.inner; ++i) {
        const double dy = diff_dst[at(g, n, c, i)];
        sdy += dy;
        sdyx += dy * (src[at(g, n, c, i)] - mean[c]) * invstd[c];
      }
    if (diff_w) diff_w[c] = static_cast<T>(sdyx);
    if (diff_b) diff_b[c] = static_cast<T>(sdy);
    if (!diff_src) continue;
    const double wc = w ? double(w[c]) : 1.0;
    for (int64_t n = 0; n < g.outer; ++n)
      for (int64_t i = 0; i < g.inner; ++i) {
        const double dy = diff_dst[at(g, n, c, i)];
        const double xhat = (src[at(g, n, c, i)] - mean[c]) * invstd[c];
        diff_src[at(g, n, c, i)] =
            static_cast<T>(training ? wc * invstd[c] * (dy - sdy / M - xhat * sdyx / M) : wc * invstd[c] * dy);
      }
  }
}

// ---- linear -----------------------------------------------------------------------

template <typename T>
void linear_forward(const LinearDims& d, const T* src, const T* weights, const T* bias, T* dst) {
  for (int64_t r = 0; r < d.rows; ++r)
    for (int64_t o = 0; o < d.out; ++o) {
      T s = bias ? bias[o] : T(0);
      for (int64_t k = 0; k < d.in; ++k) s += src[r * d.in + k] * weights[o * d.in + k];
      dst[r * d.out + o] = s;
    }
}

template <typename T>
void linear_backward_data(const LinearDims& d, const T* diff_dst, const T* weights, T* diff_src) {
  for (int64_t r = 0; r < d.rows; ++r)
    for (int64_t k = 0; k < d.in; ++k) {
      T s = 0;
      for (int64_t o = 0; o < d.out; ++o) s += diff_dst[r * d.out + o] * weights[o * d.in + k];
      diff_src[r * d.in + k] = s;
    }
}

template <typename T>
void linear_backward_weight(const LinearDims& d, const T* diff_dst, const T* src, T* diff_weights) {
  for (int64_t o = 0; o < d.out; ++o)
    for (int64_t k = 0; k < d.in; ++k) {
      T s = 0;
      for (int64_t r = 0; r < d.rows; ++r) s += diff_dst[r * d.out + o] * src[r * d.in + k];
      diff_weights[o * d.in + k] = s;
    }
}

template <typename T>
void linear_backward_bias(const LinearDims& d, const T* diff_dst, T* diff_bias) {
  for (int64_t o = 0; o < d.out; ++o) {
    T s = 0;
    for (int64_t r = 0; r < d.rows; ++r) s += diff_dst[r * d.out + o];
    diff_bias[o] = s;
  }
}

#define CNNCORE_INSTANTIATE(T)                                                                                  \
  template void softmax_forward<T>(const AxisGeometry&, bool, const T*, T*);                                    \
  template void softmax_backward<T>(const AxisGeometry&, bool, const T*, const T*, T*);                         \
  template double cross_entropy_forward<T>(const AxisGeometry&, const T*, const T*, const CrossEntropyTerms&,   \
                                           T*);                                                                 \
  template double nll_loss_forward<T>(const AxisGeometry&, const T*, const T*, const int64_t*, int64_t, T*);   \
  template void nll_loss_backward<T>(const AxisGeometry&, const T*, int64_t, double, const T*, const int64_t*,  \
                                     int64_t, T*);                                                              \
  template void cross_entropy_backward<T>(const AxisGeometry&, const T*, int64_t, double, const T*, const T*,   \
                                          const CrossEntropyTerms&, T*);                                        \
  template void lrn_forward<T>(const AxisGeometry&, const LrnParams&, const T*, T*);                            \
  template void lrn_backward<T>(const AxisGeometry&, const LrnParams&, const T*, const T*, T*);                 \
  template void batch_norm_stats<T>(const AxisGeometry&, const T*, double*, double*);                           \
  template void batch_norm_apply<T>(const AxisGeometry&, const T*, const double*, const double*, const T*,      \
                                    const T*, T*);                                                              \
  template void batch_norm_backward<T>(const AxisGeometry&, bool, const T*, const T*, const double*,            \
                                       const double*, const T*, T*, T*, T*);                                    \
  template void linear_forward<T>(const LinearDims&, const T*, const T*, const T*, T*);                         \
  template void linear_backward_data<T>(const LinearDims&, const T*, const T*, T*);                             \
  template void linear_backward_weight<T>(const LinearDims&, const T*, const T*, T*);                           \
  template void linear_backward_bias<T>(const LinearDims&, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu::ref
