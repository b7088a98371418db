#include "cpu/kernels/conv-smallmap.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "cnncore/runtime.hpp"
#include "cpu/kernels/gemm.hpp"

namespace cnncore::cpu {

using detail::ConvGeometry;

namespace {

// Maps of at most this many positions in and out are served; at most
// kSmallPositions are preferred for every pass, up to kWidePositions for the
// forward and data-gradient passes of wide layers, and up to kMaxPositions
// for the data gradient when most taps read padding (conv_smallmap_preferred).
constexpr int64_t kMaxPositions = 256, kSmallPositions = 16, kWidePositions = 64, kWideChannels = 256;
constexpr int64_t kWeightGradientMaxK = 800;
constexpr int64_t kMaxMR = 16, kMaxNR = 64;  // the tallest and widest tiles of any kernel level

bool two_d(const ConvGeometry& g) {
  return g.in[0] == 1 && g.k[0] == 1 && g.pad_before[0] == 0 && g.pad_after[0] == 0;
}

// (weight tap, input position) of each live tap of output position q, and
// (weight tap, output position) of each pair that reads input position p.
struct Taps {
  std::vector<std::vector<std::pair<int64_t, int64_t>>> of_out, of_in;

  explicit Taps(const ConvGeometry& g)
      : of_out(static_cast<std::size_t>(g.out_size())), of_in(static_cast<std::size_t>(g.in_size())) {
    const int64_t ksz = g.k_size();
    for (int64_t oh = 0; oh < g.out[1]; ++oh)
      for (int64_t ow = 0; ow < g.out[2]; ++ow)
        for (int64_t kh = 0; kh < g.k[1]; ++kh)
          for (int64_t kw = 0; kw < g.k[2]; ++kw) {
            const int64_t h = oh + kh * g.dilation[1] - g.pad_before[1];
            const int64_t w = ow + kw * g.dilation[2] - g.pad_before[2];
            if (h < 0 || h >= g.in[1] || w < 0 || w >= g.in[2]) continue;
            const int64_t t = kh * g.k[2] + kw, wt = g.flip ? ksz - 1 - t : t;
            const int64_t q = oh * g.out[2] + ow, p = h * g.in[2] + w;
            of_out[static_cast<std::size_t>(q)].emplace_back(wt, p);
            of_in[static_cast<std::size_t>(p)].emplace_back(wt, q);
          }
  }
};

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// N images fill at least 3/4 of the column tiles of width nr.
bool fills(int64_t N, int64_t nr) { return N >= 1 && 4 * N >= 3 * round_up(N, nr); }

// The current level's kernel, or, when N images would leave its column tiles
// part-empty, the widest narrower SIMD kernel this CPU runs that they fill,
// of the highest level at that width (on AVX-512, batch 16 takes the 16x16
// zmm tile rather than half of 8x32; the baseline 4x8 tile is too slow to
// pay); nullptr when none does.
template <typename T>
const GemmUkernel<T>* ukernel_for_columns(int64_t N) {
  const GemmUkernel<T>& cur = gemm_ukernel_for_current_isa<T>();
  if (fills(N, cur.nr)) return &cur;
  int count = 0;
  const GemmUkernel<T>* all = gemm_ukernels<T>(&count);
  const GemmUkernel<T>* best = nullptr;
  for (int i = 0; i < count; ++i)
    if (all[i].isa <= get_isa() && all[i].isa > Isa::generic && all[i].nr < cur.nr && fills(N, all[i].nr) &&
        (!best || all[i].nr > best->nr || (all[i].nr == best->nr && all[i].isa > best->isa)))
      best = &all[i];
  return best;
}

// Row sliver s (MR rows) of every tap's rows x cols matrix M_t(r, k) = w[t]
// at element (r, k) of the weights (w_at(r, k) points to tap 0 of that
// pair): tap t's sliver at out + t * cols * MR, element (r = s*MR + i, k) at
// [k * MR + i], rows past `rows` zero. Each pair's taps are adjacent, so the
// weights are read in one pass. Returns whether every value is finite (a
// product by zero of each, summed in independent lanes).
template <typename T, typename At>
bool pack_sliver(int64_t s, int64_t ksz, int64_t rows, int64_t cols, int mr, At w_at, T* out) {
  const int64_t m = std::min<int64_t>(mr, rows - s * mr), tap_stride = cols * mr;
  for (int64_t k = 0; k < cols; ++k) {
    T* d = out + k * mr;
    for (int64_t i = 0; i < m; ++i) {
      const T* src = w_at(s * mr + i, k);
      for (int64_t t = 0; t < ksz; ++t) d[t * tap_stride + i] = src[t];
    }
    for (int64_t t = 0; t < ksz; ++t) std::fill(d + t * tap_stride + m, d + t * tap_stride + mr, T(0));
  }
  constexpr int kLanes = 16;
  T lanes[kLanes] = {};
  const int64_t n = ksz * tap_stride, whole = n / kLanes * kLanes;
  for (int64_t q = 0; q < whole; q += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) lanes[l] += out[q + l] * T(0);
  T probe = 0;
  for (int64_t q = whole; q < n; ++q) probe += out[q] * T(0);
  for (int l = 0; l < kLanes; ++l) probe += lanes[l];
  return probe == T(0);
}

// out[p][c][n] = in[n * n_stride + c * P + p] for n < N, zero for n in [N, Np).
template <typename T>
void to_position_major(const T* in, int64_t N, int64_t n_stride, int64_t C, int64_t P, int64_t Np, T* out) {
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (N * C * P > 65536)
  for (int64_t p = 0; p < P; ++p)
    for (int64_t c = 0; c < C; ++c) {
      T* d = out + (p * C + c) * Np;
      for (int64_t n = 0; n < N; ++n) d[n] = in[n * n_stride + c * P + p];
      std::fill(d + N, d + Np, T(0));
    }
}

// out[p][n][c] = in[n * n_stride + c * P + p]: position-major, channels last.
template <typename T>
void to_channels_last(const T* in, int64_t N, int64_t n_stride, int64_t C, int64_t P, T* out, int nt) {
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t p = 0; p < P; ++p)
    for (int64_t n = 0; n < N; ++n) {
      T* d = out + (p * N + n) * C;
      const T* s = in + n * n_stride + p;
      for (int64_t c = 0; c < C; ++c) d[c] = s[c * P];
    }
}

// For each position j (J of them) and each tile of MR rows and NR columns:
// Z_j (R x Np) = sum over (t, i) in pairs[j] of A_t B_i, B_i the K x Np
// matrix at b + i * K * Np, A_t tap t's R x K weights (packed one row sliver
// at a time by pack_sliver through w_at); zero where pairs[j] is empty.
// Row slivers outermost: each thread packs one sliver of every tap (ksz *
// K * MR values) into a buffer that stays in L2 while every position uses
// it, so the weights are read once and their packed copy never goes to
// memory. With check_finite, returns false when a weight is not finite.
template <typename T, typename At>
bool batch_reduce(const GemmUkernel<T>& uk, const std::vector<std::vector<std::pair<int64_t, int64_t>>>& pairs,
                  int64_t R, int64_t K, int64_t N, int64_t Np, int64_t ksz, At w_at, bool check_finite, const T* b,
                  T* z) {
  const int64_t J = static_cast<int64_t>(pairs.size()), mt = (R + uk.mr - 1) / uk.mr, nt = Np / uk.nr;
  bool finite = true;
#pragma omp parallel num_threads(get_num_threads()) reduction(&& : finite) if (J * R * K * N > 262144)
  {
    const std::unique_ptr<T[]> a(new T[static_cast<std::size_t>(ksz * K * uk.mr)]);
#pragma omp for schedule(static)
    for (int64_t s = 0; s < mt; ++s) {
      if (!pack_sliver(s, ksz, R, K, uk.mr, w_at, a.get()) && check_finite) {
        finite = false;
        continue;
      }
      const int64_t r0 = s * uk.mr, m = std::min<int64_t>(uk.mr, R - r0);
      for (int64_t j = 0; j < J; ++j)
        for (int64_t c = 0; c < nt; ++c) {
          const int64_t c0 = c * uk.nr, n = std::min<int64_t>(uk.nr, N - c0);
          T* zt = z + (j * R + r0) * Np + c0;
          const auto& list = pairs[static_cast<std::size_t>(j)];
          if (list.empty() || n <= 0) {
            for (int64_t i = 0; i < m; ++i) std::fill(zt + i * Np, zt + i * Np + std::max<int64_t>(n, 0), T(0));
            continue;
          }
          bool acc = false;
          for (const auto& [t, i] : list) {
            uk.fn(K, a.get() + t * K * uk.mr, b + i * K * Np + c0, Np, zt, Np, m, n, acc);
            acc = true;
          }
        }
    }
  }
  return finite;
}

}  // namespace

