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
#include <cstdint>
#include <type_traits>
#include <vector>

#include "cnncore/runtime.hpp"
#include "util/parallel.hpp"
#include "cpu/kernels/f32-elementwise.hpp"

namespace cnncore::cpu {

using detail::AxisGeometry;

namespace {

#include "cpu/kernels/exp-tanh-body.hpp"
#include "cpu/kernels/cross-entropy-body.hpp"

// Positions per piece: totals are summed per piece, then in piece order.
constexpr int64_t kChunk = 256;

// An element costs an exponential (some 16 simple elements' time), and one
// chunk leaves the other threads nothing to do.
inline bool ce_parallel_pays(int64_t chunks, int64_t elements) {
  return chunks > 1 && detail::parallel_pays(16 * elements);
}

}  // namespace

// float: the current kernel level's range functions (f32-elementwise.hpp);
// double: the baseline bodies.
template <typename T>
double cross_entropy_forward(const AxisGeometry& g, const T* src, const T* weights, const CrossEntropyTerms& t,
                             T* loss) {
  const int64_t C = g.axis, inner = g.inner, P = g.outer * g.inner;
  if (P == 0) return 0.0;
  const int64_t chunks = (P + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
  const F32ElementwiseKernels& k =
      inner == 1 ? f32_elementwise_kernels_for_rows(C) : f32_elementwise_kernels_for_current_isa();
  const auto fn = k.cross_entropy_forward;
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (ce_parallel_pays(chunks, P * C))
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t p0 = ch * kChunk, p1 = std::min(P, p0 + kChunk);
    double sum;
    if constexpr (std::is_same_v<T, float>)
      sum = fn(C, inner, p0, p1, src, weights, t.target, t.ignore_index, t.smoothing, loss);
    else
      sum = ce_forward_range_any<T>(C, inner, p0, p1, src, weights, t.target, t.ignore_index, t.smoothing, loss);
    partial[static_cast<std::size_t>(ch)] = sum;
  }
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

template <typename T>
void cross_entropy_backward(const AxisGeometry& g, const T* diff_dst, int64_t dstride, double factor, const T* src,
                            const T* weights, const CrossEntropyTerms& t, T* diff_src) {
  const int64_t C = g.axis, inner = g.inner, P = g.outer * g.inner;
  if (P == 0) return;
  T wsum = static_cast<T>(C);
  if (weights) {
    wsum = 0;
    for (int64_t c = 0; c < C; ++c) wsum += weights[c];
  }
  const int64_t chunks = (P + kChunk - 1) / kChunk;
  const F32ElementwiseKernels& k =
      inner == 1 ? f32_elementwise_kernels_for_rows(C) : f32_elementwise_kernels_for_current_isa();
  const auto fn = k.cross_entropy_backward;
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (ce_parallel_pays(chunks, P * C))
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t p0 = ch * kChunk, p1 = std::min(P, p0 + kChunk);
    if constexpr (std::is_same_v<T, float>)
      fn(C, inner, p0, p1, diff_dst, dstride, factor, src, weights, wsum, t.target, t.ignore_index, t.smoothing,
         diff_src);
    else
      ce_backward_range_any<T>(C, inner, p0, p1, diff_dst, dstride, factor, src, weights, wsum, t.target,
                               t.ignore_index, t.smoothing, diff_src);
  }
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
