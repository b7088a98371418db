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
//
// A block keeps G x NB vector accumulators in registers across all taps, so
// that short rows (LeNet's 28 columns are two vectors) still give the FMA
// units enough independent chains. The G groups are either G output channels
// that read the same taps (a channel multiplier, or one input channel feeding
// several outputs: each tap's vectors are loaded once for all of them) or,
// with one channel, G consecutive output rows.
#pragma once

#include <cstdint>

// Accumulators a block may keep: 24 of AVX-512's 32 registers, 12 of the 16
// of AVX2 and the portable level.
template <typename Z, typename T>
constexpr int dw_accumulators() {
  return Z::lanes * sizeof(T) >= 64 ? 24 : 12;
}
// Groups per block for NB vectors a row: 8, 4, 2 or 1.
template <typename Z, typename T, int NB>
constexpr int dw_groups() {
  constexpr int g = dw_accumulators<Z, T>() / NB;
  return g >= 8 ? 8 : g >= 4 ? 4 : g >= 2 ? 2 : 1;
}

// One block: groups g < G, n <= NB * lanes columns starting at `at`.
// kChannels: group g is output channel g (weights w[t * wld + g], bias[g],
// dst + g * ds) reading taps[t] + at; else group g is row g (weights w[t],
// bias[0], dst + g * ds) reading taps[t] + at + g * xs.
// kMasked: the last vector is partial, and nothing past n is read or written.
template <typename Z, int G, int NB, bool kMasked, bool kChannels, typename T>
inline void dw_block(int64_t ntaps, const T* const* taps, int64_t at, int64_t xs, const T* w, int64_t wld,
                     const T* bias, T* dst, int64_t ds, bool accumulate, int64_t n) {
  using V = typename Z::V;
  constexpr int L = Z::lanes;
  decltype(Z::mask(0)) k[NB];
  V a[G][NB];
#pragma GCC unroll 8
  for (int j = 0; j < NB; ++j) {
    const int64_t left = n - j * L;
    k[j] = Z::mask(left < 0 ? 0 : left);
  }
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) {
      T* d = dst + g * ds + j * L;
      if (accumulate)
        a[g][j] = kMasked ? Z::load(d, k[j]) : Z::load(d);
      else
        a[g][j] = Z::bcast(bias + (kChannels ? g : 0));
    }
  for (int64_t t = 0; t < ntaps; ++t) {
    const T* x = taps[t] + at;
    const T* wt = w + t * wld;
    if constexpr (kChannels) {
      V xv[NB];
#pragma GCC unroll 8
      for (int j = 0; j < NB; ++j) xv[j] = kMasked ? Z::load(x + j * L, k[j]) : Z::load(x + j * L);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) {
        const V wv = Z::bcast(wt + g);
#pragma GCC unroll 8
        for (int j = 0; j < NB; ++j) a[g][j] = Z::fma(wv, xv[j], a[g][j]);
      }
    } else {
      const V wv = Z::bcast(wt);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g)
#pragma GCC unroll 8
        for (int j = 0; j < NB; ++j) {
          const T* xg = x + g * xs + j * L;
          a[g][j] = Z::fma(wv, kMasked ? Z::load(xg, k[j]) : Z::load(xg), a[g][j]);
        }
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) {
      T* d = dst + g * ds + j * L;
      if constexpr (kMasked)
        Z::store(d, a[g][j], k[j]);
      else
        Z::store(d, a[g][j]);
    }
}

// groups <= G groups: one block of G, then the rest. Channels take the exact
// count next (M = 6 is one block of 6, twelve chains, where 4 + 2 would leave
// the 2-channel block waiting on four chains' latency); rows halve G.
template <typename Z, int G, int NB, bool kMasked, bool kChannels, typename T>
inline void dw_groups_block(int64_t groups, int64_t ntaps, const T* const* taps, int64_t at, int64_t xs, const T* w,
                            int64_t wld, const T* bias, T* dst, int64_t ds, bool accumulate, int64_t n) {
  if (groups >= G) {
    dw_block<Z, G, NB, kMasked, kChannels>(ntaps, taps, at, xs, w, wld, bias, dst, ds, accumulate, n);
    groups -= G;
    if (groups == 0) return;
    at += kChannels ? 0 : G * xs;
    w += kChannels ? G : 0;
    bias += kChannels ? G : 0;
    dst += G * ds;
  }
  if constexpr (G > 1)
    dw_groups_block<Z, kChannels ? G - 1 : G / 2, NB, kMasked, kChannels>(groups, ntaps, taps, at, xs, w, wld,
                                                                           bias, dst, ds, accumulate, n);
}

