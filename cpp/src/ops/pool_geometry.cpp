#include "ops/pool_geometry.hpp"

#include <cmath>
#include <string>

#include "cnncore/error.hpp"
#include "ops/checks.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::tuple_str;

using detail::checked_add;
using detail::checked_mul;
using detail::str;

namespace {

const char* axis_name(int nd, int a) {  // a: 0..nd-1 as the caller counts
  static const char* const n1[] = {"L"};
  static const char* const n2[] = {"H", "W"};
  static const char* const n3[] = {"D", "H", "W"};
  return (nd == 1 ? n1 : nd == 2 ? n2 : n3)[a];
}

std::string layout_name(int nd) {
  return nd == 1 ? "(N, C, L)" : nd == 2 ? "(N, C, H, W)" : "(N, C, D, H, W)";
}

// Expands a per-axis parameter (empty = dflt) into the last nd of 3 slots,
// requiring values >= 1.
void per_axis(const char* op, const char* name, const std::vector<int64_t>& v, int nd, const int64_t* dflt,
              int64_t* out) {
  if (!v.empty() && static_cast<int>(v.size()) != nd)
    throw value_error(str(op, ": ", name, " must have ", nd, " value", nd == 1 ? "" : "s",
                          " (one per spatial axis), got ", v.size()));
  for (int a = 0; a < nd; ++a) {
    const int64_t x = v.empty() ? dflt[3 - nd + a] : v[static_cast<std::size_t>(a)];
    if (x < 1)
      throw value_error(str(op, ": ", name, " must be positive, got ", x, nd > 1 ? " on axis " : "",
                            nd > 1 ? axis_name(nd, a) : ""));
    out[3 - nd + a] = x;
  }
}

// The one output-size rule, shared by pool_output_size and the geometry.
// `axis` is only for messages ("" for the free function).
int64_t output_size(const char* op, const std::string& axis, int64_t in, int64_t k, int64_t s, int64_t d,
                    int64_t pb, int64_t pa, bool ceil_mode) {
  const std::string ctx = str(op, ": padding, kernel_size and dilation");
  const int64_t padded = checked_add(checked_add(in, pb, ctx.c_str()), pa, ctx.c_str());
  const int64_t span = checked_add(checked_mul(d, k - 1, ctx.c_str()), 1, ctx.c_str());
  if (span > padded)
    throw value_error(str(op, ": kernel_size is larger than the padded input", axis, ": dilation*(kernel_size-1)+1 = ",
                          span, " but in + padding = ", padded, " (the output size would be < 1)"));
  int64_t out = (padded - span) / s + 1;
  if (ceil_mode && (padded - span) % s != 0) {
    ++out;
    // The last window must start inside the input or the left padding.
    if ((out - 1) * s >= in + pb) --out;
  }
  return out;
}

}  // namespace

PoolKind parse_pool_kind(const std::string& name) {
  if (name == "max") return PoolKind::max;
  if (name == "avg") return PoolKind::avg;
  if (name == "lp") return PoolKind::lp;
  if (name == "weighted_avg") return PoolKind::weighted_avg;
  throw value_error(str("pool: kind must be one of 'max', 'avg', 'lp', 'weighted_avg', got '", name, "'"));
}

PoolAlgorithm parse_pool_algorithm(const std::string& name) {
  if (name == "auto") return PoolAlgorithm::auto_;
  if (name == "reference") return PoolAlgorithm::reference;
  if (name == "direct") return PoolAlgorithm::direct;
  throw value_error(str("algorithm must be one of 'auto', 'reference', 'direct', got '", name, "'"));
}

const char* pool_kind_name(PoolKind kind) {
  switch (kind) {
    case PoolKind::max: return "max";
    case PoolKind::avg: return "avg";
    case PoolKind::lp: return "lp";
    case PoolKind::weighted_avg: return "weighted_avg";
  }
  return "?";
}

const char* pool_algorithm_name(PoolAlgorithm algorithm) {
  switch (algorithm) {
    case PoolAlgorithm::auto_: return "auto";
    case PoolAlgorithm::reference: return "reference";
    case PoolAlgorithm::direct: return "direct";
  }
  return "?";
}

