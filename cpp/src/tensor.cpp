#include "cnncore/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#include "cnncore/error.hpp"
#include "cnncore/runtime.hpp"
#include "util/checked.hpp"

namespace cnncore {

std::size_t dtype_size(DType dtype) { return dtype == DType::f32 ? 4 : 8; }

const char* dtype_name(DType dtype) { return dtype == DType::f32 ? "float32" : "float64"; }

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const Shape& shape, const char* what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw value_error(detail::str(what, ": negative extent in shape ", shape_str(shape)));
    n = detail::checked_mul(n, d, what);
  }
  return n;
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  const int64_t bytes = detail::checked_mul(t.numel_, static_cast<int64_t>(dtype_size(dtype)), "tensor");
  check_memory("tensor", bytes);
  // Round up to the alignment, as aligned_alloc requires; never ask for 0.
  const std::size_t alloc = (static_cast<std::size_t>(bytes) + 63) / 64 * 64 + 64;
  void* p = std::aligned_alloc(64, alloc);
  if (!p) throw std::bad_alloc();
  t.storage_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.data_ = p;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner,
                    Device device) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::move(owner);
  t.data_ = data;
  return t;
}

Shape Tensor::strides() const {
  Shape s(shape_.size(), 1);
  for (std::size_t i = shape_.size(); i-- > 1;) s[i - 1] = s[i] * shape_[i];
  return s;
}

}  // namespace cnncore
