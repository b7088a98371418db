// Baseline-ISA depthwise convolution micro-kernels (dwconv-ukernel.hpp on
// Lanes: 16-byte vectors) and the list of every level's kernels (the
// ISA-specific ones live in dwconv-ukernels-avx2.cpp / -avx512.cpp).
#include "cpu/kernels/dwconv-ukernels.hpp"

#include <vector>

#include "cpu/kernels/kernel-levels.hpp"

namespace {
#include "cpu/kernels/simd-portable.hpp"
#include "cpu/kernels/dwconv-ukernel.hpp"
}  // namespace

namespace cnncore::cpu {

void f32_dwconv_rows__generic(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const float* const* taps,
                              int64_t tap_ld, const float* w, const float* bias, float* dst, int64_t ldd, int64_t ldm,
                              bool accumulate) {
  dw_rows_body<Lanes<float, 4>, 2>(M, rows, cols, ntaps, taps, tap_ld, w, bias, dst, ldd, ldm, accumulate);
}
void f64_dwconv_rows__generic(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const double* const* taps,
                              int64_t tap_ld, const double* w, const double* bias, double* dst, int64_t ldd, int64_t ldm,
                              bool accumulate) {
  dw_rows_body<Lanes<double, 2>, 2>(M, rows, cols, ntaps, taps, tap_ld, w, bias, dst, ldd, ldm, accumulate);
}
void f32_dwconv_dots__generic(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const float* const* taps,
                              int64_t tap_ld, const float* dy, int64_t ldy, int64_t ldm, float* dw) {
  dw_dots_body<Lanes<float, 4>>(M, rows, cols, ntaps, taps, tap_ld, dy, ldy, ldm, dw);
}
void f64_dwconv_dots__generic(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const double* const* taps,
                              int64_t tap_ld, const double* dy, int64_t ldy, int64_t ldm, double* dw) {
  dw_dots_body<Lanes<double, 2>>(M, rows, cols, ntaps, taps, tap_ld, dy, ldy, ldm, dw);
}

#define CNNCORE_DWCONV_UKERNELS(isa_name)                                                                    \
  void f32_dwconv_rows__##isa_name(int64_t, int64_t, int64_t, int64_t, const float* const*, int64_t,         \
                                   const float*, const float*, float*, int64_t, int64_t, bool);             \
  void f64_dwconv_rows__##isa_name(int64_t, int64_t, int64_t, int64_t, const double* const*, int64_t,        \
                                   const double*, const double*, double*, int64_t, int64_t, bool);          \
  void f32_dwconv_dots__##isa_name(int64_t, int64_t, int64_t, int64_t, const float* const*, int64_t,         \
                                   const float*, int64_t, int64_t, float*);                                 \
  void f64_dwconv_dots__##isa_name(int64_t, int64_t, int64_t, int64_t, const double* const*, int64_t,        \
                                   const double*, int64_t, int64_t, double*);
#if defined(CNNCORE_HAVE_AVX2_KERNELS)
CNNCORE_DWCONV_UKERNELS(avx2)
#endif
#if defined(CNNCORE_HAVE_AVX512_KERNELS)
CNNCORE_DWCONV_UKERNELS(avx512)
#endif
#undef CNNCORE_DWCONV_UKERNELS

namespace {

template <typename T>
std::vector<DwConvUkernels<T>> collect() {
  std::vector<DwConvUkernels<T>> v;
#define CNNCORE_ADD(isa_name, level)                                                                            \
  if constexpr (sizeof(T) == 4)                                                                                 \
    v.push_back({"f32_dwconv__" #isa_name, level, &f32_dwconv_rows__##isa_name, &f32_dwconv_dots__##isa_name}); \
  else                                                                                                          \
    v.push_back({"f64_dwconv__" #isa_name, level, &f64_dwconv_rows__##isa_name, &f64_dwconv_dots__##isa_name});
  CNNCORE_ADD(generic, Isa::generic)
#if defined(CNNCORE_HAVE_AVX2_KERNELS)
  CNNCORE_ADD(avx2, Isa::avx2)
#endif
#if defined(CNNCORE_HAVE_AVX512_KERNELS)
  CNNCORE_ADD(avx512, Isa::avx512)
#endif
#undef CNNCORE_ADD
  return v;
}

template <typename T>
const std::vector<DwConvUkernels<T>>& registry() {
  static const std::vector<DwConvUkernels<T>> v = collect<T>();
  return v;
}

}  // namespace

template <typename T>
const DwConvUkernels<T>* dwconv_ukernels(int* count) {
  *count = static_cast<int>(registry<T>().size());
  return registry<T>().data();
}

template <typename T>
const DwConvUkernels<T>& dwconv_ukernels_for_current_isa() {
  return kernel_for_current_isa(registry<T>());
}

template const DwConvUkernels<float>* dwconv_ukernels<float>(int*);
template const DwConvUkernels<double>* dwconv_ukernels<double>(int*);
template const DwConvUkernels<float>& dwconv_ukernels_for_current_isa<float>();
template const DwConvUkernels<double>& dwconv_ukernels_for_current_isa<double>();

}  // namespace cnncore::cpu
