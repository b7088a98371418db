#include "cpu/kernels/conv-shifted.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "cnncore/runtime.hpp"
#include "cpu/kernels/gemm.hpp"
#include "util/host_cache.hpp"
#include "util/partial_sums.hpp"

namespace cnncore::cpu {

using detail::ConvGeometry;

namespace {

// Columns past the padded image that a micro-kernel's last sliver may read:
// the widest NR of any kernel, plus the last tap's column shift.
constexpr int64_t kMaxNR = 64;

// One image's problem on the padded grid: C channels of Hp x Wp in, OH x OW
// out, kernel kh x kw with dilation dh, dw and stride sh, sw. With a stride,
// each padded channel is stored as sh * sw phase planes of Hq x Wq (padded
// row i, column j at plane (i % sh, j % sw), position (i / sh, j / sw)):
// output (r, c) of tap (a, b) reads plane ((a*dh) % sh, (b*dw) % sw) at
// (r + a*dh / sh, c + b*dw / sw), so on the grid of Wq columns every patch
// row is again the image shifted by a constant. Small maps put B images
// side by side on one grid (image b's columns at b * step() of each row), so
// one GEMM serves them all and reads the weights once. With zero padding
// (and no column stride) neighbours share `ov` columns of it: image b's
// right zeros are image b + 1's left zeros, so the grid computes fewer
// positions that are no output (LeNet's data gradient: 14 columns an image
// instead of 18).
struct Plan {
  int64_t C, H, W, Hp, Wp, OH, OW, kh, kw, dh, dw, pad_h, pad_w, sh = 1, sw = 1, B = 1, ov = 0;
  PaddingMode mode;
  bool flip;
  // Patch rows ordered (th, c, tw) rather than (c, th, tw), so that the taps
  // of a range of kernel rows are a range of K (row_bands()).
  bool th_major = false;
  // Without padding to share (a valid convolution: LeNet's), the columns of
  // the B images interleave instead: image b's column j at j * B + b, a tap's
  // column shift t at t * B. Every grid row then holds its OW * B outputs
  // first and its (kw - 1) * dw * B non-outputs last, which the GEMMs skip
  // (segments()), where side by side they would compute (kw - 1) / Wp of
  // the grid for nothing (29% on LeNet's 14-column maps).
  bool interleave = false;
  int64_t Hq() const { return (Hp + sh - 1) / sh; }
  int64_t Wq() const { return (Wp + sw - 1) / sw; }  // one image's width on the grid
  int64_t step() const { return Wq() - ov; }         // from one image to the next (side by side)
  int64_t Wg() const { return interleave ? B * Wq() : B * step() + ov; }  // the grid's row length
  int64_t cs() const { return interleave ? B : 1; }  // grid columns per image column
  // grid column of image b's (padded) column j
  int64_t col(int64_t b, int64_t j) const { return interleave ? j * B + b : b * step() + j; }
  int64_t plane() const { return Hq() * Wg(); }
  int64_t Q() const { return OH * Wg(); }            // grid positions of the output rows
  // The grid positions the GEMMs compute: R segments of L, Wg apart.
  int64_t seg_rows() const { return interleave ? OH : 1; }
  int64_t seg_len() const { return interleave ? OW * B : Q(); }
  int64_t Kd() const { return C * kh * kw; }
  int64_t image_elems() const { return C * sh * sw * plane() + dw * (kw - 1) * cs() + kMaxNR; }
  // offset of patch row p = (c, th, tw) in the padded image
  std::vector<int64_t> offsets() const {
    std::vector<int64_t> off(static_cast<std::size_t>(Kd()));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t th = 0; th < kh; ++th)
        for (int64_t tw = 0; tw < kw; ++tw) {
          const int64_t a = (flip ? kh - 1 - th : th) * dh, b = (flip ? kw - 1 - tw : tw) * dw;
          const int64_t p = th_major ? (th * C + c) * kw + tw : (c * kh + th) * kw + tw;
          off[static_cast<std::size_t>(p)] =
              ((c * sh + a % sh) * sw + b % sw) * plane() + (a / sh) * Wg() + (b / sw) * cs();
        }
    return off;
  }
  // Output rows [r0, r1) whose live kernel rows (those reading inside the
  // image, not its zero padding) are [t0, t1): at stride 1 with zero padding
  // a border row reads fewer image rows than the kernel has, and with
  // th_major its GEMM can skip the others' K range.
  struct Band {
    int64_t r0, r1, t0, t1;
  };
  std::vector<Band> row_bands() const {
    std::vector<Band> bands;
    for (int64_t r = 0; r < OH; ++r) {
      int64_t t0 = kh, t1 = 0;
      for (int64_t th = 0; th < kh; ++th) {
        const int64_t i = r + (flip ? kh - 1 - th : th) * dh;  // padded row read
        if (i >= pad_h && i < pad_h + H) t0 = std::min(t0, th), t1 = th + 1;
      }
      if (t0 >= t1) t0 = t1 = 0;
      if (!bands.empty() && bands.back().t0 == t0 && bands.back().t1 == t1)
        bands.back().r1 = r + 1;
      else
        bands.push_back({r, r + 1, t0, t1});
    }
    return bands;
  }
};

// Images per grid for N images: one per grid when an image's grid has 512
// positions or more, else enough for about 1024 (at most 2^20 elements of
// padded images), with the batches a multiple of the thread count when the
// images run in parallel.
void batch_images(Plan& p, int64_t N) {
  // the shared zero columns: at most either side's padding, and no more
  // than keeps the outputs of neighbours apart (step >= OW)
  if (p.mode == PaddingMode::zeros && p.sw == 1)
    p.ov = std::max<int64_t>(0, std::min({p.pad_w, p.Wp - p.W - p.pad_w, p.dw * (p.kw - 1)}));
  const int64_t q1 = p.OH * p.step(), img = p.C * p.sh * p.sw * p.Hq() * p.Wq();
  if (N <= 1 || q1 >= 512 || img <= 0) return;
  int64_t b = std::min<int64_t>({N, (1024 + q1 - 1) / q1, std::max<int64_t>(1, (int64_t(1) << 20) / img)});
  int64_t batches = (N + b - 1) / b;
  const int nt = get_num_threads();
  if (nt > 1 && N >= nt) batches = (batches + nt - 1) / nt * nt;
  p.B = (N + batches - 1) / batches;
  p.interleave = p.B > 1 && p.sh == 1 && p.sw == 1 && p.ov == 0 && 8 * (p.Wp - p.OW) > p.Wp;
  if (!p.interleave) return;
  // Interleaved rows are computed OW * B columns at a time: up to twice the
  // images, when that makes them whole 32-column tiles (LeNet's 10 columns:
  // 16 images, 5 tiles, where 8 would leave 80 columns in 3 tiles).
  const int64_t cap = std::min(N, 2 * p.B);
  for (int64_t b2 = p.B; b2 <= cap; ++b2)
    if (p.OW * b2 % 32 == 0) {
      const int64_t nbat = (N + b2 - 1) / b2;
      if (nt > 1 && N >= nt && nbat % nt != 0) continue;  // keep the threads' shares equal
      p.B = b2;
      break;
    }
}

// The forward problem of one group of `g` (the H axis is axis 1, W axis 2).
Plan forward_plan(const ConvGeometry& g) {
  Plan p;
  p.C = g.C_in_g;
  p.H = g.in[1];
  p.W = g.in[2];
  p.Hp = g.in[1] + g.pad_before[1] + g.pad_after[1];
  p.Wp = g.in[2] + g.pad_before[2] + g.pad_after[2];
  p.OH = g.out[1];
  p.OW = g.out[2];
  p.kh = g.k[1];
  p.kw = g.k[2];
  p.dh = g.dilation[1];
  p.dw = g.dilation[2];
  p.pad_h = g.pad_before[1];
  p.pad_w = g.pad_before[2];
  p.sh = g.stride[1];
  p.sw = g.stride[2];
  p.mode = g.mode;
  p.flip = g.flip;
  batch_images(p, g.N);
  return p;
}

// Backward-data as a forward problem on the output gradient: C_out_g
// channels of OH x OW, padded by the dilated kernel extent less the forward
// padding, with the flipped kernel; the result has the input's size.
Plan backward_data_plan(const ConvGeometry& g) {
  Plan p;
  p.C = g.C_out_g;
  p.H = g.out[1];
  p.W = g.out[2];
  p.pad_h = g.dilation[1] * (g.k[1] - 1) - g.pad_before[1];
  p.pad_w = g.dilation[2] * (g.k[2] - 1) - g.pad_before[2];
  p.Hp = g.out[1] + p.pad_h + g.dilation[1] * (g.k[1] - 1) - g.pad_after[1];
  p.Wp = g.out[2] + p.pad_w + g.dilation[2] * (g.k[2] - 1) - g.pad_after[2];
  p.OH = g.in[1];
  p.OW = g.in[2];
  p.kh = g.k[1];
  p.kw = g.k[2];
  p.dh = g.dilation[1];
  p.dw = g.dilation[2];
  p.mode = PaddingMode::zeros;
  p.flip = !g.flip;
  p.th_major = true;
  batch_images(p, g.N);
  return p;
}

// pad_images with a stride: the same values scattered into the phase
// planes; the planes' slots past the padded image (when sh or sw does not
// divide it) are zeros.
template <typename T>
void pad_images_phases(const Plan& p, const T* x, int64_t in_stride, int64_t nb, T* xp, const int64_t* rows,
                       const int64_t* cols) {
  std::fill(xp, xp + p.image_elems(), T(0));
  const int64_t plane = p.plane(), Wq = p.Wq();
  // one padded row at a time, then dealt into its sw column phases (no
  // division per element: that took 29% of AlexNet's 11x11/4 layer)
  std::vector<T> row(static_cast<std::size_t>(Wq * p.sw), T(0));
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t i = 0; i < p.Hp; ++i) {
        const int64_t r = rows[i];
        if (r < 0) continue;
        const T* s = x + b * in_stride + (c * p.H + r) * p.W;
        for (int64_t j = 0; j < p.pad_w; ++j) row[static_cast<std::size_t>(j)] = cols[j] < 0 ? T(0) : s[cols[j]];
        std::copy_n(s, p.W, row.data() + p.pad_w);
        for (int64_t j = p.pad_w + p.W; j < p.Wp; ++j)
          row[static_cast<std::size_t>(j)] = cols[j] < 0 ? T(0) : s[cols[j]];
        T* d = xp + (c * p.sh + i % p.sh) * p.sw * plane + (i / p.sh) * p.Wg() + p.col(b, 0);
        if (p.sw == 2) {
          // both phases in one pass (the 3x3/2 layers' case; the loop below
          // ran one strided pass a phase, 7% of ResNet's 64 -> 128 @56)
          T* even = d;
          T* odd = d + plane;
#pragma omp simd
          for (int64_t q = 0; q < Wq; ++q) {
            even[q] = row[static_cast<std::size_t>(2 * q)];
            odd[q] = row[static_cast<std::size_t>(2 * q + 1)];
          }
          continue;
        }
        for (int64_t pw = 0; pw < p.sw; ++pw) {
          const T* from = row.data() + pw;
          T* to = d + pw * plane;
          for (int64_t q = 0; q < Wq; ++q) to[q] = from[q * p.sw];  // (row's tail past Wp stays zero)
        }
      }
}

