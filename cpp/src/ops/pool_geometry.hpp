// The validated, resolved description of one pooling problem.
//
// Every spatial rank is promoted to three axes (D, H, W) as in ConvGeometry:
// a 2-D problem has D = 1, kernel 1, stride 1 and no padding on axis 0, so one
// implementation of each kernel serves 1-, 2- and 3-D pooling.
#pragma once

#include <cstdint>

#include "cnncore/pool.hpp"
#include "cnncore/tensor.hpp"
#include "util/hd.hpp"

namespace cnncore::detail {

struct PoolGeometry {
  int nd = 2;  // spatial axes the caller sees (1..3)
  PoolKind kind = PoolKind::max;
  bool adaptive = false;
  bool count_include_pad = true;
  int64_t divisor_override = 0;
  double p = 2.0;  // lp norm_type (may be +inf)
  int64_t N = 0, C = 0;
  int64_t in[3] = {1, 1, 1};
  // Windowed: the kernel. Adaptive: the longest window on that axis.
  int64_t k[3] = {1, 1, 1};
  int64_t out[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1};
  int64_t dilation[3] = {1, 1, 1};
  int64_t pad_before[3] = {0, 0, 0};
  int64_t pad_after[3] = {0, 0, 0};
  double sigma[3] = {1, 1, 1};  // weighted_avg

  CNNCORE_HD int64_t planes() const { return N * C; }
  CNNCORE_HD int64_t in_size() const { return in[0] * in[1] * in[2]; }
  CNNCORE_HD int64_t out_size() const { return out[0] * out[1] * out[2]; }

  // Window of output `o` on axis `a`: taps t = 0 .. window_taps-1 read input
  // coordinate window_start + t * dilation (outside [0, in) is padding).
  CNNCORE_HD int64_t window_start(int a, int64_t o) const {
    return adaptive ? (o * in[a]) / out[a] : o * stride[a] - pad_before[a];
  }
  CNNCORE_HD int64_t window_taps(int a, int64_t o) const {
    return adaptive ? ((o + 1) * in[a] + out[a] - 1) / out[a] - (o * in[a]) / out[a] : k[a];
  }
  // Average-pooling divisor factor on axis `a` for a window starting at
  // `start` with its in-bounds taps counted by `inside`: the window clipped
  // to the padded input when count_include_pad (PyTorch), else `inside`.
  CNNCORE_HD int64_t avg_extent(int a, int64_t start, int64_t taps, int64_t inside) const {
    if (adaptive || !count_include_pad) return inside;
    const int64_t end = start + taps < in[a] + pad_after[a] ? start + taps : in[a] + pad_after[a];
    return end - start;
  }

  Shape src_shape() const;
  Shape dst_shape() const;
};

// Validates the shape of src and the parameters for an `nd`-dimensional
// pooling and resolves defaults. Every product the kernels form is checked
// for 64-bit overflow here.
PoolGeometry make_pool_geometry(const char* op, int nd, const Shape& src, const PoolParams& params);

// spatial_dims 1..3 as given, or 0: from the rank of src (3..5 dims).
int pool_spatial_rank(const char* op, int spatial_dims, const Shape& src);


}  // namespace cnncore::detail
