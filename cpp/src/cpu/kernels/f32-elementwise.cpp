// The table of float32 elementwise kernel levels (f32-elementwise-levels.inc) and
// the choice by get_isa().
#include "cpu/kernels/f32-elementwise.hpp"

#include <cstddef>

#include "cnncore/runtime.hpp"

#define CNNCORE_EW_DECLARE2(s)                                                                                      \
  void f32_exp__##s(int64_t, const float*, float*);                                                                 \
  void f32_activation_forward__##s(int, float, int64_t, const float*, float*);                                      \
  void f32_activation_backward__##s(int, float, int64_t, const float*, const float*, float*);                       \
  void f32_softmax_forward__##s(int64_t, int64_t, int64_t, bool, const float*, float*);                             \
  void f32_softmax_backward__##s(int64_t, int64_t, int64_t, bool, const float*, const float*, float*);              \
  double f32_cross_entropy_forward__##s(int64_t, int64_t, int64_t, int64_t, const float*, const float*,              \
                                        const int64_t*, int64_t, double, float*);                                   \
  void f32_cross_entropy_backward__##s(int64_t, int64_t, int64_t, int64_t, const float*, int64_t, double,           \
                                       const float*, const float*, float, const int64_t*, int64_t, double, float*);  \
  void f32_pool2x2_forward__##s(bool, int64_t, int64_t, int64_t, float, const float*, float*);                     \
  void f32_pool2x2_avg_backward__##s(int64_t, int64_t, int64_t, float, const float*, float*);                    \
  void f32_pool3x3s2_max__##s(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, float*, \
                              int64_t*);                                                                          \
  void f32_gemv_rows__##s(int64_t, int64_t, const float*, const float*, int64_t, int64_t, float*, int64_t, bool); \
  bool f32_winograd_input__##s(int, int64_t, int64_t, const float*, float*, int64_t);                                       \
  void f32_winograd_output__##s(int, int64_t, int64_t, const float*, int64_t, float*);                                      \
  bool f32_winograd_weights__##s(int, int64_t, int64_t, const float*, float*, int64_t);                                \
  void f32_winograd_grad_out__##s(int, int64_t, int64_t, const float*, float*, int64_t);                             \
  void f32_winograd_grad_weights__##s(int, const float*, int64_t, float*);                                          \
  void f32_winograd_gather__##s(int, const float*, int64_t, int64_t, float*, int64_t);                               \
  void f32_winograd_scatter__##s(int, const float*, int64_t, int64_t, float*, int64_t);                             \
  bool f32_winograd_gather_indexed__##s(int, int64_t, int64_t, const int32_t*, const int32_t*, const float*, float*); \
  double f32_bn_row_sum__##s(int64_t, const float*);                                                                \
  double f32_bn_row_sq_dev__##s(int64_t, const float*, double);                                                     \
  void f32_bn_row_grad_sums__##s(int64_t, const float*, const float*, double, double*);                            \
  void f32_bn_row_scale_shift__##s(int64_t, const float*, float, float, float*);                                   \
  void f32_bn_row_grad__##s(int64_t, const float*, const float*, float, float, float, float, float*);               \
  uint64_t fingerprint__##s(const void*, int64_t);

namespace cnncore::cpu {

#define CNNCORE_F32_ELEMENTWISE(s, isa) CNNCORE_EW_DECLARE2(s)
#include "cpu/kernels/f32-elementwise-levels.inc"
#undef CNNCORE_F32_ELEMENTWISE

namespace {

#define CNNCORE_F32_ELEMENTWISE(s, isa)                                                                  \
  F32ElementwiseKernels{"f32_elementwise__" #s,       isa,                          &f32_exp__##s,       \
                        &f32_activation_forward__##s, &f32_activation_backward__##s, &f32_softmax_forward__##s, \
                        &f32_softmax_backward__##s,   &f32_cross_entropy_forward__##s,                     \
                        &f32_cross_entropy_backward__##s, &f32_pool2x2_forward__##s,                  \
                        &f32_pool2x2_avg_backward__##s, &f32_pool3x3s2_max__##s, &f32_gemv_rows__##s,       \
                        &f32_winograd_input__##s, &f32_winograd_output__##s, &f32_winograd_weights__##s, \
                        &f32_winograd_grad_out__##s, &f32_winograd_grad_weights__##s,                   \
                        &f32_winograd_gather__##s, &f32_winograd_scatter__##s,                          \
                        &f32_winograd_gather_indexed__##s, &f32_bn_row_sum__##s,                       \
                        &f32_bn_row_sq_dev__##s, &f32_bn_row_grad_sums__##s, &f32_bn_row_scale_shift__##s, \
                        &f32_bn_row_grad__##s, &fingerprint__##s},
const F32ElementwiseKernels kLevels[] = {
#include "cpu/kernels/f32-elementwise-levels.inc"
};
#undef CNNCORE_F32_ELEMENTWISE

}  // namespace

const F32ElementwiseKernels* f32_elementwise_kernels(int* count) {
  *count = static_cast<int>(sizeof(kLevels) / sizeof(kLevels[0]));
  return kLevels;
}

namespace {

const F32ElementwiseKernels& widest_up_to(Isa level) {
  const F32ElementwiseKernels* best = &kLevels[0];
  for (const F32ElementwiseKernels& k : kLevels)
    if (k.isa <= level && k.isa > best->isa) best = &k;
  return *best;
}

}  // namespace

const F32ElementwiseKernels& f32_elementwise_kernels_for_current_isa() {
  return widest_up_to(get_isa());
}

const F32ElementwiseKernels& f32_elementwise_kernels_for_rows(int64_t row_length) {
  const Isa level = get_isa();
  return widest_up_to(row_length < 16 && level > Isa::avx2 ? Isa::avx2 : level);
}

}  // namespace cnncore::cpu
