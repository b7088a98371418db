// The cross-entropy op layer: softmax cross-entropy of logits and the
// negative log-likelihood of log-probabilities, sharing one validation of
// input / target / weight and one reduction. Validate once, check memory,
// allocate, pick the implementation (the naive reference at kernel level
// "ref", the fused kernels otherwise; nll_loss is a gather, its reference
// loop serves every level).
#include <cmath>
#include <cstring>

#include "cnncore/device.hpp"
#include "device/backend.hpp"
#include "cnncore/layers.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/cross-entropy-fused.hpp"
#include "cpu/ref/layers-ref.hpp"
#include "ops/axis_geometry.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::AxisGeometry;
using detail::str;

namespace {

bool use_reference() { return get_isa() == Isa::ref; }

}  // namespace

Reduction parse_reduction(const std::string& name) {
  if (name == "none") return Reduction::none;
  if (name == "mean") return Reduction::mean;
  if (name == "sum") return Reduction::sum;
  throw value_error(str("reduction must be one of 'none', 'mean', 'sum', got '", name, "'"));
}

const char* reduction_name(Reduction reduction) {
  switch (reduction) {
    case Reduction::none: return "none";
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
  }
  return "?";
}

namespace {

constexpr const char* kCe = "cross_entropy";
constexpr const char* kNll = "nll_loss";

struct CeProblem {
  AxisGeometry g;       // (N, C, d...) as (outer, axis, inner)
  Shape out_shape;      // target's shape for none, {} otherwise
  double weight_total;  // sum of w[t] over non-ignored positions
};

// Validates input / target / weight / params; scans the targets once (range
// check and the total weight the mean divides by).
CeProblem make_ce_problem(const char* kCe, const Tensor& src, const Labels& target, const Tensor& weights,
                          const CrossEntropyParams& p) {
  detail::check_tensor(kCe, "input", src);
  const Shape& xs = src.shape();
  if (xs.size() < 2)
    throw value_error(str(kCe, ": input must have at least 2 dimensions (N, C) or (N, C, d...), got ", xs.size(),
                          " with shape ", shape_str(xs)));
  if (xs[1] < 1) throw value_error(str(kCe, ": input must have at least one class (C >= 1), got shape ", shape_str(xs)));
  Shape expected{xs[0]};
  expected.insert(expected.end(), xs.begin() + 2, xs.end());
  if (target.shape != expected)
    throw value_error(str(kCe, ": target must have shape ", shape_str(expected), " (input's shape without the class ",
                          "axis 1), got ", shape_str(target.shape)));
  const int64_t C = xs[1];
  detail::check_per_channel(kCe, "weight", weights, C, "input", src.dtype(), true);
  if (!(p.label_smoothing >= 0.0 && p.label_smoothing <= 1.0))
    throw value_error(str(kCe, ": label_smoothing must be in [0, 1], got ", p.label_smoothing));
  CeProblem pr;
  pr.g = detail::axis_geometry(xs, 1);
  pr.out_shape = p.reduction == Reduction::none ? expected : Shape{};
  const int64_t P = shape_numel(expected);
  if (P > 0 && !target.data) throw value_error(str(kCe, ": target is missing (no data)"));
  // The class weights are read here on the host (a copy when they live on a device).
  const Tensor host_weights = weights.defined() ? to_device(weights, Device::cpu) : Tensor();
  double total = 0;
  for (int64_t i = 0; i < P; ++i) {
    const int64_t t = target.data[i];
    if (t == p.ignore_index) continue;
    if (t < 0 || t >= C)
      throw value_error(str(kCe, ": target values must be class indices in [0, ", C - 1, "] or ignore_index=",
                            p.ignore_index, ", got ", t, " at flat position ", i));
    if (weights.defined())
      detail::with_dtype(host_weights.dtype(), [&](auto tag) { total += double(host_weights.data_as<decltype(tag)>()[t]); });
    else
      total += 1.0;
  }
  pr.weight_total = total;
  return pr;
}

// grad_out has the loss's shape and input's dtype.
void check_loss_grad(const char* op, const Tensor& diff_dst, const Tensor& src, const CeProblem& pr,
                     Reduction reduction) {
  detail::check_tensor(op, "grad_out", diff_dst);
  if (diff_dst.shape() != pr.out_shape)
    throw value_error(str(op, ": grad_out must have shape ", shape_str(pr.out_shape), " (the loss with reduction='",
                          reduction_name(reduction), "'), got ", shape_str(diff_dst.shape())));
  detail::check_same_dtype(op, "grad_out", diff_dst, "input", src.dtype());
}

// The loss tensor from the kernel's per-position losses or their sum.
template <typename T>
void write_reduced(Tensor& dst, Reduction reduction, double total, double weight_total) {
  if (reduction == Reduction::sum) dst.data_as<T>()[0] = static_cast<T>(total);
  // 0 / 0 (nothing counted) is NaN, as in torch.
  if (reduction == Reduction::mean) dst.data_as<T>()[0] = static_cast<T>(total / weight_total);
}

int64_t ce_workspace(const AxisGeometry& g, DType dtype) {
  // The reference materialises log_softmax / softmax.
  return use_reference() ? detail::checked_mul(g.numel(), static_cast<int64_t>(dtype_size(dtype)), kCe) : 0;
}

// The device branch. Class indices stay host arrays (Labels); each call sends
// them to the device (8-byte elements in an f64-sized buffer, reinterpreted).
Tensor device_labels(const Labels& target, Device dev) {
  const int64_t P = shape_numel(target.shape);
  Tensor host = Tensor::empty({P}, DType::f64);
  if (P) std::memcpy(host.data(), target.data, static_cast<std::size_t>(P) * sizeof(int64_t));
  return to_device(host, dev);
}

// The loss tensor from the per-position losses on the device.
Tensor device_reduce_loss(const Tensor& loss, Reduction reduction, const CeProblem& pr) {
  if (reduction == Reduction::none) return device::reshaped(loss, pr.out_shape);
  Tensor total = array_reduce(loss, {0}, ReduceOp::sum, false);
  if (reduction == Reduction::sum) return total;
  return array_binary_scalar(total, pr.weight_total, BinaryOp::div, false);  // 0 / 0 is NaN, as on the CPU
}

}  // namespace

