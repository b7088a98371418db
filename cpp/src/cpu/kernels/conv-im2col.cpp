#include "cpu/kernels/conv-im2col.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "cnncore/runtime.hpp"
#include "util/partial_sums.hpp"
#include "cpu/kernels/conv-taps.hpp"
#include "cpu/kernels/gemm.hpp"

namespace cnncore::cpu {

using detail::ConvGeometry;

namespace {

// A 1x1 kernel with unit stride and no padding reads the input as it is.
bool is_pointwise(const ConvGeometry& g) {
  for (int a = 0; a < 3; ++a)
    if (g.k[a] != 1 || g.stride[a] != 1) return false;
  return !g.has_padding();
}

// Images run in parallel (each with a single-threaded GEMM) when there are
// at least as many as threads; otherwise each GEMM runs multi-threaded.
bool images_in_parallel(const ConvGeometry& g, int threads) { return threads > 1 && g.N >= threads; }

// Row r = (c, td, th, tw) of the patch matrix of one group; column p = output position.
template <typename T>
void im2col(const ConvGeometry& g, const TapTables& tt, const T* x, T* col, bool parallel, int nt) {
  const int64_t rows = g.patch_size(), P = g.out_size(), ksz = g.k_size(), isz = g.in_size();
#pragma omp parallel for schedule(static) num_threads(nt) if (parallel)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / ksz, t = r % ksz;
    const int64_t* TD = tt.axis[0].data() + (t / (g.k[1] * g.k[2])) * g.out[0];
    const int64_t* TH = tt.axis[1].data() + ((t / g.k[2]) % g.k[1]) * g.out[1];
    const int64_t tw = t % g.k[2];
    const int64_t* TW = tt.axis[2].data() + tw * g.out[2];
    const int64_t lo = tt.lo[2][tw], hi = tt.hi[2][tw], off = tt.off[2][tw], sw = g.stride[2];
    const T* xc = x + c * isz;
    T* d = col + r * P;
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh, d += g.out[2]) {
        const int64_t sd = TD[od], sh = TH[oh];
        if (sd < 0 || sh < 0) {
          std::fill(d, d + g.out[2], T(0));
          continue;
        }
        const T* xr = xc + (sd * g.in[1] + sh) * g.in[2];
        for (int64_t ow = 0; ow < lo; ++ow) d[ow] = TW[ow] < 0 ? T(0) : xr[TW[ow]];
        if (sw == 1) {  // rows are often short: an inline loop, not a memmove call
          const T* xs = xr + off;
#pragma omp simd
          for (int64_t ow = lo; ow < hi; ++ow) d[ow] = xs[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) d[ow] = xr[ow * sw + off];
        }
        for (int64_t ow = hi; ow < g.out[2]; ++ow) d[ow] = TW[ow] < 0 ? T(0) : xr[TW[ow]];
      }
  }
}

// The adjoint of im2col: adds every patch entry back into its source (dx is
// accumulated into). Channels write disjoint parts of dx.
template <typename T>
void col2im(const ConvGeometry& g, const TapTables& tt, const T* col, T* dx, bool parallel, int nt) {
  const int64_t P = g.out_size(), ksz = g.k_size(), isz = g.in_size();
#pragma omp parallel for schedule(static) num_threads(nt) if (parallel)
  for (int64_t c = 0; c < g.C_in_g; ++c) {
    T* xc = dx + c * isz;
    for (int64_t t = 0; t < ksz; ++t) {
      const int64_t* TD = tt.axis[0].data() + (t / (g.k[1] * g.k[2])) * g.out[0];
      const int64_t* TH = tt.axis[1].data() + ((t / g.k[2]) % g.k[1]) * g.out[1];
      const int64_t tw = t % g.k[2];
      const int64_t* TW = tt.axis[2].data() + tw * g.out[2];
      const int64_t lo = tt.lo[2][tw], hi = tt.hi[2][tw], off = tt.off[2][tw], sw = g.stride[2];
      const T* d = col + (c * ksz + t) * P;
      for (int64_t od = 0; od < g.out[0]; ++od)
        for (int64_t oh = 0; oh < g.out[1]; ++oh, d += g.out[2]) {
          const int64_t sd = TD[od], sh = TH[oh];
          if (sd < 0 || sh < 0) continue;
          T* xr = xc + (sd * g.in[1] + sh) * g.in[2];
          for (int64_t ow = 0; ow < lo; ++ow)
            if (TW[ow] >= 0) xr[TW[ow]] += d[ow];
          if (sw == 1) {
            T* xs = xr + off;
#pragma omp simd
            for (int64_t ow = lo; ow < hi; ++ow) xs[ow] += d[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) xr[ow * sw + off] += d[ow];
          }
          for (int64_t ow = hi; ow < g.out[2]; ++ow)
            if (TW[ow] >= 0) xr[TW[ow]] += d[ow];
        }
    }
  }
}