// The padded copy of nb <= B images (in_stride elements apart; every padding
// mode) side by side on the grid, zeros in the slots of absent images and
// for the slack the micro-kernels may read past the last.
template <typename T>
void pad_images(const Plan& p, const T* x, int64_t in_stride, int64_t nb, T* xp, const int64_t* rows,
                const int64_t* cols) {
  if (p.sh > 1 || p.sw > 1) return pad_images_phases(p, x, in_stride, nb, xp, rows, cols);
  for (int64_t c = 0; c < p.C; ++c)
    for (int64_t i = 0; i < p.Hp; ++i)
      for (int64_t b = 0; b < p.B; ++b) {
        // (a neighbour's shared columns are zeros on both sides, so the
        // overlapping writes agree)
        T* d = xp + (c * p.Hp + i) * p.Wg() + p.col(b, 0);
        const int64_t r = rows[i], e = p.cs();
        if (r < 0 || b >= nb) {
          for (int64_t j = 0; j < p.Wp; ++j) d[j * e] = T(0);
          continue;
        }
        const T* s = x + b * in_stride + (c * p.H + r) * p.W;
        // the interior is a straight copy; the borders go through the table
        for (int64_t j = 0; j < p.pad_w; ++j) d[j * e] = cols[j] < 0 ? T(0) : s[cols[j]];
        if (e == 1)
          std::copy_n(s, p.W, d + p.pad_w);
        else
          for (int64_t j = 0; j < p.W; ++j) d[(p.pad_w + j) * e] = s[j];  // (the row is in L1)
        for (int64_t j = p.pad_w + p.W; j < p.Wp; ++j) d[j * e] = cols[j] < 0 ? T(0) : s[cols[j]];
      }
  std::fill(xp + p.C * p.plane(), xp + p.image_elems(), T(0));
}

