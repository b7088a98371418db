// Direct convolution without a patch matrix: the image is copied once into
// its padded form (split into stride phases when strided, so that every
// patch row is still a shifted copy of it), and the GEMM micro-kernels read the
// patch matrix's rows in place from it, row (c, tap) at the image shifted by
// the tap's offset. Outputs are computed on the padded grid (OH rows of the
// padded width) and the valid columns kept. Serves 1-D and 2-D problems
// with every padding mode and flip, any dilation and groups; backward-data
// runs as the same kernel on the zero-padded output gradient with the
// weights transposed and flipped (zero padding only: the adjoint of the
// other modes is not a convolution); backward-weight multiplies the in-place
// patch rows by the output gradient laid on the padded grid.
#pragma once

#include <cstdint>

#include "ops/conv_geometry.hpp"

namespace cnncore::cpu {

// At most two spatial axes (any stride).
bool conv_shifted_serves(const detail::ConvGeometry& g);
// Backward-data also needs stride 1 and zero padding no wider than the dilated kernel.
bool conv_shifted_serves_backward_data(const detail::ConvGeometry& g);
// Whether the weight gradient pays on this path: with few grid positions
// per image (a deep layer at batch 1) the GEMM's output, all of dW, is
// re-read and re-written for a short inner dimension, and im2col (which
// batches small maps) was measured faster: 512 channels at 7x7, batch 1,
// 12.9 ms here against 3.8 ms.
bool conv_shifted_weight_gradient_pays(const detail::ConvGeometry& g);
// Whether algorithm="auto" should take this path: enough of the padded grid
// is valid output (the rest is computed and dropped), and the layer is not a
// plain 1x1 (which the GEMM reads in place anyway).
bool conv_shifted_preferred(const detail::ConvGeometry& g);
int64_t conv_shifted_workspace_bytes(const detail::ConvGeometry& g, int64_t elem_size, detail::ConvPass pass,
                                     int threads);

template <typename T>
void conv_forward_shifted(const detail::ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst);
// diff_src is overwritten. Requires conv_shifted_serves_backward_data(g).
template <typename T>
void conv_backward_data_shifted(const detail::ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src);
// diff_weights is overwritten: dW^T (patch rows x outputs) = the patch matrix
// read in place times the output gradient laid on the padded grid.
template <typename T>
void conv_backward_weight_shifted(const detail::ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights);

}  // namespace cnncore::cpu