bool conv_smallmap_serves(const ConvGeometry& g) {
  return two_d(g) && g.stride[1] == 1 && g.stride[2] == 1 && g.mode == PaddingMode::zeros && g.k_size() > 1 &&
         g.in_size() <= kMaxPositions && g.out_size() <= kMaxPositions;
}

// When the images fill at least 3/4 of the GEMM's column tiles (the float
// kernel's NR; double's is half as wide): the time goes by column tiles, so
// a part-empty one costs as much as a full one. One thread, 512->512 3x3
// on 4x4 maps, forward ms here / im2col: batch 8 20.6 / 8.2, 16 21.8 / 16.7,
// 32 22.8 / 35.5, 64 39.7 / 78.8 (AVX-512, NR = 32); 256 on 2x2 at batch
// 32 1.5 / 3.0.
//
// Larger maps, up to 8x8, for the forward and data-gradient passes of layers
// of 256 channels or more: a 3x3 kernel's padding taps are then 18-25% of
// the work, which the shifted path multiplies. One thread, ms shifted /
// small-map (forward, data gradient, weight gradient): 512 @7 batch 16 18.1
// / 14.8, 20.9 / 15.3, 22.2 / 17.9; batch 32 35.7 / 27.1, 43.1 / 28.8, 40.4
// / 46.9; 512 @8 batch 16 23.8 / 20.9, 26.4 / 21.3, 27.2 / 29.9; 256 @7
// batch 32 9.0 / 7.1, 9.6 / 7.1, 9.3 / 10.5 (batch 16: 4.6 / 4.8, 4.8 /
// 4.0); 256 @8 batch 32 11.7 / 10.1, 12.0 / 10.2, 12.3 / 16.3. Not below
// 256 channels (128 @8 batch 32: 3.0 / 2.8, 3.1 / 3.0, 3.2 / 4.0; 64 @8 0.80
// / 0.88). The weight gradient only while each tap's product sums at most
// 800 (position, image) pairs: past that its operands, read in place, fall
// out of L2 (the batch-32 and 8x8 rows above); within it, on two threads,
// 512 @7 batch 16 takes 9.2 ms against the shifted path's 25.3 and 256 @7
// 2.2 against 3.2.
//
// And the data gradient of maps up to 16x16 when at most 60% of the (input
// position, tap) pairs are live, as for a valid convolution whose kernel is
// large for its map: LeNet's 6->16 5x5 on 14x14 (51% live; the shifted path
// skips the dead kernel rows but not the dead columns) at batch 64, 0.38 ->
// 0.32 ms; its forward, with no padding to skip, stays shifted (0.19 ms
// against 0.38).
bool conv_smallmap_preferred(const ConvGeometry& g, detail::ConvPass pass) {
  if (!conv_smallmap_serves(g) || !ukernel_for_columns<float>(g.N) || !ukernel_for_columns<double>(g.N))
    return false;
  const int64_t positions = std::max(g.in_size(), g.out_size());
  if (positions <= kSmallPositions) return true;
  const bool wide = positions <= kWidePositions && std::min(g.C_in_g, g.C_out_g) >= kWideChannels;
  // the weight gradient's per-tap K: one (position, image) pair per output and image
  if (pass == detail::ConvPass::backward_weight) return wide && g.out_size() * g.N <= kWeightGradientMaxK;
  if (wide) return true;
  if (pass != detail::ConvPass::backward_data) return false;
  int64_t live = 1;  // (output, tap) pairs reading inside, a product over the two axes
  for (int a = 1; a < 3; ++a) {
    int64_t n = 0;
    for (int64_t o = 0; o < g.out[a]; ++o)
      for (int64_t t = 0; t < g.k[a]; ++t) {
        const int64_t i = o + t * g.dilation[a] - g.pad_before[a];
        n += i >= 0 && i < g.in[a];
      }
    live *= n;
  }
  return 10 * live <= 6 * g.in_size() * g.k_size();
}

