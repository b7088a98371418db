#include "cnncore/pad.hpp"

#include <algorithm>

#include "cnncore/device.hpp"
#include "cnncore/error.hpp"
#include "device/backend.hpp"
#include "cnncore/runtime.hpp"
#include "ops/conv_geometry.hpp"
#include "ops/checks.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::str;
using detail::check_tensor;
using detail::with_dtype;

namespace {

// The resolved problem, promoted to 3 spatial axes like ConvGeometry.
struct PadGeometry {
  int nd = 0;
  int64_t planes = 0;  // N * C
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, before[3] = {0, 0, 0};
  PaddingMode mode = PaddingMode::zeros;
  Shape src_shape, dst_shape;
};

PadGeometry make_pad_geometry(const Shape& src, const PadParams& p) {
  const char* op = "pad";
  const std::size_t n = p.padding.size();
  if (n != 2 && n != 4 && n != 6)
    throw value_error(str(op, ": pad must have 2, 4 or 6 values (before and after each of 1-3 spatial axes), got ", n));
  PadGeometry g;
  g.nd = static_cast<int>(n / 2);
  if (src.size() != static_cast<std::size_t>(g.nd) + 2)
    throw value_error(str(op, ": x must have ", g.nd + 2, " dimensions (N, C and ", g.nd,
                          " spatial axes, one per before/after pair in pad), got shape ", shape_str(src)));
  g.mode = p.mode;
  g.src_shape = src;
  g.dst_shape = src;
  g.planes = detail::checked_mul(src[0], src[1], op);
  for (int a = 0; a < g.nd; ++a) {
    const int64_t before = p.padding[2 * a], after = p.padding[2 * a + 1], size = src[2 + a];
    if (before < 0 || after < 0)
      throw value_error(str(op, ": pad must be non-negative, got (", before, ", ", after, ") on spatial axis ", a));
    if (size < 1 && (before > 0 || after > 0) && p.mode != PaddingMode::zeros)
      throw value_error(str(op, ": ", padding_mode_name(p.mode), " padding needs a non-empty axis, x has size ",
                            size, " on spatial axis ", a));
    if (p.mode == PaddingMode::reflect && (before >= size || after >= size))
      throw value_error(str(op, ": reflect padding must be smaller than the input size: pad (", before, ", ", after,
                            ") on spatial axis ", a, " of size ", size));
    if (p.mode == PaddingMode::symmetric && (before > size || after > size))
      throw value_error(str(op, ": symmetric padding must be at most the input size: pad (", before, ", ", after,
                            ") on spatial axis ", a, " of size ", size));
    const int64_t out = detail::checked_add(detail::checked_add(size, before, op), after, op);
    g.dst_shape[2 + a] = out;
    g.in[3 - g.nd + a] = size;
    g.out[3 - g.nd + a] = out;
    g.before[3 - g.nd + a] = before;
  }
  shape_numel(g.dst_shape, "pad: the padded size of x (from pad)");  // overflow check
  return g;
}

// Visits each destination row (plane, od, oh) whose source row exists:
// f(plane, dst_row_offset, src_row_offset); rows that come from the constant
// fill get g(dst_row_offset).
template <typename F, typename G>
void for_each_row(const PadGeometry& g, F&& f, G&& fill_row) {
  const int64_t in_plane = g.in[0] * g.in[1] * g.in[2], out_plane = g.out[0] * g.out[1] * g.out[2];
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads())
  for (int64_t pl = 0; pl < g.planes; ++pl)
    for (int64_t od = 0; od < g.out[0]; ++od) {
      const int64_t sd = detail::padded_source_index(od - g.before[0], g.in[0], g.mode);
      for (int64_t oh = 0; oh < g.out[1]; ++oh) {
        const int64_t sh = detail::padded_source_index(oh - g.before[1], g.in[1], g.mode);
        const int64_t dst_row = pl * out_plane + (od * g.out[1] + oh) * g.out[2];
        if (sd < 0 || sh < 0)
          fill_row(dst_row);
        else
          f(dst_row, pl * in_plane + (sd * g.in[1] + sh) * g.in[2]);
      }
    }
}

device::PadBox box_of(const PadGeometry& g) {
  device::PadBox b;
  for (int a = 0; a < 3; ++a) {
    b.in[a] = g.in[a];
    b.out[a] = g.out[a];
    b.before[a] = g.before[a];
  }
  b.mode = g.mode;
  return b;
}

}  // namespace

