// Direct convolution, without a patch matrix: depthwise layers by the
// per-channel micro-kernels (dwconv-ukernels.hpp), small maps at batches
// filling the GEMM's column tiles by the batch-reduce GEMM over live taps (conv-smallmap.hpp; all
// three passes), other 1-D and 2-D layers by the shifted GEMM
// (conv-shifted.hpp); the data gradient of a padded
// non-zero mode or a stride, which the shifted kernels do not serve, and the weight gradient of
// other small maps, where they do not pay, run through im2col.
//
// Depthwise: each output channel o reads one input channel c = o /
// multiplier. Each (image, channel) plane is first copied into a padded
// buffer whose rows are split into stride phases (DwPlane), so that every
// tap of the kernel becomes a pointer from which consecutive outputs read
// consecutive values; the micro-kernels then keep a block of outputs in
// registers across all taps. Padding zeros are multiplied like any value
// (NaN/Inf in a weight or gradient spread exactly as in the reference). The
// data gradient at stride 1 is the forward kernel run on a zero-padded copy
// of the output gradient with the reversed kernel, folded back through the
// padding mode; other strides, and weights that are not all finite (whose
// products with those extra zeros would be NaN where the reference has no
// term), scatter row by row instead.
#include "cpu/kernels/conv-direct.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cnncore/error.hpp"

#include "cnncore/runtime.hpp"
#include "cpu/kernels/conv-im2col.hpp"
#include "cpu/kernels/conv-shifted.hpp"
#include "cpu/kernels/conv-smallmap.hpp"
#include "cpu/kernels/conv-taps.hpp"
#include "cpu/kernels/dwconv-ukernels.hpp"

namespace cnncore::cpu {

using detail::ConvGeometry;

namespace {

bool is_depthwise(const ConvGeometry& g) { return g.C_in_g == 1 && g.groups == g.C_in; }

// Calls row(dst_row_offset, src_row_offset or -1, tw) for every tap (td, th,
// tw) in order and every output row (od, oh); offsets are within one plane.
template <typename F>
void for_each_tap_row(const ConvGeometry& g, const TapTables& tt, F&& row) {
  int64_t t = 0;
  for (int64_t td = 0; td < g.k[0]; ++td)
    for (int64_t th = 0; th < g.k[1]; ++th)
      for (int64_t tw = 0; tw < g.k[2]; ++tw, ++t) {
        const int64_t* TD = tt.axis[0].data() + td * g.out[0];
        const int64_t* TH = tt.axis[1].data() + th * g.out[1];
        for (int64_t od = 0; od < g.out[0]; ++od)
          for (int64_t oh = 0; oh < g.out[1]; ++oh) {
            const int64_t sd = TD[od], sh = TH[oh];
            row(t, tw, (od * g.out[1] + oh) * g.out[2], sd < 0 || sh < 0 ? -1 : (sd * g.in[1] + sh) * g.in[2]);
          }
      }
}

}  // namespace

namespace {

bool dw_data_gradient_by_rows(const ConvGeometry& g) {
  return g.stride[0] == 1 && g.stride[1] == 1 && g.stride[2] == 1;
}

// The padded input one output of a depthwise layer reads, (out - 1) * stride
// + dilation * (k - 1) + 1 values along each axis, with each row stored as
// `stride` phases of `phase` values: padded column q sits at (q % s) * phase
// + q / s, so output column c of tap column j reads phase (j*d) % s at c +
// (j*d) / s, consecutive for consecutive c.
struct DwPlane {
  int64_t ext[3] = {1, 1, 1};
  int64_t phase = 1, row = 1;
  std::vector<int64_t> src[3];  // padded index -> source index along each axis, -1: a zero
  int64_t lo = 0, hi = 0;       // padded columns [lo, hi) read source column q - pad_before

