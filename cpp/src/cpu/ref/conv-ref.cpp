#include "cpu/ref/conv-ref.hpp"

#include <cstring>

#include "cnncore/runtime.hpp"

namespace cnncore::cpu::ref {

using detail::ConvGeometry;
using detail::padded_source_index;

namespace {

// Source index on axis `a` for output position `o` and kernel tap `t`, or -1.
inline int64_t src_index(const ConvGeometry& g, int a, int64_t o, int64_t t) {
  const int64_t tap = g.flip ? g.k[a] - 1 - t : t;
  return padded_source_index(o * g.stride[a] + tap * g.dilation[a] - g.pad_before[a], g.in[a], g.mode);
}

// Visits every (output position, kernel tap) pair of one (image, output
// channel): f(dst_offset, w_offset, src_offset) with offsets relative to the
// image / weight block of that channel; src_offset is -1 where the tap reads
// a zero of the padding. Padding zeros are multiplied like any value, so a
// NaN or Inf weight poisons border outputs too, as in the padded definition.
template <typename F>
void for_each_tap(const ConvGeometry& g, F&& f) {
  const int64_t ksz = g.k_size();
  for (int64_t c = 0; c < g.C_in_g; ++c)
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh)
        for (int64_t ow = 0; ow < g.out[2]; ++ow)
          for (int64_t td = 0; td < g.k[0]; ++td) {
            const int64_t sd = src_index(g, 0, od, td);
            for (int64_t th = 0; th < g.k[1]; ++th) {
              const int64_t sh = src_index(g, 1, oh, th);
              for (int64_t tw = 0; tw < g.k[2]; ++tw) {
                const int64_t sw = src_index(g, 2, ow, tw);
                const bool inside = sd >= 0 && sh >= 0 && sw >= 0;
                f((od * g.out[1] + oh) * g.out[2] + ow, c * ksz + (td * g.k[1] + th) * g.k[2] + tw,
                  inside ? c * g.in_size() + (sd * g.in[1] + sh) * g.in[2] + sw : int64_t{-1});
              }
            }
          }
}

}  // namespace

template <typename T>
void conv_forward(const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  const int64_t osz = g.out_size(), isz = g.in_size(), wsz = g.C_in_g * g.k_size();
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(get_num_threads())
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.C_out; ++o) {
      const int64_t grp = o / g.C_out_g;
      T* y = dst + (n * g.C_out + o) * osz;
      for (int64_t i = 0; i < osz; ++i) y[i] = bias ? bias[o] : T(0);
      const T* x = src + (n * g.C_in + grp * g.C_in_g) * isz;
      const T* w = weights + o * wsz;
      for_each_tap(g, [&](int64_t yo, int64_t wo, int64_t xo) { y[yo] += w[wo] * (xo < 0 ? T(0) : x[xo]); });
    }
}

template <typename T>
void conv_backward_data(const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  const int64_t osz = g.out_size(), isz = g.in_size(), wsz = g.C_in_g * g.k_size();
  // Images and groups write disjoint parts of diff_src; output channels of a
  // group share them, so they run in order.
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(get_num_threads())
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      T* dx = diff_src + (n * g.C_in + grp * g.C_in_g) * isz;
      std::memset(dx, 0, sizeof(T) * static_cast<std::size_t>(g.C_in_g * isz));
      for (int64_t o = grp * g.C_out_g; o < (grp + 1) * g.C_out_g; ++o) {
        const T* dy = diff_dst + (n * g.C_out + o) * osz;
        const T* w = weights + o * wsz;
        for_each_tap(g, [&](int64_t yo, int64_t wo, int64_t xo) {
          if (xo >= 0) dx[xo] += w[wo] * dy[yo];
        });
      }
    }
}

template <typename T>
void conv_backward_weight(const ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights) {
  const int64_t osz = g.out_size(), isz = g.in_size(), wsz = g.C_in_g * g.k_size();
#pragma omp parallel for schedule(dynamic) num_threads(get_num_threads())
  for (int64_t o = 0; o < g.C_out; ++o) {
    const int64_t grp = o / g.C_out_g;
    T* dw = diff_weights + o * wsz;
    std::memset(dw, 0, sizeof(T) * static_cast<std::size_t>(wsz));
    for (int64_t n = 0; n < g.N; ++n) {
      const T* dy = diff_dst + (n * g.C_out + o) * osz;
      const T* x = src + (n * g.C_in + grp * g.C_in_g) * isz;
      for_each_tap(g, [&](int64_t yo, int64_t wo, int64_t xo) { dw[wo] += dy[yo] * (xo < 0 ? T(0) : x[xo]); });
    }
  }
}

#define CNNCORE_INSTANTIATE(T)                                                                  \
  template void conv_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*);        \
  template void conv_backward_data<T>(const ConvGeometry&, const T*, const T*, T*);            \
  template void conv_backward_weight<T>(const ConvGeometry&, const T*, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu::ref
