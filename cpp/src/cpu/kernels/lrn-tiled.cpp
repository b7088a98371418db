#include "cpu/kernels/lrn-tiled.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cnncore/runtime.hpp"
#include "util/checked.hpp"

namespace cnncore::cpu {

using detail::AxisGeometry;

namespace {

constexpr int64_t kTile = 64;

// Runs f(buffer, n, i0, width) for every (image, tile) with a per-thread
// buffer of `per_thread` elements.
template <typename T, typename F>
void for_each_tile(const AxisGeometry& g, int64_t per_thread, F&& f) {
  const int64_t tiles = (g.inner + kTile - 1) / kTile;
  const int nt = get_num_threads();
#pragma omp parallel num_threads(nt)
  {
    std::vector<T> buf(static_cast<std::size_t>(per_thread));
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.outer; ++n)
      for (int64_t t = 0; t < tiles; ++t) f(buf.data(), n, t * kTile, std::min(kTile, g.inner - t * kTile));
  }
}

// s[c][j] = k + alpha/size * sum_{c' in W(c)} sq[c'][j], rows of stride kTile.
template <typename T>
void window_sums(int64_t C, int64_t w, const LrnParams& p, const T* sq, T* s) {
  const T k = static_cast<T>(p.k), as = static_cast<T>(p.alpha / static_cast<double>(p.size));
  const int64_t before = p.size / 2, after = (p.size - 1) / 2;
  for (int64_t c = 0; c < C; ++c) {
    T* sc = s + c * kTile;
    for (int64_t j = 0; j < w; ++j) sc[j] = 0;
    for (int64_t q = std::max<int64_t>(0, c - before); q <= std::min(C - 1, c + after); ++q) {
      const T* r = sq + q * kTile;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) sc[j] += r[j];
    }
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) sc[j] = k + as * sc[j];
  }
}

}  // namespace

int64_t lrn_workspace_bytes(const AxisGeometry& g, int64_t elem_size, int threads, bool backward) {
  const char* op = "local_response_norm";
  const int64_t per = detail::checked_mul(detail::checked_mul(g.axis, kTile, op), backward ? 3 : 2, op);
  return detail::checked_mul(detail::checked_mul(per, elem_size, op), threads, op);
}

template <typename T>
void lrn_forward(const AxisGeometry& g, const LrnParams& p, const T* src, T* dst) {
  const int64_t C = g.axis, inner = g.inner;
  if (g.numel() == 0) return;
  const T beta = static_cast<T>(p.beta);
  for_each_tile<T>(g, 2 * C * kTile, [&](T* buf, int64_t n, int64_t i0, int64_t w) {
    T* sq = buf;
    T* s = buf + C * kTile;
    const T* x = src + n * C * inner + i0;
    T* y = dst + n * C * inner + i0;
    for (int64_t c = 0; c < C; ++c) {
      const T* xr = x + c * inner;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) sq[c * kTile + j] = xr[j] * xr[j];
    }
    window_sums(C, w, p, sq, s);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < w; ++j) y[c * inner + j] = x[c * inner + j] / std::pow(s[c * kTile + j], beta);
  });
}

// With s_c the window sum and P_c = s_c^beta:
//   dx_j = g_j / P_j - 2 alpha/size beta x_j sum_{c : j in W(c)} g_c x_c / (P_c s_c),
// and j in W(c)  <=>  c in [j - (size-1)/2, j + size/2].
template <typename T>
void lrn_backward(const AxisGeometry& g, const LrnParams& p, const T* diff_dst, const T* src, T* diff_src) {
  const int64_t C = g.axis, inner = g.inner;
  if (g.numel() == 0) return;
  const T beta = static_cast<T>(p.beta);
  const T coef = static_cast<T>(2.0 * p.alpha / static_cast<double>(p.size) * p.beta);
  const int64_t lo = (p.size - 1) / 2, hi = p.size / 2;
  for_each_tile<T>(g, 3 * C * kTile, [&](T* buf, int64_t n, int64_t i0, int64_t w) {
    T* sq = buf;  // squares, then t_c = g_c x_c / (P_c s_c)
    T* s = buf + C * kTile;
    T* P = buf + 2 * C * kTile;
    const int64_t base = n * C * inner + i0;
    const T* x = src + base;
    const T* dy = diff_dst + base;
    T* dx = diff_src + base;
    for (int64_t c = 0; c < C; ++c) {
      const T* xr = x + c * inner;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) sq[c * kTile + j] = xr[j] * xr[j];
    }
    window_sums(C, w, p, sq, s);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < w; ++j) {
        const int64_t e = c * kTile + j;
        P[e] = std::pow(s[e], beta);
        sq[e] = dy[c * inner + j] * x[c * inner + j] / (P[e] * s[e]);
      }
    // s is free now: reuse it for the sums of t over the transposed window.
    for (int64_t c = 0; c < C; ++c) {
      T* a = s + c * kTile;
      for (int64_t j = 0; j < w; ++j) a[j] = 0;
      for (int64_t q = std::max<int64_t>(0, c - lo); q <= std::min(C - 1, c + hi); ++q) {
        const T* r = sq + q * kTile;
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) a[j] += r[j];
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      const T* xr = x + c * inner;
      const T* gr = dy + c * inner;
      T* dr = dx + c * inner;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) dr[j] = gr[j] / P[c * kTile + j] - coef * xr[j] * s[c * kTile + j];
    }
  });
}

template void lrn_forward<float>(const AxisGeometry&, const LrnParams&, const float*, float*);
template void lrn_forward<double>(const AxisGeometry&, const LrnParams&, const double*, double*);
template void lrn_backward<float>(const AxisGeometry&, const LrnParams&, const float*, const float*, float*);
template void lrn_backward<double>(const AxisGeometry&, const LrnParams&, const double*, const double*, double*);

}  // namespace cnncore::cpu
