// The op layer of tiled and locally connected convolution: validate once
// (reusing the convolution geometry), allocate, pick an implementation, run.
// A locally connected layer is the tiled convolution whose tile is the
// output size, so both share every function below.
#include "cnncore/local_conv.hpp"

#include "cnncore/error.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/local-conv-geometry.hpp"
#include "cpu/kernels/local-conv-im2col.hpp"
#include "cpu/ref/local-conv-ref.hpp"
#include "ops/conv_geometry.hpp"
#include "ops/checks.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::ConvPass;
using detail::LocalConvGeometry;
using detail::str;
using detail::check_tensor;
using detail::check_same_dtype;
using detail::with_dtype;
using detail::tuple_str;

LocalConvAlgorithm parse_local_conv_algorithm(const std::string& name) {
  if (name == "auto") return LocalConvAlgorithm::auto_;
  if (name == "reference") return LocalConvAlgorithm::reference;
  if (name == "im2col") return LocalConvAlgorithm::im2col;
  throw value_error(str("algorithm must be one of 'auto', 'reference', 'im2col', got '", name, "'"));
}

const char* local_conv_algorithm_name(LocalConvAlgorithm algorithm) {
  switch (algorithm) {
    case LocalConvAlgorithm::auto_: return "auto";
    case LocalConvAlgorithm::reference: return "reference";
    case LocalConvAlgorithm::im2col: return "im2col";
  }
  return "?";
}

