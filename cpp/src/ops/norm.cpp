// The normalisation op layer: local response normalisation and batch
// normalisation. Validate once, check memory, allocate, pick the
// implementation (the naive reference at kernel level "ref").
#include <cmath>
#include <vector>

#include "cnncore/device.hpp"
#include "device/backend.hpp"
#include "cnncore/layers.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/batch-norm-partials.hpp"
#include "cpu/kernels/lrn-tiled.hpp"
#include "cpu/ref/layers-ref.hpp"
#include "ops/axis_geometry.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::AxisGeometry;
using detail::str;

namespace {

bool use_reference() { return get_isa() == Isa::ref; }

void check_budget(const char* op, const Shape& result, DType dtype, int64_t workspace_bytes) {
  check_memory(op, detail::checked_add(detail::checked_mul(shape_numel(result), static_cast<int64_t>(dtype_size(dtype)),
                                                           op),
                                       workspace_bytes, op));
}

// ---- LRN --------------------------------------------------------------------------

constexpr const char* kLrn = "local_response_norm";

AxisGeometry make_lrn_geometry(const Tensor& src, const LrnParams& p) {
  detail::check_tensor(kLrn, "x", src);
  if (src.dim() < 3)
    throw value_error(str(kLrn, ": x must have at least 3 dimensions (N, C, spatial...), got ", src.dim(),
                          " with shape ", shape_str(src.shape())));
  if (p.size < 1) throw value_error(str(kLrn, ": size must be a positive integer, got ", p.size));
  detail::check_finite(kLrn, "alpha", p.alpha);
  detail::check_finite(kLrn, "beta", p.beta);
  detail::check_finite(kLrn, "k", p.k);
  return detail::axis_geometry(src.shape(), 1);
}

int64_t lrn_workspace(const AxisGeometry& g, DType dtype, bool backward) {
  if (use_reference()) return 0;
  return cpu::lrn_workspace_bytes(g, static_cast<int64_t>(dtype_size(dtype)), get_num_threads(), backward);
}

// ---- batch norm -------------------------------------------------------------------

constexpr const char* kBn = "batch_norm";

struct BnProblem {
  AxisGeometry g;  // (N, C, spatial) as (outer, axis, inner)
  int64_t M = 0;   // values per channel: N * spatial
};

BnProblem make_bn_problem(const Tensor& src, const Tensor& running_mean, const Tensor& running_var,
                          const Tensor& weights, const Tensor& bias, const BatchNormParams& p) {
  detail::check_tensor(kBn, "x", src);
  if (src.dim() < 2)
    throw value_error(str(kBn, ": x must have at least 2 dimensions (N, C) or (N, C, spatial...), got ", src.dim(),
                          " with shape ", shape_str(src.shape())));
  const int64_t C = src.size(1);
  if (running_mean.defined() != running_var.defined())
    throw value_error(str(kBn, ": running_mean and running_var must be given together, got only ",
                          running_mean.defined() ? "running_mean" : "running_var"));
  if (!running_mean.defined() && !p.training)
    throw value_error(str(kBn, ": running_mean and running_var are required when training=False"));
  detail::check_per_channel(kBn, "running_mean", running_mean, C, "x", src.dtype(), true);
  detail::check_per_channel(kBn, "running_var", running_var, C, "x", src.dtype(), true);
  detail::check_per_channel(kBn, "weight", weights, C, "x", src.dtype(), true);
  detail::check_per_channel(kBn, "bias", bias, C, "x", src.dtype(), true);
  if (!(p.eps >= 0.0) || !std::isfinite(p.eps))
    throw value_error(str(kBn, ": eps must be a finite number >= 0, got ", p.eps));
  if (!(p.momentum >= 0.0 && p.momentum <= 1.0))
    throw value_error(str(kBn, ": momentum must be in [0, 1], got ", p.momentum));
  BnProblem pr;
  pr.g = detail::axis_geometry(src.shape(), 1);
  pr.M = pr.g.outer * pr.g.inner;
  if (p.training && pr.M == 1)
    throw value_error(str(kBn, ": expected more than 1 value per channel when training (N * spatial = 1), got x ",
                          "of shape ", shape_str(src.shape())));
  return pr;
}

// The statistics the op normalises with: the batch's (training; the
// reference kernel's, the fast kernels form their own) or the running ones.
// Returns mean and 1 / sqrt(var + eps) per channel in double.
template <typename T>
void bn_statistics(const BnProblem& pr, const T* src, const Tensor& running_mean, const Tensor& running_var,
                   const BatchNormParams& p, std::vector<double>& mean, std::vector<double>& invstd,
                   std::vector<double>* batch_var) {
  const int64_t C = pr.g.axis;
  mean.assign(static_cast<std::size_t>(C), 0.0);
  invstd.assign(static_cast<std::size_t>(C), 0.0);
  std::vector<double> var(static_cast<std::size_t>(C));
  if (p.training) {
    cpu::ref::batch_norm_stats<T>(pr.g, src, mean.data(), var.data());
  } else {
    for (int64_t c = 0; c < C; ++c) {
      mean[static_cast<std::size_t>(c)] = running_mean.data_as<T>()[c];
      var[static_cast<std::size_t>(c)] = running_var.data_as<T>()[c];
    }
  }
  for (std::size_t c = 0; c < var.size(); ++c) invstd[c] = 1.0 / std::sqrt(var[c] + p.eps);
  if (batch_var) *batch_var = std::move(var);
}

// The device side of bn_statistics: mean and invstd per channel in device
// memory (double); `update` moves the running statistics in training.
struct DeviceStats {
  Tensor mean, var, invstd;
};

DeviceStats device_statistics(const BnProblem& pr, const Tensor& src, const Tensor& running_mean,
                              const Tensor& running_var, const BatchNormParams& p, bool update) {
  const Device dev = src.device();
  const int64_t C = pr.g.axis;
  DeviceStats st{device::allocate(kBn, {C}, DType::f64, dev), device::allocate(kBn, {C}, DType::f64, dev),
                 device::allocate(kBn, {C}, DType::f64, dev)};
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const device::Kernels<T>& k = device::backend_for(kBn, dev).kernels(T{});
    if (p.training) k.batch_norm_stats(pr.g, src.data_as<T>(), st.mean.data_as<double>(), st.var.data_as<double>());
    const bool running = running_mean.defined() && (update || !p.training);
    k.batch_norm_finish(C, pr.M, p.training, p.eps, p.momentum, st.mean.data_as<double>(), st.var.data_as<double>(),
                        st.invstd.data_as<double>(), running ? running_mean.data_as<T>() : nullptr,
                        running ? running_var.data_as<T>() : nullptr);
  });
  return st;
}

}  // namespace