int64_t conv_smallmap_workspace_bytes(const ConvGeometry& g, int64_t es, detail::ConvPass pass, int threads) {
  const long double N = static_cast<long double>(std::max<int64_t>(g.N, 1));
  const long double Pi = static_cast<long double>(g.in_size()), Po = static_cast<long double>(g.out_size());
  const long double C = static_cast<long double>(g.C_in_g), O = static_cast<long double>(g.C_out_g);
  const long double nt = static_cast<long double>(std::max(threads, 1)), ksz = static_cast<long double>(g.k_size());
  long double total = 0;
  if (pass == detail::ConvPass::backward_weight) {
    // channels-last copies of both operands, the offset tables of the
    // busiest tap, and each thread's column block of every tap's result
    total = (Po * N * O + Pi * N * C + kMaxMR + kMaxNR + nt * ksz * O * kMaxNR) * es + 2 * 8 * Po * N;
  } else {
    const long double Np = static_cast<long double>(round_up(std::max<int64_t>(g.N, 1), kMaxNR));
    // one packed row sliver of every tap per thread, and both operands position-major
    total = (nt * ksz * kMaxMR * std::max(C, O) + Np * (Pi * C + Po * O)) * es;
  }
  return total > 9.0e18L ? INT64_MAX : static_cast<int64_t>(total);
}

