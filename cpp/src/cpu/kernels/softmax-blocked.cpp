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
#include <cstdint>
#include <type_traits>

#include "cnncore/runtime.hpp"
#include "util/parallel.hpp"
#include "cpu/kernels/f32-elementwise.hpp"

namespace cnncore::cpu {

using detail::AxisGeometry;

namespace {

#include "cpu/kernels/exp-tanh-body.hpp"
#include "cpu/kernels/softmax-body.hpp"

constexpr int64_t kBlock = kSoftmaxBlock;

// Runs f(offset, width) over every row (inner == 1) or column block.
template <typename F>
void for_each_task(const AxisGeometry& g, F&& f) {
  const int64_t plane = g.axis * g.inner;
  // an element costs an exponential, some 16 simple elements' time
  const bool par = detail::parallel_pays(16 * g.outer * plane);
  if (g.inner == 1) {
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (par)
    for (int64_t o = 0; o < g.outer; ++o) f(o * plane, int64_t{1});
    return;
  }
  const int64_t blocks = (g.inner + kBlock - 1) / kBlock;
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads()) if (par)
  for (int64_t o = 0; o < g.outer; ++o)
    for (int64_t b = 0; b < blocks; ++b) f(o * plane + b * kBlock, std::min(kBlock, g.inner - b * kBlock));
}

}  // namespace

// float: the current kernel level's task function (f32-elementwise.hpp);
// double: the baseline body.
template <typename T>
void softmax_forward(const AxisGeometry& g, bool log, const T* src, T* dst) {
  if (g.numel() == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    const F32ElementwiseKernels& k =
        g.inner == 1 ? f32_elementwise_kernels_for_rows(g.axis) : f32_elementwise_kernels_for_current_isa();
    const auto fn = k.softmax_forward;
    for_each_task(g, [&](int64_t off, int64_t w) { fn(g.axis, g.inner, w, log, src + off, dst + off); });
  } else {
    for_each_task(g, [&](int64_t off, int64_t w) {
      softmax_task_forward<T>(g.axis, g.inner, w, log, src + off, dst + off);
    });
  }
}

template <typename T>
void softmax_backward(const AxisGeometry& g, bool log, const T* diff_dst, const T* src, T* diff_src) {
  if (g.numel() == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    const F32ElementwiseKernels& k =
        g.inner == 1 ? f32_elementwise_kernels_for_rows(g.axis) : f32_elementwise_kernels_for_current_isa();
    const auto fn = k.softmax_backward;
    for_each_task(g, [&](int64_t off, int64_t w) {
      fn(g.axis, g.inner, w, log, diff_dst + off, src + off, diff_src + off);
    });
  } else {
    for_each_task(g, [&](int64_t off, int64_t w) {
      softmax_task_backward<T>(g.axis, g.inner, w, log, diff_dst + off, src + off, diff_src + off);
    });
  }
}

template void softmax_forward<float>(const AxisGeometry&, bool, const float*, float*);
template void softmax_forward<double>(const AxisGeometry&, bool, const double*, double*);
template void softmax_backward<float>(const AxisGeometry&, bool, const float*, const float*, float*);
template void softmax_backward<double>(const AxisGeometry&, bool, const double*, const double*, double*);

}  // namespace cnncore::cpu
