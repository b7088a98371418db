// Transposed convolution through the convolution kernels.
//
// With `full` = (in-1)*stride + dilation*(k-1) + 1 per axis, the convolution
// C from a full-size input to an in-size output (no padding) has adjoint C^T.
// Transposed convolution is y = crop(C^T x): the window [pad_before,
// pad_before + out) of the full result, zero where it runs past it. So
//   forward          y  = crop(backward_data_C(x))
//   backward data    gx = forward_C(embed(gy))
//   backward weight  gw = backward_weight_C(diff_dst = x, src = embed(gy))
// where embed is the adjoint of crop.
#include <algorithm>
#include <cstring>
#include <string>

#include "cnncore/conv.hpp"
#include "cnncore/device.hpp"
#include "cnncore/error.hpp"
#include "device/backend.hpp"
#include "cnncore/runtime.hpp"
#include "ops/conv_geometry.hpp"
#include "ops/checks.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::str;

namespace {

struct TransposeGeometry {
  int nd = 2;
  ConvParams conv;  // the convolution C
  Shape full_shape, dst_shape;
  int64_t full[3] = {1, 1, 1}, out[3] = {1, 1, 1}, crop[3] = {0, 0, 0};
  int64_t planes = 0;  // N * C_out
};

TransposeGeometry make_geometry(const char* op, int spatial_dims, const Shape& src, const Shape& weights,
                                const ConvTransposeParams& p) {
  TransposeGeometry g;
  g.nd = detail::resolve_spatial_rank(op, spatial_dims, src);
  const int nd = g.nd;
  const std::size_t rank = static_cast<std::size_t>(nd) + 2;
  if (src.size() != rank)
    throw value_error(str(op, ": x must have ", rank, " dimensions (N, C_in, spatial...), got shape ", shape_str(src)));
  if (weights.size() != rank)
    throw value_error(str(op, ": weight must have ", rank, " dimensions (C_in, C_out/groups, k...), got shape ",
                          shape_str(weights)));
  if (p.groups < 1) throw value_error(str(op, ": groups must be a positive integer, got ", p.groups));
  if (weights[0] != src[1])
    throw value_error(str(op, ": weight.shape[0] must equal x's ", src[1], " input channels (weight is (C_in, ",
                          "C_out/groups, k...)), got weight shape ", shape_str(weights)));
  if (src[1] % p.groups != 0)
    throw value_error(str(op, ": groups=", p.groups, " must divide the input channels, x has ", src[1]));
  const auto per_axis = [&](const std::vector<int64_t>& v, const char* name, int64_t dflt, int64_t lo) {
    if (!v.empty() && v.size() != static_cast<std::size_t>(nd))
      throw value_error(str(op, ": ", name, " must have ", nd, " values (one per spatial axis), got ", v.size()));
    std::vector<int64_t> r(static_cast<std::size_t>(nd), dflt);
    for (std::size_t a = 0; a < r.size(); ++a) {
      if (!v.empty()) r[a] = v[a];
      if (r[a] < lo)
        throw value_error(str(op, ": ", name, " must be ", lo == 1 ? "positive" : "non-negative", ", got ", r[a]));
    }
    return r;
  };
  const auto stride = per_axis(p.stride, "stride", 1, 1);
  const auto dilation = per_axis(p.dilation, "dilation", 1, 1);
  const auto out_pad = per_axis(p.output_padding, "output_padding", 0, 0);
  if (!p.padding.empty() && p.padding.size() != 2 * static_cast<std::size_t>(nd))
    throw value_error(str(op, ": padding must have ", 2 * nd, " values (before and after each axis), got ",
                          p.padding.size()));
  g.conv.stride = stride;
  g.conv.dilation = dilation;
  g.conv.groups = p.groups;
  g.conv.algorithm = p.algorithm;
  g.full_shape = {src[0], weights[1] * p.groups};
  g.dst_shape = g.full_shape;
  for (int a = 0; a < nd; ++a) {
    const std::size_t i = static_cast<std::size_t>(a);
    const int64_t in = src[2 + i], k = weights[2 + i];
    if (in < 1 || k < 1)
      throw value_error(str(op, ": x and weight must have positive spatial sizes, got x ", shape_str(src),
                            " and weight ", shape_str(weights)));
    const int64_t before = p.padding.empty() ? 0 : p.padding[2 * i];
    const int64_t after = p.padding.empty() ? 0 : p.padding[2 * i + 1];
    if (before < 0 || after < 0)
      throw value_error(str(op, ": padding must be non-negative, got (", before, ", ", after, ")"));
    if (out_pad[i] >= stride[i] && out_pad[i] >= dilation[i])
      throw value_error(str(op, ": output_padding must be smaller than either stride or dilation, got output_padding=",
                            out_pad[i], " with stride=", stride[i], " and dilation=", dilation[i]));
    // full = (in-1)*stride + dilation*(k-1) + 1
    const int64_t full = detail::checked_add(
        detail::checked_add(detail::checked_mul(in - 1, stride[i], op), detail::checked_mul(dilation[i], k - 1, op), op),
        1, op);
    // out = full + output_padding - before - after. The padding is cropped
    // from the full output, so each side, and both together, must leave at
    // least one position; comparing before subtracting keeps every term in
    // [0, full + output_padding] (a wrapped difference once gave a window
    // past the buffer).
    const int64_t extent = detail::checked_add(full, out_pad[i], op);
    if (before >= extent || after >= extent - before)
      throw value_error(str(op, ": padding (", before, ", ", after, ") leaves no output on spatial axis ", a,
                            ": the full output has size ", full,
                            out_pad[i] ? str(" (", extent, " with output_padding)") : std::string()));
    const int64_t out = extent - before - after;
    g.full_shape.push_back(full);
    g.dst_shape.push_back(out);
    g.full[3 - nd + a] = full;
    g.out[3 - nd + a] = out;
    g.crop[3 - nd + a] = before;
  }
  g.planes = detail::checked_mul(g.full_shape[0], g.full_shape[1], op);
  const std::string sizes = str(op, ": the output size (from x, weight, stride and dilation)");
  shape_numel(g.full_shape, sizes.c_str());
  shape_numel(g.dst_shape, sizes.c_str());
  return g;
}

// dst = window of src starting at `crop` (zeros where it runs past src), or,
// with `embed`, the adjoint: the window of dst is set from src, the rest 0.
template <typename T>
void window_copy(const TransposeGeometry& g, const T* full, T* out, bool embed) {
  const int64_t full_plane = g.full[0] * g.full[1] * g.full[2], out_plane = g.out[0] * g.out[1] * g.out[2];
  const int64_t w0 = g.crop[2], wn = std::max<int64_t>(0, std::min(g.out[2], g.full[2] - w0));
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads())
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh) {
        const int64_t fd = od + g.crop[0], fh = oh + g.crop[1];
        T* o = out + pl * out_plane + (od * g.out[1] + oh) * g.out[2];
        if (fd >= g.full[0] || fh >= g.full[1] || wn == 0) {
          if (!embed) std::fill(o, o + g.out[2], T(0));
          continue;
        }
        T* f = const_cast<T*>(full) + pl * full_plane + (fd * g.full[1] + fh) * g.full[2] + w0;
        if (embed) {
          std::copy(o, o + wn, f);
        } else {
          std::copy(f, f + wn, o);
          std::fill(o + wn, o + g.out[2], T(0));
        }
      }
}