Tensor cross_entropy_forward(const Tensor& src, const Labels& target, const Tensor& weights,
                             const CrossEntropyParams& params) {
  const Device dev = device::common_device(kCe, {{"input", &src}, {"weight", &weights}});
  detail::AllowDevice allow(dev);
  const CeProblem pr = make_ce_problem(kCe, src, target, weights, params);
  if (dev != Device::cpu) {
    const Tensor labels = device_labels(target, dev);
    Tensor loss = device::allocate(kCe, {pr.g.outer * pr.g.inner}, src.dtype(), dev);
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(kCe, dev).kernels(T{}).cross_entropy_forward(
          pr.g, src.data_as<T>(), detail::data_or_null<T>(weights), static_cast<const int64_t*>(labels.data()),
          params.ignore_index, params.label_smoothing, loss.data_as<T>());
    });
    return device_reduce_loss(loss, params.reduction, pr);
  }
  Tensor dst = detail::allocate_checked(kCe, pr.out_shape, src.dtype(), ce_workspace(pr.g, src.dtype()));
  const cpu::CrossEntropyTerms terms{target.data, params.ignore_index, params.label_smoothing};
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* w = detail::data_or_null<T>(weights);
    T* loss = params.reduction == Reduction::none ? dst.data_as<T>() : nullptr;
    const double total = use_reference() ? cpu::ref::cross_entropy_forward<T>(pr.g, src.data_as<T>(), w, terms, loss)
                                         : cpu::cross_entropy_forward<T>(pr.g, src.data_as<T>(), w, terms, loss);
    write_reduced<T>(dst, params.reduction, total, pr.weight_total);
  });
  return dst;
}