  // Extent of the padded input along axis a (at most in + pads, so it fits 64 bits).
  static int64_t extent(const ConvGeometry& g, int a) {
    return (g.out[a] - 1) * g.stride[a] + g.dilation[a] * (g.k[a] - 1) + 1;
  }
  // Bytes of the plane, in elements of es bytes, and of the index tables;
  // computed without building them (the memory check comes first).
  static int64_t bytes(const ConvGeometry& g, int64_t es) {
    const int64_t row = g.stride[2] * detail::ceil_div(extent(g, 2), g.stride[2]);
    const int64_t elems = detail::checked_mul(detail::checked_mul(extent(g, 0), extent(g, 1), "conv"), row, "conv");
    return detail::checked_add(detail::checked_mul(elems, es, "conv"),
                               8 * (extent(g, 0) + extent(g, 1) + extent(g, 2)), "conv");
  }

  explicit DwPlane(const ConvGeometry& g) {
    for (int a = 0; a < 3; ++a) {
      ext[a] = extent(g, a);
      src[a].resize(static_cast<std::size_t>(ext[a]));
      for (int64_t p = 0; p < ext[a]; ++p)
        src[a][static_cast<std::size_t>(p)] = detail::padded_source_index(p - g.pad_before[a], g.in[a], g.mode);
    }
    phase = detail::ceil_div(ext[2], g.stride[2]);
    row = g.stride[2] * phase;
    lo = std::clamp<int64_t>(g.pad_before[2], 0, ext[2]);
    hi = std::clamp<int64_t>(g.pad_before[2] + g.in[2], lo, ext[2]);
  }
  int64_t elems() const { return ext[0] * ext[1] * row; }

  // buf (elems(), never-read phase slots left as they are) = the padded plane of x.
  template <typename T>
  void fill(const ConvGeometry& g, const T* x, T* buf) const {
    const int64_t s = g.stride[2];
    for (int64_t pd = 0; pd < ext[0]; ++pd)
      for (int64_t ph = 0; ph < ext[1]; ++ph) {
        T* r = buf + (pd * ext[1] + ph) * row;
        const int64_t sd = src[0][static_cast<std::size_t>(pd)], sh = src[1][static_cast<std::size_t>(ph)];
        if (sd < 0 || sh < 0) {
          std::memset(r, 0, sizeof(T) * static_cast<std::size_t>(row));
          continue;
        }
        const T* xr = x + (sd * g.in[1] + sh) * g.in[2];
        if (s == 1) {
          for (int64_t q = 0; q < lo; ++q) r[q] = gather(xr, q);
          std::memcpy(r + lo, xr + (lo - g.pad_before[2]), sizeof(T) * static_cast<std::size_t>(hi - lo));
          for (int64_t q = hi; q < ext[2]; ++q) r[q] = gather(xr, q);
        } else {
          for (int64_t q = 0; q < ext[2]; ++q) r[(q % s) * phase + q / s] = gather(xr, q);
        }
      }
  }

  template <typename T>
  T gather(const T* xr, int64_t q) const {
    const int64_t i = src[2][static_cast<std::size_t>(q)];
    return i < 0 ? T(0) : xr[i];
  }

