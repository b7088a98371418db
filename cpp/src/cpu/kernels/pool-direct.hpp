// Direct pooling, every kind, forward and backward, any spatial rank (through
// the 3-axis geometry). Planes (n, c) run in parallel; within a plane each
// output row is produced tap by tap with the W loop vectorised over outputs
// (the W range of each tap that reads inside the input comes from a table,
// so the inner loops carry no bounds checks).
#pragma once

#include <cstdint>

#include "ops/pool_geometry.hpp"

namespace cnncore::cpu {

// Bytes of workspace (tables and per-thread row buffers) with `threads`.
int64_t pool_direct_workspace_bytes(const detail::PoolGeometry& g, int64_t elem_size, int threads);

// `indices` may be null; it is only written for max pooling.
template <typename T>
void pool_forward_direct(const detail::PoolGeometry& g, const T* src, T* dst, int64_t* indices);

// diff_src is overwritten.
template <typename T>
void pool_backward_direct(const detail::PoolGeometry& g, const T* diff_dst, const T* src, T* diff_src);

// Max pooling: diff_src[plane, indices[i]] += diff_dst[i], skipping -1.
// Every index must be -1 or inside the plane (the op layer checks).
// diff_src is overwritten.
template <typename T>
void max_pool_backward_indices_direct(const detail::PoolGeometry& g, const T* diff_dst, const int64_t* indices,
                                      T* diff_src);

}  // namespace cnncore::cpu
