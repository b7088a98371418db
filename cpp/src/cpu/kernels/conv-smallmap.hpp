// Convolution of small maps (at most 64 positions in and out, 8x8: the deep
// layers of a network) as a batch-reduce GEMM over the
// kernel taps that read inside the image, with the images as the GEMM's
// columns. With padding, most taps of an output on a 2x2 or 4x4 map read
// only zeros (4 of 9 live per output of a 2x2 map with a 3x3 kernel); im2col
// and the shifted path multiply those zeros, this path skips them:
//
//   forward:        Y_q (C_out x N) = sum over live taps t of q of W_t X_p(q,t)
//   backward data:  dX_p (C_in x N) = sum over (q, t) reading p of W_t^T dY_q
//
// where W_t is tap t's C_out x C_in slice of the weights (packed once per
// call), X_p is input position p of every image and channel laid out as a
// C_in x N matrix (likewise dY_q); and
//
//   backward weight: dW_t (C_out x C_in) = sum over (q, p) joined by t of dY_q X_p^T
//
// with the images in the GEMM's K (see conv_backward_weight_smallmap). Stride
// 1, zero padding, two spatial axes, any dilation, groups and flip. A forward with a non-finite weight would differ
// from the reference (which multiplies padding zeros), so it is not served
// either: conv_forward_smallmap then returns false.
#pragma once

#include <cstdint>

#include "ops/conv_geometry.hpp"

namespace cnncore::cpu {

// The shape conditions (weights not looked at).
bool conv_smallmap_serves(const detail::ConvGeometry& g);
// Whether algorithm="auto" (and the direct path) should use it for `pass`:
// the images fill at least 3/4 of the column tiles of a SIMD kernel this CPU
// runs, and the map is small enough for that pass (see the definition).
bool conv_smallmap_preferred(const detail::ConvGeometry& g, detail::ConvPass pass);
int64_t conv_smallmap_workspace_bytes(const detail::ConvGeometry& g, int64_t elem_size, detail::ConvPass pass,
                                      int threads);

// False, with dst partly written, when a weight is not finite (found while
// packing them): the caller then runs another path.
template <typename T>
bool conv_forward_smallmap(const detail::ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst);
// diff_src is overwritten.
template <typename T>
void conv_backward_data_smallmap(const detail::ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src);
// diff_weights is overwritten.
template <typename T>
void conv_backward_weight_smallmap(const detail::ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights);

}  // namespace cnncore::cpu