  // taps[t] for tap t = (kd, kh, kw) of output depth od: where output (row 0,
  // column 0) reads; output row r adds r * tap_ld(g).
  template <typename T>
  void point(const ConvGeometry& g, const T* buf, int64_t od, const T** taps) const {
    int64_t t = 0;
    for (int64_t kd = 0; kd < g.k[0]; ++kd)
      for (int64_t kh = 0; kh < g.k[1]; ++kh) {
        const T* r = buf + ((od * g.stride[0] + kd * g.dilation[0]) * ext[1] + kh * g.dilation[1]) * row;
        for (int64_t kw = 0; kw < g.k[2]; ++kw, ++t) {
          const int64_t q = kw * g.dilation[2];
          taps[t] = r + (q % g.stride[2]) * phase + q / g.stride[2];
        }
      }
  }
  int64_t tap_ld(const ConvGeometry& g) const { return g.stride[1] * row; }
};

// The geometry of the data gradient at stride 1 as a forward depthwise
// convolution: the output gradient zero-padded by dilation * (k - 1) on each
// side, read by the reversed kernel, gives the gradient of DwPlane's padded
// input (extents out + dilation * (k - 1)).
ConvGeometry dw_data_gradient_geometry(const ConvGeometry& g) {
  ConvGeometry b = g;
  b.C_out_g = 1;
  b.mode = PaddingMode::zeros;
  b.flip = false;
  for (int a = 0; a < 3; ++a) {
    b.in[a] = g.out[a];
    b.pad_before[a] = b.pad_after[a] = g.dilation[a] * (g.k[a] - 1);
    b.out[a] = g.out[a] + g.dilation[a] * (g.k[a] - 1);
  }
  return b;
}

// The weight gradient sums over images in blocks of a size fixed by N alone
// (at least 16, at most 64 blocks), so the order of the sums does not depend
// on the thread count: one (channel, block) task each, with its own partial
// sums, added per channel in block order afterwards. Few channels (LeNet's
// first layer has one) still give every thread work.
int64_t dw_images_per_block(const ConvGeometry& g) { return std::max<int64_t>(16, detail::ceil_div(g.N, 64)); }
int64_t dw_image_blocks(const ConvGeometry& g) { return detail::ceil_div(g.N, dw_images_per_block(g)); }

int64_t depthwise_workspace_bytes(const ConvGeometry& g, int64_t es, detail::ConvPass pass, int threads) {
  int64_t per_thread = DwPlane::bytes(g, es);
  if (pass == detail::ConvPass::backward_data) {
    if (!dw_data_gradient_by_rows(g)) return TapTables::bytes(g);
    const ConvGeometry b = dw_data_gradient_geometry(g);
    per_thread = detail::checked_add(per_thread, DwPlane::bytes(b, es), "conv");
    per_thread = detail::checked_add(per_thread, detail::checked_mul(b.out_size(), es, "conv"), "conv");
  }
  per_thread = detail::checked_add(per_thread, 2 * 8 * g.k_size() * g.C_out_g, "conv");
  const int64_t total = detail::checked_mul(per_thread, threads, "conv");
  if (pass != detail::ConvPass::backward_weight) return total;
  // the partial sums of the image blocks
  const int64_t part = detail::checked_mul(detail::checked_mul(g.C_out, g.k_size(), "conv"), dw_image_blocks(g), "conv");
  return detail::checked_add(total, detail::checked_mul(part, es, "conv"), "conv");
}

}  // namespace

std::string conv_direct_why_not(const ConvGeometry& g) {
  if (is_depthwise(g) || conv_shifted_serves(g)) return {};
  return detail::str("the direct path serves depthwise convolution (groups equal to the input channels) and "
                     "convolutions of at most 2 spatial axes; got groups=", g.groups, " with ", g.C_in,
                     " input channels in 3-D");
}

// Depthwise layers always: with the plane copied once per (image, channel)
// and shared by the channel's outputs, direct beats im2col at every channel
// multiplier measured (batch 16, one thread, forward / backward ms, direct vs
// im2col): 32 channels x4 3x3 @28 1.06 / 3.47 vs 2.31 / 7.35; 64 x8 3x3 @14
// 1.54 / 6.30 vs 2.53 / 7.22; LeNet's 1->6 5x5 @32 at batch 64 0.58 / 1.89 vs
// 0.53 / 2.64 (the one forward where im2col is ahead, by 10%).
// Other layers: see conv_shifted_preferred.
bool conv_direct_preferred(const ConvGeometry& g) {
  if (is_depthwise(g)) return true;
  return conv_smallmap_preferred(g, detail::ConvPass::forward) || conv_shifted_preferred(g);
}

int64_t conv_direct_workspace_bytes(const ConvGeometry& g, int64_t es, detail::ConvPass pass, int threads) {
  if (is_depthwise(g)) return depthwise_workspace_bytes(g, es, pass, threads);
  if (conv_smallmap_preferred(g, pass))  // forward: or the shifted path
    return pass == detail::ConvPass::forward ? std::max(conv_smallmap_workspace_bytes(g, es, pass, threads),
                                                        conv_shifted_workspace_bytes(g, es, pass, threads))
                                             : conv_smallmap_workspace_bytes(g, es, pass, threads);
  if (pass == detail::ConvPass::forward ||
      (pass == detail::ConvPass::backward_data && conv_shifted_serves_backward_data(g) &&
       !conv_im2col_data_gradient_transposed(g, threads)) ||
      (pass == detail::ConvPass::backward_weight && conv_shifted_weight_gradient_pays(g)))
    return conv_shifted_workspace_bytes(g, es, pass, threads);
  return conv_im2col_workspace_bytes(g, es, pass, threads);
}

namespace {

template <typename T>
void depthwise_backward_data_scatter(const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  const TapTables tt(g);
  const int64_t P = g.out_size(), isz = g.in_size(), ksz = g.k_size(), OW = g.out[2], sw = g.stride[2];
  // One thread per (image, input channel): the outputs of a channel's group
  // all scatter into that channel only, tap by tap and row by row.
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads())
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = 0; c < g.C_in; ++c) {
      T* dx = diff_src + (n * g.C_in + c) * isz;
      std::memset(dx, 0, sizeof(T) * static_cast<std::size_t>(isz));
      for (int64_t o = c * g.C_out_g; o < (c + 1) * g.C_out_g; ++o) {
        const T* dy = diff_dst + (n * g.C_out + o) * P;
        const T* w = weights + o * ksz;
        for_each_tap_row(g, tt, [&](int64_t t, int64_t tw, int64_t yo, int64_t xo) {
          if (xo < 0) return;
          const T wv = w[t];
          const T* dyr = dy + yo;
          T* xr = dx + xo;
          const int64_t* TW = tt.axis[2].data() + tw * OW;
          const int64_t lo = tt.lo[2][tw], hi = tt.hi[2][tw], off = tt.off[2][tw];
          for (int64_t ow = 0; ow < lo; ++ow)
            if (TW[ow] >= 0) xr[TW[ow]] += wv * dyr[ow];
          if (sw == 1) {
            T* xs = xr + off;
#pragma omp simd
            for (int64_t ow = lo; ow < hi; ++ow) xs[ow] += wv * dyr[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) xr[ow * sw + off] += wv * dyr[ow];
          }
          for (int64_t ow = hi; ow < OW; ++ow)
            if (TW[ow] >= 0) xr[TW[ow]] += wv * dyr[ow];
        });
      }
    }
}

