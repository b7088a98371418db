// The elementwise layer ops: activations and dropout.
#include <algorithm>
#include <cmath>

#include "cnncore/layers.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/activation-simd.hpp"
#include "cpu/kernels/dropout-counter.hpp"
#include "ops/axis_geometry.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::str;

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::relu;
  if (name == "leaky_relu") return Activation::leaky_relu;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  throw value_error(str("activation must be one of 'relu', 'leaky_relu', 'sigmoid', 'tanh', got '", name, "'"));
}

const char* activation_name(Activation kind) {
  switch (kind) {
    case Activation::relu: return "relu";
    case Activation::leaky_relu: return "leaky_relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
  }
  return "?";
}

namespace {

void check_activation_params(const char* op, const ActivationParams& p) {
  if (p.kind == Activation::leaky_relu) detail::check_finite(op, "negative_slope", p.negative_slope);
}

void check_dropout_params(const DropoutParams& p) {
  // Written so that NaN fails too.
  if (!(p.p >= 0.0 && p.p <= 1.0)) throw value_error(str("dropout: p must be in [0, 1], got ", p.p));
}

Tensor result_like(const char* op, const Tensor& t) {
  check_memory(op, detail::checked_mul(t.numel(), static_cast<int64_t>(dtype_size(t.dtype())), op));
  return Tensor::empty(t.shape(), t.dtype());
}

}  // namespace

Tensor activation_forward(const Tensor& src, const ActivationParams& params) {
  const char* op = activation_name(params.kind);
  detail::check_tensor(op, "x", src);
  check_activation_params(op, params);
  Tensor dst = result_like(op, src);
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::activation_forward<T>(params, src.numel(), src.data_as<T>(), dst.data_as<T>());
  });
  return dst;
}

Tensor activation_backward(const Tensor& diff_dst, const Tensor& src, const ActivationParams& params) {
  const char* op = activation_name(params.kind);
  detail::check_tensor(op, "grad_out", diff_dst);
  detail::check_tensor(op, "x", src);
  check_activation_params(op, params);
  detail::check_shape(op, "grad_out", diff_dst, src.shape(), "the shape of x");
  detail::check_same_dtype(op, "grad_out", diff_dst, "x", src.dtype());
  Tensor diff_src = result_like(op, src);
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::activation_backward<T>(params, src.numel(), diff_dst.data_as<T>(), src.data_as<T>(),
                                diff_src.data_as<T>());
  });
  return diff_src;
}

bool dropout_keep(uint64_t seed, int64_t index, double p) {
  if (p >= 1.0) return false;
  return cpu::dropout_keep(cpu::dropout_key(seed, p), static_cast<uint64_t>(index));
}

// Forward and backward are the same masked scaling: d(x * m * s)/dx = m * s.
static Tensor dropout_run(const char* name, const Tensor& t, const DropoutParams& params) {
  const char* op = "dropout";
  detail::check_tensor(op, name, t);
  check_dropout_params(params);
  Tensor out = result_like(op, t);
  detail::with_dtype(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (!params.training) {
      std::copy(t.data_as<T>(), t.data_as<T>() + t.numel(), out.data_as<T>());
      return;
    }
    cpu::dropout_apply<T>(params.seed, params.p, t.numel(), t.data_as<T>(), out.data_as<T>());
  });
  return out;
}

Tensor dropout_forward(const Tensor& src, const DropoutParams& params) { return dropout_run("x", src, params); }

Tensor dropout_backward(const Tensor& diff_dst, const DropoutParams& params) {
  return dropout_run("grad_out", diff_dst, params);
}

}  // namespace cnncore
