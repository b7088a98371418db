// FFT convolution, forward and backward, through the same 3-axis geometry as
// the other algorithms: every rank, padding mode, stride, dilation, group
// count and flip (why_not is always empty; memory is the only limit, checked
// by the op layer against conv_fft_workspace_bytes). Computes in float64 with
// cnncore's own FFT (fft.hpp); inputs holding NaN/Inf run the reference
// kernel so results keep the direct definition's semantics.
#pragma once

#include <cstdint>
#include <string>

#include "ops/conv_geometry.hpp"

namespace cnncore::cpu {

// The FFT path serves every problem (every rank, padding mode, stride,
// dilation, group count and flip); its only limit is memory, which the op
// layer checks against conv_fft_workspace_bytes before running.
// Whether algorithm="auto" should pick FFT for `g`: large kernels where a
// flop/time estimate says FFT is clearly cheaper than direct or im2col.
bool conv_fft_preferred(const detail::ConvGeometry& g);
int64_t conv_fft_workspace_bytes(const detail::ConvGeometry& g, int64_t elem_size, detail::ConvPass pass,
                                 int threads);

template <typename T>
void conv_forward_fft(const detail::ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst);
// diff_src is overwritten.
template <typename T>
void conv_backward_data_fft(const detail::ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src);
// diff_weights is overwritten.
template <typename T>
void conv_backward_weight_fft(const detail::ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights);

}  // namespace cnncore::cpu