// The tap weights of input channel c's M = C_out_g outputs, tap-major as the
// micro-kernels read them: out[t * M + m] = the weight of tap t of the
// cross-correlation output c * M + m computes (flip, or reverse for the data
// gradient: the kernel reversed).
template <typename T>
void dw_channel_taps_weights(const ConvGeometry& g, const T* w, int64_t c, bool reverse, T* out) {
  const int64_t ksz = g.k_size(), M = g.C_out_g;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t t = 0; t < ksz; ++t) out[t * M + m] = w[(c * M + m) * ksz + (reverse != g.flip ? ksz - 1 - t : t)];
}

template <typename T>
void depthwise_forward(const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  const auto& uk = dwconv_ukernels_for_current_isa<T>();
  const DwPlane pl(g);
  const int64_t P = g.out_size(), isz = g.in_size(), ksz = g.k_size(), rows = g.out[1] * g.out[2], M = g.C_out_g;
  std::vector<T> wt(static_cast<std::size_t>(g.C_out * ksz));
  for (int64_t c = 0; c < g.C_in; ++c) dw_channel_taps_weights(g, weights, c, false, wt.data() + c * M * ksz);
#pragma omp parallel num_threads(get_num_threads())
  {
    std::vector<T> buf(static_cast<std::size_t>(pl.elems()));
    std::vector<const T*> taps(static_cast<std::size_t>(ksz));
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t c = 0; c < g.C_in; ++c) {
        pl.fill(g, src + (n * g.C_in + c) * isz, buf.data());
        T* y = dst + (n * g.C_out + c * M) * P;
        for (int64_t od = 0; od < g.out[0]; ++od) {
          pl.point(g, buf.data(), od, taps.data());
          uk.rows(M, g.out[1], g.out[2], ksz, taps.data(), pl.tap_ld(g), wt.data() + c * M * ksz,
                  bias ? bias + c * M : nullptr, y + od * rows, g.out[2], P, false);
        }
      }
  }
}

