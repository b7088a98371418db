// The validated description of one tiled / locally connected convolution,
// shared by the op layer (ops/local_conv.cpp), the reference and the fast
// kernels.
//
// `conv` is the geometry of the ordinary convolution with one of the kernels
// (groups 1, 2-D promoted to 3 axes with D = 1): sizes, stride, dilation,
// resolved padding, padding mode and flip all come from make_conv_geometry.
// Output position (i, j) belongs to tile class (i mod tH, j mod tW) and uses
// kernel block (i mod tH) * tW + (j mod tW) of the weights
// (tH, tW, C_out, C_in, kH, kW) and bias entries bias[o, i mod tH, j mod tW].
// A locally connected layer is the tile (H_out, W_out).
#pragma once

#include <cstdint>

#include "ops/conv_geometry.hpp"

namespace cnncore::detail {

struct LocalConvGeometry {
  ConvGeometry conv;
  int64_t tile[2] = {1, 1};

  int64_t N() const { return conv.N; }
  int64_t C_in() const { return conv.C_in; }
  int64_t C_out() const { return conv.C_out; }
  int64_t H() const { return conv.in[1]; }
  int64_t W() const { return conv.in[2]; }
  int64_t kH() const { return conv.k[1]; }
  int64_t kW() const { return conv.k[2]; }
  int64_t H_out() const { return conv.out[1]; }
  int64_t W_out() const { return conv.out[2]; }
  // Length of one patch (one row of a kernel): C_in * kH * kW.
  int64_t K() const { return conv.C_in * conv.k[1] * conv.k[2]; }
  int64_t classes() const { return tile[0] * tile[1]; }
  // Elements of one kernel block (C_out, C_in, kH, kW).
  int64_t block() const { return conv.C_out * K(); }
  // Output rows / columns of class (ti, tj): i = ti + r*tH for r < class_rows(ti).
  int64_t class_rows(int64_t ti) const { return ti < H_out() ? (H_out() - 1 - ti) / tile[0] + 1 : 0; }
  int64_t class_cols(int64_t tj) const { return tj < W_out() ? (W_out() - 1 - tj) / tile[1] + 1 : 0; }

  Shape src_shape() const { return {N(), C_in(), H(), W()}; }
  Shape weights_shape() const { return {tile[0], tile[1], C_out(), C_in(), kH(), kW()}; }
  Shape bias_shape() const { return {C_out(), tile[0], tile[1]}; }
  Shape dst_shape() const { return {N(), C_out(), H_out(), W_out()}; }
};

}  // namespace cnncore::detail
