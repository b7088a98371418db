// 12 independent multiply-add chains on vectors of V (a GCC vector type):
// enough to cover the FMA latency times the FMA units of any current x86
// core. Included inside an anonymous namespace by each ISA's source file.
#pragma once

template <typename V>
inline float fma_chains_body(int64_t iters, float seed) {
  constexpr int kLanes = sizeof(V) / sizeof(float);
  V a, b, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11;
  for (int l = 0; l < kLanes; ++l) {
    a[l] = 1.0f - 1e-7f * static_cast<float>(l);
    b[l] = 1e-7f * seed;
  }
  c0 = b + seed;
  c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3, c4 = c0 + 4, c5 = c0 + 5;
  c6 = c0 + 6, c7 = c0 + 7, c8 = c0 + 8, c9 = c0 + 9, c10 = c0 + 10, c11 = c0 + 11;
  for (int64_t i = 0; i < iters; ++i) {
    c0 = c0 * a + b, c1 = c1 * a + b, c2 = c2 * a + b, c3 = c3 * a + b;
    c4 = c4 * a + b, c5 = c5 * a + b, c6 = c6 * a + b, c7 = c7 * a + b;
    c8 = c8 * a + b, c9 = c9 * a + b, c10 = c10 * a + b, c11 = c11 * a + b;
    // Keeps the compiler from folding iterations: each chain stays a real
    // dependent sequence of multiply-adds, in registers.
    __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
    __asm__ volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
  }
  const V s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11));
  float r = 0;
  for (int l = 0; l < kLanes; ++l) r += s[l];
  return r;
}
