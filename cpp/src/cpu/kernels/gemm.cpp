#include "cpu/kernels/gemm.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <omp.h>
#include <unistd.h>

#include "cnncore/runtime.hpp"
#include "util/checked.hpp"
#include "util/host_cache.hpp"

namespace cnncore::cpu {

// Declarations of every registered micro-kernel.
#define CNNCORE_GEMM_UKERNEL(ctype, name, shifted_name, offset_a_name, brgemm_name, mr, nr, isa)                 \
  void name(int64_t, const ctype*, const ctype*, int64_t, ctype*, int64_t, int64_t, int64_t, bool);              \
  void shifted_name(int64_t, const ctype*, int64_t, const ctype*, const int64_t*, ctype*, int64_t, int64_t, int64_t, \
                    bool);                                                                                      \
  void offset_a_name(int64_t, const ctype*, const int64_t*, const ctype*, int64_t, ctype*, int64_t, int64_t,      \
                     int64_t, bool);                                                                             \
  void brgemm_name(int64_t, const ctype*, const int64_t*, const ctype*, const int64_t*, ctype*, int64_t, int64_t, \
                   int64_t, bool);                                                                              \
  void name##_ahead(int64_t, const ctype*, const ctype*, int64_t, ctype*, int64_t, int64_t, int64_t, bool,       \
                    const ctype*, int64_t, int64_t, int, int);
#include "cpu/kernels/gemm-kernels.inc"
#undef CNNCORE_GEMM_UKERNEL

