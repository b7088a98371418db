// AVX-512F depthwise convolution micro-kernels (dwconv-ukernel.hpp on Zmm
// registers: rows of up to 4 vectors a block, 24 accumulators). This file
// alone is compiled with -mavx512f -mfma; its kernels run only after cpu/dispatch found
// AVX-512F.
#include <immintrin.h>

#include <cstdint>

namespace {
#include "cpu/kernels/simd-zmm.hpp"
#include "cpu/kernels/dwconv-ukernel.hpp"
}  // namespace

namespace cnncore::cpu {

void f32_dwconv_rows__avx512(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const float* const* taps,
                              int64_t tap_ld, const float* w, const float* bias, float* dst, int64_t ldd, int64_t ldm,
                              bool accumulate) {
  dw_rows_body<Zmm<float>, 4>(M, rows, cols, ntaps, taps, tap_ld, w, bias, dst, ldd, ldm, accumulate);
}
void f64_dwconv_rows__avx512(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const double* const* taps,
                              int64_t tap_ld, const double* w, const double* bias, double* dst, int64_t ldd, int64_t ldm,
                              bool accumulate) {
  dw_rows_body<Zmm<double>, 4>(M, rows, cols, ntaps, taps, tap_ld, w, bias, dst, ldd, ldm, accumulate);
}
void f32_dwconv_dots__avx512(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const float* const* taps,
                              int64_t tap_ld, const float* dy, int64_t ldy, int64_t ldm, float* dw) {
  dw_dots_body<Zmm<float>>(M, rows, cols, ntaps, taps, tap_ld, dy, ldy, ldm, dw);
}
void f64_dwconv_dots__avx512(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const double* const* taps,
                              int64_t tap_ld, const double* dy, int64_t ldy, int64_t ldm, double* dw) {
  dw_dots_body<Zmm<double>>(M, rows, cols, ntaps, taps, tap_ld, dy, ldy, ldm, dw);
}

}  // namespace cnncore::cpu
