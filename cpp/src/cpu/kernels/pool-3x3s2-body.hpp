// Max pooling over 3x3 windows at stride 2 with at most one padding row and
// column a side (ResNet's and GoogLeNet's pooling after the stem), with the
// positions of the maxima for training. For each output row, in chunks of
// 64 outputs: every tap of the window (three rows, three columns), the
// outputs' loop running over stride-2 loads with a compare and two selects
// per output, so that it vectorises at each kernel level. Results and
// positions are those of the general row engine (pool-direct.cpp): taps in
// row-major order, a strictly larger value or the first NaN wins, and a
// window whose values are all -inf takes its first tap inside.
//
// Included by f32-elementwise-level.inc (float, once per kernel level) and by
// pool-direct.cpp (double, baseline); nothing here may use a std:: template.
#pragma once

#include <cstdint>

// One step of the scan: v replaces b when strictly larger, or when v is the
// first NaN.
template <typename T>
inline T pool_max_step(T b, T v) {
  return (v > b) | ((v != v) & (b == b)) ? v : b;
}

// The row maxima of input row `row` over the three columns of each output's
// window, for outputs c0 .. c0 + n - 1 (columns in order: the scan's order
// within a row).
template <typename T>
void pool3x3s2_row_max(const T* row, int64_t wi, int64_t pw, int64_t c0, int64_t n, T* out) {
  for (int64_t j = 0; j < n; ++j) out[j] = -static_cast<T>(__builtin_inf());
  for (int64_t tw = 0; tw < 3; ++tw) {
    const int64_t base = 2 * c0 + tw - pw;
    int64_t lo = base < 0 ? (1 - base) / 2 : 0, up = (wi - 1 - base) / 2 + 1;
    if (wi - 1 - base < 0) up = 0;
    if (up > n) up = n;
    const T* r = row + base;
#pragma omp simd
    for (int64_t j = lo; j < up; ++j) out[j] = pool_max_step(out[j], r[2 * j]);
  }
}

// Values alone (inference): separable, each input row's three-column maxima
// computed once and shared by the two output rows whose windows hold it,
// then the maximum of a window's (up to) three rows, top first. The scan of
// the window in row-major order keeps the first of equal maxima and the
// first NaN; so does this (within a row the first column, across rows the
// first row), so the values are the same bits. About half the comparisons
// of the nine-tap scan, and no positions.
template <typename T>
void pool3x3s2_max_values(int64_t planes, int64_t hi, int64_t wi, int64_t ho, int64_t wo, int64_t ph, int64_t pw,
                          const T* x, T* y) {
  constexpr int64_t kChunk = 64;
  T rows[3][kChunk];  // the row maxima of input rows h0, h0 + 1, h0 + 2
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * hi * wi;
    for (int64_t c0 = 0; c0 < wo; c0 += kChunk) {
      const int64_t n = wo - c0 < kChunk ? wo - c0 : kChunk;
      int64_t have = -2;  // the input row whose maxima rows[0] holds from the previous output row
      for (int64_t r = 0; r < ho; ++r) {
        const int64_t h0 = 2 * r - ph;
        int first = 0;
        if (have == h0 && h0 >= 0) {  // the previous output row's last row is this one's first
          for (int64_t j = 0; j < n; ++j) rows[0][j] = rows[2][j];
          first = 1;
        }
        for (int th = first; th < 3; ++th) {
          const int64_t h = h0 + th;
          if (h >= 0 && h < hi) pool3x3s2_row_max(xp + h * wi, wi, pw, c0, n, rows[th]);
        }
        T* yr = y + (p * ho + r) * wo + c0;
        const int t0 = h0 < 0 ? 1 : 0, t1 = h0 + 2 < hi ? 3 : hi - h0;
        for (int th = t0 + 1; th < t1; ++th) {
          const T* next = rows[th];
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) rows[t0][j] = pool_max_step(rows[t0][j], next[j]);
        }
        for (int64_t j = 0; j < n; ++j) yr[j] = rows[t0][j];
        have = h0 + 2 < hi ? h0 + 2 : -2;
      }
    }
  }
}

// planes planes of hi x wi in x to planes of ho x wo in y (windows starting
// at 2 * o - ph and 2 * o - pw, ph and pw at most 1, each with a tap inside);
// indices (may be null): the flat position of each maximum in its plane.
template <typename T>
void pool3x3s2_max_body(int64_t planes, int64_t hi, int64_t wi, int64_t ho, int64_t wo, int64_t ph, int64_t pw,
                        const T* x, T* y, int64_t* indices) {
  if (!indices) return pool3x3s2_max_values(planes, hi, wi, ho, wo, ph, pw, x, y);
  constexpr int64_t kChunk = 64;
  T best[kChunk];
  int32_t at[kChunk];
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * hi * wi;
    for (int64_t r = 0; r < ho; ++r) {
      const int64_t h0 = 2 * r - ph;
      for (int64_t c0 = 0; c0 < wo; c0 += kChunk) {
        const int64_t n = wo - c0 < kChunk ? wo - c0 : kChunk;
        for (int64_t j = 0; j < n; ++j) {
          best[j] = -static_cast<T>(__builtin_inf());
          at[j] = -1;
        }
        for (int64_t th = 0; th < 3; ++th) {
          const int64_t h = h0 + th;
          if (h < 0 || h >= hi) continue;
          for (int64_t tw = 0; tw < 3; ++tw) {
            // outputs j (c0 + j) whose column 2 * (c0 + j) + tw - pw is inside
            const int64_t base = 2 * c0 + tw - pw;
            int64_t lo = base < 0 ? (1 - base) / 2 : 0, up = (wi - 1 - base) / 2 + 1;
            if (wi - 1 - base < 0) up = 0;
            if (up > n) up = n;
            const T* row = xp + h * wi + base;
            const int32_t pos = static_cast<int32_t>(h * wi + base);
#pragma omp simd
            for (int64_t j = lo; j < up; ++j) {
              const T v = row[2 * j], b = best[j];
              const bool take = (v > b) | ((v != v) & (b == b));
              best[j] = take ? v : b;
              at[j] = take ? pos + 2 * static_cast<int32_t>(j) : at[j];
            }
          }
        }
        T* yr = y + (p * ho + r) * wo + c0;
        for (int64_t j = 0; j < n; ++j) yr[j] = best[j];
        if (indices) {
          const int64_t hf = h0 < 0 ? 0 : h0;
          int64_t* ir = indices + (p * ho + r) * wo + c0;
          for (int64_t j = 0; j < n; ++j) {
            const int64_t wf = 2 * (c0 + j) - pw < 0 ? 0 : 2 * (c0 + j) - pw;
            ir[j] = at[j] >= 0 ? at[j] : hf * wi + wf;
          }
        }
      }
    }
  }
}
