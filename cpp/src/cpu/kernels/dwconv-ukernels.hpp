// The depthwise convolution micro-kernels of each kernel level (bodies in
// dwconv-ukernel.hpp), and the set the current level selects.
#pragma once

#include <cstdint>

#include "cnncore/runtime.hpp"

namespace cnncore::cpu {

template <typename T>
struct DwConvUkernels {
  const char* name;  // e.g. "f32_dwconv__avx512"
  Isa isa;           // the kernel level they need
  // For m < M, r < rows, c < cols:
  //   dst[m*ldm + r*ldd + c] = (accumulate ? that : bias[m]) + sum_t w[t*M + m] * taps[t][r*tap_ld + c]
  // (bias null: 0). The M channels read the same taps. Reads and writes nothing outside those elements.
  void (*rows)(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const T* const* taps, int64_t tap_ld,
               const T* w, const T* bias, T* dst, int64_t ldd, int64_t ldm, bool accumulate);
  // dw[m*ntaps + t] += sum_{r < rows, c < cols} dy[m*ldm + r*ldy + c] * taps[t][r*tap_ld + c]
  // for m < M, t < ntaps.
  void (*dots)(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const T* const* taps, int64_t tap_ld,
               const T* dy, int64_t ldy, int64_t ldm, T* dw);
};

// Every level built into this library, lowest first (generic is always there).
template <typename T> const DwConvUkernels<T>* dwconv_ukernels(int* count);
template <typename T> const DwConvUkernels<T>& dwconv_ukernels_for_current_isa();

}  // namespace cnncore::cpu
