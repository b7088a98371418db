// FFT convolution: every pass is a sum, over channel pairs, of pointwise
// products of real-input spectra, done once per call for each plane.
//
// Per axis (the geometry has three), with Kd = dilation*(k-1)+1 the dilated
// kernel extent and Pn = (out-1)*stride + Kd the part of the padded input the
// outputs read, the padded input is materialised through padded_source_index
// into a real plane of length L: plane[j + sh] = xpad[j + lo] for j < len,
// zero elsewhere. Zeros mode keeps only the span where x itself lies
// (lo = pad_before), so zero borders cost no transform length; other modes
// keep all of [0, Pn). The dilated (and, for flip, reversed) kernel sits at
// u = tap*dilation.
//
// Output z reads plane indices e_z + sh + u, e_z = z*stride - lo; it is
// "live" when -(Kd-1) <= e_z <= len-1, otherwise it reads only zeros (bias
// alone). The shift sh = max(0, -min e_z) puts every live output at a
// non-negative position e_z + sh, so the input, the kernel and the outputs
// each occupy a corner of the plane and the FFT skips the all-zero rows
// (and computes only the needed rows on the way back). With
//   L >= max(len, len - min e_z, max e_z + Kd, Kd)
// no circular correlation or convolution below wraps onto a needed index:
//   forward          y[z]  = IFFT(X . conj(W))[e_z]          (correlation)
//   backward data    dx_pl = IFFT(DYu . W)                   (convolution)
//   backward weight  dw[u] = IFFT(X . conj(DYu))[u]          (correlation)
// where DYu is the spectrum of diff_dst scattered to the live positions (the
// stride's zero-upsampling). Backward data then folds the plane gradient onto
// x through the same padded_source_index table (scatter-add): the exact
// adjoint of the materialisation. Sums over channels happen on the spectra.
//
// Arithmetic is float64 for both dtypes. A NaN or Inf in an input would
// spread through a transform to every output; such calls run the reference
// kernel instead, so results keep the direct definition's semantics. (So do
// planes too large to index, which only a memory limit above any machine's
// lets through.)
#include "cpu/kernels/conv-fft.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "cnncore/runtime.hpp"
#include "cpu/kernels/fft.hpp"
#include "cpu/ref/conv-ref.hpp"
#include "util/checked.hpp"

namespace cnncore::cpu {

using detail::ConvGeometry;
using detail::ConvPass;
using fft::cplx;

namespace {

// The scalar layout of one axis (no tables: cheap enough for budgets).
struct AxisShape {
  int64_t lo = 0, len = 0, Kd = 1, L = 1, sh = 0;
  int64_t z_lo = 0, z_hi = -1;  // live outputs z in [z_lo, z_hi]
  int64_t in_end = 0, out_end = 0;  // the input occupies [sh, in_end), live outputs [.., out_end)
  bool live() const { return z_hi >= z_lo; }
};

using detail::ceil_div;
using detail::floor_div;

AxisShape axis_shape(const ConvGeometry& g, int a) {
  AxisShape ax;
  const int64_t s = g.stride[a];
  ax.Kd = g.dilation[a] * (g.k[a] - 1) + 1;
  const int64_t Pn = (g.out[a] - 1) * s + ax.Kd;
  if (g.mode == PaddingMode::zeros) {
    ax.lo = std::min(g.pad_before[a], Pn);
    ax.len = std::min(g.pad_before[a] + g.in[a], Pn) - ax.lo;
  } else {
    ax.lo = 0;
    ax.len = Pn;
  }
  if (ax.len > 0) {
    ax.z_lo = std::max<int64_t>(0, ceil_div(ax.lo - (ax.Kd - 1), s));
    ax.z_hi = std::min<int64_t>(g.out[a] - 1, floor_div(ax.lo + ax.len - 1, s));
  }
  return ax;
}

struct Shape3 {
  AxisShape ax[3];
  bool empty = false;     // no output reads any input value: bias only
  bool too_big = false;   // the plane size overflows 64 bits (the budget is then "infinite")
  int64_t R = 1, S = 1, SC = 0;  // real plane, half spectrum, FFT scratch (elements)

