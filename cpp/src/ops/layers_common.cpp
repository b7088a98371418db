#include "ops/layers_common.hpp"

#include <cmath>

#include "util/checked.hpp"

namespace cnncore::detail {

AxisGeometry axis_geometry(const Shape& shape, int64_t dim) {
  AxisGeometry g;
  const int64_t rank = static_cast<int64_t>(shape.size());
  for (int64_t a = 0; a < rank; ++a) {
    const int64_t n = shape[static_cast<std::size_t>(a)];
    if (a < dim)
      g.outer = checked_mul(g.outer, n, "tensor");
    else if (a == dim)
      g.axis = n;
    else
      g.inner = checked_mul(g.inner, n, "tensor");
  }
  return g;
}

int64_t resolve_dim(const char* op, int64_t dim, const Shape& shape) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  if (rank == 0)
    throw value_error(str(op, ": x must have at least 1 dimension to take dim=", dim, " of, got a 0-d array"));
  if (dim < -rank || dim >= rank)
    throw value_error(str(op, ": dim must be in [", -rank, ", ", rank - 1, "] for x with ", rank, " dimension",
                          rank == 1 ? "" : "s", ", got ", dim));
  return dim < 0 ? dim + rank : dim;
}

void check_tensor(const char* op, const char* name, const Tensor& t) {
  if (!t.defined()) throw value_error(str(op, ": ", name, " is missing (an undefined tensor)"));
  if (t.device() != Device::cpu)
    throw value_error(str(op, ": ", name, " is on a device this build cannot run on; expected a CPU tensor"));
}

void check_same_dtype(const char* op, const char* name, const Tensor& t, const char* ref_name, DType ref) {
  if (t.dtype() != ref)
    throw type_error(str(op, ": ", name, " has dtype ", dtype_name(t.dtype()), " but ", ref_name, " has ",
                         dtype_name(ref), "; convert one of them so both match"));
}

void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected, const char* what) {
  if (t.shape() != expected)
    throw value_error(str(op, ": ", name, " must have shape ", shape_str(expected), " (", what, "), got ",
                          shape_str(t.shape())));
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

}  // namespace cnncore::detail
