#include "ops/checks.hpp"

#include <cmath>

#include "cnncore/runtime.hpp"
#include "util/checked.hpp"

namespace cnncore::detail {

namespace {
thread_local Device allowed_device = Device::cpu;
}

AllowDevice::AllowDevice(Device device) : prev_(allowed_device) { allowed_device = device; }
AllowDevice::~AllowDevice() { allowed_device = prev_; }

void check_tensor(const char* op, const char* name, const Tensor& t) {
  if (!t.defined()) throw value_error(str(op, ": ", name, " is missing (an undefined tensor)"));
  if (t.device() != Device::cpu && t.device() != allowed_device)
    throw value_error(str(op, ": ", name, " is a CUDA tensor and ", op,
                          " has no CUDA kernel (docs/cuda.md lists the ops that have one); "
                          "move the inputs to the CPU with .cpu()"));
}

void check_same_dtype(const char* op, const char* name, const Tensor& t, const char* ref_name, DType ref) {
  if (t.dtype() != ref)
    throw type_error(str(op, ": ", name, " has dtype ", dtype_name(t.dtype()), " but ", ref_name, " has ",
                         dtype_name(ref), "; convert one of them so both match"));
}

void check_pair(const char* op, const char* a_name, const Tensor& a, const char* b_name, const Tensor& b) {
  check_tensor(op, a_name, a);
  check_tensor(op, b_name, b);
  check_same_dtype(op, b_name, b, a_name, a.dtype());
}

void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected, const char* what) {
  if (t.shape() != expected)
    throw value_error(str(op, ": ", name, " must have shape ", shape_str(expected), " (", what, "), got ",
                          shape_str(t.shape())));
}

void check_grad_out_shape(const char* op, const Shape& grad_out, const Shape& expected) {
  if (grad_out != expected)
    throw value_error(str(op, ": grad_out must have the forward output's shape ", shape_str(expected), ", got ",
                          shape_str(grad_out)));
}

void check_per_channel(const char* op, const char* name, const Tensor& t, int64_t C, const char* ref_name,
                       DType ref, bool optional) {
  if (optional && !t.defined()) return;
  check_tensor(op, name, t);
  if (t.dim() != 1 || t.size(0) != C)
    throw value_error(str(op, ": ", name, " must have shape [", C, "] (one value per channel of ", ref_name,
                          "), got ", shape_str(t.shape())));
  check_same_dtype(op, name, t, ref_name, ref);
}

void check_finite(const char* op, const char* name, double v) {
  if (!std::isfinite(v)) throw value_error(str(op, ": ", name, " must be a finite number, got ", v));
}

Tensor allocate_checked(const char* op, const Shape& shape, DType dtype, int64_t workspace_bytes) {
  const int64_t bytes =
      checked_add(checked_mul(shape_numel(shape), static_cast<int64_t>(dtype_size(dtype)), op), workspace_bytes, op);
  check_memory(op, bytes);
  return Tensor::empty(shape, dtype);
}

std::string tuple_str(const Shape& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

}  // namespace cnncore::detail
