// Validation shared by the layer ops (activation, softmax, norm, linear): the
// tensor checks every entry point makes and the (outer, axis, inner) view of a
// tensor around one axis that the softmax, cross-entropy, LRN and batch-norm
// kernels take.
#pragma once

#include <cstdint>

#include "cnncore/error.hpp"
#include "cnncore/tensor.hpp"

namespace cnncore::detail {

// x viewed as (outer, axis, inner): element (o, a, i) at (o * axis + a) * inner + i.
struct AxisGeometry {
  int64_t outer = 1, axis = 1, inner = 1;
  int64_t numel() const { return outer * axis * inner; }
};

// Around axis `dim` of `shape` (already resolved to [0, rank)).
AxisGeometry axis_geometry(const Shape& shape, int64_t dim);

// `dim` in [-rank, rank) resolved to [0, rank), or value_error naming `dim`.
int64_t resolve_dim(const char* op, int64_t dim, const Shape& shape);

// Defined CPU tensor, or value_error naming `name`.
void check_tensor(const char* op, const char* name, const Tensor& t);
// t has dtype `ref`, or type_error naming both arguments.
void check_same_dtype(const char* op, const char* name, const Tensor& t, const char* ref_name, DType ref);
// A defined `t` of shape `expected`, or value_error naming `name` and `what`
// (e.g. "the shape of x").
void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected, const char* what);
// check_tensor + check_same_dtype + a 1-D shape (C); undefined is allowed
// when `optional`.
void check_per_channel(const char* op, const char* name, const Tensor& t, int64_t C, const char* ref_name,
                       DType ref, bool optional);
// A finite double, or value_error naming `name`.
void check_finite(const char* op, const char* name, double v);

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
