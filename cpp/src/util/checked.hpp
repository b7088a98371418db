// 64-bit size arithmetic that throws value_error instead of overflowing.
#pragma once

#include <cstdint>

#include "cnncore/error.hpp"

namespace cnncore::detail {

inline int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    throw value_error(str(what, ": size arithmetic overflows 64-bit integers (", a, " + ", b, ")"));
  return r;
}

inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    throw value_error(str(what, ": size arithmetic overflows 64-bit integers (", a, " * ", b, ")"));
  return r;
}

// Floor and ceiling of a / b for b > 0 and any a. Unlike (a + b - 1) / b
// they cannot overflow (a stride near 2**63 once wrapped that sum).
constexpr int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
constexpr int64_t ceil_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a > 0) ? q + 1 : q;
}

}  // namespace cnncore::detail
