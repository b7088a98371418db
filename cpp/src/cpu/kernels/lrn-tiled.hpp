// Local response normalisation across channels on (N, C, inner) tiles: a task
// takes one image and up to 64 neighbouring inner positions, squares its C x 64
// tile once into a thread-local buffer and forms every channel's window sum
// from contiguous rows of it (vectorised across the tile). The window sums add
// the same squares in the same order as the reference, so the forward results
// are bit-identical to it.
#pragma once

#include <cstdint>

#include "cnncore/layers.hpp"
#include "ops/axis_geometry.hpp"

namespace cnncore::cpu {

// Bytes of thread-local workspace the kernels use with `threads` threads.
int64_t lrn_workspace_bytes(const detail::AxisGeometry& g, int64_t elem_size, int threads, bool backward);

template <typename T>
void lrn_forward(const detail::AxisGeometry& g, const LrnParams& p, const T* src, T* dst);

template <typename T>
void lrn_backward(const detail::AxisGeometry& g, const LrnParams& p, const T* diff_dst, const T* src, T* diff_src);

}  // namespace cnncore::cpu