Tensor cross_entropy_backward(const Tensor& diff_dst, const Tensor& src, const Labels& target, const Tensor& weights,
                              const CrossEntropyParams& params) {
  const Device dev = device::common_device(kCe, {{"input", &src}, {"grad_out", &diff_dst}, {"weight", &weights}});
  detail::AllowDevice allow(dev);
  const CeProblem pr = make_ce_problem(kCe, src, target, weights, params);
  check_loss_grad(kCe, diff_dst, src, pr, params.reduction);
  const int64_t dstride = params.reduction == Reduction::none ? 1 : 0;
  const double factor = params.reduction == Reduction::mean ? 1.0 / pr.weight_total : 1.0;
  if (dev != Device::cpu) {
    const Tensor labels = device_labels(target, dev);
    Tensor diff_src = device::allocate(kCe, src.shape(), src.dtype(), dev);
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(kCe, dev).kernels(T{}).cross_entropy_backward(
          pr.g, diff_dst.data_as<T>(), dstride, factor, src.data_as<T>(), detail::data_or_null<T>(weights),
          static_cast<const int64_t*>(labels.data()), params.ignore_index, params.label_smoothing,
          diff_src.data_as<T>());
    });
    return diff_src;
  }
  Tensor diff_src = detail::allocate_checked(kCe, src.shape(), src.dtype(), ce_workspace(pr.g, src.dtype()));
  const cpu::CrossEntropyTerms terms{target.data, params.ignore_index, params.label_smoothing};
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* w = detail::data_or_null<T>(weights);
    if (use_reference())
      cpu::ref::cross_entropy_backward<T>(pr.g, diff_dst.data_as<T>(), dstride, factor, src.data_as<T>(), w, terms,
                                          diff_src.data_as<T>());
    else
      cpu::cross_entropy_backward<T>(pr.g, diff_dst.data_as<T>(), dstride, factor, src.data_as<T>(), w, terms,
                                     diff_src.data_as<T>());
  });
  return diff_src;
}

Tensor nll_loss_forward(const Tensor& src, const Labels& target, const Tensor& weights, const NllLossParams& params) {
  const Device dev = device::common_device(kNll, {{"input", &src}, {"weight", &weights}});
  detail::AllowDevice allow(dev);
  const CeProblem pr = make_ce_problem(kNll, src, target, weights, {params.ignore_index, params.reduction, 0.0});
  if (dev != Device::cpu) {
    const Tensor labels = device_labels(target, dev);
    Tensor loss = device::allocate(kNll, {pr.g.outer * pr.g.inner}, src.dtype(), dev);
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(kNll, dev).kernels(T{}).nll_loss_forward(
          pr.g, src.data_as<T>(), detail::data_or_null<T>(weights), static_cast<const int64_t*>(labels.data()),
          params.ignore_index, loss.data_as<T>());
    });
    return device_reduce_loss(loss, params.reduction, pr);
  }
  Tensor dst = detail::allocate_checked(kNll, pr.out_shape, src.dtype(), 0);
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* loss = params.reduction == Reduction::none ? dst.data_as<T>() : nullptr;
    const double total = cpu::ref::nll_loss_forward<T>(pr.g, src.data_as<T>(), detail::data_or_null<T>(weights),
                                                       target.data, params.ignore_index, loss);
    write_reduced<T>(dst, params.reduction, total, pr.weight_total);
  });
  return dst;
}

Tensor nll_loss_backward(const Tensor& diff_dst, const Tensor& src, const Labels& target, const Tensor& weights,
                         const NllLossParams& params) {
  const Device dev = device::common_device(kNll, {{"input", &src}, {"grad_out", &diff_dst}, {"weight", &weights}});
  detail::AllowDevice allow(dev);
  const CeProblem pr = make_ce_problem(kNll, src, target, weights, {params.ignore_index, params.reduction, 0.0});
  check_loss_grad(kNll, diff_dst, src, pr, params.reduction);
  const int64_t dstride = params.reduction == Reduction::none ? 1 : 0;
  const double factor = params.reduction == Reduction::mean ? 1.0 / pr.weight_total : 1.0;
  if (dev != Device::cpu) {
    const Tensor labels = device_labels(target, dev);
    Tensor diff_src = device::allocate(kNll, src.shape(), src.dtype(), dev);
    detail::with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for(kNll, dev).kernels(T{}).nll_loss_backward(
          pr.g, diff_dst.data_as<T>(), dstride, factor, detail::data_or_null<T>(weights),
          static_cast<const int64_t*>(labels.data()), params.ignore_index, diff_src.data_as<T>());
    });
    return diff_src;
  }
  Tensor diff_src = detail::allocate_checked(kNll, src.shape(), src.dtype(), 0);
  detail::with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::ref::nll_loss_backward<T>(pr.g, diff_dst.data_as<T>(), dstride, factor, detail::data_or_null<T>(weights),
                                   target.data, params.ignore_index, diff_src.data_as<T>());
  });
  return diff_src;
}

}  // namespace cnncore