template <typename T>
bool all_finite(const T* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

template <typename T>
void depthwise_backward_data(const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  if (!dw_data_gradient_by_rows(g) || !all_finite(weights, g.C_out * g.k_size()))
    return depthwise_backward_data_scatter(g, diff_dst, weights, diff_src);
  const auto& uk = dwconv_ukernels_for_current_isa<T>();
  const DwPlane pl(g);                          // the padded input whose gradient is formed
  const ConvGeometry b = dw_data_gradient_geometry(g);
  const DwPlane gp(b);                          // the zero-padded output gradient
  const int64_t P = g.out_size(), isz = g.in_size(), ksz = g.k_size();
  const int64_t prow = pl.ext[1] * pl.ext[2], W = g.in[2], pb = g.pad_before[2];
#pragma omp parallel num_threads(get_num_threads())
  {
    std::vector<T> wm(static_cast<std::size_t>(ksz));
    std::vector<T> dyp(static_cast<std::size_t>(gp.elems())), dxp(static_cast<std::size_t>(b.out_size())),
        w(static_cast<std::size_t>(ksz * g.C_out_g));
    std::vector<const T*> taps(static_cast<std::size_t>(ksz));
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t c = 0; c < g.C_in; ++c) {
        // Each output reads its own (padded) gradient plane, so the outputs
        // of a channel go one at a time, accumulating; taps[t] stride M in w.
        dw_channel_taps_weights(g, weights, c, true, w.data());
        for (int64_t m = 0; m < g.C_out_g; ++m) {
          gp.fill(b, diff_dst + (n * g.C_out + c * g.C_out_g + m) * P, dyp.data());
          for (int64_t t = 0; t < ksz; ++t) wm[static_cast<std::size_t>(t)] = w[static_cast<std::size_t>(t * g.C_out_g + m)];
          for (int64_t pd = 0; pd < pl.ext[0]; ++pd) {
            gp.point(b, dyp.data(), pd, taps.data());
            uk.rows(1, pl.ext[1], pl.ext[2], ksz, taps.data(), gp.tap_ld(b), wm.data(), nullptr,
                    dxp.data() + pd * prow, pl.ext[2], 0, m > 0);
          }
        }
        // Fold the padded gradient into the input's: each padded value goes to
        // the source it was copied from (none for a zero).
        T* dx = diff_src + (n * g.C_in + c) * isz;
        std::memset(dx, 0, sizeof(T) * static_cast<std::size_t>(isz));
        for (int64_t pd = 0; pd < pl.ext[0]; ++pd)
          for (int64_t ph = 0; ph < pl.ext[1]; ++ph) {
            const int64_t sd = pl.src[0][static_cast<std::size_t>(pd)], sh = pl.src[1][static_cast<std::size_t>(ph)];
            if (sd < 0 || sh < 0) continue;
            T* xr = dx + (sd * g.in[1] + sh) * W;
            const T* r = dxp.data() + (pd * pl.ext[1] + ph) * pl.ext[2];
            for (int64_t q = 0; q < pl.lo; ++q) {
              const int64_t i = pl.src[2][static_cast<std::size_t>(q)];
              if (i >= 0) xr[i] += r[q];
            }
#pragma omp simd
            for (int64_t q = pl.lo; q < pl.hi; ++q) xr[q - pb] += r[q];
            for (int64_t q = pl.hi; q < pl.ext[2]; ++q) {
              const int64_t i = pl.src[2][static_cast<std::size_t>(q)];
              if (i >= 0) xr[i] += r[q];
            }
          }
      }
  }
}