namespace {

template <typename T>
std::vector<GemmUkernel<T>> collect() {
  std::vector<GemmUkernel<T>> v;
#define CNNCORE_GEMM_UKERNEL(ctype, name, shifted_name, offset_a_name, brgemm_name, mr, nr, isa) \
  if constexpr (std::is_same_v<T, ctype>)                                                        \
    v.push_back(GemmUkernel<T>{#name, mr, nr, isa, &name, &shifted_name, &offset_a_name, &brgemm_name, &name##_ahead});
#include "cpu/kernels/gemm-kernels.inc"
#undef CNNCORE_GEMM_UKERNEL
  return v;
}

template <typename T>
const std::vector<GemmUkernel<T>>& registry() {
  static const std::vector<GemmUkernel<T>> v = collect<T>();
  return v;
}

// K block of gemm_shifted (see there).
constexpr int64_t kShiftedKC = 2048;
// The largest MR x NR tile of any registered kernel (gemm_shifted_to_rows' buffer).
constexpr int64_t kMaxTileElems = 16 * 32;
// Below this many multiply-adds (about 90 us of work) a GEMM runs on the
// calling thread: waking the workers for its parallel regions (a futex wake
// each, with passive waiting: 55-65 us a region measured here, see
// util/parallel.hpp) costs more than they save.
constexpr double kSerialMaxMacs = 1 << 23;

// True (after zeroing C unless accumulating) when there is nothing to multiply.
template <typename T>
bool empty_product(int64_t M, int64_t N, int64_t K, bool accumulate, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return true;
  if (K > 0) return false;
  if (!accumulate)
    for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
  return true;
}

bool worth_threads(int64_t M, int64_t N, int64_t K) {
  return static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K) >= kSerialMaxMacs;
}

// At most this many rows of A, A * B^T runs transposed (see gemm()).
constexpr int64_t kSmallRows = 16;
// Below this many outputs, A * B^T runs as dot products (see gemm()).
constexpr int64_t kDotMaxOutputs = 512;

using detail::ceil_div;

// One full MR-row sliver of row-major A (row i at a + i * lda), kc steps:
// MR a compile-time constant so that the row loop unrolls into MR loads and
// stores per step (a quarter of the loop's former time here).
template <int MR, typename T>
void pack_a_rows(const T* a, int64_t lda, int64_t kc, T* __restrict d) {
  const T* r[MR];
  for (int i = 0; i < MR; ++i) r[i] = a + i * lda;
  for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) d[p * MR + i] = r[i][p];
}

// Packs rows [i0, i0+m) x cols [p0, p0+kc) of op(A) into MR-row slivers,
// zero-filling the rows past m.
template <typename T>
void pack_a(bool trans, const T* A, int64_t lda, int64_t i0, int64_t m, int64_t p0, int64_t kc, int mr, T* dst,
            bool parallel, int nt) {
  const int64_t slivers = ceil_div(m, mr);
#pragma omp parallel for schedule(static) num_threads(nt) if (parallel)
  for (int64_t s = 0; s < slivers; ++s) {
    T* d = dst + s * kc * mr;
    const T* a = A + (i0 + s * mr) * lda + p0;
    if (!trans && (s + 1) * mr <= m) {
      switch (mr) {
        case 4: pack_a_rows<4>(a, lda, kc, d); continue;
        case 6: pack_a_rows<6>(a, lda, kc, d); continue;
        case 8: pack_a_rows<8>(a, lda, kc, d); continue;
        case 16: pack_a_rows<16>(a, lda, kc, d); continue;
        default: break;
      }
    }
    for (int64_t p = 0; p < kc; ++p)
      for (int i = 0; i < mr; ++i) {
        const int64_t row = s * mr + i;
        d[p * mr + i] = row < m ? (trans ? A[(p0 + p) * lda + i0 + row] : A[(i0 + row) * lda + p0 + p]) : T(0);
      }
  }
}

// One full NR-column sliver of row-major B (row p at b + p * ldb), kc rows.
template <int NR, typename T>
void pack_b_cols(const T* b, int64_t ldb, int64_t kc, T* __restrict d) {
  for (int64_t p = 0; p < kc; ++p)
#pragma omp simd
    for (int j = 0; j < NR; ++j) d[p * NR + j] = b[p * ldb + j];
}

// Packs rows [p0, p0+kc) x cols [j0, j0+n) of op(B) into NR-column slivers.
template <typename T>
void pack_b(bool trans, const T* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t n, int nr, T* dst,
            bool parallel, int nt) {
  const int64_t slivers = ceil_div(n, nr);
#pragma omp parallel for schedule(static) num_threads(nt) if (parallel)
  for (int64_t s = 0; s < slivers; ++s) {
    T* d = dst + s * kc * nr;
    const int64_t cols = std::min<int64_t>(nr, n - s * nr);
    if (!trans && cols == nr) {
      const T* b = B + p0 * ldb + j0 + s * nr;
      switch (nr) {
        case 8: pack_b_cols<8>(b, ldb, kc, d); continue;
        case 16: pack_b_cols<16>(b, ldb, kc, d); continue;
        case 32: pack_b_cols<32>(b, ldb, kc, d); continue;
        default: break;
      }
    }
    for (int64_t p = 0; p < kc; ++p) {
      T* dp = d + p * nr;
      if (!trans) {
        const T* src = B + (p0 + p) * ldb + j0 + s * nr;
        for (int64_t j = 0; j < cols; ++j) dp[j] = src[j];
      } else {
        for (int64_t j = 0; j < cols; ++j) dp[j] = B[(j0 + s * nr + j) * ldb + p0 + p];
      }
      for (int64_t j = cols; j < nr; ++j) dp[j] = T(0);
    }
  }
}

struct CacheSizes {
  int64_t l1, l2, l3;
};

int64_t sysconf_or(int name, int64_t fallback) {
  const long v = sysconf(name);
  return v > 0 ? static_cast<int64_t>(v) : fallback;
}

const CacheSizes& cache_sizes() {
  static const CacheSizes c{
#if defined(_SC_LEVEL1_DCACHE_SIZE)
      sysconf_or(_SC_LEVEL1_DCACHE_SIZE, 32 << 10), sysconf_or(_SC_LEVEL2_CACHE_SIZE, 1 << 20),
      sysconf_or(_SC_LEVEL3_CACHE_SIZE, 8 << 20)
#else
      32 << 10, 1 << 20, 8 << 20
#endif
  };
  return c;
}

int64_t round_down(int64_t v, int64_t m) { return std::max(m, v / m * m); }
int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

}  // namespace

GemmBlocking gemm_blocking(int mr, int nr, int elem_size) {
  const CacheSizes& c = cache_sizes();
  // A kc x NR sliver of B is reused by every MR-row sliver of an A block;
  // it may take up to the whole L1 (the A slivers stream through from L2,
  // and C's tile stays in registers), which measured faster here than the
  // classic half of L1 because a longer kc loads and stores C less often.
  const int64_t kc = std::clamp<int64_t>(round_down(c.l1 / (nr * elem_size), 8), 64, 512);
  // The mc x kc block of A stays in (half of) L2.
  const int64_t mc = std::clamp<int64_t>(round_down(c.l2 / 2 / (kc * elem_size), mr), mr, 4096);
  // The kc x nc panel of B stays in (a share of) L3; bounded so that very
  // large L3 reports (virtual machines) do not make panels huge.
  const int64_t nc = std::clamp<int64_t>(round_down(c.l3 / 4 / (kc * elem_size), nr), nr, 4096);
  return GemmBlocking{kc, mc, nc};
}

