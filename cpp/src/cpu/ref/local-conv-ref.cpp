#include "cpu/ref/local-conv-ref.hpp"

#include <cstring>

#include "cnncore/runtime.hpp"

namespace cnncore::cpu::ref {

using detail::ConvGeometry;
using detail::LocalConvGeometry;
using detail::padded_source_index;

namespace {

// Input index on axis a (1 = H, 2 = W) read by output index o at window
// offset t, or -1 where the padding supplies a zero.
inline int64_t src_index(const ConvGeometry& c, int a, int64_t o, int64_t t) {
  return padded_source_index(o * c.stride[a] + t * c.dilation[a] - c.pad_before[a], c.in[a], c.mode);
}

// Kernel tap that multiplies window offset t (rotated under flip).
inline int64_t tap(const ConvGeometry& c, int a, int64_t t) { return c.flip ? c.k[a] - 1 - t : t; }

// Offset of the kernel block used at output position (i, j).
inline int64_t block_offset(const LocalConvGeometry& g, int64_t i, int64_t j) {
  return ((i % g.tile[0]) * g.tile[1] + j % g.tile[1]) * g.block();
}

}  // namespace

template <typename T>
void local_conv_forward(const LocalConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  const ConvGeometry& c = g.conv;
  const int64_t C_in = g.C_in(), C_out = g.C_out(), H = g.H(), W = g.W(), Ho = g.H_out(), Wo = g.W_out();
  const int64_t kH = g.kH(), kW = g.kW(), K = g.K();
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(get_num_threads())
  for (int64_t n = 0; n < g.N(); ++n)
    for (int64_t o = 0; o < C_out; ++o) {
      const T* x = src + n * C_in * H * W;
      T* y = dst + (n * C_out + o) * Ho * Wo;
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          const T* w = weights + block_offset(g, i, j) + o * K;
          // Padding zeros are multiplied like any value, so NaN/Inf weights
          // poison border outputs exactly as in the padded definition.
          T acc = bias ? bias[(o * g.tile[0] + i % g.tile[0]) * g.tile[1] + j % g.tile[1]] : T(0);
          for (int64_t ch = 0; ch < C_in; ++ch)
            for (int64_t a = 0; a < kH; ++a) {
              const int64_t h = src_index(c, 1, i, a);
              for (int64_t b = 0; b < kW; ++b) {
                const int64_t v = src_index(c, 2, j, b);
                const T xv = h < 0 || v < 0 ? T(0) : x[(ch * H + h) * W + v];
                acc += w[(ch * kH + tap(c, 1, a)) * kW + tap(c, 2, b)] * xv;
              }
            }
          y[i * Wo + j] = acc;
        }
    }
}

template <typename T>
void local_conv_backward_data(const LocalConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  const ConvGeometry& c = g.conv;
  const int64_t C_in = g.C_in(), C_out = g.C_out(), H = g.H(), W = g.W(), Ho = g.H_out(), Wo = g.W_out();
  const int64_t kH = g.kH(), kW = g.kW(), K = g.K();
  // Images write disjoint parts of diff_src.
#pragma omp parallel for schedule(dynamic) num_threads(get_num_threads())
  for (int64_t n = 0; n < g.N(); ++n) {
    T* dx = diff_src + n * C_in * H * W;
    std::memset(dx, 0, sizeof(T) * static_cast<std::size_t>(C_in * H * W));
    for (int64_t o = 0; o < C_out; ++o)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          const T d = diff_dst[((n * C_out + o) * Ho + i) * Wo + j];
          const T* w = weights + block_offset(g, i, j) + o * K;
          for (int64_t ch = 0; ch < C_in; ++ch)
            for (int64_t a = 0; a < kH; ++a) {
              const int64_t h = src_index(c, 1, i, a);
              if (h < 0) continue;
              for (int64_t b = 0; b < kW; ++b) {
                const int64_t v = src_index(c, 2, j, b);
                if (v >= 0) dx[(ch * H + h) * W + v] += w[(ch * kH + tap(c, 1, a)) * kW + tap(c, 2, b)] * d;
              }
            }
        }
  }
}

template <typename T>
void local_conv_backward_weight(const LocalConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights) {
  const ConvGeometry& c = g.conv;
  const int64_t C_in = g.C_in(), C_out = g.C_out(), H = g.H(), W = g.W(), Ho = g.H_out(), Wo = g.W_out();
  const int64_t kH = g.kH(), kW = g.kW(), K = g.K(), tH = g.tile[0], tW = g.tile[1];
  // Each (kernel block, output channel) row of diff_weights is written by one iteration.
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(get_num_threads())
  for (int64_t cls = 0; cls < g.classes(); ++cls)
    for (int64_t o = 0; o < C_out; ++o) {
      T* dw = diff_weights + cls * g.block() + o * K;
      std::memset(dw, 0, sizeof(T) * static_cast<std::size_t>(K));
      for (int64_t n = 0; n < g.N(); ++n) {
        const T* x = src + n * C_in * H * W;
        for (int64_t i = cls / tW; i < Ho; i += tH)
          for (int64_t j = cls % tW; j < Wo; j += tW) {
            const T d = diff_dst[((n * C_out + o) * Ho + i) * Wo + j];
            for (int64_t ch = 0; ch < C_in; ++ch)
              for (int64_t a = 0; a < kH; ++a) {
                const int64_t h = src_index(c, 1, i, a);
                for (int64_t b = 0; b < kW; ++b) {
                  const int64_t v = src_index(c, 2, j, b);
                  const T xv = h < 0 || v < 0 ? T(0) : x[(ch * H + h) * W + v];
                  dw[(ch * kH + tap(c, 1, a)) * kW + tap(c, 2, b)] += d * xv;
                }
              }
          }
      }
    }
}

#define CNNCORE_INSTANTIATE(T)                                                                         \
  template void local_conv_forward<T>(const LocalConvGeometry&, const T*, const T*, const T*, T*);    \
  template void local_conv_backward_data<T>(const LocalConvGeometry&, const T*, const T*, T*);        \
  template void local_conv_backward_weight<T>(const LocalConvGeometry&, const T*, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu::ref
