// Direct convolution, without a patch matrix: depthwise layers by the
// per-channel kernels below, stride-1 layers by the shifted GEMM
// (conv-shifted.hpp); the data gradient of a padded non-zero mode, which the
// shifted kernels do not serve, and the weight gradient of small maps, where
// they do not pay, run through im2col.
//
// Depthwise: each output channel o reads one input
// channel c = o / multiplier, so no patch matrix is needed. The kernels walk
// the taps, and for each tap the output rows, adding w[tap] * (source row)
// with the in-bounds run of the row vectorised and the borders through the
// tap tables. Padding zeros are multiplied like any value (NaN/Inf in a
// weight or gradient spread exactly as in the reference).
#include "cpu/kernels/conv-direct.hpp"

#include <cstring>

#include "cnncore/error.hpp"

#include "cnncore/runtime.hpp"
#include "cpu/kernels/conv-im2col.hpp"
#include "cpu/kernels/conv-shifted.hpp"
#include "cpu/kernels/conv-taps.hpp"

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

std::string conv_direct_why_not(const ConvGeometry& g) {
  if (is_depthwise(g) || conv_shifted_serves(g)) return {};
  return detail::str("the direct path serves depthwise convolution (groups equal to the input channels) and "
                     "stride 1 with at most 2 spatial axes; got groups=", g.groups, " with ", g.C_in,
                     " input channels, stride ", g.stride[1], "x", g.stride[2],
                     g.nd == 3 ? " in 3-D" : "");
}

// The direct kernel reads each input plane once per output channel, im2col
// once per group: with several outputs per input channel (a channel
// multiplier; e.g. a single-channel first layer) the GEMM wins. Measured on
// LeNet's 1->6 5x5 layer: im2col 0.8 ms vs direct 1.7 ms (batch 64); on a
// 128-channel depthwise 3x3 layer direct is 1.5x faster than im2col.
// Stride-1 layers other than depthwise: see conv_shifted_preferred.
bool conv_direct_preferred(const ConvGeometry& g) {
  if (is_depthwise(g)) return g.C_out_g <= 2;
  return conv_shifted_preferred(g);
}

int64_t conv_direct_workspace_bytes(const ConvGeometry& g, int64_t es, detail::ConvPass pass, int threads) {
  if (is_depthwise(g)) return TapTables::bytes(g);
  if (pass == detail::ConvPass::forward ||
      (pass == detail::ConvPass::backward_data && conv_shifted_serves_backward_data(g)) ||
      (pass == detail::ConvPass::backward_weight && conv_shifted_weight_gradient_pays(g)))
    return conv_shifted_workspace_bytes(g, es, pass, threads);
  return conv_im2col_workspace_bytes(g, es, pass, threads);
}

namespace {

template <typename T>
void depthwise_forward(const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  const TapTables tt(g);
  const int64_t P = g.out_size(), isz = g.in_size(), ksz = g.k_size(), OW = g.out[2], sw = g.stride[2];
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads())
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.C_out; ++o) {
      T* y = dst + (n * g.C_out + o) * P;
      const T* x = src + (n * g.C_in + o / g.C_out_g) * isz;
      const T* w = weights + o * ksz;
      const T b = bias ? bias[o] : T(0);
      for (int64_t i = 0; i < P; ++i) y[i] = b;
      for_each_tap_row(g, tt, [&](int64_t t, int64_t tw, int64_t yo, int64_t xo) {
        const T wv = w[t], zero = wv * T(0);
        T* yr = y + yo;
        if (xo < 0) {
          for (int64_t ow = 0; ow < OW; ++ow) yr[ow] += zero;
          return;
        }
        const T* xr = x + xo;
        const int64_t* TW = tt.axis[2].data() + tw * OW;
        const int64_t lo = tt.lo[2][tw], hi = tt.hi[2][tw], off = tt.off[2][tw];
        for (int64_t ow = 0; ow < lo; ++ow) yr[ow] += TW[ow] < 0 ? zero : wv * xr[TW[ow]];
        if (sw == 1) {  // unit stride: a contiguous run the compiler vectorises
          const T* xs = xr + off;
#pragma omp simd
          for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xs[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * sw + off];
        }
        for (int64_t ow = hi; ow < OW; ++ow) yr[ow] += TW[ow] < 0 ? zero : wv * xr[TW[ow]];
      });
    }
}

template <typename T>
void depthwise_backward_data(const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  const TapTables tt(g);
  const int64_t P = g.out_size(), isz = g.in_size(), ksz = g.k_size(), OW = g.out[2], sw = g.stride[2];
  // One thread per (image, input channel): the outputs of a channel's group
  // all scatter into that channel only.
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

template <typename T>
void depthwise_backward_weight(const ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights) {
  const TapTables tt(g);
  const int64_t P = g.out_size(), isz = g.in_size(), ksz = g.k_size(), OW = g.out[2], sw = g.stride[2];
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
  for (int64_t o = 0; o < g.C_out; ++o) {
    T* dw = diff_weights + o * ksz;
    std::memset(dw, 0, sizeof(T) * static_cast<std::size_t>(ksz));
    for (int64_t n = 0; n < g.N; ++n) {
      const T* dy = diff_dst + (n * g.C_out + o) * P;
      const T* x = src + (n * g.C_in + o / g.C_out_g) * isz;
      for_each_tap_row(g, tt, [&](int64_t t, int64_t tw, int64_t yo, int64_t xo) {
        const T* dyr = dy + yo;
        T acc = 0;
        if (xo < 0) {
          for (int64_t ow = 0; ow < OW; ++ow) acc += dyr[ow] * T(0);
        } else {
          const T* xr = x + xo;
          const int64_t* TW = tt.axis[2].data() + tw * OW;
          const int64_t lo = tt.lo[2][tw], hi = tt.hi[2][tw], off = tt.off[2][tw];
          for (int64_t ow = 0; ow < lo; ++ow) acc += dyr[ow] * (TW[ow] < 0 ? T(0) : xr[TW[ow]]);
          if (sw == 1) {
            const T* xs = xr + off;
#pragma omp simd reduction(+ : acc)
            for (int64_t ow = lo; ow < hi; ++ow) acc += dyr[ow] * xs[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) acc += dyr[ow] * xr[ow * sw + off];
          }
          for (int64_t ow = hi; ow < OW; ++ow) acc += dyr[ow] * (TW[ow] < 0 ? T(0) : xr[TW[ow]]);
        }
        dw[t] += acc;
      });
    }
  }
}

}  // namespace

template <typename T>
void conv_forward_direct(const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  if (is_depthwise(g)) return depthwise_forward(g, src, weights, bias, dst);
  conv_forward_shifted(g, src, weights, bias, dst);
}

template <typename T>
void conv_backward_data_direct(const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  if (is_depthwise(g)) return depthwise_backward_data(g, diff_dst, weights, diff_src);
  if (conv_shifted_serves_backward_data(g)) return conv_backward_data_shifted(g, diff_dst, weights, diff_src);
  conv_backward_data_im2col(g, diff_dst, weights, diff_src);
}

template <typename T>
void conv_backward_weight_direct(const ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights) {
  if (is_depthwise(g)) return depthwise_backward_weight(g, diff_dst, src, diff_weights);
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
