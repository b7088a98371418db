#include "cpu/kernels/local-conv-im2col.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cnncore/runtime.hpp"
#include "util/partial_sums.hpp"
#include "cpu/kernels/gemm.hpp"
#include "cpu/kernels/local-conv-ukernels.hpp"

namespace cnncore::cpu {

using detail::ConvPass;
using detail::LocalConvGeometry;

namespace {

constexpr int64_t kKC = 256;             // inner-dimension block of the micro-kernel calls
constexpr int64_t kPanelElems = 1 << 16;  // target size of one unit's patch panel
constexpr int64_t kMinChunk = 16;
// Forward and backward data: classes with fewer columns (images x positions)
// than this use the in-place micro-kernels, larger ones pack their kernel once
// per thread and run the GEMM micro-kernels (measured crossover: about 32).
// Backward weight always runs in place (its operands need no transposition).
constexpr int64_t kPackedColumns = 32;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Columns per unit: enough to keep the micro-kernels busy, few enough that a
// unit's panels stay in cache and that every thread gets several units.
int64_t chunk_columns(const LocalConvGeometry& g, int nt) {
  const int64_t cap = std::max(kMinChunk, kPanelElems / std::max(g.K(), g.C_out()));
  const int64_t total = g.N() * g.H_out() * g.W_out();
  const int64_t share = (total + 4 * nt - 1) / (4 * nt);
  return std::min(cap, std::max(kMinChunk, share));
}

struct Unit {
  int64_t cls, m0, m1;  // columns [m0, m1) of class cls
};

// One column of a unit: offsets of its image in x (and dx) and of its output
// (channel 0) in y (and dy), and its output position.
struct Col {
  int64_t x, y, i, j;
};

// Everything the units share: the geometry, the source index tables, the
// micro-kernel and the chunk size.
template <typename T>
struct Ctx {
  const LocalConvGeometry& g;
  const GemmUkernel<T>& uk;
  const LocalConvUkernels<T>& lk;
  int64_t CB;
  // hsrc[i * kH + a]: input row read by output row i for kernel tap a,
  // wsrc[j * kW + b] likewise; -1 = a zero of the padding. Flip is folded in.
  // wfull[j]: no tap of output column j reads a padding zero.
  std::vector<int64_t> hsrc, wsrc;
  std::vector<char> wfull;

  Ctx(const LocalConvGeometry& geom, int nt)
      : g(geom), uk(gemm_ukernel_for_current_isa<T>()), lk(local_conv_ukernels_for_current_isa<T>()),
        CB(chunk_columns(geom, nt)) {
    const auto& c = g.conv;
    for (int axis = 1; axis <= 2; ++axis) {
      auto& table = axis == 1 ? hsrc : wsrc;
      const int64_t k = c.k[axis];
      table.resize(static_cast<std::size_t>(k * c.out[axis]));
      for (int64_t o = 0; o < c.out[axis]; ++o)
        for (int64_t t = 0; t < k; ++t) {
          const int64_t offset = c.flip ? k - 1 - t : t;  // window offset multiplied by tap t
          table[static_cast<std::size_t>(o * k + t)] = detail::padded_source_index(
              o * c.stride[axis] + offset * c.dilation[axis] - c.pad_before[axis], c.in[axis], c.mode);
        }
    }
    wfull.assign(static_cast<std::size_t>(g.W_out()), 1);
    for (std::size_t e = 0; e < wsrc.size(); ++e)
      if (wsrc[e] < 0) wfull[e / static_cast<std::size_t>(g.kW())] = 0;
  }

  int64_t rows(int64_t cls) const { return g.class_rows(cls / g.tile[1]); }
  int64_t cols(int64_t cls) const { return g.class_cols(cls % g.tile[1]); }
  bool packed_path(int64_t cls) const { return g.N() * rows(cls) * cols(cls) >= kPackedColumns; }

