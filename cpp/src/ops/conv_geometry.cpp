#include "ops/conv_geometry.hpp"

#include <algorithm>

#include "cnncore/error.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::checked_add;
using detail::checked_mul;
using detail::str;

namespace {

const char* const* axis_names(int nd) {
  static const char* const n1[] = {"L"};
  static const char* const n2[] = {"H", "W"};
  static const char* const n3[] = {"D", "H", "W"};
  return nd == 1 ? n1 : nd == 2 ? n2 : n3;
}

std::string layout_name(int nd, bool weights) {
  if (weights) return nd == 1 ? "(C_out, C_in/groups, kL)" : nd == 2 ? "(C_out, C_in/groups, kH, kW)"
                                                                     : "(C_out, C_in/groups, kD, kH, kW)";
  return nd == 1 ? "(N, C_in, L)" : nd == 2 ? "(N, C_in, H, W)" : "(N, C_in, D, H, W)";
}

// Expands a per-axis parameter (empty = default) and checks its values.
void per_axis(const char* op, const char* name, const std::vector<int64_t>& v, int nd, int64_t dflt,
              int64_t minimum, int64_t* out) {
  if (!v.empty() && static_cast<int>(v.size()) != nd)
    throw value_error(str(op, ": ", name, " must have ", nd, " value", nd == 1 ? "" : "s",
                          " (one per spatial axis), got ", v.size()));
  for (int a = 0; a < nd; ++a) {
    const int64_t x = v.empty() ? dflt : v[static_cast<std::size_t>(a)];
    if (x < minimum)
      throw value_error(str(op, ": ", name, " must be ", minimum == 1 ? "positive" : "non-negative",
                            ", got ", x, " on axis ", axis_names(nd)[a]));
    out[3 - nd + a] = x;
  }
}

}  // namespace

PaddingMode parse_padding_mode(const std::string& name) {
  if (name == "zeros") return PaddingMode::zeros;
  if (name == "reflect") return PaddingMode::reflect;
  if (name == "replicate") return PaddingMode::replicate;
  if (name == "circular") return PaddingMode::circular;
  if (name == "symmetric") return PaddingMode::symmetric;
  throw value_error(str("padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', 'symmetric', got '",
                        name, "'"));
}

PaddingPreset parse_padding_preset(const std::string& name) {
  if (name == "valid") return PaddingPreset::valid;
  if (name == "same") return PaddingPreset::same;
  if (name == "full") return PaddingPreset::full;
  throw value_error(str("padding must be an integer, a tuple of integers, or one of 'valid', 'same', ",
                        "'full', got '", name, "'"));
}

ConvAlgorithm parse_conv_algorithm(const std::string& name) {
  if (name == "auto") return ConvAlgorithm::auto_;
  if (name == "reference") return ConvAlgorithm::reference;
  if (name == "im2col") return ConvAlgorithm::im2col;
  if (name == "direct") return ConvAlgorithm::direct;
  if (name == "fft") return ConvAlgorithm::fft;
  if (name == "winograd") return ConvAlgorithm::winograd;
  if (name == "winograd2") return ConvAlgorithm::winograd2;
  if (name == "winograd4") return ConvAlgorithm::winograd4;
  if (name == "winograd6") return ConvAlgorithm::winograd6;
  throw value_error(str("algorithm must be one of 'auto', 'reference', 'im2col', 'direct', 'fft', 'winograd', ",
                        "'winograd2', 'winograd4', 'winograd6', got '", name, "'"));
}

const char* padding_mode_name(PaddingMode mode) {
  switch (mode) {
    case PaddingMode::zeros: return "zeros";
    case PaddingMode::reflect: return "reflect";
    case PaddingMode::replicate: return "replicate";
    case PaddingMode::circular: return "circular";
    case PaddingMode::symmetric: return "symmetric";
  }
  return "?";
}

const char* conv_algorithm_name(ConvAlgorithm algorithm) {
  switch (algorithm) {
    case ConvAlgorithm::auto_: return "auto";
    case ConvAlgorithm::reference: return "reference";
    case ConvAlgorithm::im2col: return "im2col";
    case ConvAlgorithm::direct: return "direct";
    case ConvAlgorithm::fft: return "fft";
    case ConvAlgorithm::winograd: return "winograd";
    case ConvAlgorithm::winograd2: return "winograd2";
    case ConvAlgorithm::winograd4: return "winograd4";
    case ConvAlgorithm::winograd6: return "winograd6";
  }
  return "?";
}

int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                         int64_t pad_before, int64_t pad_after) {
  const char* op = "conv_output_size";
  if (in < 1 || kernel < 1 || stride < 1 || dilation < 1 || pad_before < 0 || pad_after < 0)
    throw value_error(str(op, ": expects in, kernel, stride, dilation >= 1 and paddings >= 0, got in=", in,
                          " kernel=", kernel, " stride=", stride, " dilation=", dilation,
                          " padding=(", pad_before, ", ", pad_after, ")"));
  return detail::window_output_size(op, "L", in, pad_before, pad_after, kernel, stride, dilation);
}

