// Baseline-ISA locally connected convolution micro-kernels and the list of
// every level's kernels (the ISA-specific ones live in *-avx2.cpp / *-avx512.cpp).
#include "cpu/kernels/local-conv-ukernels.hpp"

#include <vector>

#include "cnncore/runtime.hpp"
#include "cpu/kernels/kernel-levels.hpp"

namespace {
#include "cpu/kernels/local-conv-ukernel.hpp"
}

namespace cnncore::cpu {

// Baseline x86-64 (SSE2) registers hold 16 bytes.
void f32_local_dot_nt__generic(int64_t M, int64_t O, int64_t K, const float* P, int64_t ldp, const float* W,
                               const float* Wt, float* Y, int64_t ldy) {
  local_dot_nt_body<float, 4, 2>(M, O, K, P, ldp, W, Wt, Y, ldy);
}
void f64_local_dot_nt__generic(int64_t M, int64_t O, int64_t K, const double* P, int64_t ldp, const double* W,
                               const double* Wt, double* Y, int64_t ldy) {
  local_dot_nt_body<double, 2, 2>(M, O, K, P, ldp, W, Wt, Y, ldy);
}
void f32_local_gemm_bcast__generic(int64_t M, int64_t N, int64_t Kd, const float* A, int64_t sai, int64_t sap,
                                   const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  local_gemm_bcast_body<float, 4>(M, N, Kd, A, sai, sap, B, ldb, C, ldc, accumulate);
}
void f64_local_gemm_bcast__generic(int64_t M, int64_t N, int64_t Kd, const double* A, int64_t sai, int64_t sap,
                                   const double* B, int64_t ldb, double* C, int64_t ldc, bool accumulate) {
  local_gemm_bcast_body<double, 2>(M, N, Kd, A, sai, sap, B, ldb, C, ldc, accumulate);
}

#define CNNCORE_LOCAL_UKERNELS(isa_name)                                                                   \
  void f32_local_dot_nt__##isa_name(int64_t, int64_t, int64_t, const float*, int64_t, const float*,      \
                                    const float*, float*, int64_t);                                       \
  void f64_local_dot_nt__##isa_name(int64_t, int64_t, int64_t, const double*, int64_t, const double*,    \
                                    const double*, double*, int64_t);                                     \
  void f32_local_gemm_bcast__##isa_name(int64_t, int64_t, int64_t, const float*, int64_t, int64_t,        \
                                        const float*, int64_t, float*, int64_t, bool);                    \
  void f64_local_gemm_bcast__##isa_name(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,       \
                                        const double*, int64_t, double*, int64_t, bool);
#if defined(CNNCORE_HAVE_AVX2_KERNELS)
CNNCORE_LOCAL_UKERNELS(avx2)
#endif
#if defined(CNNCORE_HAVE_AVX512_KERNELS)
CNNCORE_LOCAL_UKERNELS(avx512)
#endif
#undef CNNCORE_LOCAL_UKERNELS

namespace {

template <typename T>
std::vector<LocalConvUkernels<T>> collect() {
  std::vector<LocalConvUkernels<T>> v;
#define CNNCORE_ADD(isa_name, level, f32_lanes)                                                     \
  if constexpr (sizeof(T) == 4)                                                                      \
    v.push_back({"f32_local_conv__" #isa_name, level, f32_lanes, &f32_local_dot_nt__##isa_name,      \
                 &f32_local_gemm_bcast__##isa_name});                                                \
  else                                                                                               \
    v.push_back({"f64_local_conv__" #isa_name, level, (f32_lanes) / 2, &f64_local_dot_nt__##isa_name, \
                 &f64_local_gemm_bcast__##isa_name});
  CNNCORE_ADD(generic, Isa::generic, 4)
#if defined(CNNCORE_HAVE_AVX2_KERNELS)
  CNNCORE_ADD(avx2, Isa::avx2, 8)
#endif
#if defined(CNNCORE_HAVE_AVX512_KERNELS)
  CNNCORE_ADD(avx512, Isa::avx512, 16)
#endif
#undef CNNCORE_ADD
  return v;
}

template <typename T>
const std::vector<LocalConvUkernels<T>>& registry() {
  static const std::vector<LocalConvUkernels<T>> v = collect<T>();
  return v;
}

}  // namespace

template <typename T>
const LocalConvUkernels<T>* local_conv_ukernels(int* count) {
  *count = static_cast<int>(registry<T>().size());
  return registry<T>().data();
}

template <typename T>
const LocalConvUkernels<T>& local_conv_ukernels_for_current_isa() {
  return kernel_for_current_isa(registry<T>());
}

template const LocalConvUkernels<float>* local_conv_ukernels<float>(int*);
template const LocalConvUkernels<double>* local_conv_ukernels<double>(int*);
template const LocalConvUkernels<float>& local_conv_ukernels_for_current_isa<float>();
template const LocalConvUkernels<double>& local_conv_ukernels_for_current_isa<double>();

}  // namespace cnncore::cpu
