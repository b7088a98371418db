// Exceptions thrown by the public API. The Python bindings translate
// value_error to ValueError and type_error to TypeError.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace cnncore {

// A size, shape or value is wrong (maps to Python ValueError).
struct value_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// An argument has the wrong type or dtype (maps to Python TypeError).
struct type_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

namespace detail {
template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace cnncore