// ---- LRN --------------------------------------------------------------------------

Tensor lrn_forward(const Tensor& src, const LrnParams& params) {
  detail::AllowDevice allow(src.defined() ? src.device() : Device::cpu);
  const AxisGeometry g = make_lrn_geometry(src, params);
  if (src.device() != Device::cpu) {
    Tensor dst = device::allocate(kLrn, src.shape(), src.dtype(), src.device());
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(kLrn, src.device()).kernels(T{}).lrn_forward(g, params, src.data_as<T>(), dst.data_as<T>());
    });
    return dst;
  }
  check_budget(kLrn, src.shape(), src.dtype(), lrn_workspace(g, src.dtype(), false));
  Tensor dst = Tensor::empty(src.shape(), src.dtype());
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (use_reference())
      cpu::ref::lrn_forward<T>(g, params, src.data_as<T>(), dst.data_as<T>());
    else
      cpu::lrn_forward<T>(g, params, src.data_as<T>(), dst.data_as<T>());
  });
  return dst;
}

Tensor lrn_backward(const Tensor& diff_dst, const Tensor& src, const LrnParams& params) {
  const Device dev = device::common_device(kLrn, {{"x", &src}, {"grad_out", &diff_dst}});
  detail::AllowDevice allow(dev);
  detail::check_tensor(kLrn, "grad_out", diff_dst);
  const AxisGeometry g = make_lrn_geometry(src, params);
  detail::check_shape(kLrn, "grad_out", diff_dst, src.shape(), "the shape of x");
  detail::check_same_dtype(kLrn, "grad_out", diff_dst, "x", src.dtype());
  if (dev != Device::cpu) {
    Tensor diff_src = device::allocate(kLrn, src.shape(), src.dtype(), dev);
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(kLrn, dev).kernels(T{}).lrn_backward(g, params, diff_dst.data_as<T>(), src.data_as<T>(),
                                                               diff_src.data_as<T>());
    });
    return diff_src;
  }
  check_budget(kLrn, src.shape(), src.dtype(), lrn_workspace(g, src.dtype(), true));
  Tensor diff_src = Tensor::empty(src.shape(), src.dtype());
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (use_reference())
      cpu::ref::lrn_backward<T>(g, params, diff_dst.data_as<T>(), src.data_as<T>(), diff_src.data_as<T>());
    else
      cpu::lrn_backward<T>(g, params, diff_dst.data_as<T>(), src.data_as<T>(), diff_src.data_as<T>());
  });
  return diff_src;
}