  explicit Shape3(const ConvGeometry& g) {
    for (int a = 0; a < 3; ++a) {
      ax[a] = axis_shape(g, a);
      if (!ax[a].live()) empty = true;
    }
    if (empty) return;
    for (int a = 0; a < 3; ++a) {
      AxisShape& x = ax[a];
      const int64_t emin = x.z_lo * g.stride[a] - x.lo, emax = x.z_hi * g.stride[a] - x.lo;
      const int64_t need = std::max({x.len, x.len - emin, emax + x.Kd, x.Kd});
      x.sh = std::max<int64_t>(0, -emin);
      x.in_end = x.sh + x.len;
      x.out_end = emax + x.sh + 1;
      // The last axis runs the real-input transform: an even length halves it.
      x.L = need == 1 ? 1 : fft::next_fast_length(need, a == 2);
    }
    // A huge stride with a non-zero padding mode can make the planes absurdly
    // large; keep the arithmetic in range so the memory check refuses them.
    int64_t r01 = 0;
    if (__builtin_mul_overflow(ax[0].L, ax[1].L, &r01) || __builtin_mul_overflow(r01, ax[2].L, &R) ||
        R > (int64_t{1} << 56)) {
      too_big = true;
      R = S = SC = 1;
      return;
    }
    S = r01 * (ax[2].L / 2 + 1);
    SC = fft::real_nd_scratch_elems(ax[0].L, ax[1].L, ax[2].L);
  }
};

// Images transformed together: enough work items for every thread.
int64_t image_chunk(const ConvGeometry& g, int threads) {
  return std::max<int64_t>(1, std::min<int64_t>(g.N, threads));
}

// What each pass allocates, in complex (16-byte) elements, plus tables; the
// kernels below allocate exactly these (see Workspace).
struct Budget {
  long double shared_cplx = 0, per_thread_cplx = 0, table_bytes = 0;
  long double bytes(int threads) const { return (shared_cplx + per_thread_cplx * threads) * 16.0L + table_bytes; }
};

Budget budget(const ConvGeometry& g, const Shape3& sh, ConvPass pass, int threads) {
  Budget b;
  if (sh.too_big) {
    b.table_bytes = 1e30L;
    return b;
  }
  if (sh.empty || g.N == 0) return b;
  const long double S = sh.S, nb = static_cast<long double>(image_chunk(g, threads));
  const long double wsp = static_cast<long double>(g.C_out) * g.C_in_g * S;
  switch (pass) {
    case ConvPass::forward: b.shared_cplx = wsp + nb * g.C_in * S; break;
    case ConvPass::backward_data: b.shared_cplx = wsp + nb * g.C_out * S; break;
    case ConvPass::backward_weight: b.shared_cplx = wsp + nb * (g.C_in + g.C_out) * S; break;
  }
  b.per_thread_cplx = (sh.R + 1) / 2 + sh.SC + (pass == ConvPass::backward_weight ? 0 : S);  // see Workspace
  for (int a = 0; a < 3; ++a) {
    b.table_bytes += 8.0L * (sh.ax[a].len + g.out[a] + g.k[a]);
    b.table_bytes += static_cast<long double>(fft::plan_table_bytes(sh.ax[a].L));
  }
  return b;
}

// Index tables of one axis: where plane index j + sh reads x, where output z
// sits in the plane (-1: not live), where kernel tap t sits.
struct AxisTables {
  std::vector<int64_t> src, pos, tap;
};

struct Layout {
  Shape3 sh;
  AxisTables t[3];

