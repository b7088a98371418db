// A minimal test harness: TEST(name) { CHECK(...); } registered at start-up,
// run by test_main.cpp. Keeps the C++ build free of downloads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cnncore/tensor.hpp"

namespace cnncore::test {

struct Case {
  const char* name;
  std::function<void()> fn;
};
std::vector<Case>& registry();
extern int failures;

struct Register {
  Register(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

// Deterministic small-integer or real fills.
template <typename T>
void fill_ints(T* p, int64_t n, unsigned seed, int lo = -8, int hi = 8) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(d(gen));
}
template <typename T>
void fill_reals(T* p, int64_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(d(gen));
}

// A new tensor of shape s and element type T: small integers in [lo, hi]
// (every sum of a few products is then exact) when ints, else reals in [-1, 1).
template <typename T>
Tensor filled(const Shape& s, unsigned seed, bool ints = false, int lo = -8, int hi = 8) {
  Tensor t = Tensor::empty(s, dtype_of<T>());
  if (ints)
    fill_ints(t.data_as<T>(), t.numel(), seed, lo, hi);
  else
    fill_reals(t.data_as<T>(), t.numel(), seed);
  return t;
}

// Largest |a - b| over the elements; 1e300 when the shapes differ or a NaN
// stands where the other tensor has a number (NaN against NaN counts as equal).
template <typename T>
double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return 1e300;
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data_as<T>()[i], y = b.data_as<T>()[i];
    if (std::isnan(x) != std::isnan(y)) return 1e300;
    if (!std::isnan(x)) m = std::max(m, std::fabs(x - y));
  }
  return m;
}

// Sum of a[i] * b[i] in double (the inner product of the adjoint identities).
template <typename T>
double dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += double(a.data_as<T>()[i]) * double(b.data_as<T>()[i]);
  return s;
}

}  // namespace cnncore::test

#define CNN_CONCAT2(a, b) a##b
#define CNN_CONCAT(a, b) CNN_CONCAT2(a, b)
#define TEST(name)                                                                        \
  static void name();                                                                     \
  static ::cnncore::test::Register CNN_CONCAT(reg_, name)(#name, name);                   \
  static void name()

#define CHECK(cond)                                                                       \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      ++::cnncore::test::failures;                                                        \
      std::fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
    }                                                                                     \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                             \
  do {                                                                                    \
    const double va_ = static_cast<double>(a), vb_ = static_cast<double>(b);              \
    if (!(std::fabs(va_ - vb_) <= (tol))) {                                               \
      ++::cnncore::test::failures;                                                        \
      std::fprintf(stderr, "  %s:%d: %s = %.17g vs %s = %.17g (tol %g)\n", __FILE__,       \
                   __LINE__, #a, va_, #b, vb_, static_cast<double>(tol));                 \
    }                                                                                     \
  } while (0)

// Checks that `stmt` throws `ExcType` whose message contains `needle`.
#define CHECK_THROWS(ExcType, needle, stmt)                                               \
  do {                                                                                    \
    bool thrown_ = false;                                                                 \
    try {                                                                                 \
      stmt;                                                                               \
    } catch (const ExcType& e) {                                                          \
      thrown_ = std::string(e.what()).find(needle) != std::string::npos;                  \
      if (!thrown_)                                                                       \
        std::fprintf(stderr, "  %s:%d: message lacks '%s': %s\n", __FILE__, __LINE__,     \
                     needle, e.what());                                                   \
    }                                                                                     \
    if (!thrown_) {                                                                       \
      ++::cnncore::test::failures;                                                        \
      std::fprintf(stderr, "  %s:%d: expected %s from: %s\n", __FILE__, __LINE__,         \
                   #ExcType, #stmt);                                                      \
    }                                                                                     \
  } while (0)
