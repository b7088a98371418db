// Pooling over 2x2 windows at stride 2 without padding (the LeNet, VGG and
// AlexNet-style "halve the map" layers): every window lies inside the input
// and reads two adjacent columns of two adjacent rows, so the general row
// engine's tables and per-row scratch (pool-direct.cpp) are not needed.
// The results are bit-identical to that engine's: the same additions in the
// same order ((x00 + x01) + x10) + x11 starting from 0, the same division by
// the divisor, and max's rule (a NaN sticks, else the larger value).
//
// Included by f32-elementwise-level.inc (float, once per kernel level) and by
// pool-direct.cpp (double, baseline); nothing here may use a std:: template.
#pragma once

#include <cstdint>

// planes planes of hi x wi in x to planes of ho x wo in y, ho = hi / 2, wo = wi / 2
// (an odd last row or column is read by no window).
template <typename T>
void pool2x2_forward_body(bool max, int64_t planes, int64_t hi, int64_t wi, T divisor, const T* x, T* y) {
  const int64_t ho = hi / 2, wo = wi / 2;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t r = 0; r < ho; ++r) {
      const T* a = x + (p * hi + 2 * r) * wi;
      const T* b = a + wi;
      T* o = y + (p * ho + r) * wo;
      if (max) {
        for (int64_t j = 0; j < wo; ++j) {
          T m = -static_cast<T>(__builtin_inf());
          T v = a[2 * j];
          m = (v > m || v != v) ? v : m;
          v = a[2 * j + 1];
          m = (v > m || v != v) ? v : m;
          v = b[2 * j];
          m = (v > m || v != v) ? v : m;
          v = b[2 * j + 1];
          o[j] = (v > m || v != v) ? v : m;
        }
      } else {
        for (int64_t j = 0; j < wo; ++j) o[j] = (((T(0) + a[2 * j]) + a[2 * j + 1]) + b[2 * j] + b[2 * j + 1]) / divisor;
      }
    }
}

// The average's input gradient: dy / divisor in each of a window's four
// positions, 0 in an odd last row or column.
template <typename T>
void pool2x2_avg_backward_body(int64_t planes, int64_t hi, int64_t wi, T divisor, const T* dy, T* dx) {
  const int64_t ho = hi / 2, wo = wi / 2;
  for (int64_t p = 0; p < planes; ++p) {
    for (int64_t r = 0; r < ho; ++r) {
      const T* g = dy + (p * ho + r) * wo;
      T* a = dx + (p * hi + 2 * r) * wi;
      T* b = a + wi;
      for (int64_t j = 0; j < wo; ++j) {
        const T v = T(0) + g[j] / divisor;
        a[2 * j] = v;
        a[2 * j + 1] = v;
        b[2 * j] = v;
        b[2 * j + 1] = v;
      }
      if (wi & 1) a[wi - 1] = b[wi - 1] = T(0);
    }
    if (hi & 1)
      for (int64_t c = 0; c < wi; ++c) dx[(p * hi + hi - 1) * wi + c] = T(0);
  }
}
