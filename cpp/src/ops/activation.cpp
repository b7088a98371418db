// The activation op layer: relu, leaky_relu, sigmoid, tanh, silu, gelu, gelu_tanh, forward
// and backward.
#include <algorithm>
#include <cmath>

#include "device/backend.hpp"
#include "cnncore/layers.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/activation-parallel.hpp"
#include "ops/axis_geometry.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::str;

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::relu;
  if (name == "leaky_relu") return Activation::leaky_relu;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  if (name == "silu") return Activation::silu;
  if (name == "gelu") return Activation::gelu;
  if (name == "gelu_tanh") return Activation::gelu_tanh;
  throw value_error(str("activation must be one of 'relu', 'leaky_relu', 'sigmoid', 'tanh', 'silu', 'gelu', "
                        "'gelu_tanh', got '", name, "'"));
}

const char* activation_name(Activation kind) {
  switch (kind) {
    case Activation::relu: return "relu";
    case Activation::leaky_relu: return "leaky_relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
    case Activation::silu: return "silu";
    case Activation::gelu: return "gelu";
    case Activation::gelu_tanh: return "gelu_tanh";
  }
  return "?";
}

namespace {

void check_activation_params(const char* op, const ActivationParams& p) {
  if (p.kind == Activation::leaky_relu) detail::check_finite(op, "negative_slope", p.negative_slope);
}


}  // namespace

Tensor activation_forward(const Tensor& src, const ActivationParams& params) {
  const char* op = activation_name(params.kind);
  detail::AllowDevice allow(src.defined() ? src.device() : Device::cpu);
  detail::check_tensor(op, "x", src);
  check_activation_params(op, params);
  if (src.device() != Device::cpu) {
    Tensor dst = device::allocate(op, src.shape(), src.dtype(), src.device());
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(op, src.device()).kernels(T{}).activation_forward(
          static_cast<int>(params.kind), static_cast<T>(params.negative_slope), src.numel(), src.data_as<T>(),
          dst.data_as<T>());
    });
    return dst;
  }
  Tensor dst = detail::allocate_checked(op, src.shape(), src.dtype(), 0);
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::activation_forward<T>(params, src.numel(), src.data_as<T>(), dst.data_as<T>());
  });
  return dst;
}

Tensor activation_backward(const Tensor& diff_dst, const Tensor& src, const ActivationParams& params) {
  const char* op = activation_name(params.kind);
  const Device dev = device::common_device(op, {{"x", &src}, {"grad_out", &diff_dst}});
  detail::AllowDevice allow(dev);
  detail::check_tensor(op, "grad_out", diff_dst);
  detail::check_tensor(op, "x", src);
  check_activation_params(op, params);
  detail::check_shape(op, "grad_out", diff_dst, src.shape(), "the shape of x");
  detail::check_same_dtype(op, "grad_out", diff_dst, "x", src.dtype());
  if (dev != Device::cpu) {
    Tensor diff_src = device::allocate(op, src.shape(), src.dtype(), dev);
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(op, dev).kernels(T{}).activation_backward(
          static_cast<int>(params.kind), static_cast<T>(params.negative_slope), src.numel(), diff_dst.data_as<T>(),
          src.data_as<T>(), diff_src.data_as<T>());
    });
    return diff_src;
  }
  Tensor diff_src = detail::allocate_checked(op, src.shape(), src.dtype(), 0);
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::activation_backward<T>(params, src.numel(), diff_dst.data_as<T>(), src.data_as<T>(),
                                diff_src.data_as<T>());
  });
  return diff_src;
}

}  // namespace cnncore