namespace {

enum class Kind { local, tiled };

const char* op_name(Kind kind) { return kind == Kind::local ? "local_conv2d" : "tiled_conv2d"; }

const char* weights_layout(Kind kind) {
  return kind == Kind::local ? "(H_out, W_out, C_out, C_in, kH, kW)" : "(tH, tW, C_out, C_in, kH, kW)";
}
const char* bias_layout(Kind kind) { return kind == Kind::local ? "(C_out, H_out, W_out)" : "(C_out, tH, tW)"; }

// The tile of a tiled convolution: two positive values (empty for local).
void check_tile(Kind kind, const LocalConvParams& p) {
  const char* op = op_name(kind);
  if (kind == Kind::local) {
    if (!p.tile.empty())
      throw value_error(str(op, ": tile is not a parameter of local_conv2d (its tile is the output size, one kernel "
                                "per position); use tiled_conv2d for a smaller tile"));
    return;
  }
  if (p.tile.size() != 2)
    throw value_error(str(op, ": tile must have 2 values (tH, tW), got ", p.tile.size()));
  for (int a = 0; a < 2; ++a)
    if (p.tile[static_cast<std::size_t>(a)] < 1)
      throw value_error(str(op, ": tile must be positive, got ", p.tile[static_cast<std::size_t>(a)], " on axis ",
                            a == 0 ? "H" : "W", " (tile=", tuple_str(p.tile), ")"));
}

ConvParams conv_params(const LocalConvParams& p) {
  ConvParams c;
  c.stride = p.stride;
  c.dilation = p.dilation;
  c.padding = p.padding;
  c.padding_preset = p.padding_preset;
  c.padding_mode = p.padding_mode;
  c.flip = p.flip;
  return c;
}

// Validates x, the weights' shape and the parameters. The sizes, padding and
// output come from the ordinary convolution with one kernel, (C_out, C_in,
// kH, kW); the leading (tH, tW) of the weights are then checked against the
// tile (tiled) or the output size (local) unless `any_leading` (output shape
// queries, made before the weights exist).
LocalConvGeometry make_geometry(Kind kind, const Shape& src, const Shape& weights, const LocalConvParams& p,
                                bool any_leading = false) {
  const char* op = op_name(kind);
  check_tile(kind, p);
  if (src.size() != 4)
    throw value_error(str(op, ": x must have 4 dimensions (N, C_in, H, W), got ", src.size(), " with shape ",
                          tuple_str(src)));
  if (weights.size() != 6)
    throw value_error(str(op, ": weight must have 6 dimensions ", weights_layout(kind), ", got ", weights.size(),
                          " with shape ", tuple_str(weights)));
  for (std::size_t a : {std::size_t{2}, std::size_t{4}, std::size_t{5}})
    if (weights[a] < 1)
      throw value_error(str(op, ": weight must have a positive C_out, kH and kW (", weights_layout(kind),
                            "), got shape ", tuple_str(weights)));
  // C_in is taken from x here, so that a channel mismatch is reported below
  // with the whole expected weight shape.
  const Shape one_kernel{weights[2], src[1], weights[4], weights[5]};
  LocalConvGeometry g;
  g.conv = detail::make_conv_geometry(op, 2, src, one_kernel, conv_params(p));
  g.tile[0] = kind == Kind::local ? g.conv.out[1] : p.tile[0];
  g.tile[1] = kind == Kind::local ? g.conv.out[2] : p.tile[1];
  Shape want = g.weights_shape();
  if (any_leading) want[0] = weights[0], want[1] = weights[1];
  if (weights != want) {
    std::string why;
    if (weights[3] != g.C_in())
      why = str("weight has C_in=", weights[3], " (weight.shape[3]) but x has ", g.C_in(), " channels; ");
    else if (kind == Kind::local)
      why = str("the output of this x, kernel, stride, padding and dilation is H_out=", g.H_out(),
                ", W_out=", g.W_out(), "; ");
    else
      why = str("tile=", tuple_str(p.tile), " needs weight.shape[:2] == ", tuple_str(p.tile), "; ");
    throw value_error(str(op, ": ", why, "weight must have shape ", weights_layout(kind), " = ", tuple_str(want),
                          ", got ", tuple_str(weights)));
  }
  // Kernel offsets and the bias are indexed up to classes * block / classes * C_out.
  const std::string ctx = str(op, ": the sizes of weight and bias");
  detail::checked_mul(detail::checked_mul(g.tile[0], g.tile[1], ctx.c_str()),
                      detail::checked_mul(g.C_out(), g.K(), ctx.c_str()), ctx.c_str());
  return g;
}

void check_diff_dst(const char* op, const Tensor& diff_dst, const LocalConvGeometry& g) {
  if (diff_dst.dim() != 4)
    throw value_error(str(op, ": grad_out must have 4 dimensions (N, C_out, H_out, W_out), got ", diff_dst.dim(),
                          " with shape ", tuple_str(diff_dst.shape())));
  if (diff_dst.shape() != g.dst_shape())
    throw value_error(str(op, ": grad_out must have the forward output's shape (N, C_out, H_out, W_out) = ",
                          tuple_str(g.dst_shape()), ", got ", tuple_str(diff_dst.shape())));
}

LocalConvAlgorithm choose(LocalConvAlgorithm requested) {
  if (requested == LocalConvAlgorithm::auto_)
    return get_isa() == Isa::ref ? LocalConvAlgorithm::reference : LocalConvAlgorithm::im2col;
  return requested;
}

// The result plus the chosen implementation's workspace must fit the memory
// limit before anything is allocated.
void check_budget(const char* op, const LocalConvGeometry& g, LocalConvAlgorithm algo, ConvPass pass, DType dtype,
                  int64_t result_elems) {
  const int64_t es = static_cast<int64_t>(dtype_size(dtype));
  const int64_t ws =
      algo == LocalConvAlgorithm::im2col ? cpu::local_conv_im2col_workspace_bytes(g, es, pass, get_num_threads()) : 0;
  check_memory(op, detail::checked_add(detail::checked_mul(result_elems, es, op), ws, op));
}

Tensor forward(Kind kind, const Tensor& src, const Tensor& weights, const Tensor& bias, const LocalConvParams& p) {
  const char* op = op_name(kind);
  check_tensor(op, "x", src);
  check_tensor(op, "weight", weights);
  const LocalConvGeometry g = make_geometry(kind, src.shape(), weights.shape(), p);
  check_same_dtype(op, "weight", weights, "x", src.dtype());
  if (bias.defined()) {
    check_tensor(op, "bias", bias);
    if (bias.shape() != g.bias_shape())
      throw value_error(str(op, ": bias must have one value per output channel and ",
                            kind == Kind::local ? "position" : "tile entry", ", shape ", bias_layout(kind), " = ",
                            tuple_str(g.bias_shape()), ", got ", tuple_str(bias.shape())));
    check_same_dtype(op, "bias", bias, "x", src.dtype());
  }
  const LocalConvAlgorithm algo = choose(p.algorithm);
  check_budget(op, g, algo, ConvPass::forward, src.dtype(), shape_numel(g.dst_shape()));
  Tensor dst = Tensor::empty(g.dst_shape(), src.dtype());
  if (dst.numel() == 0) return dst;
  with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* b = bias.defined() ? bias.data_as<T>() : nullptr;
    if (algo == LocalConvAlgorithm::reference)
      cpu::ref::local_conv_forward<T>(g, src.data_as<T>(), weights.data_as<T>(), b, dst.data_as<T>());
    else
      cpu::local_conv_forward_im2col<T>(g, src.data_as<T>(), weights.data_as<T>(), b, dst.data_as<T>());
  });
  return dst;
}