  // The columns of unit u (image-major, then rows, then columns of the class).
  void columns(const Unit& u, Col* out) const {
    const int64_t R = rows(u.cls), Q = cols(u.cls), img = g.C_in() * g.H() * g.W();
    const int64_t out_img = g.C_out() * g.H_out() * g.W_out();
    const int64_t ti = u.cls / g.tile[1], tj = u.cls % g.tile[1];
    int64_t n = u.m0 / (R * Q), r = (u.m0 % (R * Q)) / Q, q = u.m0 % Q;
    for (int64_t m = u.m0; m < u.m1; ++m) {
      const int64_t i = ti + r * g.tile[0], j = tj + q * g.tile[1];
      *out++ = Col{n * img, n * out_img + i * g.W_out() + j, i, j};
      if (++q == Q) {
        q = 0;
        if (++r == R) r = 0, ++n;
      }
    }
  }

  // The patch of image x (one image) at output (i, j): out[k * ks] for
  // k = (c*kH + a)*kW + b.
  void gather(const T* x, int64_t i, int64_t j, T* out, int64_t ks) const {
    const int64_t H = g.H(), W = g.W(), kH = g.kH(), kW = g.kW();
    const int64_t* hs = hsrc.data() + i * kH;
    const int64_t* ws = wsrc.data() + j * kW;
    const bool full = wfull[static_cast<std::size_t>(j)];
    for (int64_t c = 0; c < g.C_in(); ++c) {
      const T* xc = x + c * H * W;
      for (int64_t a = 0; a < kH; ++a, out += kW * ks) {
        const int64_t h = hs[a];
        if (h < 0) {
          for (int64_t b = 0; b < kW; ++b) out[b * ks] = T(0);
          continue;
        }
        const T* row = xc + h * W;
        if (full) {
          for (int64_t b = 0; b < kW; ++b) out[b * ks] = row[ws[b]];
        } else {
          for (int64_t b = 0; b < kW; ++b) out[b * ks] = ws[b] < 0 ? T(0) : row[ws[b]];
        }
      }
    }
  }

  // Adjoint of gather (ks = 1): adds patch entry k into its source of dx.
  void scatter_add(const T* in, int64_t i, int64_t j, T* dx) const {
    const int64_t H = g.H(), W = g.W(), kH = g.kH(), kW = g.kW();
    const int64_t* hs = hsrc.data() + i * kH;
    const int64_t* ws = wsrc.data() + j * kW;
    const bool full = wfull[static_cast<std::size_t>(j)];
    for (int64_t c = 0; c < g.C_in(); ++c) {
      T* xc = dx + c * H * W;
      for (int64_t a = 0; a < kH; ++a, in += kW) {
        const int64_t h = hs[a];
        if (h < 0) continue;
        T* row = xc + h * W;
        if (full) {
          for (int64_t b = 0; b < kW; ++b) row[ws[b]] += in[b];
        } else {
          for (int64_t b = 0; b < kW; ++b)
            if (ws[b] >= 0) row[ws[b]] += in[b];
        }
      }
    }
  }

