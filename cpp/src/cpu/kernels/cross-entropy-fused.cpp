// GCC: let the vectoriser turn selects into blends even where the arms do
// floating-point arithmetic (with -ftrapping-math it keeps such loops scalar).
// These kernels never read the floating-point exception flags. Before every
// include, so that all functions of this file are compiled alike.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "cpu/kernels/cross-entropy-fused.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cnncore/runtime.hpp"
#include "cpu/kernels/softmax-exp.hpp"

namespace cnncore::cpu {

using detail::AxisGeometry;

namespace {

constexpr int64_t kChunk = 256;

// The classes of one position: x[c * stride], stride = 1 when Contig (the
// (N, C) case, unit-stride loops the compiler vectorises) else `inner`.
template <typename T, bool Contig>
struct Classes {
  const T* x;
  int64_t stride;
  T operator[](int64_t c) const { return x[c * (Contig ? 1 : stride)]; }
};

// log sum_c exp(x_c) computed as m + log sum exp(x_c - m).
template <typename T, bool Contig>
T log_sum_exp(int64_t C, Classes<T, Contig> x) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t c = 0; c < C; ++c) m = x[c] > m ? x[c] : m;  // NaN is skipped here, and poisons the sum
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < C; ++c) s += exp_poly(x[c] - m);
  return m + std::log(s);
}

// With a_c = (1 - eps) w_t [c == t] + eps / C * w_c:
//   l = sum_c a_c (lse - x_c) = (1 - eps) w_t (lse - x_t) + eps / C * sum_c w_c (lse - x_c).
template <typename T, bool Contig>
double forward_impl(const AxisGeometry& g, const T* src, const T* weights, const CrossEntropyTerms& t, T* loss) {
  const int64_t C = g.axis, inner = g.inner, P = g.outer * g.inner;
  const int64_t chunks = (P + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
  const T keep = static_cast<T>(1.0 - t.smoothing), spread = static_cast<T>(t.smoothing / double(C));
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
  for (int64_t ch = 0; ch < chunks; ++ch) {
    double sum = 0;
    for (int64_t p = ch * kChunk; p < std::min(P, (ch + 1) * kChunk); ++p) {
      const int64_t tp = t.target[p];
      T l = 0;
      if (tp != t.ignore_index) {
        const Classes<T, Contig> x{src + (p / inner) * C * inner + p % inner, inner};
        const T lse = log_sum_exp(C, x);
        l = keep * (weights ? weights[tp] : T(1)) * (lse - x[tp]);
        if (t.smoothing > 0) {
          T s = 0;
          if (weights) {
#pragma omp simd reduction(+ : s)
            for (int64_t c = 0; c < C; ++c) s += weights[c] * (lse - x[c]);
          } else {
#pragma omp simd reduction(+ : s)
            for (int64_t c = 0; c < C; ++c) s += lse - x[c];
          }
          l += spread * s;
        }
      }
      if (loss) loss[p] = l;
      sum += static_cast<double>(l);
    }
    partial[static_cast<std::size_t>(ch)] = sum;
  }
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

// dl/dx_c = softmax_c * sum_k a_k - a_c.
template <typename T, bool Contig>
void backward_impl(const AxisGeometry& g, const T* diff_dst, int64_t dstride, double factor, const T* src,
                   const T* weights, const CrossEntropyTerms& t, T* diff_src) {
  const int64_t C = g.axis, inner = g.inner, P = g.outer * g.inner;
  const int64_t cs = Contig ? 1 : inner;
  const T keep = static_cast<T>(1.0 - t.smoothing), spread = static_cast<T>(t.smoothing / double(C));
  T wsum = static_cast<T>(C);
  if (weights) {
    wsum = 0;
    for (int64_t c = 0; c < C; ++c) wsum += weights[c];
  }
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
  for (int64_t p = 0; p < P; ++p) {
    const int64_t off = (p / inner) * C * inner + p % inner;
    const Classes<T, Contig> x{src + off, inner};
    T* dx = diff_src + off;
    const int64_t tp = t.target[p];
    if (tp == t.ignore_index) {
      for (int64_t c = 0; c < C; ++c) dx[c * cs] = 0;
      continue;
    }
    const T s = static_cast<T>(static_cast<double>(diff_dst[p * dstride]) * factor);
    const T wt = keep * (weights ? weights[tp] : T(1));
    const T A = wt + spread * wsum;
    const T lse = log_sum_exp(C, x);
    if (weights) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dx[c * cs] = s * (exp_poly(x[c] - lse) * A - spread * weights[c]);
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dx[c * cs] = s * (exp_poly(x[c] - lse) * A - spread);
    }
    // the target's own term; recomputed from scratch so that it rounds like the others
    dx[tp * cs] = s * (exp_poly(x[tp] - lse) * A - (spread * (weights ? weights[tp] : T(1)) + wt));
  }
}

}  // namespace

template <typename T>
double cross_entropy_forward(const AxisGeometry& g, const T* src, const T* weights, const CrossEntropyTerms& t,
                             T* loss) {
  if (g.outer * g.inner == 0) return 0.0;
  return g.inner == 1 ? forward_impl<T, true>(g, src, weights, t, loss)
                      : forward_impl<T, false>(g, src, weights, t, loss);
}

template <typename T>
void cross_entropy_backward(const AxisGeometry& g, const T* diff_dst, int64_t dstride, double factor, const T* src,
                            const T* weights, const CrossEntropyTerms& t, T* diff_src) {
  if (g.inner == 1)
    backward_impl<T, true>(g, diff_dst, dstride, factor, src, weights, t, diff_src);
  else
    backward_impl<T, false>(g, diff_dst, dstride, factor, src, weights, t, diff_src);
}

template double cross_entropy_forward<float>(const AxisGeometry&, const float*, const float*,
                                             const CrossEntropyTerms&, float*);
template double cross_entropy_forward<double>(const AxisGeometry&, const double*, const double*,
                                              const CrossEntropyTerms&, double*);
template void cross_entropy_backward<float>(const AxisGeometry&, const float*, int64_t, double, const float*,
                                            const float*, const CrossEntropyTerms&, float*);
template void cross_entropy_backward<double>(const AxisGeometry&, const double*, int64_t, double, const double*,
                                             const double*, const CrossEntropyTerms&, double*);

}  // namespace cnncore::cpu
