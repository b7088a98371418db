// GCC: let the vectoriser turn selects into blends even where the arms do
// floating-point arithmetic (with -ftrapping-math it keeps such loops scalar).
// These kernels never read the floating-point exception flags. Before every
// include, so that all functions of this file are compiled alike.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "cpu/kernels/activation-parallel.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cnncore/runtime.hpp"
#include "cpu/kernels/f32-elementwise.hpp"
#include "util/parallel.hpp"

namespace cnncore::cpu {

namespace {

#include "cpu/kernels/exp-tanh-body.hpp"
#include "cpu/kernels/activation-body.hpp"

// Pieces of at least this many elements (a multiple of every vector width),
// so that small arrays stay on one thread.
constexpr int64_t kGrain = 4096;

// Splits [0, n) into one contiguous piece per thread and calls f(begin, count).
template <typename F>
void for_each_piece(int64_t n, F&& f) {
  const int64_t max_pieces = (n + kGrain - 1) / kGrain;
  const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(1, max_pieces)));
  if (threads <= 1 || !detail::parallel_pays(n)) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int t = 0; t < threads; ++t) {
      // Piece boundaries rounded to 64 elements (aligned vectors for aligned arrays).
      const int64_t b = (n * t / threads) & ~int64_t{63}, e = t + 1 == threads ? n : (n * (t + 1) / threads) & ~int64_t{63};
      if (e > b) f(b, e - b);
    }
  }
}

}  // namespace

template <typename T>
void activation_forward(const ActivationParams& p, int64_t n, const T* src, T* dst) {
  const int kind = static_cast<int>(p.kind);
  if constexpr (std::is_same_v<T, float>) {
    const auto fn = f32_elementwise_kernels_for_current_isa().activation_forward;
    const float s = static_cast<float>(p.negative_slope);
    for_each_piece(n, [&](int64_t b, int64_t m) { fn(kind, s, m, src + b, dst + b); });
  } else {
    const T s = static_cast<T>(p.negative_slope);
    for_each_piece(n, [&](int64_t b, int64_t m) { activation_forward_body<T>(kind, s, m, src + b, dst + b); });
  }
}

template <typename T>
void activation_backward(const ActivationParams& p, int64_t n, const T* diff_dst, const T* src, T* diff_src) {
  const int kind = static_cast<int>(p.kind);
  if constexpr (std::is_same_v<T, float>) {
    const auto fn = f32_elementwise_kernels_for_current_isa().activation_backward;
    const float s = static_cast<float>(p.negative_slope);
    for_each_piece(n, [&](int64_t b, int64_t m) { fn(kind, s, m, diff_dst + b, src + b, diff_src + b); });
  } else {
    const T s = static_cast<T>(p.negative_slope);
    for_each_piece(n, [&](int64_t b, int64_t m) {
      activation_backward_body<T>(kind, s, m, diff_dst + b, src + b, diff_src + b);
    });
  }
}

template void activation_forward<float>(const ActivationParams&, int64_t, const float*, float*);
template void activation_forward<double>(const ActivationParams&, int64_t, const double*, double*);
template void activation_backward<float>(const ActivationParams&, int64_t, const float*, const float*, float*);
template void activation_backward<double>(const ActivationParams&, int64_t, const double*, const double*, double*);

}  // namespace cnncore::cpu