  // All units of the classes, columns over every image.
  std::vector<Unit> units() const {
    std::vector<Unit> v;
    for (int64_t cls = 0; cls < g.classes(); ++cls) {
      const int64_t m = g.N() * rows(cls) * cols(cls);
      for (int64_t m0 = 0; m0 < m; m0 += CB) v.push_back({cls, m0, std::min(m, m0 + CB)});
    }
    return v;
  }
};

// Per-thread workspace of each pass, in elements; regions A, B, C in order.
struct Regions {
  int64_t a, b, c;
  int64_t total() const { return a + b + c; }
};

Regions regions(const LocalConvGeometry& g, ConvPass pass, int64_t CB, int64_t mr, int64_t nr) {
  const int64_t K = g.K(), Co = g.C_out();
  switch (pass) {
    // A: patches (packed, or rows padded to a multiple of the lanes); B: packed W^T; C: Y^T, weight tails
    case ConvPass::forward:
      return {std::max(round_up(CB, mr) * K, CB * round_up(K, kLocalConvMaxLanes)), round_up(Co, nr) * K,
              CB * Co + Co * kLocalConvMaxLanes};
    case ConvPass::backward_data:  // A: dY rows (packed or not); B: packed W; C: patch gradients
      return {round_up(CB, mr) * Co, round_up(K, nr) * Co, CB * K};
    case ConvPass::backward_weight:  // A: dY; B: patches
      return {CB * Co, CB * K, 0};
  }
  return {0, 0, 0};
}

// Iterations handed out at a time by dynamic schedules: about 8 rounds per thread.
int64_t dynamic_grain(int64_t count, int nt) { return std::max<int64_t>(1, count / (8 * nt)); }

bool private_data_gradients(const LocalConvGeometry& g, int nt) { return nt > 1 && g.N() < nt; }
bool private_weight_gradients(const LocalConvGeometry& g, int nt) { return nt > 1 && g.classes() < nt; }

// C (M x N, row stride ldc) = [C +] A * B with A packed in MR-row slivers
// ([Kd][MR] each) and B in NR-column slivers ([Kd][NR] each), both over the
// whole inner dimension Kd.
template <typename T>
void packed_gemm(const GemmUkernel<T>& uk, int64_t M, int64_t N, int64_t Kd, const T* apack, const T* bpack, T* C,
                 int64_t ldc, bool accumulate) {
  const int64_t mr = uk.mr, nr = uk.nr;
  for (int64_t pc = 0; pc < Kd; pc += kKC) {
    const int64_t kc = std::min(kKC, Kd - pc);
    const bool acc = accumulate || pc > 0;
    for (int64_t j = 0; j < N; j += nr) {
      const T* b = bpack + (j / nr) * Kd * nr + pc * nr;
      for (int64_t i = 0; i < M; i += mr)
        uk.fn(kc, apack + (i / mr) * Kd * mr + pc * mr, b, nr, C + i * ldc + j, ldc, std::min(mr, M - i),
              std::min(nr, N - j), acc);
    }
  }
}

// ---- one unit of each pass ---------------------------------------------------
// `packed` remembers which class's weights region B holds (-1: none).

// With `stage` (one position per class and image: see staged_output) the
// unit's Y^T block is copied to stage[(position * N + n) * C_out + o] and
// bias is added later; otherwise it is scattered to dst with its bias.
template <typename T>
void forward_unit(const Ctx<T>& cx, const Regions& r, const Unit& u, const T* src, const T* weights, const T* bias,
                  T* dst, T* stage, T* ws, Col* cols, int64_t& packed) {
  const LocalConvGeometry& g = cx.g;
  const int64_t K = g.K(), Co = g.C_out(), mlen = u.m1 - u.m0, mr = cx.uk.mr, nr = cx.uk.nr;
  const int64_t plane = g.H_out() * g.W_out();
  const T* wb = weights + u.cls * g.block();
  T* A = ws;
  T* B = ws + r.a;
  T* Y = B + r.b;  // Y^T: mlen x C_out
  cx.columns(u, cols);
  if (!cx.packed_path(u.cls)) {
    // Patches in rows of Kp, zero-padded; the last K % V weights of each row in Wt.
    const int64_t V = cx.lk.lanes, Kp = round_up(K, V), tail = K % V;
    T* Wt = Y + mlen * Co;
    for (int64_t m = 0; m < mlen; ++m) {
      cx.gather(src + cols[m].x, cols[m].i, cols[m].j, A + m * Kp, 1);
      std::fill(A + m * Kp + K, A + (m + 1) * Kp, T(0));
    }
    if (tail)
      for (int64_t o = 0; o < Co; ++o)
        for (int64_t v = 0; v < V; ++v) Wt[o * V + v] = v < tail ? wb[o * K + K - tail + v] : T(0);
    cx.lk.dot_nt(mlen, Co, K, A, Kp, wb, Wt, Y, Co);
  } else {
    for (int64_t m = 0; m < mlen; ++m) {
      cx.gather(src + cols[m].x, cols[m].i, cols[m].j, A + (m / mr) * K * mr + m % mr, mr);
    }
    for (int64_t m = mlen; m < round_up(mlen, mr); ++m)
      for (int64_t k = 0; k < K; ++k) A[(m / mr) * K * mr + k * mr + m % mr] = T(0);
    if (packed != u.cls) {
      for (int64_t o0 = 0; o0 < Co; o0 += nr) {
        T* d = B + (o0 / nr) * K * nr;
        for (int64_t k = 0; k < K; ++k)
          for (int64_t jj = 0; jj < nr; ++jj) d[k * nr + jj] = o0 + jj < Co ? wb[(o0 + jj) * K + k] : T(0);
      }
      packed = u.cls;
    }
    packed_gemm(cx.uk, mlen, Co, K, A, B, Y, Co, false);
  }
  if (stage) {
    std::copy(Y, Y + mlen * Co, stage + ((cols[0].i * g.W_out() + cols[0].j) * g.N() + u.m0) * Co);
    return;
  }
  // Channel-major, so that consecutive columns (neighbouring positions) are
  // written next to each other.
  const T* bb = bias ? bias + u.cls : nullptr;  // bias[o, ti, tj] = bb[o * classes]
  for (int64_t o = 0; o < Co; ++o) {
    const T b = bb ? bb[o * g.classes()] : T(0);
    for (int64_t m = 0; m < mlen; ++m) dst[cols[m].y + o * plane] = Y[m * Co + o] + b;
  }
}

// Every class holds one output position per image (a locally connected
// layer): its columns are images, whose outputs lie whole planes apart (often
// a power of two, which maps them to one cache set), so the forward pass
// writes position-major and transposes once at the end.
bool staged_output(const LocalConvGeometry& g) { return g.tile[0] >= g.H_out() && g.tile[1] >= g.W_out(); }

// stage[((i * W_out + j) * N + n) * C_out + o] = diff_dst[n, o, i, j]: the
// backward passes of a locally connected layer read output gradients by position.
template <typename T>
void stage_grad(const LocalConvGeometry& g, const T* diff_dst, T* stage, int nt) {
  const int64_t N = g.N(), Co = g.C_out(), P = g.H_out() * g.W_out(), PB = 64;
  const int64_t blocks = (P + PB - 1) / PB;
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t p0 = blk * PB, p1 = std::min(P, p0 + PB);
      for (int64_t o = 0; o < Co; ++o) {
        const T* y = diff_dst + (n * Co + o) * P;
        T* s = stage + n * Co + o;
        for (int64_t p = p0; p < p1; ++p) s[p * N * Co] = y[p];
      }
    }
}

// dst[n, o, i, j] = stage[((i * W_out + j) * N + n) * C_out + o] + bias[o, i, j].
template <typename T>
void unstage(const LocalConvGeometry& g, const T* stage, const T* bias, T* dst, int nt) {
  const int64_t N = g.N(), Co = g.C_out(), Wo = g.W_out(), P = g.H_out() * Wo, PB = 64;
  const int64_t blocks = (P + PB - 1) / PB;
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t p0 = blk * PB, p1 = std::min(P, p0 + PB);
      for (int64_t o = 0; o < Co; ++o) {
        T* y = dst + (n * Co + o) * P;
        const T* s = stage + n * Co + o;
        if (bias) {
          const T* bo = bias + o * g.tile[0] * g.tile[1];
          for (int64_t p = p0, i = p0 / Wo, j = p0 % Wo; p < p1; ++p) {
            y[p] = s[p * N * Co] + bo[i * g.tile[1] + j];
            if (++j == Wo) j = 0, ++i;
          }
        } else {
          for (int64_t p = p0; p < p1; ++p) y[p] = s[p * N * Co];
        }
      }
    }
}

