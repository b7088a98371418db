// A minimal test harness: TEST(name) { CHECK(...); } registered at start-up,
// run by test_main.cpp. Keeps the C++ build free of downloads.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

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
