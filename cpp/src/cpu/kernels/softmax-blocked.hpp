// Softmax / log-softmax over the middle axis of an (outer, axis, inner) view.
// inner == 1: one contiguous row per task. inner > 1: a task takes a block of
// up to 64 neighbouring inner positions and walks the axis plane by plane, so
// every load is a contiguous strip (vectorised across the block) instead of a
// stride-`inner` gather.
#pragma once

#include "ops/axis_geometry.hpp"

namespace cnncore::cpu {

template <typename T>
void softmax_forward(const detail::AxisGeometry& g, bool log, const T* src, T* dst);

// diff_src = y * (dy - sum(dy * y))   (softmax)
//          = dy - y * sum(dy)         (log_softmax, y = softmax)
// with y recomputed from src.
template <typename T>
void softmax_backward(const detail::AxisGeometry& g, bool log, const T* diff_dst, const T* src, T* diff_src);

}  // namespace cnncore::cpu
