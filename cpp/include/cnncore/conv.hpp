// Convolution: parameters, output size, forward and backward entry points.
//
// One parameter struct serves every spatial rank; the rank comes from the
// tensors (N, C, spatial...). Weights are (C_out, C_in / groups, kernel...).
#pragma once

#include <cstdint>
#include <string>

#include "cnncore/tensor.hpp"

namespace cnncore {

// How the border added by padding is filled.
//   zeros     — 0
//   reflect   — mirrored without repeating the edge (pad < size on that axis)
//   replicate — the edge value repeated
//   circular  — periodic wrap-around (any pad)
//   symmetric — mirrored with the edge repeated (numpy's "symmetric"; pad <= size)
enum class PaddingMode { zeros, reflect, replicate, circular, symmetric };

// A named padding resolved against the input size:
//   none  — use ConvParams::padding as given
//   valid — no padding
//   full  — dilation*(k-1) on each side
//   same  — output = ceil(in / stride); total padding
//           max((out-1)*stride + dilation*(k-1) + 1 - in, 0), odd pixel after.
enum class PaddingPreset { none, valid, same, full };

// Which implementation runs. auto_ picks the fastest that serves the problem
// (the reference when the kernel level is Isa::ref).
//   reference — the naive loop nest (the tests' oracle)
//   im2col    — patch matrix + blocked GEMM; serves everything
//   direct    — direct loops for depthwise convolution (groups == C_in)
//   fft       — FFT convolution; suits large kernels
//   winograd  — Winograd's minimal filtering F(m, 3) for 2-D 3x3 kernels at
//               stride 1 and dilation 1 (forward and data gradient; the
//               weight gradient runs the exact engines): the tile m picked by
//               the cost model, or fixed by winograd2 / winograd4 / winograd6.
//               Inexact: rounding error grows with m (docs/conv2d.md).
// Asking for an algorithm that cannot serve a problem is a value_error.
// auto_ picks Winograd or FFT only while inexact algorithms are allowed
// (set_exact_algorithms in runtime.hpp).
enum class ConvAlgorithm { auto_, reference, im2col, direct, fft, winograd, winograd2, winograd4, winograd6 };

struct ConvParams {
  // One value per spatial axis, or empty for the default (1).
  std::vector<int64_t> stride;
  std::vector<int64_t> dilation;
  // Two values per spatial axis, before and after: for 2-D
  // {top, bottom, left, right}. Empty means no padding.
  std::vector<int64_t> padding;
  PaddingPreset padding_preset = PaddingPreset::none;
  PaddingMode padding_mode = PaddingMode::zeros;
  int64_t groups = 1;
  // true: true convolution (kernel rotated 180 degrees);
  // false: cross-correlation, the deep-learning convention.
  bool flip = false;
  ConvAlgorithm algorithm = ConvAlgorithm::auto_;
};

PaddingMode parse_padding_mode(const std::string& name);
PaddingPreset parse_padding_preset(const std::string& name);
ConvAlgorithm parse_conv_algorithm(const std::string& name);
const char* padding_mode_name(PaddingMode mode);
const char* conv_algorithm_name(ConvAlgorithm algorithm);

// out = floor((in + pad_before + pad_after - dilation*(k-1) - 1) / stride) + 1,
// with 64-bit overflow checks; value_error when the result is < 1.
int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                         int64_t pad_before, int64_t pad_after);

// Validates shapes and parameters and returns (N, C_out, out...).
// `op` names the operation in messages, e.g. "conv2d".
Shape conv_output_shape(const Shape& src, const Shape& weights, const ConvParams& params,
                        const char* op = "conv", int spatial_dims = 0);

// N-d entry points (1, 2 or 3 spatial axes). `spatial_dims` = 0 takes the
// rank from src; 1..3 requires it. `bias` may be an undefined Tensor().
Tensor conv_forward(const Tensor& src, const Tensor& weights, const Tensor& bias,
                    const ConvParams& params, const char* op = "conv", int spatial_dims = 0);
Tensor conv_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                          const ConvParams& params, const char* op = "conv", int spatial_dims = 0);
Tensor conv_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                            const ConvParams& params, const char* op = "conv", int spatial_dims = 0);
Tensor conv_backward_bias(const Tensor& diff_dst, const char* op = "conv");

// The whole backward pass of conv_forward(src, weights, bias): validates
// diff_dst, src and weights together as the forward would, whatever `mask`
// requests, then computes the requested gradients.
Gradients conv_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weights, GradMask mask,
                        const ConvParams& params, const char* op = "conv", int spatial_dims = 0);

// 2-D convolution: src (N, C_in, H, W), weights (C_out, C_in/groups, kH, kW).
Tensor conv2d_forward(const Tensor& src, const Tensor& weights, const Tensor& bias,
                      const ConvParams& params);
Tensor conv2d_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                            const ConvParams& params);
Tensor conv2d_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                              const ConvParams& params);
Tensor conv2d_backward_bias(const Tensor& diff_dst);

// Depthwise-separable convolution: a depthwise convolution (groups = C_in,
// depthwise weights (C_in*m, 1, k...)) with `params` (its groups field is
// ignored), then a 1x1 pointwise convolution (pointwise weights
// (C_out, C_in*m, 1...)) plus bias.
Tensor separable_conv_forward(const Tensor& src, const Tensor& depthwise, const Tensor& pointwise,
                              const Tensor& bias, const ConvParams& params, const char* op = "separable_conv",
                              int spatial_dims = 0);
// Returns {diff_src, diff_depthwise, diff_pointwise, diff_bias} (diff_bias
// undefined unless `need_bias`).
std::vector<Tensor> separable_conv_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& depthwise,
                                            const Tensor& pointwise, bool need_bias, const ConvParams& params,
                                            const char* op = "separable_conv", int spatial_dims = 0);

// Transposed convolution ("deconvolution"): the adjoint of convolution with
// the same weights. src (N, C_in, in...), weights (C_in, C_out/groups, k...)
// (PyTorch's layout), output per axis
//   out = (in-1)*stride - pad_before - pad_after + dilation*(k-1) + output_padding + 1.
// The padding crops the full result; output_padding adds positions after it
// (each must be smaller than either the stride or the dilation on its axis).
struct ConvTransposeParams {
  std::vector<int64_t> stride;          // one per spatial axis, or empty (1)
  std::vector<int64_t> dilation;        // likewise
  std::vector<int64_t> padding;         // before/after per axis, or empty (0)
  std::vector<int64_t> output_padding;  // one per spatial axis, or empty (0)
  int64_t groups = 1;
  ConvAlgorithm algorithm = ConvAlgorithm::auto_;
};

Shape conv_transpose_output_shape(const Shape& src, const Shape& weights, const ConvTransposeParams& params,
                                  const char* op = "conv_transpose", int spatial_dims = 0);
Tensor conv_transpose_forward(const Tensor& src, const Tensor& weights, const Tensor& bias,
                              const ConvTransposeParams& params, const char* op = "conv_transpose",
                              int spatial_dims = 0);
Tensor conv_transpose_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                                    const ConvTransposeParams& params, const char* op = "conv_transpose",
                                    int spatial_dims = 0);
Tensor conv_transpose_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                                      const ConvTransposeParams& params, const char* op = "conv_transpose",
                                      int spatial_dims = 0);
// The bias gradient is conv_backward_bias(diff_dst).

}  // namespace cnncore
