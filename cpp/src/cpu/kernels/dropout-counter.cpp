// GCC: let the vectoriser turn selects into blends even where the arms do
// floating-point arithmetic (with -ftrapping-math it keeps such loops scalar).
// These kernels never read the floating-point exception flags. Before every
// include, so that all functions of this file are compiled alike.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "cpu/kernels/dropout-counter.hpp"

#include "cnncore/runtime.hpp"
#include "util/parallel.hpp"

namespace cnncore::cpu {

template <typename T>
void dropout_apply(uint64_t seed, double p, int64_t n, const T* src, T* dst) {
  if (p >= 1.0) {
#pragma omp parallel for simd schedule(static) num_threads(get_num_threads()) if (detail::parallel_pays(n))
    for (int64_t i = 0; i < n; ++i) dst[i] = T(0);
    return;
  }
  const DropoutKey k = dropout_key(seed, p);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
#pragma omp parallel for simd schedule(static) num_threads(get_num_threads()) if (detail::parallel_pays(n))
  for (int64_t i = 0; i < n; ++i) dst[i] = dropout_keep(k, static_cast<uint64_t>(i)) ? src[i] * scale : T(0);
}

template void dropout_apply<float>(uint64_t, double, int64_t, const float*, float*);
template void dropout_apply<double>(uint64_t, double, int64_t, const double*, double*);

}  // namespace cnncore::cpu
