#include "cnncore/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#include "cnncore/error.hpp"
#include "cnncore/runtime.hpp"
#include "util/checked.hpp"
#include "util/host_cache.hpp"
#include "util/memory_ledger.hpp"

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

namespace detail {

Tensor charged_empty(const Shape& shape, DType dtype) {
  const int64_t bytes = checked_mul(shape_numel(shape), static_cast<int64_t>(dtype_size(dtype)), "tensor");
  // One alignment's slack past the end; never ask for 0.
  const HostBlock block = host_alloc(static_cast<std::size_t>(bytes) + 64);
  void* p = block.ptr;
  std::shared_ptr<void> storage;
  if (auto ledger = memory_ledger()) {
    ledger->held += bytes;
    storage = std::shared_ptr<void>(p, [ledger, bytes, block](void*) {
      host_free(block);
      ledger->held -= bytes;
    });
  } else {
    storage = std::shared_ptr<void>(p, [block](void*) { host_free(block); });
  }
  return Tensor::wrap(p, shape, dtype, std::move(storage));
}

}  // namespace detail

namespace {

// CNNCORE_POISON_EMPTY=1 (the test suites set it) fills every new
// uninitialised tensor with all-ones bytes (NaN for floating types), so
// that a kernel which leaves part of a result unwritten (the contract of
// the ones whose result is allocated without zeroing) fails its checks
// rather than passing on memory that happens to be zero.
bool poison_empty() {
  static const bool on = [] {
    const char* v = std::getenv("CNNCORE_POISON_EMPTY");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  check_memory("tensor", detail::checked_mul(shape_numel(shape), static_cast<int64_t>(dtype_size(dtype)), "tensor"));
  Tensor t = detail::charged_empty(shape, dtype);
  if (poison_empty()) std::memset(t.data_, 0xff, t.nbytes());
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
  // Products can only overflow when an extent is 0 (numel is checked); such
  // a tensor has no elements to address, so any stride serves: 0.
  Shape s(shape_.size(), 1);
  for (std::size_t i = shape_.size(); i-- > 1;)
    if (__builtin_mul_overflow(s[i], shape_[i], &s[i - 1])) s[i - 1] = 0;
  return s;
}

}  // namespace cnncore