// Columns [0, cols) of `groups` groups, in blocks of NB vectors and a masked
// tail of as many vectors as it needs (with the same groups).
template <typename Z, int NB, bool kChannels, typename T>
void dw_columns(int64_t groups, int64_t cols, int64_t ntaps, const T* const* taps, int64_t at, int64_t xs,
                const T* w, int64_t wld, const T* bias, T* dst, int64_t ds, bool accumulate) {
  constexpr int64_t B = NB * Z::lanes;
  constexpr int G = dw_groups<Z, T, NB>();
  for (int64_t g0 = 0; g0 < groups; g0 += G) {
    const int64_t gn = groups - g0 < G ? groups - g0 : G;
    const int64_t ga = kChannels ? 0 : g0 * xs;
    const T* wg = w + (kChannels ? g0 : 0);
    const T* bg = bias + (kChannels ? g0 : 0);
    T* dg = dst + g0 * ds;
    int64_t c = 0;
    for (; c + B <= cols; c += B)
      dw_groups_block<Z, G, NB, false, kChannels>(gn, ntaps, taps, at + ga + c, xs, wg, wld, bg, dg + c, ds,
                                                  accumulate, B);
    if (c < cols)
      dw_groups_block<Z, G, NB, true, kChannels>(gn, ntaps, taps, at + ga + c, xs, wg, wld, bg, dg + c, ds,
                                                 accumulate, cols - c);
  }
}

// NB = the vectors a row needs, at most NBmax.
template <typename Z, int NB, bool kChannels, typename T>
void dw_columns_nb(int64_t nb, int64_t groups, int64_t cols, int64_t ntaps, const T* const* taps, int64_t at,
                   int64_t xs, const T* w, int64_t wld, const T* bias, T* dst, int64_t ds, bool accumulate) {
  if constexpr (NB > 1) {
    if (nb < NB)
      return dw_columns_nb<Z, NB - 1, kChannels>(nb, groups, cols, ntaps, taps, at, xs, w, wld, bias, dst, ds,
                                                   accumulate);
  }
  dw_columns<Z, NB, kChannels>(groups, cols, ntaps, taps, at, xs, w, wld, bias, dst, ds, accumulate);
}