  explicit Layout(const ConvGeometry& g) : sh(g) {
    if (sh.empty || sh.too_big) return;
    for (int a = 0; a < 3; ++a) {
      const AxisShape& x = sh.ax[a];
      AxisTables& tb = t[a];
      tb.src.resize(static_cast<std::size_t>(x.len));
      for (int64_t j = 0; j < x.len; ++j)
        tb.src[static_cast<std::size_t>(j)] =
            detail::padded_source_index(j + x.lo - g.pad_before[a], g.in[a], g.mode);
      tb.pos.assign(static_cast<std::size_t>(g.out[a]), -1);
      for (int64_t z = x.z_lo; z <= x.z_hi; ++z) {
        tb.pos[static_cast<std::size_t>(z)] = z * g.stride[a] - x.lo + x.sh;
      }
      tb.tap.resize(static_cast<std::size_t>(g.k[a]));
      for (int64_t k = 0; k < g.k[a]; ++k)
        tb.tap[static_cast<std::size_t>(k)] = (g.flip ? g.k[a] - 1 - k : k) * g.dilation[a];
    }
  }
  int64_t L(int a) const { return sh.ax[a].L; }
};

// plane = the padded x channel (len0 x len1 x len2 at (sh0, sh1, sh2), zeros elsewhere).
template <typename T>
void load_input(const ConvGeometry& g, const Layout& ly, const T* x, double* plane) {
  std::fill(plane, plane + ly.sh.R, 0.0);
  const int64_t L1 = ly.L(1), L2 = ly.L(2);
  const int64_t n0 = ly.sh.ax[0].len, n1 = ly.sh.ax[1].len, n2 = ly.sh.ax[2].len;
  const int64_t sh0 = ly.sh.ax[0].sh, sh1 = ly.sh.ax[1].sh, sh2 = ly.sh.ax[2].sh;
  const int64_t* s0 = ly.t[0].src.data();
  const int64_t* s1 = ly.t[1].src.data();
  const int64_t* s2 = ly.t[2].src.data();
  for (int64_t j0 = 0; j0 < n0; ++j0)
    for (int64_t j1 = 0; j1 < n1; ++j1) {
      const T* xr = x + (s0[j0] * g.in[1] + s1[j1]) * g.in[2];
      double* pr = plane + ((j0 + sh0) * L1 + j1 + sh1) * L2 + sh2;
      for (int64_t j2 = 0; j2 < n2; ++j2) pr[j2] = static_cast<double>(xr[s2[j2]]);
    }
}

// dx (one channel) += the plane gradient folded back through the same table.
template <typename T>
void fold_input(const ConvGeometry& g, const Layout& ly, const double* plane, double scale, T* dx) {
  const int64_t L1 = ly.L(1), L2 = ly.L(2);
  const int64_t n0 = ly.sh.ax[0].len, n1 = ly.sh.ax[1].len, n2 = ly.sh.ax[2].len;
  const int64_t sh0 = ly.sh.ax[0].sh, sh1 = ly.sh.ax[1].sh, sh2 = ly.sh.ax[2].sh;
  const int64_t* s0 = ly.t[0].src.data();
  const int64_t* s1 = ly.t[1].src.data();
  const int64_t* s2 = ly.t[2].src.data();
  for (int64_t j0 = 0; j0 < n0; ++j0)
    for (int64_t j1 = 0; j1 < n1; ++j1) {
      T* xr = dx + (s0[j0] * g.in[1] + s1[j1]) * g.in[2];
      const double* pr = plane + ((j0 + sh0) * L1 + j1 + sh1) * L2 + sh2;
      for (int64_t j2 = 0; j2 < n2; ++j2) xr[s2[j2]] += static_cast<T>(pr[j2] * scale);
    }
}

// plane = the kernel (one output/input channel pair) at its dilated taps.
template <typename T>
void load_kernel(const ConvGeometry& g, const Layout& ly, const T* w, double* plane) {
  std::fill(plane, plane + ly.sh.R, 0.0);
  const int64_t L1 = ly.L(1), L2 = ly.L(2);
  for (int64_t t0 = 0; t0 < g.k[0]; ++t0)
    for (int64_t t1 = 0; t1 < g.k[1]; ++t1)
      for (int64_t t2 = 0; t2 < g.k[2]; ++t2)
        plane[(ly.t[0].tap[t0] * L1 + ly.t[1].tap[t1]) * L2 + ly.t[2].tap[t2]] =
            static_cast<double>(w[(t0 * g.k[1] + t1) * g.k[2] + t2]);
}

// plane = diff_dst (one channel) scattered to the live output positions.
template <typename T>
void load_diff_dst(const ConvGeometry& g, const Layout& ly, const T* dy, double* plane) {
  std::fill(plane, plane + ly.sh.R, 0.0);
  const int64_t L1 = ly.L(1), L2 = ly.L(2);
  const AxisShape* ax = ly.sh.ax;
  for (int64_t z0 = ax[0].z_lo; z0 <= ax[0].z_hi; ++z0)
    for (int64_t z1 = ax[1].z_lo; z1 <= ax[1].z_hi; ++z1) {
      const T* dr = dy + (z0 * g.out[1] + z1) * g.out[2];
      double* pr = plane + (ly.t[0].pos[z0] * L1 + ly.t[1].pos[z1]) * L2;
      for (int64_t z2 = ax[2].z_lo; z2 <= ax[2].z_hi; ++z2) pr[ly.t[2].pos[z2]] = static_cast<double>(dr[z2]);
    }
}

template <typename T>
bool all_finite(const T* p, int64_t n) {
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) ok &= std::isfinite(p[i]);
  return ok;
}

// acc += a . b  or  a . conj(b), pointwise over the S points of one spectrum.
inline void mac(cplx* acc, const cplx* a, const cplx* b, int64_t S, bool conj_b) {
  if (conj_b) {
    for (int64_t i = 0; i < S; ++i) {
      acc[i].re += a[i].re * b[i].re + a[i].im * b[i].im;
      acc[i].im += a[i].im * b[i].re - a[i].re * b[i].im;
    }
  } else {
    for (int64_t i = 0; i < S; ++i) {
      acc[i].re += a[i].re * b[i].re - a[i].im * b[i].im;
      acc[i].im += a[i].im * b[i].re + a[i].re * b[i].im;
    }
  }
}

// Every buffer of one call, carved from a single allocation made before any
// parallel region (one block also lets malloc reuse it from call to call
// instead of faulting fresh pages in). Nothing is zero-filled here.
struct Workspace {
  std::unique_ptr<cplx[]> block;
  cplx* shared = nullptr;
  int64_t R, S, SC, per_thread;  // per_thread: complex elements per thread
  cplx* threads_base = nullptr;