int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad_before,
                         int64_t pad_after, bool ceil_mode) {
  const char* op = "pool_output_size";
  if (in < 1 || kernel < 1 || stride < 1 || dilation < 1 || pad_before < 0 || pad_after < 0)
    throw value_error(str(op, ": expects in, kernel, stride, dilation >= 1 and paddings >= 0, got in=", in,
                          " kernel=", kernel, " stride=", stride, " dilation=", dilation, " padding=(", pad_before,
                          ", ", pad_after, ")"));
  return output_size(op, "", in, kernel, stride, dilation, pad_before, pad_after, ceil_mode);
}

namespace detail {

Shape PoolGeometry::src_shape() const {
  Shape s{N, C};
  for (int a = 3 - nd; a < 3; ++a) s.push_back(in[a]);
  return s;
}

Shape PoolGeometry::dst_shape() const {
  Shape s{N, C};
  for (int a = 3 - nd; a < 3; ++a) s.push_back(out[a]);
  return s;
}

int pool_spatial_rank(const char* op, int spatial_dims, const Shape& src) {
  if (spatial_dims < 0 || spatial_dims > 3)
    throw value_error(str(op, ": spatial_dims must be 0 (from x) or 1..3, got ", spatial_dims));
  if (spatial_dims) return spatial_dims;
  if (src.size() < 3 || src.size() > 5)
    throw value_error(str(op, ": x must have 3, 4 or 5 dimensions (N, C, spatial...), got ", src.size(),
                          " with shape ", shape_str(src)));
  return static_cast<int>(src.size()) - 2;
}

PoolGeometry make_pool_geometry(const char* op, int nd, const Shape& src, const PoolParams& p) {
  PoolGeometry g;
  g.nd = nd;
  g.kind = p.kind;
  const std::size_t rank = static_cast<std::size_t>(nd) + 2;
  if (src.size() != rank)
    throw value_error(str(op, ": x must have ", rank, " dimensions ", layout_name(nd), ", got ", src.size(),
                          " with shape ", tuple_str(src)));
  g.N = src[0];
  g.C = src[1];
  if (g.N < 0) throw value_error(str(op, ": x has a negative batch size in shape ", shape_str(src)));
  if (g.C < 1) throw value_error(str(op, ": x must have at least one channel, got shape ", shape_str(src)));
  for (int a = 0; a < nd; ++a) {
    const int64_t n = src[2 + static_cast<std::size_t>(a)];
    if (n < 1)
      throw value_error(str(op, ": x must have a positive size on every spatial axis, got ", axis_name(nd, a), "=", n,
                            " in shape ", shape_str(src)));
    g.in[3 - nd + a] = n;
  }

  g.adaptive = !p.output_size.empty();
  if (g.adaptive) {
    if (p.kind != PoolKind::max && p.kind != PoolKind::avg)
      throw value_error(str(op, ": output_size (adaptive pooling) is only supported for max and avg pooling, not ",
                            pool_kind_name(p.kind)));
    if (!p.kernel.empty() || !p.stride.empty() || !p.padding.empty() || !p.dilation.empty() || p.ceil_mode)
      throw value_error(str(op, ": adaptive pooling (output_size) takes no kernel_size, stride, padding, dilation ",
                            "or ceil_mode"));
    const int64_t ones[3] = {1, 1, 1};
    per_axis(op, "output_size", p.output_size, nd, ones, g.out);
    const std::string ctx = str(op, ": output_size");
    for (int a = 0; a < 3; ++a) {
      // Window bounds are formed as (o + 1) * in + out - 1 with o < out.
      checked_add(checked_mul(checked_add(g.out[a], 1, ctx.c_str()), g.in[a], ctx.c_str()), g.out[a], ctx.c_str());
      // ceil(in/out) + 1 bounds every window length.
      g.k[a] = (g.in[a] + g.out[a] - 1) / g.out[a] + 1;
      if (g.k[a] > g.in[a]) g.k[a] = g.in[a];
    }
  } else {
    if (static_cast<int>(p.kernel.size()) != nd)
      throw value_error(str(op, ": kernel_size must have ", nd, " value", nd == 1 ? "" : "s",
                            " (one per spatial axis), got ", p.kernel.size()));
    const int64_t ones[3] = {1, 1, 1};
    per_axis(op, "kernel_size", p.kernel, nd, ones, g.k);
    per_axis(op, "stride", p.stride, nd, g.k, g.stride);
    per_axis(op, "dilation", p.dilation, nd, ones, g.dilation);
    if (p.kind != PoolKind::max)
      for (int a = 0; a < 3; ++a)
        if (g.dilation[a] != 1)
          throw value_error(str(op, ": dilation is only supported for max pooling, got ", g.dilation[a], " for ",
                                pool_kind_name(p.kind), " pooling"));
    if (!p.padding.empty() && p.padding.size() != 2 * static_cast<std::size_t>(nd))
      throw value_error(str(op, ": padding must have ", 2 * nd, " values (before and after each spatial axis), got ",
                            p.padding.size()));
    const std::string dctx = str(op, ": dilation");
    for (int a = 0; a < nd; ++a) {
      const int A = 3 - nd + a;
      const int64_t span = checked_add(checked_mul(g.dilation[A], g.k[A] - 1, dctx.c_str()), 1, dctx.c_str());
      for (int side = 0; side < 2; ++side) {
        const int64_t v = p.padding.empty() ? 0 : p.padding[2 * static_cast<std::size_t>(a) + side];
        if (v < 0)
          throw value_error(str(op, ": padding must be non-negative, got ", v, " on axis ", axis_name(nd, a)));
        if (v > span / 2)
          throw value_error(str(op, ": padding must be at most half the ", g.dilation[A] > 1 ? "dilated " : "",
                                "kernel size: kernel extent ", span, " on axis ", axis_name(nd, a),
                                " allows padding <= ", span / 2, ", got ", v));
        (side == 0 ? g.pad_before : g.pad_after)[A] = v;
      }
      g.out[A] = output_size(op, str(" on axis ", axis_name(nd, a)), g.in[A], g.k[A], g.stride[A], g.dilation[A],
                             g.pad_before[A], g.pad_after[A], p.ceil_mode);
    }
  }

  g.count_include_pad = p.count_include_pad;
  if (p.kind == PoolKind::avg) {
    if (p.divisor_override < 0)
      throw value_error(str(op, ": divisor_override must be a positive integer (or None), got ", p.divisor_override));
    g.divisor_override = p.divisor_override;
  }
  if (p.kind == PoolKind::lp) {
    if (!(p.norm_type >= 1.0))  // also rejects NaN
      throw value_error(str(op, ": norm_type must be >= 1 (or inf), got ", p.norm_type));
    g.p = p.norm_type;
  }
  if (p.kind == PoolKind::weighted_avg) {
    if (p.sigma.size() > 1 && static_cast<int>(p.sigma.size()) != nd)
      throw value_error(str(op, ": sigma must be one number or ", nd, " (one per spatial axis), got ", p.sigma.size(),
                            " values"));
    for (int a = 0; a < nd; ++a) {
      const int A = 3 - nd + a;
      const double s = p.sigma.empty() ? static_cast<double>(g.k[A]) / 4.0
                                       : p.sigma[p.sigma.size() == 1 ? 0 : static_cast<std::size_t>(a)];
      if (!(s > 0.0) || !std::isfinite(s))
        throw value_error(str(op, ": sigma must be positive and finite, got ", s));
      g.sigma[A] = s;
    }
  }

  // Every element count the kernels form, checked once here.
  const std::string size_ctx = str(op, ": the sizes of x and the output");
  const char* sz = size_ctx.c_str();
  const int64_t in_sp = checked_mul(checked_mul(g.in[0], g.in[1], sz), g.in[2], sz);
  const int64_t out_sp = checked_mul(checked_mul(g.out[0], g.out[1], sz), g.out[2], sz);
  const int64_t planes = checked_mul(g.N, g.C, sz);
  checked_mul(checked_mul(planes, in_sp, sz), 8, sz);
  checked_mul(checked_mul(planes, out_sp, sz), 8, sz);
  for (int a = 0; a < 3; ++a) {
    // o * stride and start + t * dilation stay inside 64 bits.
    checked_add(checked_mul(g.out[a], g.stride[a], sz), checked_mul(g.k[a], g.dilation[a], sz), sz);
    checked_mul(checked_mul(g.k[a] + g.out[a], 3, sz), 8, sz);  // per-axis tables
  }
  return g;
}

}  // namespace detail

Shape pool_output_shape(const Shape& src, const PoolParams& params, const char* op, int spatial_dims) {
  const int nd = detail::pool_spatial_rank(op, spatial_dims, src);
  return detail::make_pool_geometry(op, nd, src, params).dst_shape();
}

}  // namespace cnncore
