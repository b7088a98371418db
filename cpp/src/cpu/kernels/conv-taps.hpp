// Per-axis tap tables shared by the convolution kernels that gather from a
// padded input without materialising it (im2col, direct depthwise).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/conv_geometry.hpp"
#include "util/checked.hpp"

namespace cnncore::cpu {

// For each axis, tap and output position, the source index along that axis
// (-1 = a zero from padding). Padding mode and flip are folded in here, so
// im2col and col2im are plain gathers and scatters. For each tap the outputs
// [lo, hi) read inside the input, at src = o * stride + off, which the inner
// loops use to copy without the table.
struct TapTables {
  // Bytes the tables of `g` occupy (for memory budgets).
  static int64_t bytes(const detail::ConvGeometry& g) {
    int64_t b = 0;
    for (int a = 0; a < 3; ++a) b += (g.k[a] * g.out[a] + 3 * g.k[a]) * 8;
    return b;
  }

  std::vector<int64_t> axis[3];  // axis[a][tap * out[a] + o]
  std::vector<int64_t> lo[3], hi[3], off[3];

  explicit TapTables(const detail::ConvGeometry& g) {
    for (int a = 0; a < 3; ++a) {
      axis[a].resize(static_cast<std::size_t>(g.k[a] * g.out[a]));
      lo[a].assign(static_cast<std::size_t>(g.k[a]), 0);
      hi[a].assign(static_cast<std::size_t>(g.k[a]), 0);
      off[a].assign(static_cast<std::size_t>(g.k[a]), 0);
      for (int64_t t = 0; t < g.k[a]; ++t) {
        const int64_t tap = g.flip ? g.k[a] - 1 - t : t;
        const int64_t o0 = tap * g.dilation[a] - g.pad_before[a];
        off[a][t] = o0;
        // o * stride + o0 in [0, in)  <=>  o in [ceil(-o0 / s), ceil((in - o0) / s))
        const int64_t s = g.stride[a];
        lo[a][t] = std::clamp<int64_t>(detail::ceil_div(-o0, s), 0, g.out[a]);
        hi[a][t] = std::clamp<int64_t>(detail::ceil_div(g.in[a] - o0, s), lo[a][t], g.out[a]);
        for (int64_t o = 0; o < g.out[a]; ++o)
          axis[a][static_cast<std::size_t>(t * g.out[a] + o)] =
              detail::padded_source_index(o * s + o0, g.in[a], g.mode);
      }
    }
  }
};

}  // namespace cnncore::cpu
