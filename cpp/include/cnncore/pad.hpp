// Padding of the spatial axes of an (N, C, spatial...) tensor.
#pragma once

#include <vector>

#include "cnncore/conv.hpp"
#include "cnncore/tensor.hpp"

namespace cnncore {

struct PadParams {
  // Before and after for each spatial axis, first axis first: {top, bottom,
  // left, right} in 2-D. Its length (2, 4 or 6) fixes the spatial rank.
  std::vector<int64_t> padding;
  PaddingMode mode = PaddingMode::zeros;
  double value = 0.0;  // the fill of PaddingMode::zeros
};

Tensor pad_forward(const Tensor& src, const PadParams& params);
// The adjoint: every padded element's gradient is added back onto the source
// element it copies (constant-filled elements contribute nothing).
Tensor pad_backward(const Tensor& diff_dst, const Shape& src_shape, const PadParams& params);

}  // namespace cnncore
