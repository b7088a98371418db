// The linear (fully connected) op layer: x (..., in) viewed as a (rows, in)
// matrix; validate once, check memory, allocate, run the GEMM path (or the
// naive reference at kernel level "ref").
#include <algorithm>

#include "cnncore/device.hpp"
#include "device/backend.hpp"
#include "cnncore/layers.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/linear-gemm.hpp"
#include "cpu/ref/layers-ref.hpp"
#include "ops/axis_geometry.hpp"
#include "util/checked.hpp"

namespace cnncore {

using cpu::LinearDims;
using detail::str;

namespace {

constexpr const char* kOp = "linear";

bool use_reference() { return get_isa() == Isa::ref; }

// Validates shapes (x (..., in), weight (out, in)) and returns the matrix sizes.
LinearDims make_dims(const Shape& src, const Shape& weights) {
  if (src.empty()) throw value_error(str(kOp, ": x must have at least 1 dimension (..., in_features), got a 0-d array"));
  if (weights.size() != 2)
    throw value_error(str(kOp, ": weight must have 2 dimensions (out_features, in_features), got ", weights.size(),
                          " with shape ", shape_str(weights)));
  LinearDims d;
  d.in = src.back();
  d.out = weights[0];
  if (weights[1] != d.in)
    throw value_error(str(kOp, ": weight expects ", weights[1], " input features (weight.shape[1]) but x has ", d.in,
                          " (x.shape[-1]); x has shape ", shape_str(src), ", weight ", shape_str(weights)));
  d.rows = 1;
  for (std::size_t a = 0; a + 1 < src.size(); ++a) d.rows = detail::checked_mul(d.rows, src[a], kOp);
  shape_numel(src);  // negative extents, overflow
  shape_numel(weights);
  return d;
}

Shape dst_shape(const Shape& src, const LinearDims& d) {
  Shape s = src;
  s.back() = d.out;
  return s;
}

void check_budget(const Shape& result, DType dtype, int64_t M, int64_t N, int64_t K) {
  const int64_t es = static_cast<int64_t>(dtype_size(dtype));
  const int64_t ws = use_reference() ? 0 : cpu::gemm_workspace_bytes(M, N, K, es);
  check_memory(kOp, detail::checked_add(detail::checked_mul(shape_numel(result), es, kOp), ws, kOp));
}

void check_diff_dst(const Tensor& diff_dst, const Shape& expected, DType dtype, const char* ref_name) {
  detail::check_tensor(kOp, "grad_out", diff_dst);
  if (diff_dst.shape() != expected)
    throw value_error(str(kOp, ": grad_out must have shape ", shape_str(expected), " (the shape of the output), got ",
                          shape_str(diff_dst.shape())));
  detail::check_same_dtype(kOp, "grad_out", diff_dst, ref_name, dtype);
}


device::LinearDims on_device(const LinearDims& d) { return device::LinearDims{d.rows, d.in, d.out}; }

}  // namespace

Tensor linear_forward(const Tensor& src, const Tensor& weights, const Tensor& bias) {
  const Device dev = device::common_device(kOp, {{"x", &src}, {"weight", &weights}, {"bias", &bias}});
  detail::AllowDevice allow(dev);
  detail::check_tensor(kOp, "x", src);
  detail::check_tensor(kOp, "weight", weights);
  const LinearDims d = make_dims(src.shape(), weights.shape());
  detail::check_same_dtype(kOp, "weight", weights, "x", src.dtype());
  if (bias.defined()) {
    detail::check_tensor(kOp, "bias", bias);
    if (bias.dim() != 1 || bias.size(0) != d.out)
      throw value_error(str(kOp, ": bias must have shape [", d.out, "] (out_features, weight.shape[0]), got ",
                            shape_str(bias.shape())));
    detail::check_same_dtype(kOp, "bias", bias, "x", src.dtype());
  }
  const Shape out = dst_shape(src.shape(), d);
  if (dev != Device::cpu) {
    Tensor dst = device::allocate(kOp, out, src.dtype(), dev);
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(kOp, dev).kernels(T{}).linear_forward(on_device(d), src.data_as<T>(), weights.data_as<T>(),
                                                                detail::data_or_null<T>(bias), dst.data_as<T>());
    });
    return dst;
  }
  check_budget(out, src.dtype(), d.rows, d.out, d.in);
  Tensor dst = Tensor::empty(out, src.dtype());
  if (dst.numel() == 0) return dst;
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* b = detail::data_or_null<T>(bias);
    if (use_reference())
      cpu::ref::linear_forward<T>(d, src.data_as<T>(), weights.data_as<T>(), b, dst.data_as<T>());
    else
      cpu::linear_forward<T>(d, src.data_as<T>(), weights.data_as<T>(), b, dst.data_as<T>());
  });
  return dst;
}

