#include "cpu/kernels/linear-gemm.hpp"

#include <omp.h>

#include <algorithm>

#include "cnncore/runtime.hpp"
#include "cpu/kernels/f32-elementwise.hpp"
#include "cpu/kernels/gemm.hpp"
#include "util/checked.hpp"
#include "util/parallel.hpp"

namespace cnncore::cpu {

namespace {
#include "cpu/kernels/gemv-rows-body.hpp"

// At most this many rows a fully connected layer reads each weight once
// (gemv-rows-body.hpp) rather than packing them for the GEMM. One thread, ms
// GEMM / streaming: VGG-16's 25088 -> 4096 at batch 1 56 / 16, 4096 -> 4096
// 9.2 / 3.0; AlexNet's 9216 -> 4096 at batch 8 22 / 17.
constexpr int64_t kGemvMaxRows = 8;

template <typename T>
void gemv_rows(const LinearDims& d, const T* src, const T* weights, T* dst, bool accumulate) {
  const int64_t work = d.rows * d.in * d.out;
  const int nt = detail::parallel_pays(work / 8) ? get_num_threads() : 1;
  auto part = [&](int64_t o0, int64_t o1) {
    if constexpr (sizeof(T) == 4)
      f32_elementwise_kernels_for_current_isa().gemv_rows(d.rows, d.in, src, weights, o0, o1, dst, d.out,
                                                          accumulate);
    else
      gemv_rows_body<T>(d.rows, d.in, src, weights, o0, o1, dst, d.out, accumulate);
  };
  if (nt <= 1) return part(0, d.out);
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    // blocks of 4 outputs (the kernel's), split evenly
    const int64_t blocks = (d.out + 3) / 4;
    const int64_t o0 = std::min(d.out, blocks * t / n * 4), o1 = std::min(d.out, blocks * (t + 1) / n * 4);
    if (o0 < o1) part(o0, o1);
  }
}

}  // namespace

int64_t gemm_workspace_bytes(int64_t M, int64_t N, int64_t K, int64_t elem_size) {
  const char* op = "linear";
  const int64_t rows = detail::checked_add(detail::checked_add(M, std::min<int64_t>(N, 3072), op), 32, op);
  return detail::checked_mul(detail::checked_mul(rows, std::min<int64_t>(K, 256), op), elem_size, op);
}

template <typename T>
void linear_forward(const LinearDims& d, const T* src, const T* weights, const T* bias, T* dst) {
  if (bias) {
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (detail::parallel_pays(d.rows * d.out))
    for (int64_t r = 0; r < d.rows; ++r) std::copy(bias, bias + d.out, dst + r * d.out);
  }
  if (d.rows <= kGemvMaxRows) return gemv_rows(d, src, weights, dst, bias != nullptr);
  gemm<T>(false, true, d.rows, d.out, d.in, src, d.in, weights, d.in, bias != nullptr, dst, d.out, true);
}

template <typename T>
void linear_backward_data(const LinearDims& d, const T* diff_dst, const T* weights, T* diff_src) {
  gemm<T>(false, false, d.rows, d.in, d.out, diff_dst, d.out, weights, d.in, false, diff_src, d.in, true);
}

template <typename T>
void linear_backward_weight(const LinearDims& d, const T* diff_dst, const T* src, T* diff_weights) {
  gemm<T>(true, false, d.out, d.in, d.rows, diff_dst, d.out, src, d.in, false, diff_weights, d.in, true);
}

// Column blocks in parallel (when there are several and the sum is big
// enough to pay a region's wake-up); each block adds the rows in order.
template <typename T>
void linear_backward_bias(const LinearDims& d, const T* diff_dst, T* diff_bias) {
  constexpr int64_t kCols = 256;
  const int64_t blocks = (d.out + kCols - 1) / kCols;
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) \
    if (blocks > 1 && detail::parallel_pays(d.rows * d.out))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kCols, w = std::min(kCols, d.out - j0);
    T* acc = diff_bias + j0;
    for (int64_t j = 0; j < w; ++j) acc[j] = 0;
    for (int64_t r = 0; r < d.rows; ++r) {
      const T* row = diff_dst + r * d.out + j0;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) acc[j] += row[j];
    }
  }
}

#define CNNCORE_INSTANTIATE(T)                                                          \
  template void linear_forward<T>(const LinearDims&, const T*, const T*, const T*, T*); \
  template void linear_backward_data<T>(const LinearDims&, const T*, const T*, T*);     \
  template void linear_backward_weight<T>(const LinearDims&, const T*, const T*, T*);   \
  template void linear_backward_bias<T>(const LinearDims&, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