std::vector<int64_t> source_table(int64_t padded, int64_t pad, int64_t n, PaddingMode mode) {
  std::vector<int64_t> t(static_cast<std::size_t>(padded));
  for (int64_t i = 0; i < padded; ++i) t[static_cast<std::size_t>(i)] = detail::padded_source_index(i - pad, n, mode);
  return t;
}

// Per thread: the padded image and the grid output.
int64_t per_thread_elems(const Plan& p, int64_t M) { return p.image_elems() + M * p.Q(); }

bool images_in_parallel(int64_t N, int threads) { return threads > 1 && N >= threads; }

// Runs the planned convolution for every image: image n of `src` (in_stride
// elements apart) times `w` (M x Kd, row-major), into image n of `dst`
// (out_stride apart; M channels of OH x OW), adding bias[o] when given.
// `pack`, when given, supplies w instead (w is then null): pack(i0, m, p0,
// kc, panel, ld) writes w(i0 + i, p0 + p) to panel[i * ld + p] for i < m,
// p < kc. Only for one image on the grid (to_rows below).
template <typename T>
using PackW = std::function<void(int64_t, int64_t, int64_t, int64_t, T*, int64_t)>;

template <typename T>
void run(const Plan& p, int64_t N, int64_t M, const T* src, int64_t in_stride, const T* w, const T* bias, T* dst,
         int64_t out_stride, const PackW<T>* pack = nullptr) {
  const auto& uk = gemm_ukernel_for_shape<T>(M, p.Q());
  const std::vector<int64_t> off = p.offsets();
  const std::vector<int64_t> rows = source_table(p.Hp, p.pad_h, p.H, p.mode);
  const std::vector<int64_t> cols = source_table(p.Wp, p.pad_w, p.W, p.mode);
  const int nt = get_num_threads();
  const int64_t batches = (N + p.B - 1) / p.B;
  const bool par_images = images_in_parallel(batches, nt);
  // One image on the grid (not side by side or interleaved): the GEMM
  // writes the output rows itself, and no grid is stored.
  const bool to_rows = p.B == 1 && !p.interleave;
  const int64_t per = to_rows ? p.image_elems() : per_thread_elems(p, M);
  const detail::HostBuffer<T> ws(per * (par_images ? nt : 1));
  const int64_t Q = p.Q(), OHW = p.OH * p.OW, Kd = p.Kd(), per_th = p.C * p.kw;
  // Row bands that skip the kernel rows reading only zero padding, where
  // they save a tenth of the work and cost no extra parallel regions (each
  // band is a GEMM, parallel by itself when the images are not).
  std::vector<Plan::Band> bands;
  if (p.th_major && p.mode == PaddingMode::zeros && p.sh == 1) {
    bands = p.row_bands();
    int64_t live = 0;
    for (const Plan::Band& b : bands) live += (b.r1 - b.r0) * (b.t1 - b.t0);
    if (10 * live > 9 * p.OH * p.kh || (nt > 1 && !par_images)) bands.clear();
  }
  auto one = [&](int64_t k, T* buf, bool par) {
    T* xp = buf;
    T* y = buf + p.image_elems();
    const int64_t n0 = k * p.B, nb = std::min(p.B, N - n0);
    pad_images(p, src + n0 * in_stride, in_stride, nb, xp, rows.data(), cols.data());
    if (to_rows) {
      T* out = dst + n0 * out_stride;
      // (the last row's columns past OW are not computed)
      const auto grid = [&](int64_t r0, int64_t r1) { return (r1 - r0 - 1) * p.Wg() + p.OW; };
      const auto gemm = [&](int64_t r0, int64_t r1, int64_t k0, int64_t kc) {
        const int64_t Qb = grid(r0, r1);
        if (!pack) {
          gemm_shifted_to_rows(uk, M, Qb, p.Wg(), p.OW, kc, w + k0, Kd, xp + r0 * p.Wg(), off.data() + k0, bias,
                               out + r0 * p.OW, OHW, par);
          return;
        }
        const GemmPackA<T> panel = [&](int64_t i0, int64_t m, T* to, int64_t ld) { (*pack)(i0, m, k0, kc, to, ld); };
        gemm_shifted_to_rows(uk, M, Qb, p.Wg(), p.OW, kc, panel, xp + r0 * p.Wg(), off.data() + k0, bias,
                             out + r0 * p.OW, OHW, par);
      };
      if (bands.empty()) gemm(0, p.OH, 0, Kd);
      for (const Plan::Band& b : bands) gemm(b.r0, b.r1, b.t0 * per_th, (b.t1 - b.t0) * per_th);
      return;
    }
    const int64_t R = p.seg_rows(), L = p.seg_len(), S = p.Wg();
    if (bands.empty())
      gemm_shifted_segments(uk, M, R, L, S, Kd, w, Kd, xp, off.data(), false, y, Q, par);
    for (const Plan::Band& b : bands) {
      // (bands are whole grid rows: with interleaved columns, the band's rows' segments)
      const int64_t q0 = b.r0 * p.Wg(), nr = b.r1 - b.r0;
      const int64_t br = p.interleave ? nr : 1, bl = p.interleave ? L : nr * p.Wg(), k0 = b.t0 * per_th;
      gemm_shifted_segments(uk, M, br, bl, S, (b.t1 - b.t0) * per_th, w + k0, Kd, xp + q0, off.data() + k0, false,
                            y + q0, Q, par);
    }
    if (p.interleave) {
      // one output row of all images at a time, so its segment (OW x B,
      // transposed on the way out) is read once while it is in cache
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt) if (par && nb * M * OHW > 32768)
      for (int64_t o = 0; o < M; ++o)
        for (int64_t r = 0; r < p.OH; ++r) {
          const T bo = bias ? bias[o] : T(0);
          const T* from = y + o * Q + r * p.Wg();
          for (int64_t b = 0; b < nb; ++b) {
            T* out = dst + (n0 + b) * out_stride + o * OHW + r * p.OW;
            for (int64_t j = 0; j < p.OW; ++j) out[j] = from[j * p.B + b] + bo;
          }
        }
      return;
    }
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt) if (par && nb * M * OHW > 32768)
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t o = 0; o < M; ++o) {
        const T bo = bias ? bias[o] : T(0);
        T* out = dst + (n0 + b) * out_stride + o * OHW;
        for (int64_t r = 0; r < p.OH; ++r) {
          const T* from = y + o * Q + r * p.Wg() + p.col(b, 0);
#pragma omp simd
          for (int64_t j = 0; j < p.OW; ++j) out[r * p.OW + j] = from[j] + bo;
        }
      }
  };
  if (par_images) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t k = 0; k < batches; ++k) one(k, ws.data() + per * omp_get_thread_num(), false);
  } else {
    for (int64_t k = 0; k < batches; ++k) one(k, ws.data(), nt > 1);
  }
}

