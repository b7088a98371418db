// The body of the hand-written GEMM micro-kernels: an MR x NV-vector tile
// keeps NV*MR accumulators in registers, plus NV B vectors and one
// broadcast of A per step. Registered tiles: AVX-512 8 x 2 vectors (16 of
// 32 zmm accumulate) and 16 x 1 vector (for products 16 columns wide or
// narrower: on cores with full-width 512-bit FMA units, such as Zen 5, it
// runs twice as fast as AVX2's tile of the same width); AVX2 6 x 2 vectors
// (12 of 16 ymm). Tails in n use masked loads and stores; tails in m
// compute the zero rows of the packed A and store only m of them. `Z`
// supplies the vector operations of one ISA; each ISA's source file
// includes this inside an anonymous namespace after defining its Z.
//
// Row p of B is rows(p) (BStrided: b + p * ldb; BShifted: b + off[p], the
// rows of a convolution read in place from a padded image).
#pragma once

#include "cpu/kernels/gemm-rows.hpp"

// Always inlined into each exported variant (gemm-rows.hpp), so that the
// row accessors stay in registers: called out of line, AStrided's six row
// pointers went through the stack as 8-byte stores read back by 16-byte
// loads, a store-forwarding stall per call that was 13% of the 7x7/2 stem
// (147 steps of K a call).
template <typename Z, int MR, int NV, typename T, typename ARows, typename BRows>
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
inline void gemm_vec_kernel(int64_t kc, ARows a, BRows rows, T* __restrict c, int64_t ldc, int64_t m, int64_t n,
                            bool accumulate) {
  static_assert(NV == 1 || NV == 2, "one or two vectors of columns");
  using V = typename Z::V;
  constexpr int L = Z::lanes;
  V acc[NV][MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[v][i] = Z::zero();
  for (int64_t p = 0; p < kc; ++p) {
    rows.prefetch(p, kc, static_cast<int>(NV * L * sizeof(T)));  // rows the hardware cannot guess (gemm-rows.hpp)
    const T* b = rows(p);
    V bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = Z::load(b + v * L);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = Z::bcast(a.at(i, p));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[v][i] = Z::fma(ai, bv[v], acc[v][i]);
    }
  }
  if (n == NV * L) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      if (i >= m) break;
      T* ci = c + i * ldc;
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) {
        if (accumulate) acc[v][i] = Z::add(acc[v][i], Z::load(ci + v * L));
        Z::store(ci + v * L, acc[v][i]);
      }
    }
    return;
  }
  decltype(Z::mask(n)) k[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) k[v] = Z::mask(n > v * L ? n - v * L : 0);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    T* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      if (accumulate) acc[v][i] = Z::add(acc[v][i], Z::load(ci + v * L, k[v]));
      Z::store(ci + v * L, acc[v][i], k[v]);
    }
  }
}