template <typename T>
void depthwise_backward_weight(const ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights) {
  const auto& uk = dwconv_ukernels_for_current_isa<T>();
  const DwPlane pl(g);
  const int64_t P = g.out_size(), isz = g.in_size(), ksz = g.k_size(), rows = g.out[1] * g.out[2], M = g.C_out_g;
  const int64_t per = M * ksz, bsize = dw_images_per_block(g), blocks = dw_image_blocks(g);
  std::vector<T> part(static_cast<std::size_t>(g.C_in * blocks * per), T(0));
#pragma omp parallel num_threads(get_num_threads())
  {
    std::vector<T> buf(static_cast<std::size_t>(pl.elems()));
    std::vector<const T*> taps(static_cast<std::size_t>(ksz));
#pragma omp for collapse(2) schedule(static)
    for (int64_t c = 0; c < g.C_in; ++c)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        T* acc = part.data() + (c * blocks + blk) * per;
        for (int64_t n = blk * bsize; n < std::min(g.N, (blk + 1) * bsize); ++n) {
          pl.fill(g, src + (n * g.C_in + c) * isz, buf.data());
          const T* dy = diff_dst + (n * g.C_out + c * M) * P;
          for (int64_t od = 0; od < g.out[0]; ++od) {
            pl.point(g, buf.data(), od, taps.data());
            uk.dots(M, g.out[1], g.out[2], ksz, taps.data(), pl.tap_ld(g), dy + od * rows, g.out[2], P, acc);
          }
        }
      }
  }
  for (int64_t c = 0; c < g.C_in; ++c)
    for (int64_t i = 0; i < per; ++i) {
      T s = T(0);  // and 0 for a batch of 0 (no blocks)
      for (int64_t blk = 0; blk < blocks; ++blk) s += part[static_cast<std::size_t>((c * blocks + blk) * per + i)];
      const int64_t m = i / ksz, t = i % ksz;
      diff_weights[(c * M + m) * ksz + (g.flip ? ksz - 1 - t : t)] = s;
    }
}

}  // namespace

template <typename T>
void conv_forward_direct(const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  if (is_depthwise(g)) return depthwise_forward(g, src, weights, bias, dst);
  if (conv_smallmap_preferred(g, detail::ConvPass::forward) && conv_forward_smallmap(g, src, weights, bias, dst))
    return;
  conv_forward_shifted(g, src, weights, bias, dst);
}

template <typename T>
void conv_backward_data_direct(const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  if (is_depthwise(g)) return depthwise_backward_data(g, diff_dst, weights, diff_src);
  if (conv_smallmap_preferred(g, detail::ConvPass::backward_data))
    return conv_backward_data_smallmap(g, diff_dst, weights, diff_src);
  if (conv_shifted_serves_backward_data(g) && !conv_im2col_data_gradient_transposed(g, get_num_threads()))
    return conv_backward_data_shifted(g, diff_dst, weights, diff_src);
  conv_backward_data_im2col(g, diff_dst, weights, diff_src);
}

template <typename T>
void conv_backward_weight_direct(const ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights) {
  if (is_depthwise(g)) return depthwise_backward_weight(g, diff_dst, src, diff_weights);
  if (conv_smallmap_preferred(g, detail::ConvPass::backward_weight))
    return conv_backward_weight_smallmap(g, diff_dst, src, diff_weights);
  if (conv_shifted_weight_gradient_pays(g)) return conv_backward_weight_shifted(g, diff_dst, src, diff_weights);
  conv_backward_weight_im2col(g, diff_dst, src, diff_weights);
}

#define CNNCORE_INSTANTIATE(T)                                                                   \
  template void conv_forward_direct<T>(const ConvGeometry&, const T*, const T*, const T*, T*);  \
  template void conv_backward_data_direct<T>(const ConvGeometry&, const T*, const T*, T*);      \
  template void conv_backward_weight_direct<T>(const ConvGeometry&, const T*, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