// Packs the output gradient of nb <= B images (M channels of OH x OW each,
// dy_stride elements apart) for the weight gradient's GEMM: B(q, o) = dy[o]
// at grid position q (zero in the grid's extra columns and absent images'
// slots), in NR-column slivers over all Q positions.
template <typename T>
void pack_grid_transposed(const Plan& p, int64_t M, const T* dy, int64_t dy_stride, int64_t nb, int nr, T* bpack) {
  // K runs over the positions the GEMM sums (segments: the output rows' first
  // OW * B columns when interleaved, else the whole grid)
  const int64_t Q = p.seg_rows() * p.seg_len(), OHW = p.OH * p.OW, rl = p.interleave ? p.seg_len() : p.Wg();
  const int64_t slivers = (M + nr - 1) / nr;
  std::fill(bpack, bpack + slivers * Q * nr, T(0));
  for (int64_t s = 0; s < slivers; ++s) {
    T* d = bpack + s * Q * nr;
    const int64_t o0 = s * nr, cols = std::min<int64_t>(nr, M - o0);
    // channel by channel along each output row (reads contiguous; the row's
    // OW destination lines, NR values each, fill in L1), where gathering one
    // position's NR channels read NR lines OH * OW apart: 26% of the 7x7/2
    // stem's weight gradient
    const int64_t cs = p.cs();
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t r = 0; r < p.OH; ++r) {
        T* dq = d + (r * rl + p.col(b, 0)) * nr;
        for (int64_t j = 0; j < cols; ++j) {
          const T* src = dy + b * dy_stride + (o0 + j) * OHW + r * p.OW;
          for (int64_t c = 0; c < p.OW; ++c) dq[c * cs * nr + j] = src[c];
        }
      }
  }
}

