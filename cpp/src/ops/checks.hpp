// The argument checks every op entry point shares, written once: a defined
// CPU tensor, dtype agreement, an exact shape, one value per channel, a finite
// scalar; plus the dtype switch and shape printing used by the messages.
// Only the op layer (cpp/src/ops/) calls these; kernels below it assert.
#pragma once

#include <cstdint>
#include <string>

#include "cnncore/error.hpp"
#include "cnncore/tensor.hpp"

namespace cnncore::detail {

// Defined tensor on the CPU (or on the device an AllowDevice in scope names),
// or value_error naming `name`.
void check_tensor(const char* op, const char* name, const Tensor& t);

// While alive, check_tensor on this thread also accepts tensors on `device`:
// an op entry point opens one after device::common_device, before its checks,
// and then runs its device branch (never a CPU kernel) for such tensors.
class AllowDevice {
 public:
  explicit AllowDevice(Device device);
  ~AllowDevice();
  AllowDevice(const AllowDevice&) = delete;
  AllowDevice& operator=(const AllowDevice&) = delete;

 private:
  Device prev_;
};
// t has dtype `ref`, or type_error naming both arguments.
void check_same_dtype(const char* op, const char* name, const Tensor& t, const char* ref_name, DType ref);
// check_tensor on both, then b has a's dtype.
void check_pair(const char* op, const char* a_name, const Tensor& a, const char* b_name, const Tensor& b);
// A defined `t` of shape `expected`, or value_error naming `name` and `what`
// (e.g. "the shape of x").
void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected, const char* what);
// grad_out has the forward output's shape `expected`, or value_error.
void check_grad_out_shape(const char* op, const Shape& grad_out, const Shape& expected);
// check_tensor + check_same_dtype + a 1-D shape (C); undefined is allowed
// when `optional`.
void check_per_channel(const char* op, const char* name, const Tensor& t, int64_t C, const char* ref_name,
                       DType ref, bool optional);
// A finite double, or value_error naming `name`.
void check_finite(const char* op, const char* name, double v);

// An uninitialised result of `shape` once it plus `workspace_bytes` fits
// the memory limit (check_memory), else value_error naming `op`.
Tensor allocate_checked(const char* op, const Shape& shape, DType dtype, int64_t workspace_bytes);

// "(2, 3, 4)" / "(5,)": a shape as Python prints a tuple.
std::string tuple_str(const Shape& s);

// Calls f(float{}) or f(double{}) for the tensor dtype.
template <typename F>
void with_dtype(DType dtype, F&& f) {
  if (dtype == DType::f32)
    f(float{});
  else
    f(double{});
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data_as<T>() : nullptr;
}

}  // namespace cnncore::detail