template <typename T>
const GemmUkernel<T>* gemm_ukernels(int* count) {
  *count = static_cast<int>(registry<T>().size());
  return registry<T>().data();
}

template <typename T>
const GemmUkernel<T>& gemm_ukernel_for_current_isa() {
  const Isa level = std::max(Isa::generic, get_isa());
  const GemmUkernel<T>* best = nullptr;
  for (const auto& k : registry<T>())
    if (k.isa <= level && (!best || k.isa > best->isa || (k.isa == best->isa && k.nr > best->nr))) best = &k;
  return *best;  // the generic kernels are always registered
}

namespace {

// A kernel this CPU runs at a higher level has the same tile width: at one
// width the higher level is never slower (twice as fast where 512-bit FMAs
// run at full width).
template <typename T>
bool outclassed(const GemmUkernel<T>& k, Isa level) {
  for (const auto& o : registry<T>())
    if (o.nr == k.nr && o.isa > k.isa && o.isa <= level) return true;
  return false;
}

}  // namespace

template <typename T>
const GemmUkernel<T>& gemm_ukernel_for_shape(int64_t m, int64_t n) {
  const GemmUkernel<T>& cur = gemm_ukernel_for_current_isa<T>();
  const auto work = [&](const GemmUkernel<T>& k) {
    return static_cast<long double>(round_up(std::max<int64_t>(m, 0), k.mr)) *
           static_cast<long double>(round_up(std::max<int64_t>(n, 0), k.nr));
  };
  const GemmUkernel<T>* best = &cur;
  for (const auto& k : registry<T>())
    if (k.isa <= cur.isa && k.isa > Isa::generic && !outclassed(k, cur.isa) && work(k) < work(*best)) best = &k;
  return work(*best) < 0.9L * work(cur) ? *best : cur;
}

namespace {

// C = A * B^T for a few rows of A (a fully connected layer at a small
// batch: B is the weight matrix, N x K). Packing B, the big operand, would
// cost more than the product, so the product runs transposed, C^T = B A^T,
// with B read in place by the shifted kernels (row p of the packed A^T at
// p * NR) and the tile whose NR wastes the fewest lanes on M.
template <typename T>
void small_rows_times_transposed(const GemmUkernel<T>& uk, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
                                 const T* B, int64_t ldb, bool accumulate, T* C, int64_t ldc, bool parallel) {
  const GemmUkernel<T>* best = &uk;
  for (const auto& k : registry<T>())
    if (k.isa <= uk.isa && k.isa >= std::min(uk.isa, Isa::avx2) && k.nr >= M &&
        (best->nr < M || k.nr < best->nr || (k.nr == best->nr && k.isa > best->isa)))
      best = &k;
  // rows of the packed A^T: M values padded to whole NR-wide slivers
  const int64_t width = ceil_div(M, int64_t{best->nr}) * best->nr;
  std::vector<T> at(static_cast<std::size_t>(K * width), T(0));
  std::vector<int64_t> off(static_cast<std::size_t>(K));
  for (int64_t p = 0; p < K; ++p) {
    off[static_cast<std::size_t>(p)] = p * width;
    for (int64_t i = 0; i < M; ++i) at[static_cast<std::size_t>(p * width + i)] = A[i * lda + p];
  }
  std::vector<T> ct(static_cast<std::size_t>(N * M));
  gemm_shifted(*best, N, M, K, B, ldb, at.data(), off.data(), false, ct.data(), M, parallel);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const T v = ct[static_cast<std::size_t>(j * M + i)];
      C[i * ldc + j] = accumulate ? C[i * ldc + j] + v : v;
    }
}

}  // namespace

namespace {
template <typename T>
void gemm_blocked(const GemmUkernel<T>& uk, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const T* A,
                  int64_t lda, const T* B, int64_t ldb, bool accumulate, T* C, int64_t ldc, bool parallel);
}  // namespace

