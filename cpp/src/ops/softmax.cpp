// The softmax op layer: softmax / log_softmax.
// Validate once, check memory, allocate, pick the implementation (the naive
// reference at kernel level "ref", the blocked / fused kernels otherwise).
#include <cmath>
#include <limits>

#include "device/backend.hpp"
#include "cnncore/layers.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/softmax-blocked.hpp"
#include "cpu/ref/layers-ref.hpp"
#include "ops/axis_geometry.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::AxisGeometry;
using detail::str;

namespace {

const char* softmax_op(const SoftmaxParams& p) { return p.log ? "log_softmax" : "softmax"; }

bool use_reference() { return get_isa() == Isa::ref; }

}  // namespace

// ---- softmax ----------------------------------------------------------------------

Tensor softmax_forward(const Tensor& src, const SoftmaxParams& params) {
  const char* op = softmax_op(params);
  detail::AllowDevice allow(src.defined() ? src.device() : Device::cpu);
  detail::check_tensor(op, "x", src);
  const AxisGeometry g = detail::axis_geometry(src.shape(), detail::resolve_dim(op, params.dim, src.shape()));
  if (src.device() != Device::cpu) {
    Tensor dst = device::allocate(op, src.shape(), src.dtype(), src.device());
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(op, src.device()).kernels(T{}).softmax_forward(g, params.log, src.data_as<T>(),
                                                                         dst.data_as<T>());
    });
    return dst;
  }
  Tensor dst = detail::allocate_checked(op, src.shape(), src.dtype(), 0);
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (use_reference())
      cpu::ref::softmax_forward<T>(g, params.log, src.data_as<T>(), dst.data_as<T>());
    else
      cpu::softmax_forward<T>(g, params.log, src.data_as<T>(), dst.data_as<T>());
  });
  return dst;
}

Tensor softmax_backward(const Tensor& diff_dst, const Tensor& src, const SoftmaxParams& params) {
  const char* op = softmax_op(params);
  const Device dev = device::common_device(op, {{"x", &src}, {"grad_out", &diff_dst}});
  detail::AllowDevice allow(dev);
  detail::check_tensor(op, "grad_out", diff_dst);
  detail::check_tensor(op, "x", src);
  const AxisGeometry g = detail::axis_geometry(src.shape(), detail::resolve_dim(op, params.dim, src.shape()));
  detail::check_shape(op, "grad_out", diff_dst, src.shape(), "the shape of x");
  detail::check_same_dtype(op, "grad_out", diff_dst, "x", src.dtype());
  if (dev != Device::cpu) {
    Tensor diff_src = device::allocate(op, src.shape(), src.dtype(), dev);
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(op, dev).kernels(T{}).softmax_backward(g, params.log, diff_dst.data_as<T>(),
                                                                 src.data_as<T>(), diff_src.data_as<T>());
    });
    return diff_src;
  }
  Tensor diff_src = detail::allocate_checked(op, src.shape(), src.dtype(), 0);
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (use_reference())
      cpu::ref::softmax_backward<T>(g, params.log, diff_dst.data_as<T>(), src.data_as<T>(), diff_src.data_as<T>());
    else
      cpu::softmax_backward<T>(g, params.log, diff_dst.data_as<T>(), src.data_as<T>(), diff_src.data_as<T>());
  });
  return diff_src;
}

}  // namespace cnncore