namespace detail {

int64_t window_output_size(const char* op, const char* axis, int64_t in, int64_t pad_before, int64_t pad_after,
                           int64_t k, int64_t stride, int64_t dilation) {
  const std::string pad_ctx = str(op, ": padding"), dil_ctx = str(op, ": dilation");
  const int64_t padded = checked_add(checked_add(in, pad_before, pad_ctx.c_str()), pad_after, pad_ctx.c_str());
  const int64_t span = checked_add(checked_mul(dilation, k - 1, dil_ctx.c_str()), 1, dil_ctx.c_str());
  if (span > padded)
    throw value_error(str(op, ": kernel is larger than the padded input on axis ", axis, ": dilation*(k", axis,
                          "-1)+1 = ", span, " but the padded input has ", axis, "=", padded,
                          " (output size would be < 1)"));
  return (padded - span) / stride + 1;
}

bool ConvGeometry::has_padding() const {
  for (int a = 0; a < 3; ++a)
    if (pad_before[a] || pad_after[a]) return true;
  return false;
}

Shape ConvGeometry::src_shape() const {
  Shape s{N, C_in};
  for (int a = 3 - nd; a < 3; ++a) s.push_back(in[a]);
  return s;
}

Shape ConvGeometry::weights_shape() const {
  Shape s{C_out, C_in_g};
  for (int a = 3 - nd; a < 3; ++a) s.push_back(k[a]);
  return s;
}

Shape ConvGeometry::dst_shape() const {
  Shape s{N, C_out};
  for (int a = 3 - nd; a < 3; ++a) s.push_back(out[a]);
  return s;
}

int conv_spatial_rank(const char* op, const char* arg, const Shape& shape) {
  if (shape.size() < 3 || shape.size() > 5)
    throw value_error(str(op, ": ", arg, " must have 3, 4 or 5 dimensions (N, C, spatial...), got ",
                          shape.size(), " with shape ", shape_str(shape)));
  return static_cast<int>(shape.size()) - 2;
}

int resolve_spatial_rank(const char* op, int spatial_dims, const Shape& src) {
  if (spatial_dims < 0 || spatial_dims > 3)
    throw value_error(str(op, ": spatial_dims must be 0 (from x) or 1..3, got ", spatial_dims));
  return spatial_dims ? spatial_dims : conv_spatial_rank(op, "x", src);
}

ConvGeometry make_conv_geometry(const char* op, int nd, const Shape& src, const Shape& weights,
                                const ConvParams& p) {
  ConvGeometry g;
  g.nd = nd;
  const std::size_t rank = static_cast<std::size_t>(nd) + 2;
  const char* const* names = axis_names(nd);
  if (src.size() != rank)
    throw value_error(str(op, ": x must have ", rank, " dimensions ", layout_name(nd, false), ", got ",
                          src.size(), " with shape ", shape_str(src)));
  if (weights.size() != rank)
    throw value_error(str(op, ": weight must have ", rank, " dimensions ", layout_name(nd, true), ", got ",
                          weights.size(), " with shape ", shape_str(weights)));

  per_axis(op, "stride", p.stride, nd, 1, 1, g.stride);
  per_axis(op, "dilation", p.dilation, nd, 1, 1, g.dilation);
  if (p.groups < 1) throw value_error(str(op, ": groups must be a positive integer, got ", p.groups));
  g.groups = p.groups;
  g.mode = p.padding_mode;
  g.flip = p.flip;

  g.N = src[0];
  g.C_in = src[1];
  g.C_out = weights[0];
  if (g.N < 0) throw value_error(str(op, ": x has a negative batch size in shape ", shape_str(src)));
  if (g.C_in < 1)
    throw value_error(str(op, ": x must have at least one channel, got shape ", shape_str(src)));
  for (int a = 0; a < nd; ++a) {
    g.in[3 - nd + a] = src[2 + static_cast<std::size_t>(a)];
    g.k[3 - nd + a] = weights[2 + static_cast<std::size_t>(a)];
    if (src[2 + static_cast<std::size_t>(a)] < 1)
      throw value_error(str(op, ": x must have a positive size on every spatial axis, got ", names[a], "=",
                            src[2 + static_cast<std::size_t>(a)], " in shape ", shape_str(src)));
    if (weights[2 + static_cast<std::size_t>(a)] < 1)
      throw value_error(str(op, ": weight must have a positive kernel size on every spatial axis, got k",
                            names[a], "=", weights[2 + static_cast<std::size_t>(a)], " in shape ",
                            shape_str(weights)));
  }
  if (g.C_out < 1)
    throw value_error(str(op, ": weight must have at least one output channel, got shape ", shape_str(weights)));
  if (g.C_in % g.groups != 0)
    throw value_error(str(op, ": groups=", g.groups, " must divide the input channels, x has ", g.C_in));
  if (g.C_out % g.groups != 0)
    throw value_error(str(op, ": groups=", g.groups, " must divide the output channels, weight has ", g.C_out));
  g.C_in_g = g.C_in / g.groups;
  g.C_out_g = g.C_out / g.groups;
  if (weights[1] != g.C_in_g)
    throw value_error(str(op, ": weight expects ", weights[1], " input channels per group (groups=", g.groups,
                          "), x has ", g.C_in, " channels, so weight.shape[1] must be ", g.C_in_g));

  // Padding: explicit values or a named preset, resolved per axis.
  if (p.padding_preset == PaddingPreset::none) {
    if (!p.padding.empty() && p.padding.size() != 2 * static_cast<std::size_t>(nd))
      throw value_error(str(op, ": padding must have ", 2 * nd, " values (before and after each spatial axis), got ",
                            p.padding.size()));
    for (int a = 0; a < nd; ++a) {
      for (int side = 0; side < 2; ++side) {
        const int64_t v = p.padding.empty() ? 0 : p.padding[2 * static_cast<std::size_t>(a) + side];
        if (v < 0)
          throw value_error(str(op, ": padding must be non-negative, got ", v, " on axis ", names[a]));
        (side == 0 ? g.pad_before : g.pad_after)[3 - nd + a] = v;
      }
    }
  } else {
    if (!p.padding.empty())
      throw value_error(str(op, ": give either explicit padding values or a padding preset, not both"));
    for (int a = 3 - nd; a < 3; ++a) {
      const int64_t reach = checked_mul(g.dilation[a], g.k[a] - 1, str(op, ": dilation").c_str());  // dilation*(k-1)
      if (p.padding_preset == PaddingPreset::full) {
        g.pad_before[a] = g.pad_after[a] = reach;
      } else if (p.padding_preset == PaddingPreset::same) {
        const int64_t out = (g.in[a] - 1) / g.stride[a] + 1;  // ceil(in / stride)
        const std::string ctx = str(op, ": padding='same' with this stride and dilation");
        const int64_t need = checked_add(checked_add(checked_mul(out - 1, g.stride[a], ctx.c_str()), reach, ctx.c_str()),
                                         1, ctx.c_str());
        const int64_t total = std::max<int64_t>(need - g.in[a], 0);
        // An odd total leaves one pixel over: cross-correlation puts it after (torch's
        // convention), true convolution before, so that 'same' is the centre of the full
        // convolution as scipy.signal.convolve2d(mode="same") crops it.
        g.pad_before[a] = p.flip ? total - total / 2 : total / 2;
        g.pad_after[a] = total - g.pad_before[a];
      }
    }
  }

  for (int a = 3 - nd; a < 3; ++a) {
    const char* axis = names[a - (3 - nd)];
    if (g.mode == PaddingMode::reflect && (g.pad_before[a] >= g.in[a] || g.pad_after[a] >= g.in[a]))
      throw value_error(str(op, ": reflect padding must be smaller than the input size on that axis: padding ",
                            std::max(g.pad_before[a], g.pad_after[a]), " on ", axis, ", x has ", axis, "=", g.in[a]));
    if (g.mode == PaddingMode::symmetric && (g.pad_before[a] > g.in[a] || g.pad_after[a] > g.in[a]))
      throw value_error(str(op, ": symmetric padding must be at most the input size on that axis: padding ",
                            std::max(g.pad_before[a], g.pad_after[a]), " on ", axis, ", x has ", axis, "=", g.in[a]));
    g.out[a] = window_output_size(op, axis, g.in[a], g.pad_before[a], g.pad_after[a], g.k[a], g.stride[a],
                                  g.dilation[a]);
  }

  // Every element count the kernels form, checked once here.
  const std::string size_ctx = str(op, ": the sizes of x, weight and the output (from padding, stride and dilation)");
  const char* sz = size_ctx.c_str();
  const int64_t in_sp = checked_mul(checked_mul(g.in[0], g.in[1], sz), g.in[2], sz);
  const int64_t out_sp = checked_mul(checked_mul(g.out[0], g.out[1], sz), g.out[2], sz);
  const int64_t k_sp = checked_mul(checked_mul(g.k[0], g.k[1], sz), g.k[2], sz);
  checked_mul(checked_mul(g.N, g.C_in, sz), in_sp, sz);
  checked_mul(checked_mul(g.N, g.C_out, sz), out_sp, sz);
  checked_mul(checked_mul(g.C_out, g.C_in_g, sz), k_sp, sz);
  const int64_t patch = checked_mul(g.C_in_g, k_sp, sz);
  checked_mul(checked_mul(patch, out_sp, sz), 8, sz);  // one im2col matrix, in bytes
  for (int a = 0; a < 3; ++a) checked_mul(checked_mul(g.k[a], g.out[a], sz), 8, sz);  // tap tables
  return g;
}

void check_bias_shape(const char* op, const Shape& bias, int64_t C_out) {
  if (bias.size() != 1 || bias[0] != C_out)
    throw value_error(str(op, ": bias must have shape (", C_out, ",) (one value per output channel), got ",
                          shape_str(bias)));
}

}  // namespace detail

Shape conv_output_shape(const Shape& src, const Shape& weights, const ConvParams& params, const char* op,
                        int spatial_dims) {
  const int nd = detail::resolve_spatial_rank(op, spatial_dims, src);
  return detail::make_conv_geometry(op, nd, src, weights, params).dst_shape();
}

}  // namespace cnncore
