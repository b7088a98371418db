// Naive reference convolution: the definition as a loop nest, straight from
// y[n,o,z] = b[o] + sum_{c,t} w[o,c,t'] * x[n, g*C_in_g + c, z*s + t*d - pad]
// with t' = t (cross-correlation) or K-1-t (flip), and padding by index
// mapping. No tables, no im2col: the oracle the fast paths are tested against.
#pragma once

#include "ops/conv_geometry.hpp"

namespace cnncore::cpu::ref {

template <typename T>
void conv_forward(const detail::ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst);

// diff_src is overwritten.
template <typename T>
void conv_backward_data(const detail::ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src);

// diff_weights is overwritten.
template <typename T>
void conv_backward_weight(const detail::ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights);

}  // namespace cnncore::cpu::ref