// The unit's output gradients as rows (mlen x C_out): in place in the
// position-major copy `stage` when there is one (staged_output), else
// gathered from diff_dst into buf.
template <typename T>
const T* grad_rows(const Ctx<T>& cx, const Unit& u, const Col* cols, const T* diff_dst, const T* stage, T* buf) {
  const LocalConvGeometry& g = cx.g;
  const int64_t Co = g.C_out(), plane = g.H_out() * g.W_out();
  if (stage) return stage + ((cols[0].i * g.W_out() + cols[0].j) * g.N() + u.m0) * Co;
  for (int64_t m = 0; m < u.m1 - u.m0; ++m) {
    const T* dy = diff_dst + cols[m].y;
    for (int64_t o = 0; o < Co; ++o) buf[m * Co + o] = dy[o * plane];
  }
  return buf;
}

// Adds the patch gradients of the unit's columns into dx (all images).
template <typename T>
void backward_data_unit(const Ctx<T>& cx, const Regions& r, const Unit& u, const T* diff_dst, const T* stage,
                        const T* weights, T* dx, T* ws, Col* cols, int64_t& packed) {
  const LocalConvGeometry& g = cx.g;
  const int64_t K = g.K(), Co = g.C_out(), mlen = u.m1 - u.m0, mr = cx.uk.mr, nr = cx.uk.nr;
  const int64_t plane = g.H_out() * g.W_out();
  const T* wb = weights + u.cls * g.block();
  T* A = ws;
  T* B = ws + r.a;
  T* P = B + r.b;  // patch gradients: mlen x K
  cx.columns(u, cols);
  if (!cx.packed_path(u.cls)) {
    cx.lk.gemm_bcast(mlen, K, Co, grad_rows(cx, u, cols, diff_dst, stage, A), Co, 1, wb, K, P, K, false);
  } else {
    const T* rows = stage ? grad_rows(cx, u, cols, diff_dst, stage, A) : nullptr;
    for (int64_t m = 0; m < round_up(mlen, mr); ++m) {
      T* a = A + (m / mr) * Co * mr + m % mr;
      if (m < mlen && rows) {
        for (int64_t o = 0; o < Co; ++o) a[o * mr] = rows[m * Co + o];
      } else if (m < mlen) {
        const T* dy = diff_dst + cols[m].y;
        for (int64_t o = 0; o < Co; ++o) a[o * mr] = dy[o * plane];
      } else {
        for (int64_t o = 0; o < Co; ++o) a[o * mr] = T(0);
      }
    }
    if (packed != u.cls) {
      for (int64_t k0 = 0; k0 < K; k0 += nr) {
        T* d = B + (k0 / nr) * Co * nr;
        const int64_t w = std::min(nr, K - k0);
        for (int64_t o = 0; o < Co; ++o) {
          const T* wo = wb + o * K + k0;
          for (int64_t jj = 0; jj < nr; ++jj) d[o * nr + jj] = jj < w ? wo[jj] : T(0);
        }
      }
      packed = u.cls;
    }
    packed_gemm(cx.uk, mlen, K, Co, A, B, P, K, false);
  }
  for (int64_t m = 0; m < mlen; ++m) {
    cx.scatter_add(P + m * K, cols[m].i, cols[m].j, dx + cols[m].x);
  }
}

