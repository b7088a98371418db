// Naive reference for tiled / locally connected convolution: the definition
//   y[n,o,i,j] = b[o, i%tH, j%tW]
//              + sum_{c,a,b} w[i%tH, j%tW, o, c, a', b'] * xpad[n, c, i*sH + a*dH, j*sW + b*dW]
// (a' = kH-1-a under flip) as a loop nest, padding by index mapping. No
// tables, no packing: the oracle the fast path is tested against.
#pragma once

#include "cpu/kernels/local-conv-geometry.hpp"

namespace cnncore::cpu::ref {

// bias may be null.
template <typename T>
void local_conv_forward(const detail::LocalConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst);

// diff_src is overwritten.
template <typename T>
void local_conv_backward_data(const detail::LocalConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src);

// diff_weights (tH, tW, C_out, C_in, kH, kW) is overwritten.
template <typename T>
void local_conv_backward_weight(const detail::LocalConvGeometry& g, const T* diff_dst, const T* src,
                                T* diff_weights);

}  // namespace cnncore::cpu::ref