// Uninitialised scratch memory (every user writes before it reads).
template <typename T>
struct Scratch {
  std::unique_ptr<T[]> buf;
  T* get(int64_t n) {
    if (!buf && n > 0) buf.reset(new T[static_cast<std::size_t>(n)]);
    return buf.get();
  }
};

// Runs body(n, workspace, parallel_inside) for every image, either images in
// parallel with one workspace slice per thread, or one after another with
// parallel kernels inside. Returns the workspace (per_thread elements per
// thread used). `partial_sums`: the body adds into its thread's workspace,
// so the images' assignment to threads follows schedule_partial_sums.
template <typename T, typename F>
T* for_each_image(const ConvGeometry& g, Scratch<T>& ws, int64_t ws_per_thread, F&& body, bool partial_sums = false) {
  const int nt = get_num_threads();
  if (images_in_parallel(g, nt)) {
    T* all = ws.get(ws_per_thread * nt);
    if (partial_sums)
      detail::schedule_partial_sums(1);
    else
      omp_set_schedule(omp_sched_dynamic, 1);
#pragma omp parallel num_threads(nt)
    {
      T* mine = all + ws_per_thread * omp_get_thread_num();
#pragma omp for schedule(runtime)
      for (int64_t n = 0; n < g.N; ++n) body(n, mine, false);
    }
    return all;
  }
  T* one = ws.get(ws_per_thread);
  for (int64_t n = 0; n < g.N; ++n) body(n, one, nt > 1);
  return one;
}

}  // namespace

int64_t conv_im2col_workspace_bytes(const ConvGeometry& g, int64_t elem_size, ConvPass pass, int threads) {
  // Sizes were overflow-checked by make_conv_geometry except the thread factor.
  const int64_t copies = images_in_parallel(g, threads) ? threads : 1;
  int64_t elems = is_pointwise(g) ? 0 : g.patch_size() * g.out_size();
  if (pass == ConvPass::backward_weight && copies > 1) elems += g.C_out * g.patch_size();
  const long double total = static_cast<long double>(elems) * elem_size * copies + TapTables::bytes(g);
  return total > 9.0e18L ? INT64_MAX : static_cast<int64_t>(total);
}

template <typename T>
void conv_forward_im2col(const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  const auto& uk = gemm_ukernel_for_current_isa<T>();
  const TapTables tt(g);
  const bool pointwise = is_pointwise(g);
  const int64_t P = g.out_size(), Kd = g.patch_size(), isz = g.in_size();
  Scratch<T> ws;
  for_each_image<T>(g, ws, pointwise ? 0 : Kd * P, [&](int64_t n, T* col, bool par) {
    const int nt = get_num_threads();
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* x = src + (n * g.C_in + grp * g.C_in_g) * isz;
      if (!pointwise) im2col(g, tt, x, col, par, nt);
      T* y = dst + (n * g.C_out + grp * g.C_out_g) * P;
      gemm(uk, false, false, g.C_out_g, P, Kd, weights + grp * g.C_out_g * Kd, Kd, pointwise ? x : col, P, false,
           y, P, par);
      if (bias)
        for (int64_t o = 0; o < g.C_out_g; ++o) {
          const T b = bias[grp * g.C_out_g + o];
          T* yo = y + o * P;
#pragma omp simd
          for (int64_t p = 0; p < P; ++p) yo[p] += b;
        }
    }
  });
}

