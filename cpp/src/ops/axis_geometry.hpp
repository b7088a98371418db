// The (outer, axis, inner) view of a tensor around one axis that the softmax,
// cross-entropy, LRN and batch-norm kernels take, and the resolution of a
// Python-style `dim` argument.
#pragma once

#include <cstdint>

#include "cnncore/tensor.hpp"
#include "ops/checks.hpp"
#include "util/hd.hpp"

namespace cnncore::detail {

// x viewed as (outer, axis, inner): element (o, a, i) at (o * axis + a) * inner + i.
struct AxisGeometry {
  int64_t outer = 1, axis = 1, inner = 1;
  CNNCORE_HD int64_t numel() const { return outer * axis * inner; }
};

// Around axis `dim` of `shape` (already resolved to [0, rank)).
AxisGeometry axis_geometry(const Shape& shape, int64_t dim);

// `dim` in [-rank, rank) resolved to [0, rank), or value_error naming `dim`.
int64_t resolve_dim(const char* op, int64_t dim, const Shape& shape);

}  // namespace cnncore::detail