Tensor backward_data(Kind kind, const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                     const LocalConvParams& p) {
  const char* op = op_name(kind);
  check_tensor(op, "grad_out", diff_dst);
  check_tensor(op, "weight", weights);
  const LocalConvGeometry g = make_geometry(kind, src_shape, weights.shape(), p);
  check_diff_dst(op, diff_dst, g);
  check_same_dtype(op, "weight", weights, "grad_out", diff_dst.dtype());
  const LocalConvAlgorithm algo = choose(p.algorithm);
  check_budget(op, g, algo, ConvPass::backward_data, diff_dst.dtype(), shape_numel(src_shape));
  Tensor diff_src = Tensor::zeros(src_shape, diff_dst.dtype());
  if (diff_src.numel() == 0) return diff_src;
  with_dtype(diff_dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (algo == LocalConvAlgorithm::reference)
      cpu::ref::local_conv_backward_data<T>(g, diff_dst.data_as<T>(), weights.data_as<T>(), diff_src.data_as<T>());
    else
      cpu::local_conv_backward_data_im2col<T>(g, diff_dst.data_as<T>(), weights.data_as<T>(),
                                              diff_src.data_as<T>());
  });
  return diff_src;
}

Tensor backward_weight(Kind kind, const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                       const LocalConvParams& p) {
  const char* op = op_name(kind);
  check_tensor(op, "grad_out", diff_dst);
  check_tensor(op, "x", src);
  const LocalConvGeometry g = make_geometry(kind, src.shape(), weights_shape, p);
  check_diff_dst(op, diff_dst, g);
  check_same_dtype(op, "grad_out", diff_dst, "x", src.dtype());
  const LocalConvAlgorithm algo = choose(p.algorithm);
  check_budget(op, g, algo, ConvPass::backward_weight, src.dtype(), shape_numel(weights_shape));
  Tensor diff_w = Tensor::zeros(weights_shape, src.dtype());
  if (g.N() == 0) return diff_w;
  with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (algo == LocalConvAlgorithm::reference)
      cpu::ref::local_conv_backward_weight<T>(g, diff_dst.data_as<T>(), src.data_as<T>(), diff_w.data_as<T>());
    else
      cpu::local_conv_backward_weight_im2col<T>(g, diff_dst.data_as<T>(), src.data_as<T>(), diff_w.data_as<T>());
  });
  return diff_w;
}