template <typename T>
void conv_backward_data_im2col(const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  const auto& uk = gemm_ukernel_for_current_isa<T>();
  const TapTables tt(g);
  const bool pointwise = is_pointwise(g);
  const int64_t P = g.out_size(), Kd = g.patch_size(), isz = g.in_size();
  Scratch<T> ws;
  for_each_image<T>(g, ws, pointwise ? 0 : Kd * P, [&](int64_t n, T* col, bool par) {
    const int nt = get_num_threads();
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      T* dx = diff_src + (n * g.C_in + grp * g.C_in_g) * isz;
      const T* dy = diff_dst + (n * g.C_out + grp * g.C_out_g) * P;
      const T* w = weights + grp * g.C_out_g * Kd;
      // patch gradient (Kd x P) = W_g^T (Kd x C_out_g) * dy (C_out_g x P)
      if (pointwise) {
        gemm(uk, true, false, Kd, P, g.C_out_g, w, Kd, dy, P, false, dx, P, par);
      } else {
        gemm(uk, true, false, Kd, P, g.C_out_g, w, Kd, dy, P, false, col, P, par);
        std::memset(dx, 0, sizeof(T) * static_cast<std::size_t>(g.C_in_g * isz));
        col2im(g, tt, col, dx, par, nt);
      }
    }
  });
}

template <typename T>
void conv_backward_weight_im2col(const ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights) {
  const auto& uk = gemm_ukernel_for_current_isa<T>();
  const TapTables tt(g);
  const bool pointwise = is_pointwise(g);
  const int64_t P = g.out_size(), Kd = g.patch_size(), isz = g.in_size();
  const int64_t wsz = g.C_out * Kd;
  const int nt = get_num_threads();
  const bool private_sums = images_in_parallel(g, nt);
  // With images in parallel each thread sums into its own copy of the
  // weight gradient (after its patch buffer); the copies are added at the end.
  const int64_t per_thread = (pointwise ? 0 : Kd * P) + (private_sums ? wsz : 0);
  std::memset(diff_weights, 0, sizeof(T) * static_cast<std::size_t>(wsz));
  Scratch<T> ws;
  const int64_t col_size = pointwise ? 0 : Kd * P;
  if (private_sums) {
    T* all = ws.get(per_thread * nt);
    for (int t = 0; t < nt; ++t) std::fill(all + t * per_thread + col_size, all + (t + 1) * per_thread, T(0));
  }
  T* const all = for_each_image<T>(g, ws, per_thread, [&](int64_t n, T* buf, bool par) {
    T* col = buf;
    T* dw = private_sums ? buf + col_size : diff_weights;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* x = src + (n * g.C_in + grp * g.C_in_g) * isz;
      if (!pointwise) im2col(g, tt, x, col, par, nt);
      const T* dy = diff_dst + (n * g.C_out + grp * g.C_out_g) * P;
      // dW_g (C_out_g x Kd) += dy (C_out_g x P) * patches^T (P x Kd)
      gemm(uk, false, true, g.C_out_g, Kd, P, dy, P, pointwise ? x : col, P, true, dw + grp * g.C_out_g * Kd, Kd,
           par);
    }
  }, private_sums);
  if (private_sums) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < wsz; ++i) {
      T s = 0;
      for (int t = 0; t < nt; ++t) s += all[t * per_thread + col_size + i];
      diff_weights[i] = s;
    }
  }
}

#define CNNCORE_INSTANTIATE(T)                                                                        \
  template void conv_forward_im2col<T>(const ConvGeometry&, const T*, const T*, const T*, T*);       \
  template void conv_backward_data_im2col<T>(const ConvGeometry&, const T*, const T*, T*);           \
  template void conv_backward_weight_im2col<T>(const ConvGeometry&, const T*, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