  Workspace(const Shape3& sh, int threads, int64_t shared_cplx, bool with_acc)
      : R(sh.R), S(sh.S), SC(sh.SC), per_thread((sh.R + 1) / 2 + sh.SC + (with_acc ? sh.S : 0)) {
    block.reset(new cplx[static_cast<std::size_t>(shared_cplx + per_thread * threads)]);
    shared = block.get();
    threads_base = shared + shared_cplx;
  }
  // Thread t's real plane (R doubles), FFT scratch and accumulator.
  double* real_of(int t) { return reinterpret_cast<double*>(threads_base + per_thread * t); }
  cplx* scratch_of(int t) { return threads_base + per_thread * t + (R + 1) / 2; }
  cplx* acc_of(int t) { return scratch_of(t) + SC; }
};

// spec[i*S] = FFT of load(i, plane) for i < count, in parallel.
// Only the corner used0 x used1 of the plane's rows may be non-zero.
template <typename Load>
void transform_planes(int64_t count, const fft::RealPlanNd& plan, Workspace& tb, cplx* spec, int nt,
                      int64_t used0, int64_t used1, Load&& load) {
  const int64_t S = tb.S;
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    double* plane = tb.real_of(t);
    cplx* scratch = tb.scratch_of(t);
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < count; ++i) {
      load(i, plane);
      plan.forward(plane, spec + i * S, scratch, used0, used1);
    }
  }
}

}  // namespace

int64_t conv_fft_workspace_bytes(const ConvGeometry& g, int64_t, ConvPass pass, int threads) {
  const Shape3 sh(g);
  // Saturates well below INT64_MAX so the op layer's sum with the result size
  // stays in range and reports the memory limit.
  constexpr int64_t kHuge = INT64_MAX / 4;
  const long double total = budget(g, sh, pass, threads).bytes(threads);
  return total > static_cast<long double>(kHuge) ? kHuge : static_cast<int64_t>(total);
}