template <typename T>
void gemm(const GemmUkernel<T>& uk, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const T* A,
          int64_t lda, const T* B, int64_t ldb, bool accumulate, T* C, int64_t ldc, bool parallel) {
  if (empty_product(M, N, K, accumulate, C, ldc)) return;
  parallel = parallel && worth_threads(M, N, K);
  if (!transA && transB && M * N <= kDotMaxOutputs) {
    // Both operands run along K contiguously and the output is small (a
    // weight gradient of a thin layer): plain dot products beat packing.
    const int nt = parallel ? get_num_threads() : 1;
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt) if (parallel && nt > 1 && M * N * K > 65536)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        const T* a = A + i * lda;
        const T* b = B + j * ldb;
        T sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t p = 0; p < K; ++p) sum += a[p] * b[p];
        C[i * ldc + j] = accumulate ? C[i * ldc + j] + sum : sum;
      }
    return;
  }
  if (!transA && transB && M <= kSmallRows && N >= 64 && K >= 64) {
    small_rows_times_transposed(uk, M, N, K, A, lda, B, ldb, accumulate, C, ldc, parallel);
    return;
  }
  const int nt = parallel ? get_num_threads() : 1;
  const int64_t n_slivers = ceil_div(N, int64_t{uk.nr}), m_slivers = ceil_div(M, int64_t{uk.mr});
  // Split C's columns (each thread then packs all of A itself) when A is the
  // smaller operand, else its rows (each packs all of B), whichever has at
  // least two slivers a thread.
  const bool split_n = n_slivers >= 2 * nt && (M <= N || m_slivers < 2 * nt);
  const bool split_m = !split_n && m_slivers >= 2 * nt;
  if (nt > 1 && (split_n || split_m)) {
    // One parallel region in which each thread multiplies its own share of
    // C's slivers with operands it packs itself: the threads never meet at
    // a barrier. With passive waiting (docs/threads.md) every region and
    // barrier costs a wake-up (55-65 us here), and the blocked loop below,
    // run in parallel, opens three regions per block: 512^3 on two threads
    // took as long as on one.
#pragma omp parallel num_threads(nt)
    {
      const int64_t t = omp_get_thread_num(), tn = omp_get_num_threads();
      const int64_t slivers = split_n ? n_slivers : m_slivers, step = split_n ? uk.nr : uk.mr;
      const int64_t lo = slivers * t / tn * step, hi = std::min(split_n ? N : M, slivers * (t + 1) / tn * step);
      if (hi > lo) {
        if (split_n)
          gemm_blocked(uk, transA, transB, M, hi - lo, K, A, lda, B + (transB ? lo * ldb : lo), ldb, accumulate,
                       C + lo, ldc, false);
        else
          gemm_blocked(uk, transA, transB, hi - lo, N, K, A + (transA ? lo : lo * lda), lda, B, ldb, accumulate,
                       C + lo * ldc, ldc, false);
      }
    }
    return;
  }
  gemm_blocked(uk, transA, transB, M, N, K, A, lda, B, ldb, accumulate, C, ldc, nt > 1);
}

namespace {

// The blocked GEMM (see gemm()), its packing and tiles split between the
// threads when `parallel`.
template <typename T>
void gemm_blocked(const GemmUkernel<T>& uk, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const T* A,
                  int64_t lda, const T* B, int64_t ldb, bool accumulate, T* C, int64_t ldc, bool parallel) {
  const int mr = uk.mr, nr = uk.nr;
  const GemmBlocking bl = gemm_blocking(mr, nr, static_cast<int>(sizeof(T)));
  const int64_t KC = bl.kc, MC = bl.mc, NC = bl.nc;
  const int nt = parallel ? get_num_threads() : 1;
  const bool par = parallel && nt > 1;
  // When all of A fits one block, each sliver of B is used by one pass over
  // the A slivers: copying B into slivers would cost as much as the reads it
  // saves, so row-major B is read in place (only its ragged last sliver is
  // packed, so that kernels always have NR readable columns).
  const bool b_in_place = !transB && M <= MC;
  const int64_t nc_max = std::min<int64_t>(NC, ceil_div(N, nr) * nr);
  const int64_t kc_max = std::min(K, KC);
  // Packed panels: uninitialised (the packers write every element they use).
  const detail::HostBuffer<T> apack_buf(ceil_div(std::min(M, MC), mr) * mr * kc_max);
  const detail::HostBuffer<T> bpack_buf((b_in_place ? nr : nc_max) * kc_max);
  T* const apack = apack_buf.data();
  T* const bpack = bpack_buf.data();

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min<int64_t>(NC, N - jc);
    const int64_t n_slivers = ceil_div(nc, nr);
    const int64_t full_slivers = nc / nr;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const bool acc = accumulate || pc > 0;
      if (!b_in_place)
        pack_b(transB, B, ldb, pc, kc, jc, nc, nr, bpack, par, nt);
      else if (full_slivers < n_slivers)
        pack_b(false, B, ldb, pc, kc, jc + full_slivers * nr, nc - full_slivers * nr, nr, bpack, false, 1);
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        pack_a(transA, A, lda, ic, mc, pc, kc, mr, apack, par, nt);
        const int64_t m_slivers = ceil_div(mc, mr);
        // Threads split the B slivers when there are many (each thread then
        // runs the whole A block over its own part of B), else the A
        // slivers: with few columns, split columns would put two threads'
        // C tiles in the same cache lines (rows of C are short).
        const bool split_b = n_slivers >= 4 * nt;
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt) if (par)
        for (int64_t u = 0; u < (split_b ? n_slivers : m_slivers); ++u)
          for (int64_t v = 0; v < (split_b ? m_slivers : n_slivers); ++v) {
            const int64_t js = split_b ? u : v, is = split_b ? v : u;
            const int64_t j = js * nr;
            const int64_t n = std::min<int64_t>(nr, nc - j);
            const T* b;
            int64_t b_stride = nr;
            if (!b_in_place) {
              b = bpack + js * kc * nr;
            } else if (js < full_slivers) {
              b = B + pc * ldb + jc + j;
              b_stride = ldb;
            } else {
              b = bpack;
            }
            const int64_t i = is * mr;
            uk.fn(kc, apack + is * kc * mr, b, b_stride, C + (ic + i) * ldc + jc + j, ldc,
                  std::min<int64_t>(mr, mc - i), n, acc);
          }
      }
    }
  }
}

}  // namespace