bool two_d(const ConvGeometry& g) {
  return g.in[0] == 1 && g.k[0] == 1 && g.pad_before[0] == 0 && g.pad_after[0] == 0;
}

}  // namespace

bool conv_shifted_serves(const ConvGeometry& g) { return two_d(g) && g.stride[0] == 1; }

bool conv_shifted_serves_backward_data(const ConvGeometry& g) {
  if (!conv_shifted_serves(g) || g.stride[1] != 1 || g.stride[2] != 1) return false;
  if (g.has_padding() && g.mode != PaddingMode::zeros) return false;
  for (int a = 1; a < 3; ++a) {
    const int64_t extent = g.dilation[a] * (g.k[a] - 1);
    if (g.pad_before[a] > extent || g.pad_after[a] > extent) return false;
  }
  return true;
}

bool conv_shifted_weight_gradient_pays(const ConvGeometry& g) {
  return conv_shifted_serves(g) && forward_plan(g).Q() >= 512;
}

bool conv_shifted_preferred(const ConvGeometry& g) {
  if (!conv_shifted_serves(g) || g.k_size() == 1) return false;
  const Plan p = forward_plan(g);
  const double valid = static_cast<double>(p.OW) / static_cast<double>(p.step());  // share of the grid kept
  // Stride 1: whenever at least half the grid is output. Small maps go side
  // by side on one grid, so the weights are read once per batch of images
  // and no patch matrix is built; one thread, forward ms direct / im2col:
  // LeNet's 6->16 5x5 @14 at batch 64 0.67 / 1.32, 512->512 3x3 @2 at batch
  // 4 1.42 / 3.46, 128->128 3x3 @4 at batch 32 2.36 / 2.52; 512 @7 at batch
  // 16 45 / 44 is the worst case measured. Not with fewer than 64 patch
  // rows, where the grid's output pass outweighs the short GEMM: VGG's
  // 3->64 3x3 layer at 224 4.7 / 3.6, but 8->64 (72 rows) at 112 2.1 / 2.3.
  if (g.stride[1] == 1 && g.stride[2] == 1) return valid >= 0.5 && p.Kd() >= 64;
  // With a stride, when the patch rows are not many (im2col's strided
  // gathers are then much of its time), or for one image (im2col packs all
  // the weights for a few columns). One thread, ms direct / im2col: ResNet's
  // 7x7/2 stem at 224 2.95 / 3.90, AlexNet's 11x11/4 at batch 8 15.0 / 20.2;
  // 3x3/2 at batch 16 (1 / 2 threads) 64->128 @56 9.16 / 9.72 and 4.70 /
  // 5.08, 128->256 @28 9.03 / 9.16 and 4.63 / 5.24, but 256->512 @14 (2304
  // rows) 9.36 / 8.67; at batch 1 256->512 @14 0.64 / 1.09.
  if (valid >= 0.75 && p.OH * p.OW >= 64) return p.Kd() <= 1152;
  return valid >= 0.5 && g.N == 1;
}