// A time estimate from flop counts, bytes and rates measured on one core
// (benchmarks/fft.py and a sweep of layer shapes). It is conservative for FFT
// because this check cannot see the dtype: float32 direct kernels run about
// twice as fast as float64 ones, while the FFT computes in float64 either way.
//   depthwise direct   2*N*C*out*k flops at ~15 GFLOP/s
//   im2col             the same flops at a large GEMM's rate for the kernel
//                      level (generic/avx2/avx512 ~30/70/140 GFLOP/s float32),
//                      plus, once one image's patch matrix outgrows the cache
//                      (8 MB), ~4 passes over it at ~11 GB/s (im2col writes it,
//                      the GEMM packs and reads it: with few output channels
//                      this dominates)
//   fft                transforms ~2.5 R log2 R flops per real plane of R
//                      points at ~9 GFLOP/s, spectral multiply-adds (8 flops
//                      per half-spectrum point) at ~3 GFLOP/s (memory bound),
//                      and ~0.1 ns per workspace byte
// FFT is preferred when it is clearly (1.25x) cheaper, the kernel has at least
// 25 taps, and its workspace takes at most half the memory limit.
bool conv_fft_preferred(const ConvGeometry& g) {
  constexpr double kMargin = 1.25;
  constexpr int64_t kMinTaps = 25;
  if (g.N == 0 || g.k_size() < kMinTaps) return false;
  const Shape3 sh(g);
  if (sh.empty || sh.too_big) return false;
  const double N = static_cast<double>(g.N), R = static_cast<double>(sh.R), S = static_cast<double>(sh.S);
  const double pairs = static_cast<double>(g.C_out) * static_cast<double>(g.C_in_g);
  const double flops = 2.0 * N * pairs * static_cast<double>(g.out_size()) * static_cast<double>(g.k_size());
  double t_direct;  // ns
  if (g.C_in_g == 1 && g.groups == g.C_in) {
    t_direct = flops / 15.0;
  } else {
    const Isa isa = get_isa();
    const double gemm_rate = isa == Isa::generic ? 30 : isa == Isa::avx2 ? 70 : 140;
    const double patch_bytes = static_cast<double>(g.patch_size()) * static_cast<double>(g.out_size()) * 4.0;
    t_direct = flops / gemm_rate;
    if (patch_bytes > 8.0e6) t_direct += N * static_cast<double>(g.groups) * patch_bytes * 4.0 * 0.09;
  }
  const double transforms = N * static_cast<double>(g.C_in + g.C_out) + pairs;
  const int64_t ws = conv_fft_workspace_bytes(g, 8, ConvPass::forward, get_num_threads());
  const double t_fft = transforms * 2.5 * R * std::log2(std::max(R, 2.0)) / 9.0 + 8.0 * N * pairs * S / 3.0 +
                       0.1 * static_cast<double>(ws);
  if (t_direct < kMargin * t_fft) return false;
  // Never trade a problem that fits for one that does not.
  return ws <= get_memory_limit() / 2;
}