// Thread t's share [*lo, *hi) of `total` items split into `threads` near
// equal contiguous parts. The unpacked GEMMs below (no shared packed panel
// to wait for) run all their K and M blocks inside one parallel region:
// each thread takes the same share of the C tiles in every block, so it
// alone accumulates each of its tiles, in block order, and the threads
// need no barrier between blocks. Under the passive wait policy every
// parallel region wakes the sleeping workers: ResNet's 512 -> 512 @7 at
// batch 1 ran 24 regions a call, 0.8 ms of its 2.5 at two threads.
void share(int64_t total, int t, int threads, int64_t* lo, int64_t* hi) {
  const int64_t base = total / threads, extra = total % threads;
  *lo = t * base + std::min<int64_t>(t, extra);
  *hi = *lo + base + (t < extra ? 1 : 0);
}

// Thread t's share of the tiles of an m_slivers x n_slivers block, in
// order: tile(is, js) for each, B slivers outermost when split_b.
template <typename F>
void for_each_shared_tile(int t, int team, int64_t m_slivers, int64_t n_slivers, bool split_b, F&& tile) {
  const int64_t outer = split_b ? n_slivers : m_slivers, inner = split_b ? m_slivers : n_slivers;
  int64_t lo, hi;
  share(outer * inner, t, team, &lo, &hi);
  for (int64_t uv = lo; uv < hi; ++uv) {
    const int64_t u = uv / inner, v = uv % inner;
    if (split_b)
      tile(v, u);
    else
      tile(u, v);
  }
}

template <typename T>
void gemm_shifted_segments(const GemmUkernel<T>& uk, int64_t M, int64_t R, int64_t L, int64_t S, int64_t K,
                           const T* A, int64_t lda, const T* b, const int64_t* off, bool accumulate, T* C,
                           int64_t ldc, bool parallel) {
  if (R <= 0 || L <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t r = 0; r < R; ++r) std::fill_n(C + i * ldc + r * S, L, T(0));
    return;
  }
  if (M <= 0) return;
  parallel = parallel && worth_threads(M, R * L, K);
  const int mr = uk.mr, nr = uk.nr;
  const GemmBlocking bl = gemm_blocking(mr, nr, static_cast<int>(sizeof(T)));
  const int nt = parallel ? get_num_threads() : 1;
  const bool par = parallel && nt > 1;
  const int64_t per_row = ceil_div(L, nr), n_slivers = R * per_row;
  // The rows of one B sliver overlap (the taps of a channel read the same
  // few image rows), so its footprint is far below kc x NR: K is split only
  // when it is very long, which saves re-reading and re-writing C.
#pragma omp parallel num_threads(nt) if (par)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    for (int64_t pc = 0; pc < K; pc += kShiftedKC) {
      const int64_t kc = std::min(kShiftedKC, K - pc);
      const bool acc = accumulate || pc > 0;
      for (int64_t ic = 0; ic < M; ic += bl.mc) {
        const int64_t mc = std::min(bl.mc, M - ic);
        const int64_t m_slivers = ceil_div(mc, mr);
        const bool split_b = n_slivers >= 4 * nt;  // as in gemm()
        for_each_shared_tile(t, team, m_slivers, n_slivers, split_b, [&](int64_t is, int64_t js) {
          const int64_t jl = (js % per_row) * nr, j = (js / per_row) * S + jl, i = ic + is * mr;
          uk.shifted(kc, A + i * lda + pc, lda, b + j, off + pc, C + i * ldc + j, ldc,
                     std::min<int64_t>(mr, M - i), std::min<int64_t>(nr, L - jl), acc);
        });
      }
    }
  }
}

