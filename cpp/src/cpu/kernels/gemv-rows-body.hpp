// Matrix-vector products for a few rows (a fully connected layer at batch
// 1-8): each weight row is read from memory once and used for every input
// row while it is in cache, where the GEMM would first copy all the weights
// into packed panels (VGG-16's first classifier layer has 411 MB of them).
//
// Included by f32-elementwise-level.inc (float, once per kernel level) and by
// linear-gemm.cpp (double, baseline); nothing here may use a std:: template.
#pragma once

#include <cstdint>

// y[r * ldy + o] = (accumulate ? y[r * ldy + o] : 0) + sum_k x[r * in + k] * w[o * in + k]
// for r < rows, o0 <= o < o1. Four weight rows at a time, each input row
// read once for all four.
template <typename T>
void gemv_rows_body(int64_t rows, int64_t in, const T* x, const T* w, int64_t o0, int64_t o1, T* y, int64_t ldy,
                    bool accumulate) {
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) {
    const T* w0 = w + o * in;
    const T* w1 = w0 + in;
    const T* w2 = w1 + in;
    const T* w3 = w2 + in;
    int64_t r = 0;
    for (; r + 2 <= rows; r += 2) {  // two input rows: 8 sums, 6 loads for 8 FMAs
      const T* xr = x + r * in;
      const T* xs = xr + in;
      T a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3, b0, b1, b2, b3)
      for (int64_t k = 0; k < in; ++k) {
        const T v = xr[k], u = xs[k];
        a0 += w0[k] * v;
        a1 += w1[k] * v;
        a2 += w2[k] * v;
        a3 += w3[k] * v;
        b0 += w0[k] * u;
        b1 += w1[k] * u;
        b2 += w2[k] * u;
        b3 += w3[k] * u;
      }
      T* yr = y + r * ldy + o;
      T* ys = yr + ldy;
      const T s[8] = {a0, a1, a2, a3, b0, b1, b2, b3};
      for (int i = 0; i < 4; ++i) {
        yr[i] = accumulate ? yr[i] + s[i] : s[i];
        ys[i] = accumulate ? ys[i] + s[4 + i] : s[4 + i];
      }
    }
    for (; r < rows; ++r) {
      const T* xr = x + r * in;
      T a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
      for (int64_t k = 0; k < in; ++k) {
        const T v = xr[k];
        a0 += w0[k] * v;
        a1 += w1[k] * v;
        a2 += w2[k] * v;
        a3 += w3[k] * v;
      }
      T* yr = y + r * ldy + o;
      if (accumulate) {
        yr[0] += a0;
        yr[1] += a1;
        yr[2] += a2;
        yr[3] += a3;
      } else {
        yr[0] = a0;
        yr[1] = a1;
        yr[2] = a2;
        yr[3] = a3;
      }
    }
  }
  for (; o < o1; ++o) {
    const T* wr = w + o * in;
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * in;
      T a = 0;
#pragma omp simd reduction(+ : a)
      for (int64_t k = 0; k < in; ++k) a += wr[k] * xr[k];
      y[r * ldy + o] = accumulate ? y[r * ldy + o] + a : a;
    }
  }
}