// Adds the unit's contribution to its class's kernel gradient dwb.
template <typename T>
void backward_weight_unit(const Ctx<T>& cx, const Regions& r, const Unit& u, const T* diff_dst, const T* stage,
                          const T* src, T* dwb, T* ws, Col* cols) {
  const LocalConvGeometry& g = cx.g;
  const int64_t K = g.K(), Co = g.C_out(), mlen = u.m1 - u.m0;
  T* A = ws;         // dY: mlen x C_out
  T* P = ws + r.a;  // patches: mlen x K
  cx.columns(u, cols);
  for (int64_t m = 0; m < mlen; ++m) {
    cx.gather(src + cols[m].x, cols[m].i, cols[m].j, P + m * K, 1);
  }
  // dW (C_out x K) += dY^T (C_out x m) * P (m x K), dY^T read from the rows of dY (m x C_out).
  cx.lk.gemm_bcast(Co, K, mlen, grad_rows(cx, u, cols, diff_dst, stage, A), 1, Co, P, K, dwb, K, true);
}

int64_t saturate(long double v) { return v > 9.0e18L ? INT64_MAX : static_cast<int64_t>(v); }

template <typename T>
int64_t workspace_bytes_t(const LocalConvGeometry& g, ConvPass pass, int nt) {
  const auto& uk = gemm_ukernel_for_current_isa<T>();
  const int64_t CB = chunk_columns(g, nt);
  long double elems = static_cast<long double>(regions(g, pass, CB, uk.mr, uk.nr).total()) * nt;
  if (staged_output(g))  // forward: outputs; backward: output gradients
    elems += static_cast<long double>(g.N()) * g.C_out() * g.H_out() * g.W_out();
  if (pass == ConvPass::backward_data && private_data_gradients(g, nt))
    elems += static_cast<long double>(nt) * g.N() * g.C_in() * g.H() * g.W();
  if (pass == ConvPass::backward_weight && private_weight_gradients(g, nt))
    elems += static_cast<long double>(nt) * g.classes() * g.block();
  const long double positions = static_cast<long double>(g.H_out()) * g.W_out();
  const long double units = std::min<long double>(static_cast<long double>(g.classes()), positions) +
                            g.N() * positions / CB + 1;
  const long double tables = static_cast<long double>(g.kH() * g.H_out() + g.kW() * g.W_out()) * 8 +
                             static_cast<long double>(CB) * nt * sizeof(Col) + g.W_out();
  return saturate(elems * sizeof(T) + units * sizeof(Unit) + tables);
}

}  // namespace