int64_t conv_shifted_workspace_bytes(const ConvGeometry& g, int64_t elem_size, detail::ConvPass pass, int threads) {
  if (pass == detail::ConvPass::backward_weight) {
    const Plan p = forward_plan(g);
    const long double copies = images_in_parallel((g.N + p.B - 1) / p.B, threads) ? threads : 1;
    const long double slivers = static_cast<long double>((g.C_out_g + kMaxNR - 1) / kMaxNR + 1);
    const long double per = static_cast<long double>(p.image_elems()) + slivers * kMaxNR * p.Q() +
                            static_cast<long double>(p.Kd()) * g.C_out_g;
    const long double total = (per * copies) * elem_size + 8.0L * (p.Kd() + p.Hp + p.Wp);
    return total > 9.0e18L ? INT64_MAX : static_cast<int64_t>(total);
  }
  const bool bwd = pass == detail::ConvPass::backward_data;
  const Plan p = bwd ? backward_data_plan(g) : forward_plan(g);
  const int64_t M = bwd ? g.C_in_g : g.C_out_g;
  const long double copies = images_in_parallel((g.N + p.B - 1) / p.B, threads) ? threads : 1;
  long double elems = static_cast<long double>(p.image_elems()) + static_cast<long double>(M) * p.Q();
  elems *= copies;
  if (bwd) elems += static_cast<long double>(g.C_in) * g.C_out_g * g.k_size();  // transposed weights
  const long double total = elems * elem_size + 8.0L * (p.Kd() + p.Hp + p.Wp);
  return total > 9.0e18L ? INT64_MAX : static_cast<int64_t>(total);
}