template <typename T>
bool conv_forward_smallmap(const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  const auto& uk = *ukernel_for_columns<T>(g.N);  // non-null: conv_smallmap_preferred
  const Taps taps(g);
  const int64_t Pi = g.in_size(), Po = g.out_size(), ksz = g.k_size(), C = g.C_in_g, O = g.C_out_g;
  const int64_t Np = round_up(g.N, uk.nr);
  const std::unique_ptr<T[]> x(new T[static_cast<std::size_t>(Pi * C * Np)]);
  const std::unique_ptr<T[]> y(new T[static_cast<std::size_t>(Po * O * Np)]);
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    const T* w = weights + grp * O * C * ksz;
    to_position_major(src + grp * C * Pi, g.N, g.C_in * Pi, C, Pi, Np, x.get());
    if (!batch_reduce(uk, taps.of_out, O, C, g.N, Np, ksz, [&](int64_t o, int64_t c) { return w + (o * C + c) * ksz; },
                      true, x.get(), y.get()))
      return false;  // a non-finite weight: the caller's other path rewrites all of dst
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads()) if (g.N * O * Po > 65536)
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t o = 0; o < O; ++o) {
        const T b = bias ? bias[grp * O + o] : T(0);
        T* d = dst + (n * g.C_out + grp * O + o) * Po;
        for (int64_t q = 0; q < Po; ++q) d[q] = y[static_cast<std::size_t>((q * O + o) * Np + n)] + b;
      }
  }  return true;
}

template <typename T>
void conv_backward_data_smallmap(const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  const auto& uk = *ukernel_for_columns<T>(g.N);  // non-null: conv_smallmap_preferred
  const Taps taps(g);
  const int64_t Pi = g.in_size(), Po = g.out_size(), ksz = g.k_size(), C = g.C_in_g, O = g.C_out_g;
  const int64_t Np = round_up(g.N, uk.nr);
  const std::unique_ptr<T[]> dy(new T[static_cast<std::size_t>(Po * O * Np)]);
  const std::unique_ptr<T[]> dx(new T[static_cast<std::size_t>(Pi * C * Np)]);
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    const T* w = weights + grp * O * C * ksz;
    to_position_major(diff_dst + grp * O * Po, g.N, g.C_out * Po, O, Po, Np, dy.get());
    // A_t = W_t^T: rows are input channels, columns output channels
    batch_reduce(uk, taps.of_in, C, O, g.N, Np, ksz, [&](int64_t c, int64_t o) { return w + (o * C + c) * ksz; },
                 false, dy.get(), dx.get());
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads()) if (g.N * C * Pi > 65536)
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        T* d = diff_src + (n * g.C_in + grp * C + c) * Pi;
        for (int64_t p = 0; p < Pi; ++p) d[p] = dx[static_cast<std::size_t>((p * C + c) * Np + n)];
      }
  }
}

