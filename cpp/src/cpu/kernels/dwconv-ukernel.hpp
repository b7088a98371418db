// Bodies of the depthwise convolution micro-kernels, written against a
// vector interface Z (Zmm, Ymm or Lanes: simd-*.hpp). Each kernel level's
// source file (dwconv-ukernels-*.cpp) includes this inside an anonymous
// namespace after defining its Z, so instantiations compiled with different
// flags never merge at link time; nothing here may use a std:: template.
//
// Both kernels see a convolution of one channel as taps: tap t is a pointer
// such that output position (row r, column c) reads taps[t][r * tap_ld + c].
// The driver (conv-direct.cpp) points them into a padded, stride-phase-split
// copy of the input plane, so padding, stride and dilation are all folded
// into the pointers and the inner loops are unit-stride.
#pragma once

#include <cstdint>

// One block of n <= NB * lanes outputs of a row: the NB accumulators stay in
// registers across all taps. kMasked: the last vector is partial (n < NB *
// lanes), loads and stores are masked so nothing past the row is touched.
template <typename Z, int NB, bool kMasked, typename T>
inline void dw_rows_block(int64_t ntaps, const T* const* taps, int64_t at, const T* w, const T* bias, T* dst,
                          bool accumulate, int64_t n) {
  using V = typename Z::V;
  constexpr int L = Z::lanes;
  decltype(Z::mask(0)) k[NB];
  V a[NB];
#pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) {
    if constexpr (kMasked) {
      const int64_t left = n - j * L;
      k[j] = Z::mask(left < 0 ? 0 : left);
      a[j] = accumulate ? Z::load(dst + j * L, k[j]) : Z::bcast(bias);
    } else {
      a[j] = accumulate ? Z::load(dst + j * L) : Z::bcast(bias);
    }
  }
  for (int64_t t = 0; t < ntaps; ++t) {
    const T* x = taps[t] + at;
    const V wv = Z::bcast(w + t);
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) a[j] = Z::fma(wv, kMasked ? Z::load(x + j * L, k[j]) : Z::load(x + j * L), a[j]);
  }
#pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) {
    if constexpr (kMasked)
      Z::store(dst + j * L, a[j], k[j]);
    else
      Z::store(dst + j * L, a[j]);
  }
}

// The partial block at the end of a row: as many vectors as it needs.
template <typename Z, int NB, typename T>
inline void dw_rows_tail(int64_t ntaps, const T* const* taps, int64_t at, const T* w, const T* bias, T* dst,
                         bool accumulate, int64_t n) {
  if constexpr (NB > 1) {
    if (n <= (NB - 1) * Z::lanes) return dw_rows_tail<Z, NB - 1>(ntaps, taps, at, w, bias, dst, accumulate, n);
  }
  dw_rows_block<Z, NB, true>(ntaps, taps, at, w, bias, dst, accumulate, n);
}

// dst[r * ldd + c] = (accumulate ? dst[r * ldd + c] : bias)
//                    + sum_t w[t] * taps[t][r * tap_ld + c]   for r < rows, c < cols.
template <typename Z, int NB, typename T>
void dw_rows_body(int64_t rows, int64_t cols, int64_t ntaps, const T* const* taps, int64_t tap_ld, const T* w,
                  T bias, T* dst, int64_t ldd, bool accumulate) {
  constexpr int64_t B = NB * Z::lanes;
  for (int64_t r = 0; r < rows; ++r) {
    T* d = dst + r * ldd;
    const int64_t at = r * tap_ld;
    int64_t c = 0;
    for (; c + B <= cols; c += B) dw_rows_block<Z, NB, false>(ntaps, taps, at + c, w, &bias, d + c, accumulate, B);
    if (c < cols) dw_rows_tail<Z, NB>(ntaps, taps, at + c, w, &bias, d + c, accumulate, cols - c);
  }
}

// dw[t] += sum_{r < rows, c < cols} dy[r * ldy + c] * taps[t][r * tap_ld + c]
// for t < ntaps, TB taps at a time with one accumulator each.
template <typename Z, int TB, typename T>
void dw_dots_body(int64_t rows, int64_t cols, int64_t ntaps, const T* const* taps, int64_t tap_ld, const T* dy,
                  int64_t ldy, T* dw) {
  using V = typename Z::V;
  constexpr int L = Z::lanes;
  const int64_t full = cols - cols % L;
  const auto k = Z::mask(cols % L);
  for (int64_t t0 = 0; t0 < ntaps; t0 += TB) {
    const int64_t nt = ntaps - t0 < TB ? ntaps - t0 : TB;
    const T* p[TB];
    V a[TB];
#pragma GCC unroll 16
    for (int i = 0; i < TB; ++i) {
      p[i] = taps[t0 + (i < nt ? i : 0)];
      a[i] = Z::zero();
    }
    for (int64_t r = 0; r < rows; ++r) {
      const T* g = dy + r * ldy;
      const int64_t at = r * tap_ld;
      for (int64_t c = 0; c < full; c += L) {
        const V gv = Z::load(g + c);
#pragma GCC unroll 16
        for (int i = 0; i < TB; ++i)
          if (i < nt) a[i] = Z::fma(gv, Z::load(p[i] + at + c), a[i]);
      }
      if (full < cols) {
        const V gv = Z::load(g + full, k);
#pragma GCC unroll 16
        for (int i = 0; i < TB; ++i)
          if (i < nt) a[i] = Z::fma(gv, Z::load(p[i] + at + full, k), a[i]);
      }
    }
    for (int i = 0; i < nt; ++i) dw[t0 + i] += Z::sum(a[i]);
  }
}
