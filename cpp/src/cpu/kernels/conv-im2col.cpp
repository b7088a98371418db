#include "cpu/kernels/conv-im2col.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "cnncore/runtime.hpp"
#include "util/host_cache.hpp"
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

// Images go to the GEMM in batches of `batch` (the last one may be short):
// the patch matrices of a batch sit side by side, so a layer with small
// output maps (deep layers: 7x7, 4x4, 1x1) multiplies matrices of about
// kTargetColumns columns instead of one matrix-vector-like product per
// image. Layers with large maps take one image at a time.
constexpr int64_t kTargetColumns = 512;

struct Batching {
  int64_t batch;   // images per GEMM
  int64_t chunks;  // ceil(N / batch)
  bool parallel_chunks;  // chunks run in parallel, each on one thread
};

Batching batching(const ConvGeometry& g, int threads) {
  const int64_t P = std::max<int64_t>(1, g.out_size());
  int64_t b = std::clamp<int64_t>(detail::ceil_div(kTargetColumns, P), 1, std::max<int64_t>(1, g.N));
  // Keep at least one batch per thread when the images allow it: chunks in
  // parallel need no synchronisation inside the GEMM.
  if (threads > 1 && g.N >= threads) b = std::min(b, detail::ceil_div(g.N, threads));
  const int64_t chunks = g.N > 0 ? detail::ceil_div(g.N, b) : 0;
  return Batching{b, chunks, threads > 1 && chunks >= threads};
}

// The patch matrix is needed unless the input can be read as it is (a
// pointwise layer, one image at a time).
bool needs_patches(const ConvGeometry& g, int64_t batch) { return !is_pointwise(g) || batch > 1; }