int64_t local_conv_im2col_workspace_bytes(const LocalConvGeometry& g, int64_t elem_size, ConvPass pass,
                                          int threads) {
  return elem_size == 4 ? workspace_bytes_t<float>(g, pass, threads) : workspace_bytes_t<double>(g, pass, threads);
}

template <typename T>
void local_conv_forward_im2col(const LocalConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  const int nt = get_num_threads();
  const Ctx<T> cx(g, nt);
  const Regions r = regions(g, ConvPass::forward, cx.CB, cx.uk.mr, cx.uk.nr);
  const std::vector<Unit> units = cx.units();
  std::vector<T> ws(static_cast<std::size_t>(r.total() * nt));
  std::vector<Col> colbuf(static_cast<std::size_t>(cx.CB * nt));
  std::vector<T> stage(staged_output(g) ? static_cast<std::size_t>(g.N() * g.C_out() * g.H_out() * g.W_out()) : 0);
  T* st = stage.empty() ? nullptr : stage.data();
  const int64_t count = static_cast<int64_t>(units.size()), grain = dynamic_grain(count, nt);
#pragma omp parallel num_threads(nt)
  {
    T* mine = ws.data() + r.total() * omp_get_thread_num();
    Col* cols = colbuf.data() + cx.CB * omp_get_thread_num();
    int64_t packed = -1;
#pragma omp for schedule(dynamic, grain)
    for (int64_t u = 0; u < count; ++u)
      forward_unit(cx, r, units[static_cast<std::size_t>(u)], src, weights, bias, dst, st, mine, cols, packed);
  }
  if (st) unstage(g, st, bias, dst, nt);
}

template <typename T>
void local_conv_backward_data_im2col(const LocalConvGeometry& g, const T* diff_dst, const T* weights,
                                     T* diff_src) {
  const int nt = get_num_threads();
  const Ctx<T> cx(g, nt);
  const Regions r = regions(g, ConvPass::backward_data, cx.CB, cx.uk.mr, cx.uk.nr);
  const int64_t img = g.C_in() * g.H() * g.W(), N = g.N();
  std::vector<T> ws(static_cast<std::size_t>(r.total() * nt));
  std::vector<Col> colbuf(static_cast<std::size_t>(cx.CB * nt));
  std::vector<T> stage(staged_output(g) ? static_cast<std::size_t>(g.N() * g.C_out() * g.H_out() * g.W_out()) : 0);
  T* st = stage.empty() ? nullptr : stage.data();
  if (st) stage_grad(g, diff_dst, st, nt);
  if (!private_data_gradients(g, nt)) {
    // Thread t owns images [N*t/nt, N*(t+1)/nt) and runs every class over them.
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num(), nth = omp_get_num_threads();
      const int64_t n0 = N * t / nth, n1 = N * (t + 1) / nth;
      T* mine = ws.data() + r.total() * t;
      Col* cols = colbuf.data() + cx.CB * t;
      int64_t packed = -1;
      std::memset(diff_src + n0 * img, 0, sizeof(T) * static_cast<std::size_t>((n1 - n0) * img));
      for (int64_t cls = 0; cls < g.classes(); ++cls) {
        const int64_t per_image = cx.rows(cls) * cx.cols(cls);
        for (int64_t m0 = n0 * per_image; m0 < n1 * per_image; m0 += cx.CB)
          backward_data_unit(cx, r, Unit{cls, m0, std::min(n1 * per_image, m0 + cx.CB)}, diff_dst, st, weights,
                             diff_src, mine, cols, packed);
      }
    }
    return;
  }
  // Fewer images than threads: private gradients, summed at the end.
  const std::vector<Unit> units = cx.units();
  const int64_t count = static_cast<int64_t>(units.size()), total = N * img, grain = dynamic_grain(count, nt);
  std::vector<T> priv(static_cast<std::size_t>(total * nt), T(0));
  detail::schedule_partial_sums(grain);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    T* mine = ws.data() + r.total() * t;
    T* dx = priv.data() + total * t;
    Col* cols = colbuf.data() + cx.CB * t;
    int64_t packed = -1;