// On a device the window copy is a padding by -crop (pad forward crops, its
// adjoint embeds).
device::PadBox crop_box(const TransposeGeometry& g) {
  device::PadBox b;
  for (int a = 0; a < 3; ++a) {
    b.in[a] = g.full[a];
    b.out[a] = g.out[a];
    b.before[a] = -g.crop[a];
  }
  return b;
}

Tensor crop(const TransposeGeometry& g, const Tensor& full) {
  if (full.device() != Device::cpu) {
    Tensor out = device::allocate("conv_transpose", g.dst_shape, full.dtype(), full.device());
    detail::with_dtype(full.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for("conv_transpose", full.device())
          .kernels(T{})
          .pad_forward(crop_box(g), g.planes, T(0), full.data_as<T>(), out.data_as<T>());
    });
    return out;
  }
  Tensor out = Tensor::empty(g.dst_shape, full.dtype());
  if (out.numel() == 0) return out;
  if (full.dtype() == DType::f32)
    window_copy(g, full.data_as<float>(), out.data_as<float>(), false);
  else
    window_copy(g, full.data_as<double>(), out.data_as<double>(), false);
  return out;
}

Tensor embed(const TransposeGeometry& g, const Tensor& out) {
  if (out.device() != Device::cpu) {
    Tensor full = device::allocate("conv_transpose", g.full_shape, out.dtype(), out.device());
    detail::with_dtype(out.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for("conv_transpose", out.device())
          .kernels(T{})
          .pad_backward(crop_box(g), g.planes, out.data_as<T>(), full.data_as<T>());
    });
    return full;
  }
  Tensor full = Tensor::zeros(g.full_shape, out.dtype());
  if (out.numel() == 0) return full;
  if (out.dtype() == DType::f32)
    window_copy(g, full.data_as<float>(), out.data_as<float>(), true);
  else
    window_copy(g, full.data_as<double>(), out.data_as<double>(), true);
  return full;
}

}  // namespace