namespace {

// gemm_shifted_to_rows with A either read in place (A, lda) or, when `pack`
// is given, packed by it: into one buffer for all of A when the B slivers
// go outermost (every tile then reads all of A), or one MR-row panel at a
// time, per thread, when the A slivers do (each panel serves its row's
// column tiles and is dropped).
template <typename T>
void shifted_to_rows(const GemmUkernel<T>& uk, int64_t M, int64_t Q, int64_t S, int64_t L, int64_t K, const T* A,
                     int64_t lda, const GemmPackA<T>* pack, const T* b, const int64_t* off, const T* bias, T* dst,
                     int64_t ldd, bool parallel) {
  if (M <= 0 || Q <= 0) return;
  const int64_t rows = ceil_div(Q, S);
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i) std::fill_n(dst + i * ldd, rows * L, bias ? bias[i] : T(0));
    return;
  }
  parallel = parallel && worth_threads(M, Q, K);
  const int mr = uk.mr, nr = uk.nr;
  if (mr * nr > kMaxTileElems) throw std::logic_error("gemm_shifted_to_rows: a kernel tile larger than its buffer");
  const GemmBlocking bl = gemm_blocking(mr, nr, static_cast<int>(sizeof(T)));
  const int nt = parallel ? get_num_threads() : 1;
  const bool par = parallel && nt > 1;
  const int64_t n_slivers = ceil_div(Q, nr);
  // The image band every tile reads: the span of the offsets plus the grid.
  int64_t lo_off = off[0], hi_off = off[0];
  for (int64_t p = 1; p < K; ++p) lo_off = std::min(lo_off, off[p]), hi_off = std::max(hi_off, off[p]);
  const double esz = static_cast<double>(sizeof(T)), l2 = static_cast<double>(cache_sizes().l2);
  const double band = (static_cast<double>(hi_off - lo_off) + static_cast<double>(Q) + nr) * esz;
  // Each thread walks the B slivers outermost when there are many (as in
  // gemm()): a sliver then stays in cache while the A rows stream past it.
  // But A is read in place, not packed into an L2 block: when all of it is
  // larger than L2 and the image band fits in half of it (deep layers at
  // batch 1: ResNet's 512 -> 512 @7 reads 9.4 MB of weights for 166 KB of
  // image), the A slivers go outermost instead, each read from memory once
  // and from L2 for its other column tiles, where the other order read all
  // the weights from L3 or memory once per column tile.
  const bool a_outer =
      n_slivers > 1 && static_cast<double>(M) * static_cast<double>(K) * esz > l2 && band <= l2 / 2;
  detail::HostBuffer<T> whole;
  if (pack && !a_outer) {
    whole.reset(M * K);
    const int64_t blocks = ceil_div(M, int64_t{mr});
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (int64_t s = 0; s < blocks; ++s)
      (*pack)(s * mr, std::min<int64_t>(mr, M - s * mr), whole.data() + s * mr * K, K);
    A = whole.data();
    lda = K;
  }