template <typename T>
void conv_forward_shifted(const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  const Plan p = forward_plan(g);
  const int64_t isz = g.in_size(), osz = g.out_size();
  for (int64_t grp = 0; grp < g.groups; ++grp)
    run(p, g.N, g.C_out_g, src + grp * g.C_in_g * isz, g.C_in * isz, weights + grp * g.C_out_g * p.Kd(),
        bias ? bias + grp * g.C_out_g : nullptr, dst + grp * g.C_out_g * osz, g.C_out * osz);
}

template <typename T>
void conv_backward_data_shifted(const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  const Plan p = backward_data_plan(g);
  const int64_t isz = g.in_size(), osz = g.out_size(), kk = g.k_size();
  // The GEMM's A is the weights transposed: row c, patch row (th, o, tw)
  // (th-major, the flip is in the plan), A(c, (th * CO + o) * kw + tw) =
  // w[o][c][th][tw] for each group.
  const int64_t kh = g.k[1], kw = g.k[2], CO = g.C_out_g, CI = g.C_in_g;
  constexpr int64_t kPrefetchAhead = 4;
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    const T* w = weights + grp * CO * CI * kk;
    // rows [c0, c0 + m) and patch rows [p0, p0 + kc) to panel[i * ld + p - p0]:
    // each (th, o) a run of kw, read from the m channels' kernel rows
    const PackW<T> pack = [=](int64_t c0, int64_t m, int64_t p0, int64_t kc, T* panel, int64_t ld) {
      // (th, o, tw) of patch row p0, then stepped without dividing
      int64_t th = p0 / (CO * kw), o = p0 / kw % CO, tw0 = p0 % kw;
      for (int64_t q = p0; q < p0 + kc;) {
        const int64_t run = std::min(kw - tw0, p0 + kc - q);
        const T* from = w + ((o * CI + c0) * kh + th) * kw + tw0;
        T* to = panel + (q - p0);
        if (o + kPrefetchAhead < CO) {
          // the channels' kernels of an output kPrefetchAhead ahead: one
          // output's CI * kh * kw weights apart, a stride the hardware
          // prefetchers miss (the packing waited on memory for each)
          const char* ahead = reinterpret_cast<const char*>(from + kPrefetchAhead * CI * kk);
          for (int64_t b = 0; b < m * kk * static_cast<int64_t>(sizeof(T)); b += 64) __builtin_prefetch(ahead + b);
        }
        if (run == 3 && q + run < p0 + kc)
          // a 3x3 kernel row as one four-element copy: the fourth element
          // lands on the next run's first column, which that run then
          // writes, and it is read from inside the weights (not the call's
          // last run, so not the last patch row: that is the weights' end)
          for (int64_t i = 0; i < m; ++i) std::memcpy(to + i * ld, from + i * kk, 4 * sizeof(T));
        else
          for (int64_t i = 0; i < m; ++i)
            for (int64_t x = 0; x < run; ++x) to[i * ld + x] = from[i * kk + x];
        q += run;
        tw0 = 0;
        if (++o == CO) o = 0, ++th;
      }
    };
    const T* dy = diff_dst + grp * g.C_out_g * osz;
    T* dx = diff_src + grp * g.C_in_g * isz;
    if (g.N == 1 && p.B == 1 && !p.interleave) {
      // one image: the GEMM packs the rows it needs as it goes (a deep
      // layer's weights are never stored transposed: 9.4 MB written and
      // read back per call at ResNet's 512 -> 512 @7)
      run(p, g.N, CI, dy, g.C_out * osz, static_cast<const T*>(nullptr), static_cast<const T*>(nullptr), dx,
          g.C_in * isz, &pack);
      continue;
    }
    // wt: every row once, each image's GEMM reads it in place
    const detail::HostBuffer<T> wt(CI * CO * kk);
    const int64_t K = CO * kk;
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (CI * K > 262144)
    for (int64_t c = 0; c < CI; c += 8) pack(c, std::min<int64_t>(8, CI - c), 0, K, wt.data() + c * K, K);
    run(p, g.N, CI, dy, g.C_out * osz, static_cast<const T*>(wt.data()), static_cast<const T*>(nullptr), dx,
        g.C_in * isz);
  }
}

