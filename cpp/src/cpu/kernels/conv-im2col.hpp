// Convolution by im2col + blocked GEMM, forward and backward, any spatial
// rank (through the 3-axis geometry), every padding mode and flip.
#pragma once

#include <cstdint>

#include "ops/conv_geometry.hpp"

namespace cnncore::cpu {

using detail::ConvPass;

// Bytes of workspace the im2col path allocates for `pass` with `threads`.
int64_t conv_im2col_workspace_bytes(const detail::ConvGeometry& g, int64_t elem_size, ConvPass pass, int threads);

// Whether the data gradient multiplies dy^T W (the weights read in place)
// rather than W^T dy: few columns and wide weights.
bool conv_im2col_data_gradient_transposed(const detail::ConvGeometry& g, int threads);

template <typename T>
void conv_forward_im2col(const detail::ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst);
// diff_src is overwritten.
template <typename T>
void conv_backward_data_im2col(const detail::ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src);
// diff_weights is overwritten.
template <typename T>
void conv_backward_weight_im2col(const detail::ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights);

}  // namespace cnncore::cpu
