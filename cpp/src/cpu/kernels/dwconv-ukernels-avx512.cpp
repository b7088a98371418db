// AVX-512F depthwise convolution micro-kernels (dwconv-ukernel.hpp on Zmm
// registers: 4-vector output blocks, 16 weight-gradient accumulators). This file
// alone is compiled with -mavx512f -mfma; its kernels run only after cpu/dispatch found
// AVX-512F.
#include <immintrin.h>

#include <cstdint>

namespace {
#include "cpu/kernels/simd-zmm.hpp"
#include "cpu/kernels/dwconv-ukernel.hpp"
}  // namespace

namespace cnncore::cpu {

void f32_dwconv_rows__avx512(int64_t rows, int64_t cols, int64_t ntaps, const float* const* taps, int64_t tap_ld,
                           const float* w, float bias, float* dst, int64_t ldd, bool accumulate) {
  dw_rows_body<Zmm<float>, 4>(rows, cols, ntaps, taps, tap_ld, w, bias, dst, ldd, accumulate);
}
void f64_dwconv_rows__avx512(int64_t rows, int64_t cols, int64_t ntaps, const double* const* taps, int64_t tap_ld,
                           const double* w, double bias, double* dst, int64_t ldd, bool accumulate) {
  dw_rows_body<Zmm<double>, 4>(rows, cols, ntaps, taps, tap_ld, w, bias, dst, ldd, accumulate);
}
void f32_dwconv_dots__avx512(int64_t rows, int64_t cols, int64_t ntaps, const float* const* taps, int64_t tap_ld,
                           const float* dy, int64_t ldy, float* dw) {
  dw_dots_body<Zmm<float>, 16>(rows, cols, ntaps, taps, tap_ld, dy, ldy, dw);
}
void f64_dwconv_dots__avx512(int64_t rows, int64_t cols, int64_t ntaps, const double* const* taps, int64_t tap_ld,
                           const double* dy, int64_t ldy, double* dw) {
  dw_dots_body<Zmm<double>, 16>(rows, cols, ntaps, taps, tap_ld, dy, ldy, dw);
}

}  // namespace cnncore::cpu