// ---- batch norm -------------------------------------------------------------------

Tensor batch_norm_forward(const Tensor& src, const Tensor& running_mean, const Tensor& running_var,
                          const Tensor& weights, const Tensor& bias, const BatchNormParams& params) {
  const Device dev = device::common_device(kBn, {{"x", &src}, {"running_mean", &running_mean},
                                                 {"running_var", &running_var}, {"weight", &weights}, {"bias", &bias}});
  detail::AllowDevice allow(dev);
  const BnProblem pr = make_bn_problem(src, running_mean, running_var, weights, bias, params);
  if (dev != Device::cpu) {
    Tensor dst = device::allocate(kBn, src.shape(), src.dtype(), dev);
    if (pr.M == 0 || pr.g.axis == 0) return dst;
    const DeviceStats st = device_statistics(pr, src, running_mean, running_var, params, true);
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(kBn, dev).kernels(T{}).batch_norm_apply(
          pr.g, src.data_as<T>(), st.mean.data_as<double>(), st.invstd.data_as<double>(),
          detail::data_or_null<T>(weights), detail::data_or_null<T>(bias), dst.data_as<T>());
    });
    return dst;
  }
  check_budget(kBn, src.shape(), src.dtype(), use_reference() ? 0 : cpu::batch_norm_workspace_bytes(pr.g));
  Tensor dst = Tensor::empty(src.shape(), src.dtype());
  if (pr.M == 0 || pr.g.axis == 0) return dst;  // an empty batch: nothing to normalise or update
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    std::vector<double> mean, invstd, var;
    const T* w = detail::data_or_null<T>(weights);
    const T* b = detail::data_or_null<T>(bias);
    if (params.training && !use_reference()) {  // statistics and output channel by channel, in one kernel
      mean.resize(static_cast<std::size_t>(pr.g.axis));
      var.resize(static_cast<std::size_t>(pr.g.axis));
      cpu::batch_norm_forward_training<T>(pr.g, params.eps, src.data_as<T>(), w, b, dst.data_as<T>(), mean.data(),
                                          var.data());
    } else {
      bn_statistics<T>(pr, src.data_as<T>(), running_mean, running_var, params, mean, invstd, &var);
      if (use_reference())
        cpu::ref::batch_norm_apply<T>(pr.g, src.data_as<T>(), mean.data(), invstd.data(), w, b, dst.data_as<T>());
      else
        cpu::batch_norm_apply<T>(pr.g, src.data_as<T>(), mean.data(), invstd.data(), w, b, dst.data_as<T>());
    }
    if (params.training && running_mean.defined()) {
      const double m = params.momentum, unbias = double(pr.M) / double(pr.M - 1);
      T* rm = running_mean.data_as<T>();
      T* rv = running_var.data_as<T>();
      for (int64_t c = 0; c < pr.g.axis; ++c) {
        const std::size_t k = static_cast<std::size_t>(c);
        rm[c] = static_cast<T>((1.0 - m) * double(rm[c]) + m * mean[k]);
        rv[c] = static_cast<T>((1.0 - m) * double(rv[c]) + m * var[k] * unbias);
      }
    }
  });
  return dst;
}

