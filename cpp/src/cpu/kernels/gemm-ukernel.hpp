// The portable micro-kernel body. Each ISA's source file includes this inside
// an anonymous namespace (so instantiations compiled with different flags
// never merge at link time) and names the instantiation it exports. It calls
// no library functions, so nothing compiled for a wider ISA leaks into
// baseline code.
#pragma once

// Row p of B is rows(p): see BStrided / BShifted below.
#include "cpu/kernels/gemm-rows.hpp"

template <typename T, int MR, int NR, typename ARows, typename BRows>
inline void gemm_ukernel_body(int64_t kc, ARows a, BRows rows, T* __restrict c, int64_t ldc, int64_t m, int64_t n,
                              bool accumulate) {
  T acc[MR][NR];
  for (int i = 0; i < MR; ++i)
#pragma omp simd
    for (int j = 0; j < NR; ++j) acc[i][j] = T(0);
  for (int64_t p = 0; p < kc; ++p) {
    const T* bp = rows(p);
    for (int i = 0; i < MR; ++i) {
      const T ai = *a.at(i, p);
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * bp[j];
    }
  }
  if (m == MR && n == NR) {
    for (int i = 0; i < MR; ++i) {
      T* ci = c + i * ldc;
      if (accumulate) {
#pragma omp simd
        for (int j = 0; j < NR; ++j) ci[j] += acc[i][j];
      } else {
#pragma omp simd
        for (int j = 0; j < NR; ++j) ci[j] = acc[i][j];
      }
    }
    return;
  }
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
  }
}
