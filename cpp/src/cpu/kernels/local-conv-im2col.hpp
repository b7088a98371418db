// Tiled / locally connected convolution, fast path.
//
// The output positions of one tile class share a kernel, so each class is an
// ordinary matrix product over its "columns" (image, position-in-class):
//   forward        Y^T (m x C_out) = P (m x K) * W^T            P: the patches
//   backward data  dP  (m x K)     = dY^T (m x C_out) * W        then scattered
//   backward weight dW (C_out x K) += dY (C_out x m) * P
// with K = C_in*kH*kW. Columns are processed in chunks ("units"). A class
// with many columns (a small tile) gathers its patches straight into packed
// panels and runs the GEMM micro-kernels, packing its kernel once per thread.
// A class with few columns (a locally connected layer, whose kernels are used
// only once per image) would spend as long packing as computing, so its units
// run the in-place micro-kernels of local-conv-ukernels.hpp on the weights as
// they lie; backward weight always does (no operand needs transposing).
// A locally connected layer's columns are images, whose outputs lie a whole
// plane apart; its output (forward) and output gradient (backward) go through
// a position-major copy, transposed once, instead of strided accesses.
//
// Threads: forward runs units in parallel (they write disjoint outputs);
// backward data splits the images across threads (each image's gradient has
// one writer), or with fewer images than threads gives every thread a
// private gradient that is summed at the end; backward weight runs classes in
// parallel, or with fewer classes than threads sums private copies. All
// buffers are allocated before the parallel regions.
#pragma once

#include <cstdint>

#include "cpu/kernels/local-conv-geometry.hpp"

namespace cnncore::cpu {

// Bytes of workspace the kernels below allocate for `pass` with `threads`
// (saturates at INT64_MAX instead of overflowing).
int64_t local_conv_im2col_workspace_bytes(const detail::LocalConvGeometry& g, int64_t elem_size,
                                          detail::ConvPass pass, int threads);

template <typename T>
void local_conv_forward_im2col(const detail::LocalConvGeometry& g, const T* src, const T* weights, const T* bias,
                               T* dst);
// diff_src is overwritten.
template <typename T>
void local_conv_backward_data_im2col(const detail::LocalConvGeometry& g, const T* diff_dst, const T* weights,
                                     T* diff_src);
// diff_weights is overwritten.
template <typename T>
void local_conv_backward_weight_im2col(const detail::LocalConvGeometry& g, const T* diff_dst, const T* src,
                                       T* diff_weights);

}  // namespace cnncore::cpu