#pragma omp for schedule(runtime)  // partial sums: see schedule_partial_sums
    for (int64_t u = 0; u < count; ++u)
      backward_data_unit(cx, r, units[static_cast<std::size_t>(u)], diff_dst, st, weights, dx, mine, cols, packed);
  }
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t e = 0; e < total; ++e) {
    T s = 0;
    for (int t = 0; t < nt; ++t) s += priv[static_cast<std::size_t>(t * total + e)];
    diff_src[e] = s;
  }
}

template <typename T>
void local_conv_backward_weight_im2col(const LocalConvGeometry& g, const T* diff_dst, const T* src,
                                       T* diff_weights) {
  const int nt = get_num_threads();
  const Ctx<T> cx(g, nt);
  const Regions r = regions(g, ConvPass::backward_weight, cx.CB, cx.uk.mr, cx.uk.nr);
  const int64_t block = g.block(), classes = g.classes();
  std::vector<T> ws(static_cast<std::size_t>(r.total() * nt));
  std::vector<Col> colbuf(static_cast<std::size_t>(cx.CB * nt));
  std::vector<T> stage(staged_output(g) ? static_cast<std::size_t>(g.N() * g.C_out() * g.H_out() * g.W_out()) : 0);
  T* st = stage.empty() ? nullptr : stage.data();
  if (st) stage_grad(g, diff_dst, st, nt);
  if (!private_weight_gradients(g, nt)) {
    // Each class's kernel gradient has one writer.
    const int64_t grain = dynamic_grain(classes, nt);
#pragma omp parallel num_threads(nt)
    {
      T* mine = ws.data() + r.total() * omp_get_thread_num();
      Col* cols = colbuf.data() + cx.CB * omp_get_thread_num();
#pragma omp for schedule(dynamic, grain)
      for (int64_t cls = 0; cls < classes; ++cls) {
        // Zeroing the block first (a streaming write) beats letting the first
        // unit overwrite it: its scattered first stores would each miss.
        T* dwb = diff_weights + cls * block;
        std::memset(dwb, 0, sizeof(T) * static_cast<std::size_t>(block));
        const int64_t m = g.N() * cx.rows(cls) * cx.cols(cls);
        for (int64_t m0 = 0; m0 < m; m0 += cx.CB)
          backward_weight_unit(cx, r, Unit{cls, m0, std::min(m, m0 + cx.CB)}, diff_dst, st, src, dwb, mine, cols);
      }
    }
    return;
  }
  // Fewer classes than threads: private gradients, summed at the end.
  const std::vector<Unit> units = cx.units();
  const int64_t count = static_cast<int64_t>(units.size()), total = classes * block, grain = dynamic_grain(count, nt);
  std::vector<T> priv(static_cast<std::size_t>(total * nt), T(0));
  detail::schedule_partial_sums(grain);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    T* mine = ws.data() + r.total() * t;
    T* dw = priv.data() + total * t;
    Col* cols = colbuf.data() + cx.CB * t;
#pragma omp for schedule(runtime)  // partial sums: see schedule_partial_sums
    for (int64_t u = 0; u < count; ++u) {
      const Unit& un = units[static_cast<std::size_t>(u)];
      backward_weight_unit(cx, r, un, diff_dst, st, src, dw + un.cls * block, mine, cols);
    }
  }
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t e = 0; e < total; ++e) {
    T s = 0;
    for (int t = 0; t < nt; ++t) s += priv[static_cast<std::size_t>(t * total + e)];
    diff_weights[e] = s;
  }
}

#define CNNCORE_INSTANTIATE(T)                                                                                  \
  template void local_conv_forward_im2col<T>(const LocalConvGeometry&, const T*, const T*, const T*, T*);      \
  template void local_conv_backward_data_im2col<T>(const LocalConvGeometry&, const T*, const T*, T*);          \
  template void local_conv_backward_weight_im2col<T>(const LocalConvGeometry&, const T*, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
