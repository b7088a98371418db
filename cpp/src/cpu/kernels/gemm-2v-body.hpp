// The body of the hand-written GEMM micro-kernels: an MR x 2-vector tile
// keeps 2*MR accumulators in registers, plus two B vectors and one
// broadcast of A per step (AVX-512: MR = 8 of 32 zmm; AVX2: MR = 6 of 16
// ymm). Tails in n use masked loads and stores; tails in m compute the zero
// rows of the packed A and store only m of them. `Z` supplies the vector
// operations of one ISA; each ISA's source file includes this inside an
// anonymous namespace after defining its Z.
//
// Row p of B is rows(p) (BStrided: b + p * ldb; BShifted: b + off[p], the
// rows of a convolution read in place from a padded image).
#pragma once

#include "cpu/kernels/gemm-rows.hpp"

template <typename Z, int MR, typename T, typename ARows, typename BRows>
inline void gemm_2v_kernel(int64_t kc, ARows a, BRows rows, T* __restrict c, int64_t ldc, int64_t m, int64_t n,
                           bool accumulate) {
  using V = typename Z::V;
  constexpr int L = Z::lanes;
  V c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = Z::zero();
  for (int64_t p = 0; p < kc; ++p) {
    rows.prefetch(p + 8, kc, static_cast<int>(2 * L * sizeof(T)));  // shifted rows: their order is a table's
    const T* b = rows(p);
    const V b0 = Z::load(b), b1 = Z::load(b + L);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = Z::bcast(a.at(i, p));
      c0[i] = Z::fma(ai, b0, c0[i]);
      c1[i] = Z::fma(ai, b1, c1[i]);
    }
  }
  if (n == 2 * L) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      if (i >= m) break;
      T* ci = c + i * ldc;
      if (accumulate) {
        c0[i] = Z::add(c0[i], Z::load(ci));
        c1[i] = Z::add(c1[i], Z::load(ci + L));
      }
      Z::store(ci, c0[i]);
      Z::store(ci + L, c1[i]);
    }
    return;
  }
  const auto k0 = Z::mask(n), k1 = Z::mask(n > L ? n - L : 0);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    T* ci = c + i * ldc;
    if (accumulate) {
      c0[i] = Z::add(c0[i], Z::load(ci, k0));
      c1[i] = Z::add(c1[i], Z::load(ci + L, k1));
    }
    Z::store(ci, c0[i], k0);
    Z::store(ci + L, c1[i], k1);
  }
}

