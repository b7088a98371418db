// The validated, resolved description of one convolution problem.
//
// Every spatial rank is promoted to three axes (D, H, W): a 2-D problem has
// D = 1, kernel depth 1, stride/dilation 1 and no padding on axis 0, so one
// implementation of each kernel serves 1-, 2- and 3-D convolution.
#pragma once

#include <cstdint>

#include "cnncore/conv.hpp"
#include "cnncore/tensor.hpp"
#include "util/hd.hpp"

namespace cnncore::detail {

enum class ConvPass { forward, backward_data, backward_weight };

struct ConvGeometry {
  int nd = 2;  // spatial axes the caller sees (1..3)
  int64_t N = 0, C_in = 0, C_out = 0, groups = 1, C_in_g = 0, C_out_g = 0;
  int64_t in[3] = {1, 1, 1};
  int64_t k[3] = {1, 1, 1};
  int64_t out[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1};
  int64_t dilation[3] = {1, 1, 1};
  int64_t pad_before[3] = {0, 0, 0};
  int64_t pad_after[3] = {0, 0, 0};
  PaddingMode mode = PaddingMode::zeros;
  bool flip = false;

  CNNCORE_HD int64_t in_size() const { return in[0] * in[1] * in[2]; }
  CNNCORE_HD int64_t out_size() const { return out[0] * out[1] * out[2]; }
  CNNCORE_HD int64_t k_size() const { return k[0] * k[1] * k[2]; }
  // Rows of the im2col matrix of one group: C_in_g * kD * kH * kW.
  int64_t patch_size() const { return C_in_g * k_size(); }
  bool has_padding() const;

  Shape src_shape() const;
  Shape weights_shape() const;
  Shape dst_shape() const;
};

// The one output-size formula of convolution (conv_output_size, the
// geometry and so every conv op; pooling's, with ceil_mode, is in
// pool_geometry.cpp): floor((in + before + after - dilation*(k-1) - 1)
// / stride) + 1, in checked 64-bit arithmetic; value_error naming `axis` when
// the window does not fit the padded input. Arguments already validated.
int64_t window_output_size(const char* op, const char* axis, int64_t in, int64_t pad_before, int64_t pad_after,
                           int64_t k, int64_t stride, int64_t dilation);

// Validates src/weights shapes and the parameters for an `nd`-dimensional
// convolution and resolves named padding. All products that the kernels will
// form (tensor sizes, patch matrices) are checked for 64-bit overflow here.
ConvGeometry make_conv_geometry(const char* op, int nd, const Shape& src, const Shape& weights,
                                const ConvParams& params);

// Spatial rank implied by a tensor rank (3..5 -> 1..3), or value_error.
int conv_spatial_rank(const char* op, const char* arg, const Shape& shape);
// spatial_dims 1..3 as given, or 0: from the rank of src.
int resolve_spatial_rank(const char* op, int spatial_dims, const Shape& src);

void check_bias_shape(const char* op, const Shape& bias, int64_t C_out);

// Index into an axis of `n` elements for padded coordinate `i` (which may lie
// outside [0, n)), following `mode`; -1 means "a zero" (zeros mode only).
// Preconditions checked by make_conv_geometry: reflect pads are < n,
// symmetric pads are <= n.
CNNCORE_HD inline int64_t padded_source_index(int64_t i, int64_t n, PaddingMode mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PaddingMode::zeros: return -1;
    case PaddingMode::reflect: return i < 0 ? -i : 2 * (n - 1) - i;
    case PaddingMode::replicate: return i < 0 ? 0 : n - 1;
    case PaddingMode::circular: {
      const int64_t r = i % n;
      return r < 0 ? r + n : r;
    }
    case PaddingMode::symmetric: return i < 0 ? -i - 1 : 2 * n - 1 - i;
  }
  return -1;
}

}  // namespace cnncore::detail
