// Direct depthwise convolution (groups == C_in, C_out = multiplier * C_in),
// forward and backward, without a patch matrix.
#pragma once

#include <cstdint>
#include <string>

#include "ops/conv_geometry.hpp"

namespace cnncore::cpu {

// Empty when the direct path serves `g`, otherwise why not (for the error message).
std::string conv_direct_why_not(const detail::ConvGeometry& g);
// Whether algorithm="auto" should pick the direct path for `g`.
bool conv_direct_preferred(const detail::ConvGeometry& g);
int64_t conv_direct_workspace_bytes(const detail::ConvGeometry& g, int64_t elem_size, detail::ConvPass pass,
                                 int threads);

template <typename T>
void conv_forward_direct(const detail::ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst);
// diff_src is overwritten.
template <typename T>
void conv_backward_data_direct(const detail::ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src);
// diff_weights is overwritten.
template <typename T>
void conv_backward_weight_direct(const detail::ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights);

}  // namespace cnncore::cpu
