// The locally connected convolution micro-kernels of each kernel level
// (bodies in local-conv-ukernel.hpp), and the set the current level selects.
#pragma once

#include <cstdint>

#include "cnncore/runtime.hpp"

namespace cnncore::cpu {

// The widest vector any level uses, in elements of float (16 x 32 bits).
constexpr int64_t kLocalConvMaxLanes = 16;

template <typename T>
struct LocalConvUkernels {
  const char* name;  // e.g. "f32_local_conv__avx2"
  Isa isa;           // the kernel level they need
  int lanes;         // V: elements of T in one vector register (divides kMaxLanes)
  // Y (M x O, row stride ldy) = P (M x K, row stride ldp) * W^T with W (O x K)
  // row-major. When K % V != 0 the rows of P must be zero-padded to a
  // multiple of V and Wt (O x V) must hold the last K % V values of each row
  // of W followed by zeros; Wt is not read otherwise.
  void (*dot_nt)(int64_t M, int64_t O, int64_t K, const T* P, int64_t ldp, const T* W, const T* Wt, T* Y,
                 int64_t ldy);
  // C (M x N, row stride ldc) (+)= A * B, A(i, p) = A[i*sai + p*sap], B (Kd x N) row stride ldb.
  void (*gemm_bcast)(int64_t M, int64_t N, int64_t Kd, const T* A, int64_t sai, int64_t sap, const T* B,
                     int64_t ldb, T* C, int64_t ldc, bool accumulate);
};

// Every level built into this library, lowest first (generic is always there).
template <typename T> const LocalConvUkernels<T>* local_conv_ukernels(int* count);
template <typename T> const LocalConvUkernels<T>& local_conv_ukernels_for_current_isa();

}  // namespace cnncore::cpu
