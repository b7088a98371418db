// Batch normalisation over an (N, C, inner) view. Per-channel sums are formed
// as N x C partial sums (one per contiguous (n, c) row, vectorised, in
// parallel over all rows), then added per channel in n order: all threads are
// busy even when C is small, and the result does not depend on the thread
// count. Statistics are in double for both dtypes.
#pragma once

#include <cstdint>

#include "ops/axis_geometry.hpp"

namespace cnncore::cpu {

int64_t batch_norm_workspace_bytes(const detail::AxisGeometry& g);

// Per-channel mean and biased variance (two passes). M = N * inner > 0.
template <typename T>
void batch_norm_stats(const detail::AxisGeometry& g, const T* src, double* mean, double* var);

// y = (x - mean[c]) * invstd[c] * w[c] + b[c]; w, b may be null (1, 0).
template <typename T>
void batch_norm_apply(const detail::AxisGeometry& g, const T* src, const double* mean, const double* invstd,
                      const T* w, const T* b, T* dst);

// With xhat = (x - mean) * invstd and the channel's statistics:
//   training (mean/invstd from this batch):
//     dx = w * invstd * (dy - sum(dy) / M - xhat * sum(dy * xhat) / M)
//   eval (fixed mean/invstd):  dx = dy * w * invstd
//   dw = sum(dy * xhat), db = sum(dy)   (each skipped when null)
template <typename T>
void batch_norm_backward(const detail::AxisGeometry& g, bool training, const T* diff_dst, const T* src,
                         const double* mean, const double* invstd, const T* w, T* diff_src, T* diff_w, T* diff_b);

}  // namespace cnncore::cpu
