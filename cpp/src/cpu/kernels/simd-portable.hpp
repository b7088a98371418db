// Lanes<T, N>: the vector interface of simd-zmm.hpp / simd-ymm.hpp written
// as plain loops over N values, for the baseline (generic) kernel level; the
// compiler maps it onto the baseline vector registers. A mask is the number
// of leading lanes that take part.
#pragma once

#include <cstdint>

template <typename T, int N>
struct Lanes {
  struct V {
    T v[N];
  };
  static constexpr int lanes = N;
  static V zero() {
    V r;
    for (int i = 0; i < N; ++i) r.v[i] = T(0);
    return r;
  }
  static V load(const T* p) {
    V r;
    for (int i = 0; i < N; ++i) r.v[i] = p[i];
    return r;
  }
  static V bcast(const T* p) {
    V r;
    for (int i = 0; i < N; ++i) r.v[i] = *p;
    return r;
  }
  static V fma(V a, V b, V c) {
    for (int i = 0; i < N; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
  }
  static V add(V a, V b) {
    for (int i = 0; i < N; ++i) a.v[i] += b.v[i];
    return a;
  }
  static void store(T* p, V v) {
    for (int i = 0; i < N; ++i) p[i] = v.v[i];
  }
  static int64_t mask(int64_t n) { return n; }
  static V load(const T* p, int64_t k) {
    V r = zero();
    for (int i = 0; i < N; ++i)
      if (i < k) r.v[i] = p[i];
    return r;
  }
  static void store(T* p, V v, int64_t k) {
    for (int i = 0; i < N; ++i)
      if (i < k) p[i] = v.v[i];
  }
  static T sum(V v) {
    T s = T(0);
    for (int i = 0; i < N; ++i) s += v.v[i];
    return s;
  }
};