#pragma omp parallel num_threads(nt) if (par)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    std::unique_ptr<T[]> panel(pack && a_outer ? new T[static_cast<std::size_t>(mr * K)] : nullptr);
    int64_t packed = -1;  // the first row of A in the panel
    // One tile at a time over all of K: straight into the output when its
    // columns are one row's kept columns, else into a buffer in L1 whose
    // kept columns then go to their output rows (a tile of NR grid columns
    // may cross rows: at most a few runs).
    alignas(64) T tile[kMaxTileElems];
    for (int64_t ic = 0; ic < M; ic += bl.mc) {
      const int64_t mc = std::min(bl.mc, M - ic);
      const int64_t m_slivers = ceil_div(mc, mr);
      const bool split_b = !a_outer && n_slivers >= 4 * nt;
      for_each_shared_tile(t, team, m_slivers, n_slivers, split_b, [&](int64_t is, int64_t js) {
        const int64_t j = js * nr, i = ic + is * mr, m = std::min<int64_t>(mr, M - i), n = std::min<int64_t>(nr, Q - j);
        const T* a = A + i * lda;
        int64_t la = lda;
        if (panel) {
          if (packed != i) (*pack)(i, m, panel.get(), K), packed = i;
          a = panel.get();
          la = K;
        }
        const int64_t r0 = j / S, c0 = j % S;
        if (c0 + n <= L) {
          // inside one row's kept columns (most tiles of a wide map): in place
          T* to = dst + i * ldd + r0 * L + c0;
          for (int64_t pc = 0; pc < K; pc += kShiftedKC)
            uk.shifted(std::min(kShiftedKC, K - pc), a + pc, la, b + j, off + pc, to, ldd, m, n, pc > 0);
          for (int64_t ii = 0; bias && ii < m; ++ii) {
            const T bo = bias[i + ii];
#pragma omp simd
            for (int64_t x = 0; x < n; ++x) to[ii * ldd + x] += bo;
          }
          return;
        }
        for (int64_t pc = 0; pc < K; pc += kShiftedKC)
          uk.shifted(std::min(kShiftedKC, K - pc), a + pc, la, b + j, off + pc, tile, nr, m, n, pc > 0);
        for (int64_t jj = 0; jj < n;) {
          const int64_t q = j + jj, r = q / S, c = q % S, len = std::min(n - jj, S - c);
          const int64_t keep = std::min(len, L - c);
          for (int64_t ii = 0; keep > 0 && ii < m; ++ii) {
            const T bo = bias ? bias[i + ii] : T(0);
            const T* from = tile + ii * nr + jj;
            T* to = dst + (i + ii) * ldd + r * L + c;
#pragma omp simd
            for (int64_t x = 0; x < keep; ++x) to[x] = from[x] + bo;
          }
          jj += len;
        }
      });
    }
  }
}

}  // namespace

template <typename T>
void gemm_shifted_to_rows(const GemmUkernel<T>& uk, int64_t M, int64_t Q, int64_t S, int64_t L, int64_t K,
                          const T* A, int64_t lda, const T* b, const int64_t* off, const T* bias, T* dst,
                          int64_t ldd, bool parallel) {
  shifted_to_rows<T>(uk, M, Q, S, L, K, A, lda, nullptr, b, off, bias, dst, ldd, parallel);
}

template <typename T>
void gemm_shifted_to_rows(const GemmUkernel<T>& uk, int64_t M, int64_t Q, int64_t S, int64_t L, int64_t K,
                          const GemmPackA<T>& pack, const T* b, const int64_t* off, const T* bias, T* dst,
                          int64_t ldd, bool parallel) {
  shifted_to_rows<T>(uk, M, Q, S, L, K, nullptr, 0, &pack, b, off, bias, dst, ldd, parallel);
}

template <typename T>
void gemm_shifted(const GemmUkernel<T>& uk, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* b,
                  const int64_t* off, bool accumulate, T* C, int64_t ldc, bool parallel) {
  if (empty_product(M, N, K, accumulate, C, ldc)) return;
  gemm_shifted_segments(uk, M, 1, N, 0, K, A, lda, b, off, accumulate, C, ldc, parallel);
}

template <typename T>
void gemm_offset_a_segments(const GemmUkernel<T>& uk, int64_t M, int64_t N, int64_t R, int64_t L, int64_t S,
                            const T* a, const int64_t* off, const T* bpack, bool accumulate, T* C, int64_t ldc,
                            bool parallel) {
  const int64_t K = R * L;
  if (empty_product(M, N, K, accumulate, C, ldc)) return;
  parallel = parallel && worth_threads(M, N, K);
  const int mr = uk.mr, nr = uk.nr;
  const GemmBlocking bl = gemm_blocking(mr, nr, static_cast<int>(sizeof(T)));
  const int nt = parallel ? get_num_threads() : 1;
  const bool par = parallel && nt > 1;
  const int64_t n_slivers = ceil_div(N, nr), m_slivers = ceil_div(M, mr);
#pragma omp parallel num_threads(nt) if (par)
  {
    // (one region: see share)
    int64_t lo, hi;
    share(m_slivers * n_slivers, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t l0 = 0; l0 < L; l0 += bl.kc) {
        const int64_t kc = std::min(bl.kc, L - l0), pk = r * L + l0;
        const T* ak = a + r * S + l0;
        const bool acc = accumulate || r > 0 || l0 > 0;
        for (int64_t ij = lo; ij < hi; ++ij) {
          const int64_t is = ij / n_slivers, js = ij % n_slivers, i = is * mr, j = js * nr;
          uk.offset_a(kc, ak, off + i, bpack + js * K * nr + pk * nr, nr, C + i * ldc + j, ldc,
                      std::min<int64_t>(mr, M - i), std::min<int64_t>(nr, N - j), acc);
        }
      }
  }
}