template <typename T>
void conv_backward_weight_shifted(const ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights) {
  const Plan p = forward_plan(g);
  const auto& uk = gemm_ukernel_for_shape<T>(p.Kd(), g.C_out_g);
  const int64_t M = g.C_out_g, Kd = p.Kd(), Q = p.Q(), nr = uk.nr, isz = g.in_size(), osz = g.out_size();
  const int64_t bpack_elems = (M + nr - 1) / nr * nr * Q, wsz = Kd * M;
  const std::vector<int64_t> off = p.offsets();
  const std::vector<int64_t> rows = source_table(p.Hp, p.pad_h, p.H, p.mode);
  const std::vector<int64_t> cols = source_table(p.Wp, p.pad_w, p.W, p.mode);
  const int nt = get_num_threads();
  const int64_t batches = (g.N + p.B - 1) / p.B;
  const bool par_images = images_in_parallel(batches, nt);
  const int copies = par_images ? nt : 1;
  // per thread: padded image, packed gradient, its sum dW^T (Kd x M)
  const int64_t per = p.image_elems() + bpack_elems + wsz;
  const detail::HostBuffer<T> ws(per * copies);
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    for (int t = 0; t < copies; ++t) std::fill_n(ws.data() + t * per + p.image_elems() + bpack_elems, wsz, T(0));
    auto one = [&](int64_t k, T* buf, bool par) {
      T* xp = buf;
      T* bpack = buf + p.image_elems();
      T* dwt = bpack + bpack_elems;
      const int64_t n0 = k * p.B, nb = std::min(p.B, g.N - n0);
      pad_images(p, src + (n0 * g.C_in + grp * g.C_in_g) * isz, g.C_in * isz, nb, xp, rows.data(), cols.data());
      pack_grid_transposed(p, M, diff_dst + (n0 * g.C_out + grp * M) * osz, g.C_out * osz, nb,
                           static_cast<int>(nr), bpack);
      gemm_offset_a_segments(uk, Kd, M, p.seg_rows(), p.seg_len(), p.Wg(), xp, off.data(), bpack, true, dwt, M,
                             par);
    };
    if (par_images) {
      detail::schedule_partial_sums(1);
#pragma omp parallel num_threads(nt)
      {
        T* mine = ws.data() + per * omp_get_thread_num();
#pragma omp for schedule(runtime)
        for (int64_t k = 0; k < batches; ++k) one(k, mine, false);
      }
    } else {
      for (int64_t k = 0; k < batches; ++k) one(k, ws.data(), nt > 1);
    }
    // dW[o][k] = sum over the threads' dW^T[k][o], in square tiles so that
    // both sides stay in cache
    T* dw = diff_weights + grp * M * Kd;
    const T* sums = ws.data() + p.image_elems() + bpack_elems;
    constexpr int64_t kTile = 32;
    const int64_t k_tiles = (Kd + kTile - 1) / kTile, o_tiles = (M + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt) if (nt > 1 && wsz > 16384)
    for (int64_t ot = 0; ot < o_tiles; ++ot)
      for (int64_t kt = 0; kt < k_tiles; ++kt)
        for (int64_t o = ot * kTile; o < std::min(M, (ot + 1) * kTile); ++o)
          for (int64_t k = kt * kTile; k < std::min(Kd, (kt + 1) * kTile); ++k) {
            T sum = 0;
            for (int t = 0; t < copies; ++t) sum += sums[t * per + k * M + o];
            dw[o * Kd + k] = sum;
          }
  }
}

#define CNNCORE_INSTANTIATE(T)                                                                   \
  template void conv_forward_shifted<T>(const ConvGeometry&, const T*, const T*, const T*, T*); \
  template void conv_backward_data_shifted<T>(const ConvGeometry&, const T*, const T*, T*);     \
  template void conv_backward_weight_shifted<T>(const ConvGeometry&, const T*, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