template <typename T>
void conv_forward_fft(const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  const int64_t isz = g.in_size(), osz = g.out_size(), ksz = g.k_size();
  if (!all_finite(src, g.N * g.C_in * isz) || !all_finite(weights, g.C_out * g.C_in_g * ksz))
    return ref::conv_forward(g, src, weights, bias, dst);
  const Layout ly(g);
  if (ly.sh.too_big) return ref::conv_forward(g, src, weights, bias, dst);  // only under an absurd memory limit
  if (ly.sh.empty) {  // every output reads only padding zeros
    for (int64_t i = 0; i < g.N * g.C_out; ++i) std::fill(dst + i * osz, dst + (i + 1) * osz, bias ? bias[i % g.C_out] : T(0));
    return;
  }
  const int nt = get_num_threads();
  const int64_t S = ly.sh.S, nb = image_chunk(g, nt), Cg = g.C_in_g;
  const fft::RealPlanNd plan(ly.L(0), ly.L(1), ly.L(2));
  Workspace tb(ly.sh, nt, (g.C_out * Cg + nb * g.C_in) * S, true);
  cplx* wspec = tb.shared;
  cplx* xspec = wspec + g.C_out * Cg * S;
  const AxisShape* ax = ly.sh.ax;
  transform_planes(g.C_out * Cg, plan, tb, wspec, nt, ax[0].Kd, ax[1].Kd,
                   [&](int64_t i, double* plane) { load_kernel(g, ly, weights + i * ksz, plane); });
  const double inv = 1.0 / static_cast<double>(ly.sh.R);
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t cnt = std::min(nb, g.N - n0);
    transform_planes(cnt * g.C_in, plan, tb, xspec, nt, ax[0].in_end, ax[1].in_end,
                     [&](int64_t i, double* plane) { load_input(g, ly, src + (n0 * g.C_in + i) * isz, plane); });
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num();
      cplx* acc = tb.acc_of(t);
      double* plane = tb.real_of(t);
      cplx* scratch = tb.scratch_of(t);
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < cnt * g.C_out; ++item) {
        const int64_t nl = item / g.C_out, o = item % g.C_out, grp = o / g.C_out_g;
        std::fill(acc, acc + S, cplx{0, 0});
        for (int64_t c = 0; c < Cg; ++c)
          mac(acc, xspec + (nl * g.C_in + grp * Cg + c) * S, wspec + (o * Cg + c) * S, S, true);
        plan.inverse(acc, plane, scratch, ax[0].out_end, ax[1].out_end);
        T* y = dst + ((n0 + nl) * g.C_out + o) * osz;
        const T b = bias ? bias[o] : T(0);
        std::fill(y, y + osz, b);
        const int64_t L1 = ly.L(1), L2 = ly.L(2);
        for (int64_t z0 = ax[0].z_lo; z0 <= ax[0].z_hi; ++z0)
          for (int64_t z1 = ax[1].z_lo; z1 <= ax[1].z_hi; ++z1) {
            T* yr = y + (z0 * g.out[1] + z1) * g.out[2];
            const double* pr = plane + (ly.t[0].pos[z0] * L1 + ly.t[1].pos[z1]) * L2;
            for (int64_t z2 = ax[2].z_lo; z2 <= ax[2].z_hi; ++z2)
              yr[z2] = static_cast<T>(pr[ly.t[2].pos[z2]] * inv + static_cast<double>(b));
          }
      }
    }
  }
}

template <typename T>
void conv_backward_data_fft(const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  const int64_t isz = g.in_size(), osz = g.out_size(), ksz = g.k_size();
  if (!all_finite(diff_dst, g.N * g.C_out * osz) || !all_finite(weights, g.C_out * g.C_in_g * ksz))
    return ref::conv_backward_data(g, diff_dst, weights, diff_src);
  const Layout ly(g);
  if (ly.sh.too_big) return ref::conv_backward_data(g, diff_dst, weights, diff_src);
  std::memset(diff_src, 0, sizeof(T) * static_cast<std::size_t>(g.N * g.C_in * isz));
  if (ly.sh.empty) return;
  const int nt = get_num_threads();
  const int64_t S = ly.sh.S, nb = image_chunk(g, nt), Cg = g.C_in_g, Og = g.C_out_g;
  const fft::RealPlanNd plan(ly.L(0), ly.L(1), ly.L(2));
  Workspace tb(ly.sh, nt, (g.C_out * Cg + nb * g.C_out) * S, true);
  cplx* wspec = tb.shared;
  cplx* dspec = wspec + g.C_out * Cg * S;
  const AxisShape* ax = ly.sh.ax;
  transform_planes(g.C_out * Cg, plan, tb, wspec, nt, ax[0].Kd, ax[1].Kd,
                   [&](int64_t i, double* plane) { load_kernel(g, ly, weights + i * ksz, plane); });
  const double inv = 1.0 / static_cast<double>(ly.sh.R);
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t cnt = std::min(nb, g.N - n0);
    transform_planes(cnt * g.C_out, plan, tb, dspec, nt, ax[0].out_end, ax[1].out_end,
                     [&](int64_t i, double* plane) { load_diff_dst(g, ly, diff_dst + (n0 * g.C_out + i) * osz, plane); });
    // One work item per (image, input channel): it alone writes that channel of diff_src.
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num();
      cplx* acc = tb.acc_of(t);
      double* plane = tb.real_of(t);
      cplx* scratch = tb.scratch_of(t);
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < cnt * g.C_in; ++item) {
        const int64_t nl = item / g.C_in, ci = item % g.C_in, grp = ci / Cg, c = ci % Cg;
        std::fill(acc, acc + S, cplx{0, 0});
        for (int64_t o = grp * Og; o < (grp + 1) * Og; ++o)
          mac(acc, dspec + (nl * g.C_out + o) * S, wspec + (o * Cg + c) * S, S, false);
        plan.inverse(acc, plane, scratch, ax[0].in_end, ax[1].in_end);
        fold_input(g, ly, plane, inv, diff_src + ((n0 + nl) * g.C_in + ci) * isz);
      }
    }
  }
}