// Row r = (c, td, th, tw) of the patch matrix of one group; column p = output
// position, written at col[r * ld + p].
template <typename T>
void im2col(const ConvGeometry& g, const TapTables& tt, const T* x, T* col, int64_t ld, bool parallel, int nt) {
  const int64_t rows = g.patch_size(), ksz = g.k_size(), isz = g.in_size();
#pragma omp parallel for schedule(static) num_threads(nt) if (parallel)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / ksz, t = r % ksz;
    const int64_t* TD = tt.axis[0].data() + (t / (g.k[1] * g.k[2])) * g.out[0];
    const int64_t* TH = tt.axis[1].data() + ((t / g.k[2]) % g.k[1]) * g.out[1];
    const int64_t tw = t % g.k[2];
    const int64_t* TW = tt.axis[2].data() + tw * g.out[2];
    const int64_t lo = tt.lo[2][tw], hi = tt.hi[2][tw], off = tt.off[2][tw], sw = g.stride[2];
    const T* xc = x + c * isz;
    T* d = col + r * ld;
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
void col2im(const ConvGeometry& g, const TapTables& tt, const T* col, int64_t ld, T* dx, bool parallel, int nt) {
  const int64_t ksz = g.k_size(), isz = g.in_size();
#pragma omp parallel for schedule(static) num_threads(nt) if (parallel)
  for (int64_t c = 0; c < g.C_in_g; ++c) {
    T* xc = dx + c * isz;
    for (int64_t t = 0; t < ksz; ++t) {
      const int64_t* TD = tt.axis[0].data() + (t / (g.k[1] * g.k[2])) * g.out[0];
      const int64_t* TH = tt.axis[1].data() + ((t / g.k[2]) % g.k[1]) * g.out[1];
      const int64_t tw = t % g.k[2];
      const int64_t* TW = tt.axis[2].data() + tw * g.out[2];
      const int64_t lo = tt.lo[2][tw], hi = tt.hi[2][tw], off = tt.off[2][tw], sw = g.stride[2];
      const T* d = col + (c * ksz + t) * ld;
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

// Columns of W a thread packs at a time for transposed_data_gradient: up to
// four slivers of nr, in at most 128 KiB (a band and the next one fit in L2
// beside dy^T), and at least one sliver.
int64_t transposed_band_columns(int64_t K, int64_t nr, int64_t elem_size) {
  return std::clamp<int64_t>((int64_t(128) << 10) / std::max<int64_t>(1, K * nr * elem_size), 1, 4) * nr;
}

// Whether transposed_data_gradient packs W (else it reads W's slivers in
// place). Packing pays where a sliver's rows, K of them a row of W apart,
// no longer stay in L2 between its tiles and there are enough tiles to
// share the cost. Measured on a Zen 3 (batch 1, one thread; in place ->
// packed): 512 -> 512 @7 (9 tiles) 4.0 -> 3.5 ms, batch 2 (17 tiles) 7.2 ->
// 6.2, 256 -> 512 3x3/2 @14 (K 512, 9 tiles) 1.85 -> 1.76; slower: 512 ->
// 512 @4 (3 tiles) 1.43 -> 1.59, 256 -> 256 @7 (K 256) 0.90 -> 0.94.
constexpr int64_t kTransposedPackMinK = 384;
bool transposed_packs_bands(int64_t K, int64_t tiles) { return K >= kTransposedPackMinK && tiles >= 6; }

// The data gradient of few columns and wide weights, for one group and a
// batch of nb images: dx (image b's channel c at dx[b * ldx + c * isz],
// zeroed here) += the patch gradient's transpose dy^T W, added back tile by
// tile as the micro-kernel computes it. dy is C_out_g x cols (cols = nb * P
// positions, row stride cols), W is C_out_g x Kd. dy^T is packed (it is
// small); W is packed a band of columns at a time (transposed_band_columns)
// or, where that does not pay (transposed_packs_bands), read in place a
// sliver at a time; each sliver is used by every sliver of dy^T in turn. A tile (mr
// positions x nr patch entries) goes from L1 straight into dx, so the
// cols x Kd patch gradient is never stored and read back (512 -> 512 @7:
// 0.9 MB, whose separate pass was 9% of the call). Threads take blocks of nr
// input channels, so each writes only its own channels of dx.
//
// Why bands, and why they are fetched ahead: a sliver read in place from W
// has its rows Kd elements apart (18 KiB at 512 -> 512), which maps them to
// two sets of L1 and a few dozen of L2, so every tile read its sliver again
// from L3: the kernel ran at 75% of the peak on such a sliver, 95% on a
// packed one (a Zen 3). Packing each band when its turn came waited on
// memory for each row; so while one band's tiles compute, each tile
// prefetches a share of the next band's rows (GemmAheadUkernelFn) and packs
// the rows the tile before fetched. 512 -> 512 @7, batch 1, one thread:
// 4.0-4.1 -> 3.5-3.6 ms (packing when due without prefetching: 4.15).
template <typename T>
void transposed_data_gradient(const ConvGeometry& g, const TapTables& tt, const GemmUkernel<T>& uk, int64_t nb,
                              const T* dy, const T* w, T* dx, int64_t ldx, bool parallel, int nt) {
  const int64_t P = g.out_size(), cols = nb * P, K = g.C_out_g, Kd = g.patch_size(), ksz = g.k_size();
  const int64_t isz = g.in_size(), mr = uk.mr, nr = uk.nr, ms = detail::ceil_div(cols, mr);
  constexpr int64_t kMaxTile = 16 * 64;  // mr x nr of any kernel level (gemm.hpp)
  if (mr * nr > kMaxTile) throw std::logic_error("transposed_data_gradient: a kernel tile larger than its buffer");
  // where position q's tap t adds in an image's channel plane (-1: padding), plus its image's offset
  std::vector<int64_t> at(static_cast<std::size_t>(cols * ksz));
  for (int64_t q = 0; q < cols; ++q) {
    const int64_t b = q / P, p = q % P;
    const int64_t od = p / (g.out[1] * g.out[2]), oh = (p / g.out[2]) % g.out[1], ow = p % g.out[2];
    for (int64_t t = 0; t < ksz; ++t) {
      const int64_t sd = tt.axis[0][(t / (g.k[1] * g.k[2])) * g.out[0] + od];
      const int64_t sh = tt.axis[1][((t / g.k[2]) % g.k[1]) * g.out[1] + oh];
      const int64_t sw = tt.axis[2][(t % g.k[2]) * g.out[2] + ow];
      at[static_cast<std::size_t>(q * ksz + t)] =
          sd < 0 || sh < 0 || sw < 0 ? -1 : b * ldx + (sd * g.in[1] + sh) * g.in[2] + sw;
    }
  }
  // dy^T in slivers of mr positions over all of K: (i, k) of sliver s at [(s * K + k) * mr + i]
  detail::HostBuffer<T> a(ms * mr * K);
  for (int64_t s = 0; s < ms; ++s)
    for (int64_t k = 0; k < K; ++k) {
      T* to = a.data() + (s * K + k) * mr;
      const int64_t m = std::min(mr, cols - s * mr);
      for (int64_t i = 0; i < m; ++i) to[i] = dy[k * cols + s * mr + i];
      for (int64_t i = m; i < mr; ++i) to[i] = T(0);
    }
  const int64_t blocks = detail::ceil_div(g.C_in_g, nr);
  const bool packed = transposed_packs_bands(K, ms);
  const int64_t band = packed ? transposed_band_columns(K, nr, sizeof(T)) : nr;
  // two bands for each thread of the team below (one where it does not run in parallel: then
  // for_each_batch may be calling this from each of its threads at once)
  const int team = parallel && blocks > 1 ? nt : 1;
  detail::HostBuffer<T> bands(static_cast<int64_t>(team) * 2 * band * K);
#pragma omp parallel num_threads(team) if (team > 1)
  {
    const int64_t th = omp_get_thread_num(), nth = omp_get_num_threads();
    // this thread's input channels, whole blocks of nr, and their columns of W
    const int64_t c_lo = std::min(g.C_in_g, blocks * th / nth * nr);
    const int64_t c_hi = std::min(g.C_in_g, blocks * (th + 1) / nth * nr);
    const int64_t j_hi = c_hi * ksz;
    for (int64_t b = 0; b < nb; ++b) std::fill(dx + b * ldx + c_lo * isz, dx + b * ldx + c_hi * isz, T(0));
    T* buf[2] = {bands.data() + th * 2 * band * K, bands.data() + (th * 2 + 1) * band * K};
    // packs rows [r0, r1) of the band of `width` columns at j into to: sliver v's (k, jj) at
    // to[(v * K + k) * nr + jj], zero past the band's width
    auto pack = [&](int64_t j, int64_t width, int64_t r0, int64_t r1, T* to) {
      for (int64_t k = r0; k < r1; ++k) {
        const T* from = w + k * Kd + j;
        for (int64_t v = 0; v * nr < width; ++v) {
          T* d = to + (v * K + k) * nr;
          const T* f = from + v * nr;
          const int64_t n = std::min(nr, width - v * nr);
          if (n == nr) {
#pragma omp simd
            for (int64_t jj = 0; jj < nr; ++jj) d[jj] = f[jj];  // inline: a few vectors, not a memmove call
          } else {
            for (int64_t jj = 0; jj < nr; ++jj) d[jj] = jj < n ? f[jj] : T(0);  // W's last sliver
          }
        }
      }
    };
    alignas(64) T tile[kMaxTile];
    int cur = 0;
    if (packed && c_lo * ksz < j_hi) pack(c_lo * ksz, std::min(band, j_hi - c_lo * ksz), 0, K, buf[0]);
    for (int64_t j0 = c_lo * ksz; j0 < j_hi; j0 += band, cur ^= 1) {
      const int64_t width = std::min(band, j_hi - j0);
      const int64_t next = packed ? std::max<int64_t>(0, std::min(band, j_hi - j0 - band)) : 0;
      const int64_t calls = detail::ceil_div(width, nr) * ms, share = detail::ceil_div(K, calls);
      int shift = 0;  // a row of the next band every 2^shift steps of K, share rows a call
      while ((share << (shift + 1)) <= K) ++shift;
      int64_t call = 0;
      for (int64_t v = 0; v * nr < width; ++v) {
        const int64_t j = j0 + v * nr, n = std::min(nr, width - v * nr);
        const T* bw = buf[cur] + v * K * nr;
        int64_t ldb = nr;
        if (!packed && j + nr <= Kd) {  // in place
          bw = w + j;
          ldb = Kd;
        } else if (!packed) {  // W's last sliver: nr columns read in place would run past W
          pack(j, n, 0, K, buf[cur]);
        }
        for (int64_t s = 0; s < ms; ++s, ++call) {
          const int64_t m = std::min(mr, cols - s * mr);
          const int64_t r0 = std::min(K, call * share), count = next ? std::min(share, K - r0) : 0;
          const T* fetch = count ? w + r0 * Kd + j0 + width : w;  // (formed only inside W)
          if (next)
            uk.ahead(K, a.data() + s * K * mr, bw, ldb, tile, nr, m, n, false, fetch, Kd, count, shift,
                     static_cast<int>(next * sizeof(T)));
          else
            uk.fn(K, a.data() + s * K * mr, bw, ldb, tile, nr, m, n, false);
          if (next && call > 0)  // the rows the call before fetched
            pack(j0 + width, next, std::min(K, (call - 1) * share), r0, buf[cur ^ 1]);
          for (int64_t jj = 0, c = (j + jj) / ksz, t = (j + jj) % ksz; jj < n; ++jj) {
            T* plane = dx + c * isz;
            for (int64_t i = 0; i < m; ++i) {
              const int64_t to = at[static_cast<std::size_t>((s * mr + i) * ksz + t)];
              if (to >= 0) plane[to] += tile[i * nr + jj];
            }
            if (++t == ksz) t = 0, ++c;
          }
        }
      }
      if (next) pack(j0 + width, next, std::min(K, (calls - 1) * share), K, buf[cur ^ 1]);
    }
  }
}

// Uninitialised scratch memory (every user writes before it reads).
template <typename T>
struct Scratch {
  detail::HostBuffer<T> buf;
  T* get(int64_t n) {
    if (!buf.data() && n > 0) buf.reset(n);
    return buf.data();
  }
};

// Copies rows of `cols` values between a batch's side-by-side matrix
// (row r of image b at wide[r * ld + b * cols]) and the images' own
// matrices (image b's row r at img[b * img_stride + r * cols]).
template <typename T>
void gather_rows(const T* img, int64_t img_stride, int64_t rows, int64_t cols, int64_t nb, T* wide) {
  const int64_t ld = nb * cols;
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t r = 0; r < rows; ++r) std::copy_n(img + b * img_stride + r * cols, cols, wide + r * ld + b * cols);
}

// Runs body(n0, nb, workspace, parallel_inside) for every batch of images
// [n0, n0 + nb): batches in parallel with one workspace slice per thread, or
// one after another with parallel kernels inside. Returns the workspace
// (per_thread elements per thread used). `partial_sums`: the body adds into
// its thread's workspace, so the batches' assignment to threads follows
// schedule_partial_sums.
template <typename T, typename F>
T* for_each_batch(const ConvGeometry& g, const Batching& bt, Scratch<T>& ws, int64_t ws_per_thread, F&& body,
                  bool partial_sums = false) {
  const int nt = get_num_threads();
  if (bt.parallel_chunks) {
    T* all = ws.get(ws_per_thread * nt);
    if (partial_sums)
      detail::schedule_partial_sums(1);
    else
      omp_set_schedule(omp_sched_dynamic, 1);
#pragma omp parallel num_threads(nt)
    {
      T* mine = all + ws_per_thread * omp_get_thread_num();
#pragma omp for schedule(runtime)
      for (int64_t c = 0; c < bt.chunks; ++c) {
        const int64_t n0 = c * bt.batch;
        body(n0, std::min(bt.batch, g.N - n0), mine, false);
      }
    }
    return all;
  }
  T* one = ws.get(ws_per_thread);
  for (int64_t c = 0; c < bt.chunks; ++c) {
    const int64_t n0 = c * bt.batch;
    body(n0, std::min(bt.batch, g.N - n0), one, nt > 1);
  }
  return one;
}

// Workspace elements per thread: the batch's patch matrix, and where the
// batch has several images, its side-by-side output (forward) or output
// gradient (backward) matrix.
int64_t per_thread_elems(const ConvGeometry& g, const Batching& bt) {
  const int64_t cols = bt.batch * g.out_size();
  return (needs_patches(g, bt.batch) ? g.patch_size() * cols : 0) + (bt.batch > 1 ? g.C_out_g * cols : 0);
}

}  // namespace

// Few columns (one or a few images of a small map) and wide weights: the
// patch gradient W^T dy transposed, dy^T W, reads the weights as the GEMM's
// B operand in the rows they lie in, where W^T as A is packed by a
// transposition (9.4 MB of 512-channel 3x3 weights: a memory-pattern-bound
// pass). Measured against the shifted path's packed transpose at batch 1
// (a Zen 3, one / two threads, ms): 512 -> 512 @7 4.9 / 2.65 -> 3.9 / 2.1;
// @4 5.4 / 1.7 -> 1.6 / 0.8; 256 -> 256 @7 1.2 / 0.95 -> 0.95 / 0.47;
// 256 -> 512 3x3/2 @14 2.6 / 1.35 -> 1.85 / 1.05 (im2col before). With W
// read in place, at 196 columns (512 -> 512 @14) neither was ahead, hence
// up to 128. Where W is packed in bands (transposed_packs_bands: 384+
// output channels), more columns pay (one thread, ms): 512 -> 512 @14
// 13.2 -> 11.4 (two threads 6.9 -> 5.8), batch 2 24.8 -> 22.3, batch 4
// 52 -> 46, @28 46.5 -> 43; batch 16 @7 and @4 level. With fewer channels
// it did not (256 -> 256 @28 11.4 -> 13.3, 128 -> 128 @28 2.9 -> 3.8).
constexpr int64_t kTransposedMaxColumns = 128, kTransposedPackedMaxColumns = 1024;

bool conv_im2col_data_gradient_transposed(const ConvGeometry& g, int threads) {
  if (is_pointwise(g) || g.N < 1) return false;
  const Batching bt = batching(g, threads);
  const int64_t cols = bt.batch * g.out_size();
  // past 128 columns the tiles number 9 or more at every level (mr <= 16): W is packed where K allows
  const bool packed = g.C_out_g >= kTransposedPackMinK;
  return (cols <= kTransposedMaxColumns || (packed && cols <= kTransposedPackedMaxColumns)) && g.C_out_g >= 64 &&
         g.patch_size() >= 256;
}

int64_t conv_im2col_workspace_bytes(const ConvGeometry& g, int64_t elem_size, ConvPass pass, int threads) {
  // Sizes were overflow-checked by make_conv_geometry except the batch and
  // thread factors, so the total is formed in long double.
  const Batching bt = batching(g, threads);
  const long double cols = static_cast<long double>(bt.batch) * g.out_size();
  long double elems = (needs_patches(g, bt.batch) ? g.patch_size() * cols : 0) + (bt.batch > 1 ? g.C_out_g * cols : 0);
  const int64_t copies = bt.parallel_chunks ? threads : 1;
  if (pass == ConvPass::backward_weight && copies > 1) elems += static_cast<long double>(g.C_out) * g.patch_size();
  long double transposed = 0;
  if (pass == ConvPass::backward_data && conv_im2col_data_gradient_transposed(g, threads))
    // transposed_data_gradient's packed dy^T (rows up to the tallest tile, 16, past cols) and tap
    // table for each batch in flight, and two bands of W a thread (at most 128 KiB or one
    // sliver of the widest tile, 64 columns)
    transposed = ((cols + 16) * g.C_out_g * elem_size + cols * g.k_size() * 8) * copies +
                 static_cast<long double>(threads) * 2 *
                     std::max<long double>(128 << 10, 64.0L * g.C_out_g * elem_size);
  const long double total = elems * elem_size * copies + TapTables::bytes(g) + transposed;
  return total > 9.0e18L ? INT64_MAX : static_cast<int64_t>(total);
}

template <typename T>
void conv_forward_im2col(const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  const auto& uk = gemm_ukernel_for_current_isa<T>();
  const TapTables tt(g);
  const int nt = get_num_threads();
  const Batching bt = batching(g, nt);
  const int64_t P = g.out_size(), Kd = g.patch_size(), isz = g.in_size();
  Scratch<T> ws;
  for_each_batch<T>(g, bt, ws, per_thread_elems(g, bt), [&](int64_t n0, int64_t nb, T* buf, bool par) {
    const int64_t cols = nb * P;
    const bool patches = needs_patches(g, nb);
    T* col = buf;
    T* wide_out = buf + (patches ? Kd * cols : 0);  // used when nb > 1
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* x = src + (n0 * g.C_in + grp * g.C_in_g) * isz;
      if (patches)
        for (int64_t b = 0; b < nb; ++b) im2col(g, tt, x + b * g.C_in * isz, col + b * P, cols, par, nt);
      const T* w = weights + grp * g.C_out_g * Kd;
      T* y = dst + (n0 * g.C_out + grp * g.C_out_g) * P;
      gemm(uk, false, false, g.C_out_g, cols, Kd, w, Kd, patches ? col : x, cols, false, nb > 1 ? wide_out : y, cols,
           par);
      // Output pass: scatter the batch's columns to its images, adding bias.
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t o = 0; o < g.C_out_g; ++o) {
          T* yo = y + b * g.C_out * P + o * P;
          const T* from = nb > 1 ? wide_out + o * cols + b * P : yo;
          const T bo = bias ? bias[grp * g.C_out_g + o] : T(0);
          if (nb == 1 && !bias) continue;
#pragma omp simd
          for (int64_t p = 0; p < P; ++p) yo[p] = from[p] + bo;
        }
    }
  });
}