Tensor pad_forward(const Tensor& src, const PadParams& params) {
  detail::AllowDevice allow(src.defined() ? src.device() : Device::cpu);
  check_tensor("pad", "x", src);
  const PadGeometry g = make_pad_geometry(src.shape(), params);
  if (src.device() != Device::cpu) {
    Tensor dst = device::allocate("pad", g.dst_shape, src.dtype(), src.device());
    if (dst.numel() == 0) return dst;
    with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for("pad", src.device())
          .kernels(T{})
          .pad_forward(box_of(g), g.planes, static_cast<T>(params.value), src.data_as<T>(), dst.data_as<T>());
    });
    return dst;
  }
  check_memory("pad", detail::checked_mul(shape_numel(g.dst_shape, "pad"), dtype_size(src.dtype()), "pad"));
  Tensor dst = Tensor::empty(g.dst_shape, src.dtype());
  if (dst.numel() == 0) return dst;
  with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = src.data_as<T>();
    T* y = dst.data_as<T>();
    const T value = static_cast<T>(params.value);
    const int64_t W = g.out[2], lo = std::min(g.before[2], W), hi = std::min(g.before[2] + g.in[2], W);
    for_each_row(
        g,
        [&](int64_t d, int64_t s) {
          for (int64_t ow = 0; ow < lo; ++ow) {
            const int64_t sw = detail::padded_source_index(ow - g.before[2], g.in[2], g.mode);
            y[d + ow] = sw < 0 ? value : x[s + sw];
          }
          std::copy(x + s, x + s + (hi - lo), y + d + lo);
          for (int64_t ow = hi; ow < W; ++ow) {
            const int64_t sw = detail::padded_source_index(ow - g.before[2], g.in[2], g.mode);
            y[d + ow] = sw < 0 ? value : x[s + sw];
          }
        },
        [&](int64_t d) { std::fill(y + d, y + d + W, value); });
  });
  return dst;
}

Tensor pad_backward(const Tensor& diff_dst, const Shape& src_shape, const PadParams& params) {
  detail::AllowDevice allow(diff_dst.defined() ? diff_dst.device() : Device::cpu);
  check_tensor("pad", "grad_out", diff_dst);
  const PadGeometry g = make_pad_geometry(src_shape, params);
  detail::check_grad_out_shape("pad", diff_dst.shape(), g.dst_shape);
  if (diff_dst.device() != Device::cpu) {
    Tensor diff_src = zeros_on(src_shape, diff_dst.dtype(), diff_dst.device());
    if (diff_src.numel() == 0 || diff_dst.numel() == 0) return diff_src;
    with_dtype(diff_dst.dtype(), [&](auto tag) {
      using T = decltype(tag);
      device::backend_for("pad", diff_dst.device())
          .kernels(T{})
          .pad_backward(box_of(g), g.planes, diff_dst.data_as<T>(), diff_src.data_as<T>());
    });
    return diff_src;
  }
  Tensor diff_src = Tensor::zeros(src_shape, diff_dst.dtype());
  if (diff_src.numel() == 0 || diff_dst.numel() == 0) return diff_src;
  // Several destination rows can map to one source row (replicate, circular,
  // ...), so rows are scattered plane by plane: one thread per plane.
  with_dtype(diff_dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* dy = diff_dst.data_as<T>();
    T* dx = diff_src.data_as<T>();
    const int64_t in_plane = g.in[0] * g.in[1] * g.in[2], out_plane = g.out[0] * g.out[1] * g.out[2];
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
    for (int64_t pl = 0; pl < g.planes; ++pl)
      for (int64_t od = 0; od < g.out[0]; ++od) {
        const int64_t sd = detail::padded_source_index(od - g.before[0], g.in[0], g.mode);
        if (sd < 0) continue;
        for (int64_t oh = 0; oh < g.out[1]; ++oh) {
          const int64_t sh = detail::padded_source_index(oh - g.before[1], g.in[1], g.mode);
          if (sh < 0) continue;
          const T* drow = dy + pl * out_plane + (od * g.out[1] + oh) * g.out[2];
          T* srow = dx + pl * in_plane + (sd * g.in[1] + sh) * g.in[2];
          for (int64_t ow = 0; ow < g.out[2]; ++ow) {
            const int64_t sw = detail::padded_source_index(ow - g.before[2], g.in[2], g.mode);
            if (sw >= 0) srow[sw] += drow[ow];
          }
        }
      }
  });
  return diff_src;
}

}  // namespace cnncore