// dW_t (C_out x C_in, for each tap t) = sum over the (output q, input p)
// position pairs that tap t joins, and over the images n, of
// dY[n][.][q] X[n][.][p]^T: one batch-reduce GEMM per tap whose K runs over
// (pair, image), reading both operands in place from channels-last copies
// (dY as [q][n][o], X as [p][n][c]) through offset tables. Positions that
// only meet padding are never multiplied. Threads take blocks of NR input
// channels: each gathers its block of every tap's result in a buffer that
// stays in L2, then writes its (o, c, t) slice of dW contiguously.
template <typename T>
void conv_backward_weight_smallmap(const ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights) {
  const GemmUkernel<T>& uk = gemm_ukernel_for_shape<T>(g.C_out_g, g.C_in_g);
  const int64_t Pi = g.in_size(), Po = g.out_size(), ksz = g.k_size(), C = g.C_in_g, O = g.C_out_g, N = g.N;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> by_tap(static_cast<std::size_t>(ksz));
  {
    const Taps taps(g);
    for (int64_t q = 0; q < Po; ++q)
      for (const auto& [t, p] : taps.of_out[static_cast<std::size_t>(q)])
        by_tap[static_cast<std::size_t>(t)].emplace_back(q, p);
  }
  if (N == 0) {
    std::fill(diff_weights, diff_weights + g.C_out * C * ksz, T(0));
    return;
  }
  const std::unique_ptr<T[]> dyt(new T[static_cast<std::size_t>(Po * N * O + uk.mr)]);
  const std::unique_ptr<T[]> xt(new T[static_cast<std::size_t>(Pi * N * C + uk.nr)]);
  std::fill(dyt.get() + Po * N * O, dyt.get() + Po * N * O + uk.mr, T(0));
  std::fill(xt.get() + Pi * N * C, xt.get() + Pi * N * C + uk.nr, T(0));
  // per tap: (aoff, boff) of each (pair, image)
  std::vector<std::vector<int64_t>> aoff(static_cast<std::size_t>(ksz)), boff(static_cast<std::size_t>(ksz));
  for (int64_t t = 0; t < ksz; ++t)
    for (const auto& [q, p] : by_tap[static_cast<std::size_t>(t)])
      for (int64_t n = 0; n < N; ++n) {
        aoff[static_cast<std::size_t>(t)].push_back((q * N + n) * O);
        boff[static_cast<std::size_t>(t)].push_back((p * N + n) * C);
      }
  const int64_t blocks = (C + uk.nr - 1) / uk.nr;
  const int nt = g.N * O * C * Po > 65536 ? get_num_threads() : 1;
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    to_channels_last(diff_dst + grp * O * Po, N, g.C_out * Po, O, Po, dyt.get(), nt);
    to_channels_last(src + grp * C * Pi, N, g.C_in * Pi, C, Pi, xt.get(), nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      const std::unique_ptr<T[]> blk(new T[static_cast<std::size_t>(ksz * O * uk.nr)]);
#pragma omp for schedule(static)
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t c0 = b * uk.nr, w = std::min<int64_t>(uk.nr, C - c0);
        for (int64_t t = 0; t < ksz; ++t) {
          const auto& ao = aoff[static_cast<std::size_t>(t)];
          gemm_brgemm(uk, O, w, static_cast<int64_t>(ao.size()), dyt.get(), ao.data(), xt.get() + c0,
                      boff[static_cast<std::size_t>(t)].data(), false, blk.get() + t * O * uk.nr, uk.nr, false);
        }
        for (int64_t o = 0; o < O; ++o) {
          T* d = diff_weights + ((grp * O + o) * C + c0) * ksz;
          for (int64_t c = 0; c < w; ++c)
            for (int64_t t = 0; t < ksz; ++t) d[c * ksz + t] = blk[static_cast<std::size_t>((t * O + o) * uk.nr + c)];
        }
      }
    }
  }
}

#define CNNCORE_INSTANTIATE(T)                                                                    \
  template bool conv_forward_smallmap<T>(const ConvGeometry&, const T*, const T*, const T*, T*); \
  template void conv_backward_data_smallmap<T>(const ConvGeometry&, const T*, const T*, T*);         \
  template void conv_backward_weight_smallmap<T>(const ConvGeometry&, const T*, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