Tensor linear_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape) {
  const Device dev = device::common_device(kOp, {{"weight", &weights}, {"grad_out", &diff_dst}});
  detail::AllowDevice allow(dev);
  detail::check_tensor(kOp, "weight", weights);
  const LinearDims d = make_dims(src_shape, weights.shape());
  check_diff_dst(diff_dst, dst_shape(src_shape, d), weights.dtype(), "weight");
  if (dev != Device::cpu) {
    Tensor diff_src = device::allocate(kOp, src_shape, weights.dtype(), dev);
    detail::with_dtype(weights.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(kOp, dev).kernels(T{}).linear_backward_data(on_device(d), diff_dst.data_as<T>(),
                                                                      weights.data_as<T>(), diff_src.data_as<T>());
    });
    return diff_src;
  }
  check_budget(src_shape, weights.dtype(), d.rows, d.in, d.out);
  Tensor diff_src = Tensor::empty(src_shape, weights.dtype());
  if (diff_src.numel() == 0) return diff_src;
  detail::with_dtype(weights.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (use_reference())
      cpu::ref::linear_backward_data<T>(d, diff_dst.data_as<T>(), weights.data_as<T>(), diff_src.data_as<T>());
    else
      cpu::linear_backward_data<T>(d, diff_dst.data_as<T>(), weights.data_as<T>(), diff_src.data_as<T>());
  });
  return diff_src;
}

Tensor linear_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape) {
  const Device dev = device::common_device(kOp, {{"x", &src}, {"grad_out", &diff_dst}});
  detail::AllowDevice allow(dev);
  detail::check_tensor(kOp, "x", src);
  const LinearDims d = make_dims(src.shape(), weights_shape);
  check_diff_dst(diff_dst, dst_shape(src.shape(), d), src.dtype(), "x");
  if (dev != Device::cpu) {
    Tensor diff_w = device::allocate(kOp, weights_shape, src.dtype(), dev);
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(kOp, dev).kernels(T{}).linear_backward_weight(on_device(d), diff_dst.data_as<T>(),
                                                                        src.data_as<T>(), diff_w.data_as<T>());
    });
    return diff_w;
  }
  check_budget(weights_shape, src.dtype(), d.out, d.in, d.rows);
  Tensor diff_w = Tensor::empty(weights_shape, src.dtype());
  if (diff_w.numel() == 0) return diff_w;
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (use_reference())
      cpu::ref::linear_backward_weight<T>(d, diff_dst.data_as<T>(), src.data_as<T>(), diff_w.data_as<T>());
    else
      cpu::linear_backward_weight<T>(d, diff_dst.data_as<T>(), src.data_as<T>(), diff_w.data_as<T>());
  });
  return diff_w;
}

Tensor linear_backward_bias(const Tensor& diff_dst) {
  detail::AllowDevice allow(diff_dst.defined() ? diff_dst.device() : Device::cpu);
  detail::check_tensor(kOp, "grad_out", diff_dst);
  if (diff_dst.dim() < 1)
    throw value_error(str(kOp, ": grad_out must have at least 1 dimension (..., out_features), got a 0-d array"));
  LinearDims d;
  d.out = diff_dst.shape().back();
  d.rows = d.out == 0 ? 0 : diff_dst.numel() / d.out;
  if (diff_dst.device() != Device::cpu) {
    Tensor diff_b = zeros_on({d.out}, diff_dst.dtype(), diff_dst.device());
    detail::with_dtype(diff_dst.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if (d.rows > 0 && d.out > 0)
        device::backend_for(kOp, diff_dst.device())
            .kernels(T{})
            .channel_sum(d.rows, d.out, 1, diff_dst.data_as<T>(), diff_b.data_as<T>());
    });
    return diff_b;
  }
  check_budget({d.out}, diff_dst.dtype(), 0, 0, 0);
  Tensor diff_b = Tensor::empty({d.out}, diff_dst.dtype());
  if (d.out == 0) return diff_b;
  detail::with_dtype(diff_dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (use_reference())
      cpu::ref::linear_backward_bias<T>(d, diff_dst.data_as<T>(), diff_b.data_as<T>());
    else
      cpu::linear_backward_bias<T>(d, diff_dst.data_as<T>(), diff_b.data_as<T>());
  });
  return diff_b;
}

Gradients linear_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weights, GradMask mask) {
  const Device dev = device::common_device(kOp, {{"x", &src}, {"weight", &weights}, {"grad_out", &diff_dst}});
  detail::AllowDevice allow(dev);
  detail::check_pair(kOp, "x", src, "weight", weights);
  Gradients grads;
  if (mask.diff_src) grads.diff_src = linear_backward_data(diff_dst, weights, src.shape());
  if (mask.diff_weights) grads.diff_weights = linear_backward_weight(diff_dst, src, weights.shape());
  if (mask.diff_bias) grads.diff_bias = linear_backward_bias(diff_dst);
  return grads;
}

}  // namespace cnncore