// For m < M, r < rows, c < cols:
//   dst[m * ldm + r * ldd + c] = (accumulate ? that : bias[m]) + sum_t w[t * M + m] * taps[t][r * tap_ld + c].
// bias may be null (0). Several channels share each tap's loads; one channel
// blocks rows instead.
template <typename Z, int NBmax, typename T>
void dw_rows_body(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const T* const* taps, int64_t tap_ld,
                  const T* w, const T* bias, T* dst, int64_t ldd, int64_t ldm, bool accumulate) {
  if (M <= 0 || rows <= 0 || cols <= 0) return;
  const int64_t need = (cols + Z::lanes - 1) / Z::lanes, nb = need < NBmax ? need : NBmax;
  T zeros[8] = {};  // the bias when none is given: 8 >= the groups of a block
  if (M == 1) {
    dw_columns_nb<Z, NBmax, false>(nb, rows, cols, ntaps, taps, 0, tap_ld, w, 1, bias ? bias : zeros, dst, ldd,
                                   accumulate);
    return;
  }
  const T* b = bias;
  if (!b) {
    // Channels in blocks of at most 8 share one zero bias array.
    for (int64_t m0 = 0; m0 < M; m0 += 8) {
      const int64_t mn = M - m0 < 8 ? M - m0 : 8;
      for (int64_t r = 0; r < rows; ++r)
        dw_columns_nb<Z, NBmax, true>(nb, mn, cols, ntaps, taps, r * tap_ld, 0, w + m0, M, zeros,
                                      dst + m0 * ldm + r * ldd, ldm, accumulate);
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r)
    dw_columns_nb<Z, NBmax, true>(nb, M, cols, ntaps, taps, r * tap_ld, 0, w, M, b, dst + r * ldd, ldm, accumulate);
}

// MB channels x exactly TB taps of the weight gradient, one accumulator
// each: every vector of a row loads MB output-gradient vectors and TB tap
// vectors for MB * TB FMAs. (A run-time tap count inside the loop makes GCC
// keep the accumulators on the stack, hence the exact count.) One loop per
// row with its last vector masked, so short rows (LeNet's 28 columns are two
// vectors) need no separate tail code.
template <typename Z, int MB, int TB, typename T>
void dw_dots_block(int64_t rows, int64_t cols, const T* const* taps, int64_t tap_ld, const T* dy, int64_t ldy,
                   int64_t ldm, T* dw, int64_t ntaps) {
  using V = typename Z::V;
  constexpr int L = Z::lanes;
  const T* p[TB];
  V a[MB][TB];
#pragma GCC unroll 16
  for (int i = 0; i < TB; ++i) {
    p[i] = taps[i];
#pragma GCC unroll 8
    for (int m = 0; m < MB; ++m) a[m][i] = Z::zero();
  }
  for (int64_t r = 0; r < rows; ++r) {
    const T* g = dy + r * ldy;
    const int64_t at = r * tap_ld;
    for (int64_t c = 0; c < cols; c += L) {
      const auto k = Z::mask(cols - c);
      V gv[MB];
#pragma GCC unroll 8
      for (int m = 0; m < MB; ++m) gv[m] = Z::load(g + m * ldm + c, k);
#pragma GCC unroll 16
      for (int i = 0; i < TB; ++i) {
        const V xv = Z::load(p[i] + at + c, k);
#pragma GCC unroll 8
        for (int m = 0; m < MB; ++m) a[m][i] = Z::fma(gv[m], xv, a[m][i]);
      }
    }
  }
  // Unrolled too: an array indexed at run time anywhere lives in memory.
#pragma GCC unroll 8
  for (int m = 0; m < MB; ++m)
#pragma GCC unroll 16
    for (int i = 0; i < TB; ++i) dw[m * ntaps + i] += Z::sum(a[m][i]);
}

// nt <= TB taps: the block of exactly nt.
template <typename Z, int MB, int TB, typename T>
void dw_dots_taps(int64_t nt, int64_t rows, int64_t cols, const T* const* taps, int64_t tap_ld, const T* dy,
                  int64_t ldy, int64_t ldm, T* dw, int64_t ntaps) {
  if constexpr (TB > 1) {
    if (nt < TB) return dw_dots_taps<Z, MB, TB - 1>(nt, rows, cols, taps, tap_ld, dy, ldy, ldm, dw, ntaps);
  }
  dw_dots_block<Z, MB, TB>(rows, cols, taps, tap_ld, dy, ldy, ldm, dw, ntaps);
}

// MB channels, all taps: as few groups of at most TB taps as cover them, of
// nearly equal sizes (25 taps in groups of 6 go 5 x 5, not 6 x 4 + 1).
template <typename Z, int MB, int TB, typename T>
void dw_dots_channels(int64_t rows, int64_t cols, int64_t ntaps, const T* const* taps, int64_t tap_ld, const T* dy,
                      int64_t ldy, int64_t ldm, T* dw) {
  const int64_t groups = (ntaps + TB - 1) / TB;
  for (int64_t q = 0; q < groups; ++q) {
    const int64_t t0 = ntaps * q / groups, t1 = ntaps * (q + 1) / groups;
    dw_dots_taps<Z, MB, TB>(t1 - t0, rows, cols, taps + t0, tap_ld, dy, ldy, ldm, dw + t0, ntaps);
  }
}

// dw[m * ntaps + t] += sum_{r < rows, c < cols} dy[m * ldm + r * ldy + c] * taps[t][r * tap_ld + c]
// for m < M, t < ntaps: channels four, two or one at a time, with as many
// taps as the accumulators allow.
template <typename Z, typename T>
void dw_dots_body(int64_t M, int64_t rows, int64_t cols, int64_t ntaps, const T* const* taps, int64_t tap_ld,
                  const T* dy, int64_t ldy, int64_t ldm, T* dw) {
  constexpr int A = dw_accumulators<Z, T>();
  if (rows <= 0 || cols <= 0) return;
  int64_t m = 0;
  for (; m + 4 <= M; m += 4)
    dw_dots_channels<Z, 4, A / 4>(rows, cols, ntaps, taps, tap_ld, dy + m * ldm, ldy, ldm, dw + m * ntaps);
  if (m + 2 <= M) {
    dw_dots_channels<Z, 2, A / 2>(rows, cols, ntaps, taps, tap_ld, dy + m * ldm, ldy, ldm, dw + m * ntaps);
    m += 2;
  }
  if (m < M)
    dw_dots_channels<Z, 1, (A < 16 ? A : 16)>(rows, cols, ntaps, taps, tap_ld, dy + m * ldm, ldy, ldm,
                                               dw + m * ntaps);
}