template <typename T>
void conv_backward_data_im2col(const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  const auto& uk = gemm_ukernel_for_current_isa<T>();
  const TapTables tt(g);
  const int nt = get_num_threads();
  const Batching bt = batching(g, nt);
  const int64_t P = g.out_size(), Kd = g.patch_size(), isz = g.in_size();
  const bool pointwise = is_pointwise(g);
  const bool transposed = conv_im2col_data_gradient_transposed(g, nt);
  Scratch<T> ws;
  for_each_batch<T>(g, bt, ws, per_thread_elems(g, bt), [&](int64_t n0, int64_t nb, T* buf, bool par) {
    const int64_t cols = nb * P;
    const bool patches = needs_patches(g, nb);
    T* col = buf;
    T* wide_dy = buf + (patches ? Kd * cols : 0);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      T* dx = diff_src + (n0 * g.C_in + grp * g.C_in_g) * isz;
      const T* dy = diff_dst + (n0 * g.C_out + grp * g.C_out_g) * P;
      const T* w = weights + grp * g.C_out_g * Kd;
      if (nb > 1) gather_rows(dy, g.C_out * P, g.C_out_g, P, nb, wide_dy);
      // patch gradient (Kd x cols) = W_g^T (Kd x C_out_g) * dy (C_out_g x cols)
      if (!patches) {
        gemm(uk, true, false, Kd, P, g.C_out_g, w, Kd, dy, P, false, dx, P, par);
        continue;
      }
      if (transposed) {
        // its transpose (cols x Kd) = dy^T * W_g: the weights are B, read
        // in rows as they lie; A, the few columns' dy, is what is transposed
        transposed_data_gradient(g, tt, uk, nb, nb > 1 ? wide_dy : dy, w, dx, g.C_in * isz, par, nt);
        continue;
      }
      gemm(uk, true, false, Kd, cols, g.C_out_g, w, Kd, nb > 1 ? wide_dy : dy, cols, false, col, cols, par);
      for (int64_t b = 0; b < nb; ++b) {
        T* dxb = dx + b * g.C_in * isz;
        if (pointwise) {  // the patch rows are the input channels
          for (int64_t c = 0; c < g.C_in_g; ++c) std::copy_n(col + c * cols + b * P, P, dxb + c * isz);
          continue;
        }
        std::memset(dxb, 0, sizeof(T) * static_cast<std::size_t>(g.C_in_g * isz));
        col2im(g, tt, col + b * P, cols, dxb, par, nt);
      }
    }
  });
}