Shape conv_transpose_output_shape(const Shape& src, const Shape& weights, const ConvTransposeParams& params,
                                  const char* op, int spatial_dims) {
  return make_geometry(op, spatial_dims, src, weights, params).dst_shape;
}

Tensor conv_transpose_forward(const Tensor& src, const Tensor& weights, const Tensor& bias,
                              const ConvTransposeParams& params, const char* op, int spatial_dims) {
  const Device dev = device::common_device(op, {{"x", &src}, {"weight", &weights}, {"bias", &bias}});
  detail::AllowDevice allow(dev);
  detail::check_pair(op, "x", src, "weight", weights);
  const TransposeGeometry g = make_geometry(op, spatial_dims, src.shape(), weights.shape(), params);
  if (bias.defined()) {
    detail::check_bias_shape(op, bias.shape(), g.dst_shape[1]);
    detail::check_pair(op, "x", src, "bias", bias);
  }
  if (dev != Device::cpu) {
    Tensor y = crop(g, conv_backward_data(src, weights, g.full_shape, g.conv, op, g.nd));
    if (!bias.defined() || y.numel() == 0) return y;
    Shape bshape(g.dst_shape.size(), 1);
    bshape[1] = g.dst_shape[1];
    return array_binary(y, device::reshaped(bias, bshape), BinaryOp::add);
  }
  check_memory(op, detail::checked_mul(detail::checked_add(shape_numel(g.full_shape), shape_numel(g.dst_shape), op),
                                       static_cast<int64_t>(dtype_size(src.dtype())), op));
  Tensor y = crop(g, conv_backward_data(src, weights, g.full_shape, g.conv, op, g.nd));
  if (bias.defined() && y.numel() > 0) {
    const int64_t C = g.dst_shape[1], inner = y.numel() / g.planes;
    const auto add = [&](auto* yp, const auto* bp) {
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
      for (int64_t pl = 0; pl < g.planes; ++pl)
        for (int64_t i = 0; i < inner; ++i) yp[pl * inner + i] += bp[pl % C];
    };
    if (y.dtype() == DType::f32)
      add(y.data_as<float>(), bias.data_as<float>());
    else
      add(y.data_as<double>(), bias.data_as<double>());
  }
  return y;
}

Tensor conv_transpose_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                                    const ConvTransposeParams& params, const char* op, int spatial_dims) {
  detail::AllowDevice allow(device::common_device(op, {{"grad_out", &diff_dst}, {"weight", &weights}}));
  detail::check_pair(op, "grad_out", diff_dst, "weight", weights);
  const TransposeGeometry g = make_geometry(op, spatial_dims, src_shape, weights.shape(), params);
  detail::check_grad_out_shape(op, diff_dst.shape(), g.dst_shape);
  return conv_forward(embed(g, diff_dst), weights, Tensor(), g.conv, op, g.nd);
}

Tensor conv_transpose_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                                      const ConvTransposeParams& params, const char* op, int spatial_dims) {
  detail::AllowDevice allow(device::common_device(op, {{"x", &src}, {"grad_out", &diff_dst}}));
  detail::check_pair(op, "x", src, "grad_out", diff_dst);
  const TransposeGeometry g = make_geometry(op, spatial_dims, src.shape(), weights_shape, params);
  detail::check_grad_out_shape(op, diff_dst.shape(), g.dst_shape);
  return conv_backward_weight(src, embed(g, diff_dst), weights_shape, g.conv, op, g.nd);
}

}  // namespace cnncore
