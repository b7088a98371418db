#include "ops/axis_geometry.hpp"

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

}  // namespace cnncore::detail