template <typename T>
void conv_backward_weight_im2col(const ConvGeometry& g, const T* diff_dst, const T* src, T* diff_weights) {
  const auto& uk = gemm_ukernel_for_current_isa<T>();
  const TapTables tt(g);
  const int nt = get_num_threads();
  const Batching bt = batching(g, nt);
  const int64_t P = g.out_size(), Kd = g.patch_size(), isz = g.in_size();
  const int64_t wsz = g.C_out * Kd;
  // With batches in parallel each thread sums into its own copy of the
  // weight gradient (after its other workspace); the copies are added at the end.
  const bool private_sums = bt.parallel_chunks;
  const int64_t base = per_thread_elems(g, bt);
  const int64_t per_thread = base + (private_sums ? wsz : 0);
  // The first batch's products overwrite dW (the private sums' total does
  // at the end), so dW is neither zeroed nor read for them: at batch 1 a
  // deep layer's dW (9.4 MB at ResNet's 512 -> 512 @7, K of 49) was
  // written three times and read once.
  if (g.N == 0) {
    std::memset(diff_weights, 0, sizeof(T) * static_cast<std::size_t>(wsz));
    return;
  }
  Scratch<T> ws;
  if (private_sums) {
    T* all = ws.get(per_thread * nt);
    for (int t = 0; t < nt; ++t) std::fill(all + t * per_thread + base, all + (t + 1) * per_thread, T(0));
  }
  T* const all = for_each_batch<T>(g, bt, ws, per_thread, [&](int64_t n0, int64_t nb, T* buf, bool par) {
    const int64_t cols = nb * P;
    const bool patches = needs_patches(g, nb);
    T* col = buf;
    T* wide_dy = buf + (patches ? Kd * cols : 0);
    T* dw = private_sums ? buf + base : diff_weights;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* x = src + (n0 * g.C_in + grp * g.C_in_g) * isz;
      if (patches)
        for (int64_t b = 0; b < nb; ++b) im2col(g, tt, x + b * g.C_in * isz, col + b * P, cols, par, nt);
      const T* dy = diff_dst + (n0 * g.C_out + grp * g.C_out_g) * P;
      if (nb > 1) gather_rows(dy, g.C_out * P, g.C_out_g, P, nb, wide_dy);
      // dW_g (C_out_g x Kd) += dy (C_out_g x cols) * patches^T (cols x Kd)
      gemm(uk, false, true, g.C_out_g, Kd, cols, nb > 1 ? wide_dy : dy, cols, patches ? col : x, cols,
           private_sums || n0 > 0, dw + grp * g.C_out_g * Kd, Kd, par);
    }
  }, private_sums);
  if (private_sums) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < wsz; ++i) {
      T s = 0;
      for (int t = 0; t < nt; ++t) s += all[t * per_thread + base + i];
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
