// Pooling: parameters, output size, forward and backward entry points.
//
// One parameter struct serves every kind (max, average, Lp, Gaussian-weighted
// average; windowed or adaptive) and every spatial rank; the rank comes from
// the tensors (N, C, spatial...). Each (n, c) plane is pooled on its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnncore/tensor.hpp"

namespace cnncore {

// What a window reduces to (taps outside the input are the padding):
//   max          — the largest value; padding is -inf. NaN wins (the first NaN
//                  in scan order). A window with no tap inside the input
//                  (possible only with dilation) gives -inf and index -1.
//   avg          — the sum divided by the window size clipped to the padded
//                  input (count_include_pad), the number of taps inside the
//                  input (!count_include_pad), or divisor_override.
//   lp           — (sum |x|^p)^(1/p) with zeros as padding; p = +inf is
//                  max |x|. The gradient sign(x) (|x| / y)^(p-1) is taken as
//                  0 where the window is all zeros (y = 0).
//   weighted_avg — sum w_t x_t with w_t = exp(-sum_a (t_a - (k_a-1)/2)^2 /
//                  (2 sigma_a^2)) normalised to sum to 1 over all k taps.
//                  Padding taps read zeros and keep their weight, so the op
//                  is a fixed linear filter (a depthwise convolution).
enum class PoolKind { max, avg, lp, weighted_avg };

// Which implementation runs. auto_ picks the direct path (the reference when
// the kernel level is Isa::ref).
enum class PoolAlgorithm { auto_, reference, direct };

struct PoolParams {
  PoolKind kind = PoolKind::max;
  // Windowed pooling: one value per spatial axis. `stride` empty means
  // stride = kernel; `dilation` empty means 1 (only max pooling takes
  // another); `padding` holds before/after per axis ({top, bottom, left,
  // right} in 2-D), empty = none, each at most half the dilated kernel.
  std::vector<int64_t> kernel;
  std::vector<int64_t> stride;
  std::vector<int64_t> padding;
  std::vector<int64_t> dilation;
  // Output size rounds up; the last window must still start inside the
  // input or the left padding (PyTorch's rule).
  bool ceil_mode = false;
  // Adaptive pooling (max and avg only) when non-empty: one output size per
  // axis; window i on an axis of n inputs and m outputs is
  // [floor(i*n/m), ceil((i+1)*n/m)). Windowed fields must then be empty.
  std::vector<int64_t> output_size;
  bool count_include_pad = true;  // avg
  int64_t divisor_override = 0;   // avg: 0 = none, else a positive divisor
  double norm_type = 2.0;         // lp: p >= 1, or +inf
  // weighted_avg: one value (all axes) or one per axis, > 0; empty: kernel/4
  // per axis.
  std::vector<double> sigma;
  PoolAlgorithm algorithm = PoolAlgorithm::auto_;
};

PoolKind parse_pool_kind(const std::string& name);  // "max", "avg", "lp", "weighted_avg"
PoolAlgorithm parse_pool_algorithm(const std::string& name);  // "auto", "reference", "direct"
const char* pool_kind_name(PoolKind kind);
const char* pool_algorithm_name(PoolAlgorithm algorithm);

// span = dilation*(kernel-1)+1, padded = in + pad_before + pad_after;
// out = floor((padded - span) / stride) + 1, or with ceil_mode the ceiling,
// less one when that last window would start at or beyond in + pad_before.
// 64-bit overflow checks; value_error when the result is < 1.
int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad_before,
                         int64_t pad_after, bool ceil_mode);

// Validates src's shape and the parameters and returns (N, C, out...).
// `op` names the operation in messages, e.g. "max_pool2d"; spatial_dims 0
// takes the rank from src, 1..3 requires it.
Shape pool_output_shape(const Shape& src, const PoolParams& params, const char* op = "pool",
                        int spatial_dims = 0);

// Forward. `indices` (max pooling only, may be null) receives, for every
// output element, the flat index of the chosen tap within its (n, c) input
// plane; it must hold numel(dst) values.
Tensor pool_forward(const Tensor& src, const PoolParams& params, int64_t* indices = nullptr,
                    const char* op = "pool", int spatial_dims = 0);

// Gradient with respect to src given diff_dst = dL/d(dst). Max and Lp
// pooling recompute the forward choices from src.
Tensor pool_backward(const Tensor& diff_dst, const Tensor& src, const PoolParams& params,
                     const char* op = "pool", int spatial_dims = 0);

// Max-pooling gradient from the indices the forward pass returned (src is
// not needed): diff_src[n, c, indices[i]] += diff_dst[i]; index -1 is skipped.
// `indices` holds numel(diff_dst) values, each -1 or inside the plane
// (value_error otherwise).
// `indices_shape` must be diff_dst's shape.
Tensor max_pool_backward_indices(const Tensor& diff_dst, const int64_t* indices, const Shape& indices_shape,
                                 const Shape& src_shape, const PoolParams& params, const char* op = "pool", int spatial_dims = 0);

}  // namespace cnncore