// db[o, ti, tj] = sum of grad_out[n, o, i, j] over n and the (i, j) of class (ti, tj).
Tensor backward_bias(Kind kind, const Tensor& diff_dst, const LocalConvParams& p) {
  const char* op = op_name(kind);
  check_tensor(op, "grad_out", diff_dst);
  check_tile(kind, p);
  const Shape& s = diff_dst.shape();
  if (s.size() != 4)
    throw value_error(str(op, ": grad_out must have 4 dimensions (N, C_out, H_out, W_out), got shape ",
                          tuple_str(s)));
  const int64_t N = s[0], C = s[1], Ho = s[2], Wo = s[3];
  const int64_t tH = kind == Kind::local ? Ho : p.tile[0], tW = kind == Kind::local ? Wo : p.tile[1];
  const Shape db_shape{C, tH, tW};
  check_memory(op, detail::checked_mul(shape_numel(db_shape), static_cast<int64_t>(dtype_size(diff_dst.dtype())), op));
  Tensor db = Tensor::zeros(db_shape, diff_dst.dtype());
  with_dtype(diff_dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* dy = diff_dst.data_as<T>();
    T* out = db.data_as<T>();
    // Each output channel's entries have one writer.
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
    for (int64_t o = 0; o < C; ++o) {
      T* d = out + o * tH * tW;
      for (int64_t n = 0; n < N; ++n) {
        const T* plane = dy + (n * C + o) * Ho * Wo;
        for (int64_t i = 0; i < Ho; ++i) {
          T* row = d + (i % tH) * tW;
          for (int64_t j = 0; j < Wo; ++j) row[j % tW] += plane[i * Wo + j];
        }
      }
    }
  });
  return db;
}

}  // namespace

Shape local_conv2d_output_shape(const Shape& src, const Shape& weights, const LocalConvParams& params) {
  return make_geometry(Kind::local, src, weights, params, true).dst_shape();
}
Shape tiled_conv2d_output_shape(const Shape& src, const Shape& weights, const LocalConvParams& params) {
  return make_geometry(Kind::tiled, src, weights, params, true).dst_shape();
}

Tensor local_conv2d_forward(const Tensor& src, const Tensor& weights, const Tensor& bias,
                            const LocalConvParams& params) {
  return forward(Kind::local, src, weights, bias, params);
}
Tensor local_conv2d_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                                  const LocalConvParams& params) {
  return backward_data(Kind::local, diff_dst, weights, src_shape, params);
}
Tensor local_conv2d_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                                    const LocalConvParams& params) {
  return backward_weight(Kind::local, diff_dst, src, weights_shape, params);
}
Tensor local_conv2d_backward_bias(const Tensor& diff_dst) {
  return backward_bias(Kind::local, diff_dst, LocalConvParams{});
}

Tensor tiled_conv2d_forward(const Tensor& src, const Tensor& weights, const Tensor& bias,
                            const LocalConvParams& params) {
  return forward(Kind::tiled, src, weights, bias, params);
}
Tensor tiled_conv2d_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                                  const LocalConvParams& params) {
  return backward_data(Kind::tiled, diff_dst, weights, src_shape, params);
}
Tensor tiled_conv2d_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                                    const LocalConvParams& params) {
  return backward_weight(Kind::tiled, diff_dst, src, weights_shape, params);
}
Tensor tiled_conv2d_backward_bias(const Tensor& diff_dst, const LocalConvParams& params) {
  return backward_bias(Kind::tiled, diff_dst, params);
}

Gradients local_conv2d_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weights, GradMask mask,
                                const LocalConvParams& params) {
  detail::check_pair("local_conv2d", "x", src, "weight", weights);
  Gradients grads;
  if (mask.diff_src) grads.diff_src = local_conv2d_backward_data(diff_dst, weights, src.shape(), params);
  if (mask.diff_weights) grads.diff_weights = local_conv2d_backward_weight(diff_dst, src, weights.shape(), params);
  if (mask.diff_bias) grads.diff_bias = local_conv2d_backward_bias(diff_dst);
  return grads;
}

Gradients tiled_conv2d_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weights, GradMask mask,
                                const LocalConvParams& params) {
  detail::check_pair("tiled_conv2d", "x", src, "weight", weights);
  Gradients grads;
  if (mask.diff_src) grads.diff_src = tiled_conv2d_backward_data(diff_dst, weights, src.shape(), params);
  if (mask.diff_weights) grads.diff_weights = tiled_conv2d_backward_weight(diff_dst, src, weights.shape(), params);
  if (mask.diff_bias) grads.diff_bias = tiled_conv2d_backward_bias(diff_dst, params);
  return grads;
}

}  // namespace cnncore
