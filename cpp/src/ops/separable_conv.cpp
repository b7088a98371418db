// Depthwise-separable convolution as the composition of two convolutions;
// the backward recomputes the depthwise output instead of keeping it.
#include "device/backend.hpp"
#include "cnncore/conv.hpp"
#include "cnncore/error.hpp"
#include "ops/checks.hpp"
#include "ops/conv_geometry.hpp"

namespace cnncore {

using detail::str;

namespace {

// Every array is defined and has x's dtype (bias and grad_out when given).
void check_arrays(const char* op, const Tensor& src, const Tensor& depthwise, const Tensor& pointwise,
                  const Tensor& bias, const Tensor& diff_dst) {
  detail::check_pair(op, "x", src, "depthwise_weight", depthwise);
  detail::check_pair(op, "x", src, "pointwise_weight", pointwise);
  if (bias.defined()) detail::check_pair(op, "x", src, "bias", bias);
  if (diff_dst.defined()) detail::check_pair(op, "x", src, "grad_out", diff_dst);
}

ConvParams depthwise_params(const char* op, const Tensor& src, const Tensor& depthwise, const ConvParams& params) {
  if (src.dim() < 3 || depthwise.dim() != src.dim())
    throw value_error(str(op, ": depthwise_weight must have the rank of x (", src.dim(),
                          "): (C_in*multiplier, 1, k...), got shape ", shape_str(depthwise.shape())));
  const int64_t C_in = src.size(1);
  if (depthwise.size(1) != 1 || C_in < 1 || depthwise.size(0) % C_in != 0)
    throw value_error(str(op, ": depthwise_weight must have shape (C_in*multiplier, 1, k...) with C_in=", C_in,
                          ", got ", shape_str(depthwise.shape())));
  ConvParams p = params;
  p.groups = C_in;
  return p;
}

ConvParams pointwise_params(const char* op, const Tensor& depthwise, const Tensor& pointwise) {
  bool ok = pointwise.dim() == depthwise.dim() && pointwise.size(1) == depthwise.size(0);
  for (int64_t a = 2; ok && a < pointwise.dim(); ++a) ok = pointwise.size(a) == 1;
  if (!ok)
    throw value_error(str(op, ": pointwise_weight must have shape (C_out, ", depthwise.size(0), ", 1...) to follow ",
                          "the depthwise stage, got ", shape_str(pointwise.shape())));
  ConvParams p;
  p.algorithm = ConvAlgorithm::auto_;
  return p;
}

}  // namespace

Tensor separable_conv_forward(const Tensor& src, const Tensor& depthwise, const Tensor& pointwise,
                              const Tensor& bias, const ConvParams& params, const char* op, int spatial_dims) {
  detail::AllowDevice allow(device::common_device(
      op, {{"x", &src}, {"depthwise_weight", &depthwise}, {"pointwise_weight", &pointwise}, {"bias", &bias}}));
  check_arrays(op, src, depthwise, pointwise, bias, Tensor());
  const ConvParams dp = depthwise_params(op, src, depthwise, params);
  const ConvParams pp = pointwise_params(op, depthwise, pointwise);
  const Tensor mid = conv_forward(src, depthwise, Tensor(), dp, op, spatial_dims);
  return conv_forward(mid, pointwise, bias, pp, op, spatial_dims);
}

std::vector<Tensor> separable_conv_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& depthwise,
                                            const Tensor& pointwise, bool need_bias, const ConvParams& params,
                                            const char* op, int spatial_dims) {
  detail::AllowDevice allow(device::common_device(op, {{"x", &src}, {"grad_out", &diff_dst},
                                                       {"depthwise_weight", &depthwise},
                                                       {"pointwise_weight", &pointwise}}));
  detail::check_tensor(op, "grad_out", diff_dst);
  check_arrays(op, src, depthwise, pointwise, Tensor(), diff_dst);
  const ConvParams dp = depthwise_params(op, src, depthwise, params);
  const ConvParams pp = pointwise_params(op, depthwise, pointwise);
  const Tensor mid = conv_forward(src, depthwise, Tensor(), dp, op, spatial_dims);
  const Tensor diff_mid = conv_backward_data(diff_dst, pointwise, mid.shape(), pp, op, spatial_dims);
  return {conv_backward_data(diff_mid, depthwise, src.shape(), dp, op, spatial_dims),
          conv_backward_weight(diff_mid, src, depthwise.shape(), dp, op, spatial_dims),
          conv_backward_weight(diff_dst, mid, pointwise.shape(), pp, op, spatial_dims),
          need_bias ? conv_backward_bias(diff_dst, op) : Tensor()};
}

}  // namespace cnncore