template <typename T>
void conv_backward_weight_fft(const ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights) {
  const int64_t isz = g.in_size(), osz = g.out_size(), ksz = g.k_size();
  const int64_t wsz = g.C_out * g.C_in_g * ksz;
  if (!all_finite(diff_dst, g.N * g.C_out * osz) || !all_finite(src, g.N * g.C_in * isz))
    return ref::conv_backward_weight(g, diff_dst, src, diff_weights);
  const Layout ly(g);
  if (ly.sh.too_big) return ref::conv_backward_weight(g, diff_dst, src, diff_weights);
  std::memset(diff_weights, 0, sizeof(T) * static_cast<std::size_t>(wsz));
  if (ly.sh.empty || g.N == 0) return;
  const int nt = get_num_threads();
  const int64_t S = ly.sh.S, nb = image_chunk(g, nt), Cg = g.C_in_g, Og = g.C_out_g;
  const fft::RealPlanNd plan(ly.L(0), ly.L(1), ly.L(2));
  Workspace tb(ly.sh, nt, (g.C_out * Cg + nb * (g.C_in + g.C_out)) * S, false);
  // acc[o, c] = sum over images of X[n, c] . conj(DYu[n, o]), kept as spectra.
  cplx* acc = tb.shared;
  cplx* xspec = acc + g.C_out * Cg * S;
  cplx* dspec = xspec + nb * g.C_in * S;
  std::fill(acc, acc + g.C_out * Cg * S, cplx{0, 0});
  const AxisShape* ax = ly.sh.ax;
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t cnt = std::min(nb, g.N - n0);
    transform_planes(cnt * g.C_in, plan, tb, xspec, nt, ax[0].in_end, ax[1].in_end,
                     [&](int64_t i, double* plane) { load_input(g, ly, src + (n0 * g.C_in + i) * isz, plane); });
    transform_planes(cnt * g.C_out, plan, tb, dspec, nt, ax[0].out_end, ax[1].out_end,
                     [&](int64_t i, double* plane) { load_diff_dst(g, ly, diff_dst + (n0 * g.C_out + i) * osz, plane); });
#pragma omp parallel for schedule(dynamic) num_threads(nt)
    for (int64_t item = 0; item < g.C_out * Cg; ++item) {
      const int64_t o = item / Cg, c = item % Cg, grp = o / Og;
      for (int64_t nl = 0; nl < cnt; ++nl)
        mac(acc + item * S, xspec + (nl * g.C_in + grp * Cg + c) * S, dspec + (nl * g.C_out + o) * S, S, true);
    }
  }
  const double inv = 1.0 / static_cast<double>(ly.sh.R);
  const int64_t L1 = ly.L(1), L2 = ly.L(2);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    double* plane = tb.real_of(t);
    cplx* scratch = tb.scratch_of(t);
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < g.C_out * Cg; ++item) {
      plan.inverse(acc + item * S, plane, scratch, ax[0].Kd, ax[1].Kd);
      T* dw = diff_weights + item * ksz;
      for (int64_t t0 = 0; t0 < g.k[0]; ++t0)
        for (int64_t t1 = 0; t1 < g.k[1]; ++t1)
          for (int64_t t2 = 0; t2 < g.k[2]; ++t2)
            dw[(t0 * g.k[1] + t1) * g.k[2] + t2] =
                static_cast<T>(plane[(ly.t[0].tap[t0] * L1 + ly.t[1].tap[t1]) * L2 + ly.t[2].tap[t2]] * inv);
    }
  }
}

#define CNNCORE_INSTANTIATE(T)                                                                   \
  template void conv_forward_fft<T>(const ConvGeometry&, const T*, const T*, const T*, T*);     \
  template void conv_backward_data_fft<T>(const ConvGeometry&, const T*, const T*, T*);         \
  template void conv_backward_weight_fft<T>(const ConvGeometry&, const T*, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