template <typename T>
void gemm_offset_a(const GemmUkernel<T>& uk, int64_t M, int64_t N, int64_t K, const T* a, const int64_t* off,
                   const T* bpack, bool accumulate, T* C, int64_t ldc, bool parallel) {
  gemm_offset_a_segments(uk, M, N, 1, K, 0, a, off, bpack, accumulate, C, ldc, parallel);
}

template <typename T>
void gemm_brgemm(const GemmUkernel<T>& uk, int64_t M, int64_t N, int64_t K, const T* a, const int64_t* aoff,
                 const T* b, const int64_t* boff, bool accumulate, T* C, int64_t ldc, bool parallel) {
  if (empty_product(M, N, K, accumulate, C, ldc)) return;
  const int64_t mt = ceil_div(M, int64_t{uk.mr}), nt = ceil_div(N, int64_t{uk.nr});
  const int nt_threads = parallel && worth_threads(M, N, K) ? get_num_threads() : 1;
  // Column tiles outermost: a tile's K rows of B stay in cache while the row
  // tiles pass over them.
#pragma omp parallel for collapse(2) schedule(static) num_threads(nt_threads) if (nt_threads > 1)
  for (int64_t jt = 0; jt < nt; ++jt)
    for (int64_t it = 0; it < mt; ++it) {
      const int64_t i0 = it * uk.mr, j0 = jt * uk.nr;
      const int64_t m = std::min<int64_t>(uk.mr, M - i0), n = std::min<int64_t>(uk.nr, N - j0);
      for (int64_t k0 = 0; k0 < K; k0 += kShiftedKC)
        uk.brgemm(std::min(kShiftedKC, K - k0), a + i0, aoff + k0, b + j0, boff + k0, C + i0 * ldc + j0, ldc, m, n,
                  accumulate || k0 > 0);
    }
}

template <typename T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, bool accumulate, T* C, int64_t ldc, bool parallel) {
  gemm(gemm_ukernel_for_current_isa<T>(), transA, transB, M, N, K, A, lda, B, ldb, accumulate, C, ldc, parallel);
}

#define CNNCORE_INSTANTIATE(T)                                                                            \
  template const GemmUkernel<T>* gemm_ukernels<T>(int*);                                                  \
  template const GemmUkernel<T>& gemm_ukernel_for_current_isa<T>();                                       \
  template const GemmUkernel<T>& gemm_ukernel_for_shape<T>(int64_t, int64_t);                            \
  template void gemm<T>(const GemmUkernel<T>&, bool, bool, int64_t, int64_t, int64_t, const T*, int64_t,  \
                        const T*, int64_t, bool, T*, int64_t, bool);                                      \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, const T*, int64_t, const T*, int64_t, bool, \
                        T*, int64_t, bool);                                                               \
  template void gemm_shifted_to_rows<T>(const GemmUkernel<T>&, int64_t, int64_t, int64_t, int64_t, int64_t,      \
                                        const T*, int64_t, const T*, const int64_t*, const T*, T*, int64_t, bool); \
  template void gemm_shifted_to_rows<T>(const GemmUkernel<T>&, int64_t, int64_t, int64_t, int64_t, int64_t,      \
                                        const GemmPackA<T>&, const T*, const int64_t*, const T*, T*, int64_t,     \
                                        bool);                                                                    \
  template void gemm_shifted_segments<T>(const GemmUkernel<T>&, int64_t, int64_t, int64_t, int64_t, int64_t,    \
                                         const T*, int64_t, const T*, const int64_t*, bool, T*, int64_t, bool);  \
  template void gemm_offset_a_segments<T>(const GemmUkernel<T>&, int64_t, int64_t, int64_t, int64_t, int64_t,   \
                                          const T*, const int64_t*, const T*, bool, T*, int64_t, bool);         \
  template void gemm_shifted<T>(const GemmUkernel<T>&, int64_t, int64_t, int64_t, const T*, int64_t, const T*, \
                                const int64_t*, bool, T*, int64_t, bool);                               \
  template void gemm_offset_a<T>(const GemmUkernel<T>&, int64_t, int64_t, int64_t, const T*, const int64_t*,  \
                                 const T*, bool, T*, int64_t, bool);                                      \
  template void gemm_brgemm<T>(const GemmUkernel<T>&, int64_t, int64_t, int64_t, const T*, const int64_t*,    \
                               const T*, const int64_t*, bool, T*, int64_t, bool);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
