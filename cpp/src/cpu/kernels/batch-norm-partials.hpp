// Batch normalisation over an (N, C, inner) view, channel by channel: a
// channel's sums are formed per contiguous (n, c) row (the current kernel
// level's row kernels for float, batch-norm-body.hpp) and added in n order,
// so that the result does not depend on the thread count, and a channel's
// later passes read its rows from the cache the first pass brought them to.
// Statistics are in double for both dtypes.
#pragma once

#include <cstdint>

#include "ops/axis_geometry.hpp"

namespace cnncore::cpu {

int64_t batch_norm_workspace_bytes(const detail::AxisGeometry& g);

// Training's forward: each channel's mean and biased variance of this batch
// (written to mean and var, C each), then y as batch_norm_apply with
// invstd = 1 / sqrt(var + eps). M = N * inner > 0.
template <typename T>
void batch_norm_forward_training(const detail::AxisGeometry& g, double eps, const T* src, const T* w, const T* b,
                                 T* dst, double* mean, double* var);

// y = (x - mean[c]) * invstd[c] * w[c] + b[c]; w, b may be null (1, 0).
template <typename T>
void batch_norm_apply(const detail::AxisGeometry& g, const T* src, const double* mean, const double* invstd,
                      const T* w, const T* b, T* dst);

// With xhat = (x - mean) * invstd and the channel's statistics:
//   training (mean and invstd = 1 / sqrt(var + eps) of this batch, computed
//   here; `mean` and `invstd` are not read and may be null):
//     dx = w * invstd * (dy - sum(dy) / M - xhat * sum(dy * xhat) / M)
//   eval (fixed mean/invstd):  dx = dy * w * invstd
//   dw = sum(dy * xhat), db = sum(dy)   (each skipped when null)
template <typename T>
void batch_norm_backward(const detail::AxisGeometry& g, bool training, double eps, const T* diff_dst, const T* src,
                         const double* mean, const double* invstd, const T* w, T* diff_src, T* diff_w, T* diff_b);

}  // namespace cnncore::cpu
