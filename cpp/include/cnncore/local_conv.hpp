// Unshared (locally connected) and tiled 2-D convolution.
//
// Both are convolutions whose kernel depends on the output position:
//
//   y[n, o, i, j] = bias[o, i mod tH, j mod tW]
//                 + sum_{c, a, b} w[i mod tH, j mod tW, o, c, a', b'] * xpad[n, c, i*sH + a*dH, j*sW + b*dW]
//
// with a' = a, b' = b (cross-correlation) or a' = kH-1-a, b' = kW-1-b (flip),
// and xpad the input padded as in ConvParams (zeros/reflect/replicate/circular/
// symmetric; named presets valid/same/full).
//
//   tiled_conv2d (Ngiam et al., 2010): weights (tH, tW, C_out, C_in, kH, kW),
//       bias (C_out, tH, tW). Kernels the output never reaches (tile larger
//       than the output) are allowed; their gradient is zero.
//   local_conv2d (unshared): the tile is the output size, so
//       weights (H_out, W_out, C_out, C_in, kH, kW), bias (C_out, H_out, W_out).
//
// Tiled convolution with tile (1, 1) is conv2d with weights[0, 0]; with tile
// (H_out, W_out) it is local_conv2d. Layouts are row-major (see tensor.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnncore/conv.hpp"
#include "cnncore/tensor.hpp"

namespace cnncore {

// Which implementation runs. auto_ picks im2col (the reference when the
// kernel level is Isa::ref).
//   reference — the naive loop nest (the tests' oracle)
//   im2col    — per tile class: patches gathered into packed panels, then
//               GEMM micro-kernels (dot products when a class has few columns)
enum class LocalConvAlgorithm { auto_, reference, im2col };

LocalConvAlgorithm parse_local_conv_algorithm(const std::string& name);
const char* local_conv_algorithm_name(LocalConvAlgorithm algorithm);

struct LocalConvParams {
  // Two values (H, W) or empty for the default (1).
  std::vector<int64_t> stride;
  std::vector<int64_t> dilation;
  // {top, bottom, left, right}, or empty for none.
  std::vector<int64_t> padding;
  PaddingPreset padding_preset = PaddingPreset::none;
  PaddingMode padding_mode = PaddingMode::zeros;
  bool flip = false;
  // tiled_conv2d_*: (tH, tW), both positive. local_conv2d_*: must be empty
  // (the tile is the output size).
  std::vector<int64_t> tile;
  LocalConvAlgorithm algorithm = LocalConvAlgorithm::auto_;
};

// Validates everything and returns (N, C_out, H_out, W_out). Of the 6-D
// `weights` shape only C_out, C_in, kH, kW are used and checked, so this can
// size a locally connected layer's weights before they exist.
Shape local_conv2d_output_shape(const Shape& src, const Shape& weights, const LocalConvParams& params);
Shape tiled_conv2d_output_shape(const Shape& src, const Shape& weights, const LocalConvParams& params);

// src (N, C_in, H, W); weights (H_out, W_out, C_out, C_in, kH, kW);
// bias (C_out, H_out, W_out) or an undefined Tensor().
Tensor local_conv2d_forward(const Tensor& src, const Tensor& weights, const Tensor& bias,
                            const LocalConvParams& params);
Tensor local_conv2d_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                                  const LocalConvParams& params);
Tensor local_conv2d_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                                    const LocalConvParams& params);
// (C_out, H_out, W_out): grad_out summed over the batch.
Tensor local_conv2d_backward_bias(const Tensor& diff_dst);

// src (N, C_in, H, W); weights (tH, tW, C_out, C_in, kH, kW);
// bias (C_out, tH, tW) or an undefined Tensor().
Tensor tiled_conv2d_forward(const Tensor& src, const Tensor& weights, const Tensor& bias,
                            const LocalConvParams& params);
Tensor tiled_conv2d_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                                  const LocalConvParams& params);
Tensor tiled_conv2d_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                                    const LocalConvParams& params);
// (C_out, tH, tW): grad_out summed over the batch and over the positions
// that share each bias entry.
Tensor tiled_conv2d_backward_bias(const Tensor& diff_dst, const LocalConvParams& params);

// The whole backward pass: x and weights are checked against each other
// first, then each requested gradient is computed by the entry points above.
Gradients local_conv2d_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weights, GradMask mask,
                                const LocalConvParams& params);
Gradients tiled_conv2d_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weights, GradMask mask,
                                const LocalConvParams& params);

}  // namespace cnncore