BatchNormGrads batch_norm_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& running_mean,
                                   const Tensor& running_var, const Tensor& weights, const Tensor& bias,
                                   const BatchNormParams& params) {
  const Device dev =
      device::common_device(kBn, {{"x", &src}, {"grad_out", &diff_dst}, {"running_mean", &running_mean},
                                  {"running_var", &running_var}, {"weight", &weights}, {"bias", &bias}});
  detail::AllowDevice allow(dev);
  detail::check_tensor(kBn, "grad_out", diff_dst);
  const BnProblem pr = make_bn_problem(src, running_mean, running_var, weights, bias, params);
  detail::check_shape(kBn, "grad_out", diff_dst, src.shape(), "the shape of x");
  detail::check_same_dtype(kBn, "grad_out", diff_dst, "x", src.dtype());
  const int64_t C = pr.g.axis;
  if (dev != Device::cpu) {
    BatchNormGrads out;
    out.diff_src = device::allocate(kBn, src.shape(), src.dtype(), dev);
    if (weights.defined()) out.diff_weights = zeros_on({C}, src.dtype(), dev);
    if (bias.defined()) out.diff_bias = zeros_on({C}, src.dtype(), dev);
    if (pr.M == 0 || C == 0) return out;
    const DeviceStats st = device_statistics(pr, src, running_mean, running_var, params, false);
    Tensor partials = device::allocate(kBn, {2 * C}, DType::f64, dev);
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(kBn, dev).kernels(T{}).batch_norm_backward(
          pr.g, params.training, diff_dst.data_as<T>(), src.data_as<T>(), st.mean.data_as<double>(),
          st.invstd.data_as<double>(), detail::data_or_null<T>(weights), partials.data_as<double>(),
          out.diff_src.data_as<T>(), weights.defined() ? out.diff_weights.data_as<T>() : nullptr,
          bias.defined() ? out.diff_bias.data_as<T>() : nullptr);
    });
    return out;
  }
  const int64_t extra = (weights.defined() ? C : 0) + (bias.defined() ? C : 0);
  check_budget(kBn, src.shape(), src.dtype(),
               detail::checked_add(detail::checked_mul(extra, static_cast<int64_t>(dtype_size(src.dtype())), kBn),
                                   use_reference() ? 0 : cpu::batch_norm_workspace_bytes(pr.g), kBn));
  BatchNormGrads out;
  out.diff_src = Tensor::empty(src.shape(), src.dtype());
  if (weights.defined()) out.diff_weights = Tensor::zeros({C}, src.dtype());
  if (bias.defined()) out.diff_bias = Tensor::zeros({C}, src.dtype());
  if (pr.M == 0 || C == 0) return out;
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* w = detail::data_or_null<T>(weights);
    T* dw = detail::data_or_null<T>(out.diff_weights) ? out.diff_weights.data_as<T>() : nullptr;
    T* db = detail::data_or_null<T>(out.diff_bias) ? out.diff_bias.data_as<T>() : nullptr;
    std::vector<double> mean, invstd;
    // the fast kernel forms a training batch's statistics itself, channel by channel
    if (use_reference() || !params.training)
      bn_statistics<T>(pr, src.data_as<T>(), running_mean, running_var, params, mean, invstd, nullptr);
    if (use_reference())
      cpu::ref::batch_norm_backward<T>(pr.g, params.training, diff_dst.data_as<T>(), src.data_as<T>(), mean.data(),
                                       invstd.data(), w, out.diff_src.data_as<T>(), dw, db);
    else
      cpu::batch_norm_backward<T>(pr.g, params.training, params.eps, diff_dst.data_as<T>(), src.data_as<T>(),
                                  mean.data(), invstd.data(), w, out.diff_src.data_as<T>(), dw, db);
  });
  return out;
}

}  // namespace cnncore
