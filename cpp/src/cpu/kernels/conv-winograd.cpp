#include "cpu/kernels/conv-winograd.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <list>
#include <memory>
#include <mutex>
#include <numeric>
#include <vector>

#include "cnncore/error.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/conv-im2col.hpp"
#include "cpu/kernels/f32-elementwise.hpp"
#include "cpu/kernels/fma-peak.hpp"
#include "cpu/kernels/gemm.hpp"
#include "cpu/ref/conv-ref.hpp"
#include "util/checked.hpp"
#include "util/host_cache.hpp"

namespace cnncore::cpu {

#if defined(__AVX2__)
#include <immintrin.h>  // winograd-body.hpp's gathers, should the baseline flags enable them
#endif

namespace {
#include "cpu/kernels/winograd-body.hpp"
#include "cpu/kernels/fingerprint-body.hpp"
}  // namespace

using detail::ConvGeometry;
using detail::ConvPass;

namespace {

using detail::ceil_div;
int64_t round_up(int64_t v, int64_t m) { return ceil_div(v, m) * m; }

// The transforms: float's from the current kernel level's table, double's
// from the baseline body.
template <typename T>
struct Transforms;

template <>
struct Transforms<float> {
  const F32ElementwiseKernels& k = f32_elementwise_kernels_for_current_isa();
  bool input(int m, int64_t n, int64_t L, const float* d, float* v, int64_t vs) const {
    return k.winograd_input(m, n, L, d, v, vs);
  }
  void output(int m, int64_t n, int64_t L, const float* mm, int64_t ms, float* y) const {
    k.winograd_output(m, n, L, mm, ms, y);
  }
  bool weights(int m, int64_t n, int64_t L, const float* g, float* u, int64_t us) const {
    return k.winograd_weights(m, n, L, g, u, us);
  }
  void grad_out(int m, int64_t n, int64_t L, const float* e, float* sv, int64_t ss) const {
    k.winograd_grad_out(m, n, L, e, sv, ss);
  }
  void grad_weights(int m, const float* du, int64_t ds, float* g) const { k.winograd_grad_weights(m, du, ds, g); }
  void gather(int m, const float* s, int64_t ws, int64_t count, float* d, int64_t L) const {
    k.winograd_gather(m, s, ws, count, d, L);
  }
  void scatter(int m, const float* y, int64_t L, int64_t count, float* o, int64_t ws) const {
    k.winograd_scatter(m, y, L, count, o, ws);
  }
  bool gather_indexed(int a, int64_t n, int64_t L, const int32_t* ro, const int32_t* co, const float* base,
                      float* d) const {
    return k.winograd_gather_indexed(a, n, L, ro, co, base, d);
  }
};

template <>
struct Transforms<double> {
  bool input(int m, int64_t n, int64_t L, const double* d, double* v, int64_t vs) const {
    return winograd_input_body<double>(m, n, L, d, v, vs);
  }
  void output(int m, int64_t n, int64_t L, const double* mm, int64_t ms, double* y) const {
    winograd_output_body<double>(m, n, L, mm, ms, y);
  }
  bool weights(int m, int64_t n, int64_t L, const double* g, double* u, int64_t us) const {
    return winograd_weights_body<double>(m, n, L, g, u, us);
  }
  void grad_out(int m, int64_t n, int64_t L, const double* e, double* sv, int64_t ss) const {
    winograd_grad_out_body<double>(m, n, L, e, sv, ss);
  }
  void grad_weights(int m, const double* du, int64_t ds, double* g) const {
    winograd_grad_weights_body<double>(m, du, ds, g);
  }
  void gather(int m, const double* s, int64_t ws, int64_t count, double* d, int64_t L) const {
    winograd_gather_body<double>(m, s, ws, count, d, L);
  }
  void scatter(int m, const double* y, int64_t L, int64_t count, double* o, int64_t ws) const {
    winograd_scatter_body<double>(m, y, L, count, o, ws);
  }
  bool gather_indexed(int a, int64_t n, int64_t L, const int32_t* ro, const int32_t* co, const double* base,
                      double* d) const {
    return winograd_gather_indexed_body<double>(a, n, L, ro, co, base, d);
  }
};

using detail::HostBuffer;

// One Winograd convolution over NCHW planes: src (N, G * cin, H, W) to dst
// (N, G * cout, Ho, Wo), output (oy, ox) reading the padded input from
// (oy - pt, ox - pl); the padded input spans [-pt, H + pb) x [-pl, W + pr)
// (pt and pl may be negative: the window then starts inside).
struct Problem {
  int64_t N, G, cin, cout, H, W, Ho, Wo, pt, pl, pb, pr;
  PaddingMode mode;
};

// Where the kernel of output channel k, input channel c of group gi keeps
// its tap t (row-major 3x3): w[gi * gs + k * ks + c * cs + (rotate ? 8 - t : t)].
struct KernelView {
  int64_t gs, ks, cs;
  bool rotate;
};

// How one call runs: tile size, tiles, the lane block and the micro-kernel.
template <typename T>
struct Plan {
  int m = 4, alpha = 6;
  int64_t th = 0, tw = 0, tiles = 0;  // tile rows and columns per image, tiles of all images
  int64_t L = 0;                      // tiles per block (a multiple of 16 and of the kernel's NR)
  int64_t kb = 0;                     // row slivers of each transformed-weight matrix
  const GemmUkernel<T>* uk = nullptr;
};

// The cache budget of one block's transformed input and products.
constexpr int64_t kBlockBytes = int64_t{1} << 21;
constexpr int64_t kMaxLanes = 256;
constexpr int64_t kCachedWeights = int64_t{16} << 20;

// The tile size and the grid of tiles, common to both plans.
template <typename T>
Plan<T> tile_grid(const Problem& p, int m) {
  Plan<T> pl;
  pl.m = m;
  pl.alpha = m + 2;
  pl.th = ceil_div(p.Ho, m);
  pl.tw = ceil_div(p.Wo, m);
  pl.tiles = p.N * pl.th * pl.tw;
  return pl;
}

template <typename T>
Plan<T> make_plan(const Problem& p, int m, int threads) {
  Plan<T> pl = tile_grid<T>(p, m);
  const int64_t per_thread = ceil_div(pl.tiles, threads);
  pl.uk = &gemm_ukernel_for_shape<T>(p.cout, std::min<int64_t>(per_thread, 64));
  const int64_t unit = std::lcm<int64_t>(pl.uk->nr, kWinogradLanes);
  const int64_t a2 = int64_t{pl.alpha} * pl.alpha;
  const int64_t per_lane = a2 * (p.cin + p.cout) * static_cast<int64_t>(sizeof(T));
  // Blocks of up to kBlockBytes while the transformed weights (each block
  // streams all of them once) stay in the last-level cache; beyond it up to
  // half their size, so that they come from memory fewer times. Measured:
  // 256 -> 256 @14 at batch 16 (9.4 MB of weights) runs 1.5x slower with
  // 4.7 MB blocks than with 2 MB ones; 512 -> 512 @7 (38 MB) 1.2x faster.
  const int64_t u_bytes = a2 * p.cout * p.cin * static_cast<int64_t>(sizeof(T));  // one group's
  const int64_t budget = u_bytes <= kCachedWeights ? kBlockBytes : std::max(kBlockBytes, u_bytes / 2);
  const int64_t fit = std::max(unit, budget / per_lane / unit * unit);
  // Cached weights: two blocks a thread or more, so that threads take
  // whole blocks. Larger ones: as few blocks as the budget allows (threads
  // then share each block when there are too few).
  const int64_t want = u_bytes <= kCachedWeights ? ceil_div(pl.tiles, 2 * threads) : pl.tiles;
  pl.L = std::min({round_up(want, unit), fit, std::max(unit, kMaxLanes / unit * unit)});
  pl.kb = ceil_div(p.cout, pl.uk->mr);
  return pl;
}

// The weight gradient's blocks: the element-wise stage sums over the block's
// tiles (its K), so blocks are long: up to 128 tiles, while the transformed
// input and grad_out of one block stay within 16 MB.
constexpr int64_t kWeightLanes = 128, kWeightBlockBytes = int64_t{16} << 20;

template <typename T>
Plan<T> make_weight_plan(const Problem& p, int m) {
  Plan<T> pl = tile_grid<T>(p, m);
  pl.uk = &gemm_ukernel_for_shape<T>(p.cout, p.cin);
  const int64_t per_lane = int64_t{pl.alpha} * pl.alpha * (p.cin + p.cout) * static_cast<int64_t>(sizeof(T));
  const int64_t fit = std::max<int64_t>(kWinogradLanes, kWeightBlockBytes / per_lane / kWinogradLanes * kWinogradLanes);
  pl.L = std::min<int64_t>({round_up(pl.tiles, kWinogradLanes), fit, kWeightLanes});
  return pl;
}

// ---- transformed weights -------------------------------------------------
// Layout for the micro-kernel: group gi, element xi, row sliver s: MR rows of
// cin steps, (k = s * MR + i, c) at [c * MR + i], rows past cout zero.

template <typename T>
int64_t packed_weights_size(const Problem& p, const Plan<T>& pl) {
  return p.G * pl.alpha * pl.alpha * pl.kb * p.cin * pl.uk->mr;
}

// Asks for the cache lines of the `bytes` from p.
inline void prefetch_bytes(const void* p, int64_t bytes) {
  const char* q = static_cast<const char*>(p);
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(q + b);
}

// Packs U = G g GT of (k, c) pairs, rows past cout included (as zeros). A
// piece is columns [c0, c0 + nc) of one row sliver: its lanes are those
// (c, i) pairs in packed order, so the transform writes each element's run
// in place. Pieces are taken in the order that reads w along its memory:
// the forward's kernels (a sliver's rows far apart in w, its columns
// adjacent) a sliver at a time; the data gradient's (transposed: the rows
// adjacent, the columns far apart) kColumns columns of every sliver at a
// time, whose rows of w then stay in cache from sliver to sliver (ResNet's
// 512 -> 512 @4 data gradient by F(2, 3) at batch 16 spent a quarter of
// its time in this gather when it went a sliver at a time). One packer per
// thread (its buffers).
template <typename T>
class WeightPacker {
 public:
  static constexpr int64_t kLanes = 512, kColumns = 16;  // lanes per transform (18 KB of float taps)

  WeightPacker(const Problem& p, const Plan<T>& pl, const T* w, const KernelView& kv)
      : p_(p), pl_(pl), w_(w), kv_(kv), a2_(int64_t{pl.alpha} * pl.alpha), MR_(pl.uk->mr), sliver_(p.cin * MR_),
        by_columns_(kv.ks < kv.cs),
        cols_(by_columns_ ? std::min(kColumns, p.cin) : std::min(p.cin, std::max<int64_t>(1, kLanes / MR_))),
        chunk_(round_up(cols_ * MR_, kWinogradLanes)),
        // the taps are gathered into tap-major rows through per-lane offsets
        // (the indexed gather of the input tiles, with the 3x3 kernel as its
        // plane) where a piece's offsets fit 32 bits: the scalar copy was 15%
        // of ResNet's 512 -> 512 @4 forward by F(2, 3) at batch 16 with its
        // weights changing
        indexed_((MR_ - 1) * kv.ks + (cols_ - 1) * kv.cs + 8 <= std::numeric_limits<int32_t>::max()),
        g_(static_cast<std::size_t>(9 * chunk_)), tail_(static_cast<std::size_t>(a2_ * chunk_)) {}

  bool by_columns() const { return by_columns_; }
  int64_t cols() const { return cols_; }
  int64_t col_blocks() const { return ceil_div(p_.cin, cols_); }

  // Columns [c0, c0 + nc) of sliver s of group gi; `to` is the sliver's
  // start in element 0, element xi's run at to + xi * us. False where a
  // transformed value is not finite.
  bool piece(int64_t gi, int64_t s, int64_t c0, int64_t nc, T* to, int64_t us) {
    const int64_t rows = std::min(MR_, p_.cout - s * MR_), n = nc * MR_, nv = round_up(n, kWinogradLanes);
    const T* wg = w_ + gi * kv_.gs + s * MR_ * kv_.ks;
    if (indexed_) {
      tables(rows, nc, nv);
      tm_.gather_indexed(3, nv, chunk_, ro_.data(), co_.data(), wg + c0 * kv_.cs, g_.data());
    } else {
      for (int64_t c = 0; c < nc; ++c)
        for (int64_t i = 0; i < MR_; ++i) {
          const int64_t j = c * MR_ + i;
          if (i < rows) {
            const T* wk = wg + i * kv_.ks + (c0 + c) * kv_.cs;
            for (int tap = 0; tap < 9; ++tap) g_[tap * chunk_ + j] = wk[kv_.rotate ? 8 - tap : tap];
          } else {
            for (int tap = 0; tap < 9; ++tap) g_[tap * chunk_ + j] = T(0);
          }
        }
      for (int64_t j = n; j < nv; ++j)
        for (int tap = 0; tap < 9; ++tap) g_[tap * chunk_ + j] = T(0);
    }
    to += c0 * MR_;
    if (nv == n) return tm_.weights(pl_.m, nv, chunk_, g_.data(), to, us);
    const bool ok = tm_.weights(pl_.m, nv, chunk_, g_.data(), tail_.data(), nv);  // lanes past the piece
    for (int64_t xi = 0; xi < a2_; ++xi) std::copy_n(tail_.data() + xi * nv, n, to + xi * us);
    return ok;
  }

  // Columns [c0, c0 + nc) of slivers [s0, s1) of group gi, sliver s at
  // to + (s - s0) * sliver, element runs us apart.
  bool column_block(int64_t gi, int64_t s0, int64_t s1, int64_t c0, int64_t nc, T* to, int64_t us) {
    bool ok = true;
    for (int64_t s = s0; s < s1; ++s) {
      // the hardware prefetchers miss the coming slivers' rows (16 short runs 18 KB apart in
      // ResNet's 512-channel layers): ask for them two slivers ahead (512 -> 512 @4, F(2, 3),
      // batch 16: the data gradient 10.2 -> 8.1 ms)
      if (s + 2 < pl_.kb)
        for (int64_t c = 0; c < nc; ++c)
          prefetch_bytes(w_ + gi * kv_.gs + (s + 2) * MR_ * kv_.ks + (c0 + c) * kv_.cs,
                         9 * MR_ * static_cast<int64_t>(sizeof(T)));
      ok = piece(gi, s, c0, nc, to + (s - s0) * sliver_, us) && ok;
    }
    return ok;
  }

  // All columns of one sliver s of group gi (its start `to`). Each piece
  // first asks for the next one's rows (the next columns, or the next
  // sliver's first): the gathers read a piece's eight rows together, which
  // the hardware prefetchers did not follow (the gather was 15% of
  // ResNet's 512 -> 512 @4 forward at batch 16, read at memory's latency).
  bool whole_sliver(int64_t gi, int64_t s, T* to, int64_t us) {
    bool ok = true;
    for (int64_t c0 = 0; c0 < p_.cin; c0 += cols_) {
      if (c0 + cols_ < p_.cin)
        prefetch_rows(gi, s, c0 + cols_, std::min(cols_, p_.cin - c0 - cols_));
      else if (s + 1 < pl_.kb)
        prefetch_rows(gi, s + 1, 0, std::min(cols_, p_.cin));
      ok = piece(gi, s, c0, std::min(cols_, p_.cin - c0), to, us) && ok;
    }
    return ok;
  }

  // Slivers [s0, s1) of group gi, in the order that reads w along memory.
  bool slivers(int64_t gi, int64_t s0, int64_t s1, T* to, int64_t us) {
    bool ok = true;
    if (by_columns_) {
      for (int64_t c0 = 0; c0 < p_.cin; c0 += cols_)
        ok = column_block(gi, s0, s1, c0, std::min(cols_, p_.cin - c0), to, us) && ok;
    } else {
      for (int64_t s = s0; s < s1; ++s) ok = whole_sliver(gi, s, to + (s - s0) * sliver_, us) && ok;
    }
    return ok;
  }

 private:
  // The forward's rows of columns [c0, c0 + nc) of sliver s (each row's taps
  // adjacent in w), into cache.
  void prefetch_rows(int64_t gi, int64_t s, int64_t c0, int64_t nc) const {
    if (kv_.cs != 9) return;
    const int64_t rows = std::min(MR_, p_.cout - s * MR_);
    const T* wg = w_ + gi * kv_.gs + s * MR_ * kv_.ks + c0 * kv_.cs;
    for (int64_t i = 0; i < rows; ++i) prefetch_bytes(wg + i * kv_.ks, nc * 9 * static_cast<int64_t>(sizeof(T)));
  }

  // the offset tables of a piece's shape (rows of its sliver, columns)
  void tables(int64_t rows, int64_t nc, int64_t nv) {
    if (rows == table_rows_ && nc == table_cols_) return;
    table_rows_ = rows, table_cols_ = nc;
    ro_.assign(static_cast<std::size_t>(3 * chunk_), -1);
    co_.assign(static_cast<std::size_t>(3 * chunk_), 0);
    for (int64_t j = 0; j < nv; ++j) {
      const int64_t c = j / MR_, i = j % MR_;
      for (int y = 0; y < 3; ++y) {
        if (c < nc && i < rows)
          ro_[y * chunk_ + j] = static_cast<int32_t>(i * kv_.ks + c * kv_.cs + 3 * (kv_.rotate ? 2 - y : y));
        co_[y * chunk_ + j] = kv_.rotate ? 2 - y : y;
      }
    }
  }

  const Problem& p_;
  const Plan<T>& pl_;
  const T* w_;
  const KernelView kv_;
  Transforms<T> tm_;
  const int64_t a2_, MR_, sliver_;
  const bool by_columns_;
  const int64_t cols_, chunk_;
  const bool indexed_;
  std::vector<T> g_, tail_;
  std::vector<int32_t> ro_, co_;
  int64_t table_rows_ = -1, table_cols_ = -1;
};

// Calls that transformed their weights as the products went (tests).
std::atomic<int64_t> g_fused_calls{0};

// Fused (TileRunner): the row slivers transformed at a time, about 1 MB of
// transformed weights (they stay in L2 while every element's product uses
// them), and at most the threads' share of all the slivers, so that their
// buffers together never exceed the packed transform the workspace
// estimate counts (fusing needs threads <= G * kb).
template <typename T>
int64_t fused_sliver_count(const Problem& p, const Plan<T>& pl, int threads) {
  const int64_t bytes = int64_t{pl.alpha} * pl.alpha * p.cin * pl.uk->mr * static_cast<int64_t>(sizeof(T));
  return std::clamp<int64_t>(std::min((int64_t{1} << 20) / bytes, p.G * pl.kb / threads), 1, pl.kb);
}

// Packs all of U into `u` (layout above); returns whether every value is
// finite. Threads take pieces in the packer's order.
template <typename T>
bool pack_weights(const Problem& p, const Plan<T>& pl, const T* w, const KernelView& kv, T* u) {
  const int64_t a2 = int64_t{pl.alpha} * pl.alpha, sliver = p.cin * pl.uk->mr, us = pl.kb * sliver;
  std::atomic<bool> finite{true};
#pragma omp parallel num_threads(get_num_threads()) if (p.G * p.cout * p.cin > 4096)
  {
    WeightPacker<T> pk(p, pl, w, kv);
    const int64_t col_blocks = pk.col_blocks(), tasks = p.G * (pk.by_columns() ? col_blocks : pl.kb);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      bool ok;
      if (pk.by_columns()) {
        const int64_t gi = task / col_blocks, c0 = task % col_blocks * pk.cols();
        ok = pk.column_block(gi, 0, pl.kb, c0, std::min(pk.cols(), p.cin - c0), u + gi * a2 * us, us);
      } else {
        const int64_t gi = task / pl.kb, s = task % pl.kb;
        ok = pk.whole_sliver(gi, s, u + gi * a2 * us + s * sliver, us);
      }
      if (!ok) finite.store(false, std::memory_order_relaxed);
    }
  }
  return finite.load();
}

// ---- the cache of transformed weights ------------------------------------
// Keyed by where the weights live and how they are transformed; an entry
// keeps the weights' fingerprint (a position-weighted sum of their bits, so
// that any change of one value, and in practice of many, changes it). Data
// are stored only for a fingerprint seen on two consecutive calls, so
// weights that change every call (training) are never kept.

struct CacheKey {
  const void* ptr;
  int64_t numel, elem, m, mr, view_ks, view_cs, rotate, G, cout, cin;
  bool operator==(const CacheKey& o) const {
    return ptr == o.ptr && numel == o.numel && elem == o.elem && m == o.m && mr == o.mr && view_ks == o.view_ks &&
           view_cs == o.view_cs && rotate == o.rotate && G == o.G && cout == o.cout && cin == o.cin;
  }
};

// One call's packed transformed weights.
struct Packed {
  explicit Packed(int64_t n) : buf(n), bytes(n) {}
  HostBuffer<unsigned char> buf;
  int64_t bytes;
};

struct CacheEntry {
  CacheKey key;
  uint64_t fingerprint;
  std::shared_ptr<Packed> data;  // null until seen twice
  int64_t changes = 0;           // calls in a row that found the weights changed
  int64_t calls = 0;
};

// Weights found changed on this many calls in a row are taken to be
// training's: their fingerprint is then checked only every kRecheck-th
// call (the others transform without it), and the cost model counts
// their transform (conv_winograd_verdict).
constexpr int64_t kTrainingChanges = 2, kRecheck = 16;

int64_t cache_limit_from_environment() {
  const char* v = std::getenv("CNNCORE_WINOGRAD_CACHE_MB");
  const int64_t fallback = int64_t{128} << 20;
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long long mb = std::strtoll(v, &end, 10);
  if (end == v || *end != '\0' || mb < 0 || mb > (int64_t{1} << 30)) return fallback;
  return static_cast<int64_t>(mb) << 20;
}

struct WeightCache {
  std::mutex mu;
  std::list<CacheEntry> entries;  // most recently used first
  int64_t held = 0, limit = cache_limit_from_environment();
  static constexpr std::size_t kMaxEntries = 1024;

  void drop_data(CacheEntry& e) {
    if (e.data) held -= e.data->bytes;
    e.data.reset();
  }
  // Frees data, least recently used first, until at most `keep` bytes stay.
  void trim(int64_t keep) {
    for (auto it = entries.rbegin(); it != entries.rend() && held > keep; ++it) drop_data(*it);
  }
};

WeightCache& weight_cache() {
  static WeightCache* c = new WeightCache();  // never destroyed (calls may run during static destruction)
  return *c;
}

// The bytes the cache holds for the weights at `w` (any of their transforms).
int64_t cached_bytes_of(const void* w) {
  WeightCache& c = weight_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  int64_t bytes = 0;
  for (const CacheEntry& e : c.entries)
    if (e.key.ptr == w && e.data) bytes += e.data->bytes;
  return bytes;
}

// The fingerprint of the weights: fixed chunks of kFingerprintChunk bytes,
// each by the current level's kernel (fingerprint-body.hpp), the threads
// taking whole chunks, and the chunks' values folded in order, so that the
// value does not depend on the thread count. Every cached-weight call reads
// the weights once this way: 9.4 MB (a 512-channel 3x3 layer) took 0.9 ms
// of a 2.9 ms Winograd forward with four 64-bit multiply chains; eight
// vectors of 32-bit lanes read them at the cache's or memory's rate.
constexpr int64_t kFingerprintChunk = int64_t{1} << 18;  // a multiple of kFingerprintBlock

uint64_t fingerprint(const void* data, int64_t bytes) {
  const F32ElementwiseKernels& k = f32_elementwise_kernels_for_current_isa();
  if (bytes <= kFingerprintChunk) return k.fingerprint(data, bytes);
  const auto* p = static_cast<const unsigned char*>(data);
  const int64_t chunks = ceil_div(bytes, kFingerprintChunk);
  std::vector<uint64_t> part(static_cast<size_t>(chunks));
  const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), chunks / 2));
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t c = 0; c < chunks; ++c)
    part[c] = k.fingerprint(p + c * kFingerprintChunk, std::min(kFingerprintChunk, bytes - c * kFingerprintChunk));
  uint64_t h = fingerprint_step(0x13198a2e03707344ull, static_cast<uint64_t>(bytes));
  for (const uint64_t v : part) h = fingerprint_step(h, v);
  return h;
}

// What the cost model knows of a weight tensor: whether it was found
// unchanged on consecutive calls (inference: its transform will be cached)
// or changed on each of the last calls (training: transformed every call).
// Tracked by fingerprint for the layers whose choice depends on it, under
// the weight cache's lock; kTrainingChanges and kRecheck as for the cache.
enum class WeightsState { unknown, stable, changing };

struct WatchEntry {
  const void* ptr;
  int64_t bytes, ks, cs, rotate, G, cout, cin;
  uint64_t fingerprint;
  int64_t seen, changes, calls;
};

std::list<WatchEntry>& watch_list() {
  static auto* l = new std::list<WatchEntry>();  // guarded by weight_cache().mu
  return *l;
}

// Whether the watch saw the weights at `w` unchanged with fingerprint `fp`
// (any transform of them). Caller holds the cache's lock.
bool watched_stable(const void* w, int64_t bytes, uint64_t fp) {
  for (const WatchEntry& x : watch_list())
    if (x.ptr == w && x.bytes == bytes && x.fingerprint == fp && x.seen >= 2) return true;
  return false;
}

// The packed transformed weights for this call: from the cache, or packed
// now (and kept when the same weights were seen unchanged on the previous
// call). `finite` reports whether they are all finite, `cached` whether
// they came from the cache.
template <typename T>
std::shared_ptr<Packed> transformed_weights(const Problem& p, const Plan<T>& pl, const T* w, int64_t w_numel,
                                            const KernelView& kv, const WeightsFingerprint* seen, bool* finite,
                                            bool* cached, bool may_fuse, bool* fused) {
  *cached = false;
  *fused = false;
  const int64_t bytes = packed_weights_size(p, pl) * static_cast<int64_t>(sizeof(T));
  WeightCache& cache = weight_cache();
  const CacheKey key{w, w_numel, static_cast<int64_t>(sizeof(T)), pl.m, pl.uk->mr, kv.ks, kv.cs, kv.rotate,
                     p.G, p.cout, p.cin};
  bool caching;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    caching = cache.limit > 0 && bytes <= cache.limit;
    for (CacheEntry& e : cache.entries)
      if (e.key == key && e.changes >= kTrainingChanges && ++e.calls % kRecheck != 0) {
        caching = false;  // training's weights: transformed without a fingerprint
        break;
      }
  }
  const uint64_t fp = !caching ? 0
                      : seen && seen->known ? seen->value
                                            : fingerprint(w, w_numel * static_cast<int64_t>(sizeof(T)));
  bool keep = false;
  if (caching) {
    std::lock_guard<std::mutex> lock(cache.mu);
    bool found = false;
    for (auto it = cache.entries.begin(); it != cache.entries.end(); ++it) {
      if (!(it->key == key)) continue;
      found = true;
      cache.entries.splice(cache.entries.begin(), cache.entries, it);
      CacheEntry& e = cache.entries.front();
      if (e.fingerprint == fp && e.data) {
        *finite = true;  // only finite weights are kept
        *cached = true;
        return e.data;
      }
      const bool same = e.fingerprint == fp;
      keep = same || watched_stable(w, w_numel * static_cast<int64_t>(sizeof(T)), fp);
      e.changes = keep ? 0 : e.changes + 1;
      if (!same) {  // what it holds is another version's
        cache.drop_data(e);
        e.fingerprint = fp;
      }
      break;
    }
    if (!found) {
      // seen unchanged already by the cost model's watch (observe_weights): keep it now
      keep = watched_stable(w, w_numel * static_cast<int64_t>(sizeof(T)), fp);
      cache.entries.push_front(CacheEntry{key, fp, nullptr});
      while (cache.entries.size() > WeightCache::kMaxEntries) {
        cache.drop_data(cache.entries.back());
        cache.entries.pop_back();
      }
    }
  }
  if (!keep && may_fuse) {  // nothing to keep: the runner transforms the weights as it goes
    *fused = true;
    *finite = true;
    return nullptr;
  }
  auto data = std::make_shared<Packed>(bytes);
  *finite = pack_weights(p, pl, w, kv, reinterpret_cast<T*>(data->buf.data()));
  if (keep && *finite) {
    std::lock_guard<std::mutex> lock(cache.mu);
    for (CacheEntry& e : cache.entries)
      if (e.key == key && e.fingerprint == fp && !e.data) {
        if (bytes > cache.limit) break;  // the limit was lowered meanwhile
        cache.trim(cache.limit - bytes);
        if (cache.held + bytes <= cache.limit) {
          e.data = data;
          cache.held += bytes;
        }
        break;
      }
  }
  return data;
}

// ---- the tiles -----------------------------------------------------------

// Source row (or column) of each padded position of the tile grid, -1 for a
// zero: position yy of the grid is input coordinate yy - before.
std::vector<int64_t> source_index(int64_t grid, int64_t before, int64_t after, int64_t n, PaddingMode mode) {
  std::vector<int64_t> idx(static_cast<std::size_t>(grid));
  for (int64_t yy = 0; yy < grid; ++yy) {
    const int64_t y = yy - before;
    int64_t s = -1;
    if (y >= 0 && y < n)
      s = y;
    else if (mode != PaddingMode::zeros && y >= -before && y < n + after)
      s = detail::padded_source_index(y, n, mode);
    idx[static_cast<std::size_t>(yy)] = s;
  }
  return idx;
}

// The transformed blocks of one plane index apart by their size plus this
// many elements, so that the (m + 2)^2 rows a transform writes or reads
// together do not all map to one cache set (the sizes are often multiples
// of 4 KiB).
constexpr int64_t kSkew = 16;

// Maps of at most this many tiles a row gather each channel's tiles through
// per-lane offsets (winograd_gather_indexed) instead of row strips: a 7x7
// map has two F(4, 3) tiles a row, and the strips' short loops took a
// quarter of ResNet's 256 -> 256 @7 weight gradient at batch 16. Measured
// (one thread, batch 16, F(4, 3), ms data / weight gradient): 64 -> 64 @28
// (seven a row) 4.5 / 7.1 by strips, 3.7 / 5.7 indexed; at 56x56 and
// 112x112 the two are alike.
constexpr int64_t kIndexedTileColumns = 8;

// One call's tiles, processed a block of L tiles at a time in three phases:
// the input transform (per input channel), the element-wise stage (per
// element xi and row sliver of the transformed weights) and the output
// transform (per output channel). Blocks go to threads whole when there are
// enough of them; otherwise every thread takes a share of each phase of
// each block (barriers between the phases).
//
// A block's tiles come in runs, one per image. For each run and channel the
// padded input rows its tiles read are first copied into a strip (one row
// copy each, the padding filled by the mode's index maps), so that every
// tile is then gathered from the strip at fixed offsets; the outputs go the
// other way, whole tiles into an output strip, then its valid rows to dst.
// Small maps (kIndexedTileColumns) gather their input and grad_out tiles
// instead through per-lane offset tables built once per block.
template <typename T, int M>
class TileRunner {
 public:
  static constexpr int A = M + 2;
  static constexpr int64_t a2 = int64_t{A} * A;

  // `u`: the packed transformed weights; null with `w` and `kv` (fused): the
  // products transform the raw weights w, a few row slivers at a time,
  // just before they use them (products below).
  TileRunner(const Problem& p, const Plan<T>& pl, const T* u, const T* src, const T* bias, T* dst,
             const T* w = nullptr, const KernelView* kv = nullptr)
      : p_(p), pl_(pl), u_(u), w_(w), kv_(kv ? *kv : KernelView{}), src_(src), bias_(bias), dst_(dst), L_(pl.L),
        unit_(std::lcm<int64_t>(pl.uk->nr, kWinogradLanes)), tw_(pl.tw),
        vxs_(p.cin * pl.L + kSkew), mxs_(p.cout * pl.L + kSkew), per_image_(pl.th * pl.tw),
        blocks_(ceil_div(pl.tiles, pl.L)), Wg_(pl.tw * M + 2), Wog_(pl.tw * M),
        strip_rows_((ceil_div(pl.L, pl.tw) + 1) * M + 2),
        rows_(source_index(pl.th * M + 2, p.pt, p.pb, p.H, p.mode)),
        cols_(source_index(pl.tw * M + 2, p.pl, p.pr, p.W, p.mode)),
        cx0_(std::clamp<int64_t>(p.pl, 0, Wg_)), cx1_(std::clamp<int64_t>(p.pl + p.W, cx0_, Wg_)),
        indexed_(pl.tw <= kIndexedTileColumns && fits_int32(p.N * p.G * p.cin * p.H * p.W) &&
                 fits_int32(p.N * p.G * p.cout * p.Ho * p.Wo)),
        out_rows_(source_index(pl.th * M, 0, 0, p.Ho, PaddingMode::zeros)),
        out_cols_(source_index(pl.tw * M, 0, 0, p.Wo, PaddingMode::zeros)) {}

  // The weight gradient's transformed sums: du (G x alpha^2 x cout x cin)
  // = sum over tiles of (A e AT) . (BT d B), e the tile of dst_
  // read as grad_out. False when a transformed block is not finite.
  bool run_weight_gradient(T* du) {
    const int64_t tasks = p_.G * blocks_, per_group = a2 * p_.cout * p_.cin;
    const int nt = get_num_threads();
    const GemmUkernel<T>& uk = gemm_ukernel_for_shape<T>(p_.cout, p_.cin);
    std::atomic<bool> finite{true};
    // threads take whole blocks into their own sums while those are small
    if (nt == 1 || (tasks >= 2 * nt && per_group * p_.G * static_cast<int64_t>(sizeof(T)) <= kCachedWeights / 4)) {
      const int asked = static_cast<int>(std::min<int64_t>(nt, tasks));
      const bool fixed = get_deterministic();
      std::vector<HostBuffer<T>*> sums(static_cast<std::size_t>(asked), nullptr);
#pragma omp parallel num_threads(asked) if (asked > 1)
      {
        Shared sh(*this);
        Local lo(*this);
        // the team OpenMP gave (fewer than asked inside another parallel region)
        const int t = omp_get_thread_num(), used = omp_get_num_threads();
        HostBuffer<T> own(t == 0 ? 0 : p_.G * per_group);
        T* acc = t == 0 ? du : own.data();
        // a thread's first block of each group writes its sums of the group, the others add to them
        std::vector<char> written(static_cast<std::size_t>(p_.G), 0);
        // blocks to whichever thread is free, or (deterministic algorithms)
        // in fixed shares, so that each thread's sums hold the same blocks
        auto one = [&](int64_t task) {
          if (!finite.load(std::memory_order_relaxed)) return;
          const Block bk = block(task);
          if (!input(bk, sh, lo, 0, p_.cin) || !grad_out(bk, sh, lo, 0, p_.cout)) {
            finite.store(false, std::memory_order_relaxed);
            return;
          }
          char& w = written[static_cast<std::size_t>(bk.gi)];
          weight_products(bk, sh, uk, 0, a2, w != 0, acc);
          w = 1;
        };
        if (fixed) {
          for (int64_t task = tasks * t / used; task < tasks * (t + 1) / used; ++task) one(task);
        } else {
#pragma omp for schedule(dynamic) nowait
          for (int64_t task = 0; task < tasks; ++task) one(task);
        }
        for (int64_t gi = 0; gi < p_.G; ++gi)  // groups of which no block came to this thread
          if (!written[static_cast<std::size_t>(gi)]) std::fill(acc + gi * per_group, acc + (gi + 1) * per_group, T(0));
        sums[static_cast<std::size_t>(t)] = &own;
#pragma omp barrier
        // thread t adds its share of every other thread's sums into du
        const int64_t total = p_.G * per_group, e0 = total * t / used, e1 = total * (t + 1) / used;
        for (int o = 1; o < used; ++o) {
          const T* from = sums[static_cast<std::size_t>(o)]->data();
#pragma omp simd
          for (int64_t e = e0; e < e1; ++e) du[e] += from[e];
        }
#pragma omp barrier
      }
      return finite.load();
    }
    Shared sh(*this);
#pragma omp parallel num_threads(nt)
    {
      Local lo(*this);
      const int t = omp_get_thread_num(), n = omp_get_num_threads();
      for (int64_t task = 0; task < tasks; ++task) {
        const Block bk = block(task);
        bool ok = input(bk, sh, lo, p_.cin * t / n, p_.cin * (t + 1) / n);
        ok = ok && grad_out(bk, sh, lo, p_.cout * t / n, p_.cout * (t + 1) / n);
        if (!ok) finite.store(false, std::memory_order_relaxed);
#pragma omp barrier
        if (!finite.load()) break;  // every thread sees the same flag after the barrier
        // (each group's first block writes the sums, the later ones add)
        weight_products(bk, sh, uk, a2 * t / n, a2 * (t + 1) / n, task % blocks_ > 0, du);
#pragma omp barrier
      }
    }
    return finite.load();
  }

  // false (dst partly written) when a transformed input block is not finite
  bool run() {
    const int64_t tasks = p_.G * blocks_;
    const int nt = get_num_threads();
    std::atomic<bool> finite{true};
    if (tasks >= 2 * nt || nt == 1) {
      const int used = static_cast<int>(std::min<int64_t>(nt, tasks));
#pragma omp parallel num_threads(used) if (used > 1)
      {
        Shared sh(*this);
        Local lo(*this);
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < tasks; ++task) {
          if (!finite.load(std::memory_order_relaxed)) continue;
          Block bk = block(task);
          if (!input(bk, sh, lo, 0, p_.cin)) {
            finite.store(false, std::memory_order_relaxed);
            continue;
          }
          if (!products(bk, sh, lo, 0, pl_.kb)) {
            finite.store(false, std::memory_order_relaxed);
            continue;
          }
          output(bk, sh, lo, 0, p_.cout);
        }
      }
      return finite.load();
    }
    Shared sh(*this);
    std::atomic<bool> weights_finite{true};
#pragma omp parallel num_threads(nt)
    {
      Local lo(*this);
      const int t = omp_get_thread_num(), n = omp_get_num_threads();
      auto share = [&](int64_t total, int64_t* b0, int64_t* b1) {
        *b0 = total * t / n;
        *b1 = total * (t + 1) / n;
      };
      for (int64_t task = 0; task < tasks; ++task) {
        const Block bk = block(task);
        int64_t c0, c1;
        share(p_.cin, &c0, &c1);
        if (!input(bk, sh, lo, c0, c1)) finite.store(false, std::memory_order_relaxed);
#pragma omp barrier
        if (!finite.load()) break;  // every thread sees the same flag after the barrier
        // each thread the products and outputs of its own row slivers
        share(pl_.kb, &c0, &c1);
        // A thread whose fused weights are not finite goes on with the
        // others (its outputs are discarded, the call fails after): its flag
        // is not the one read above, which must be the same for every
        // thread after the barrier, or one would break off while another
        // waits at the next barrier.
        if (!products(bk, sh, lo, c0, c1)) weights_finite.store(false, std::memory_order_relaxed);
        output(bk, sh, lo, std::min(c0 * pl_.uk->mr, p_.cout), std::min(c1 * pl_.uk->mr, p_.cout));
        if (task + 1 < tasks) {
#pragma omp barrier
        }
      }
    }
    return finite.load() && weights_finite.load();
  }

 private:
  struct Run {
    int64_t n, l0, count, first;  // image, first lane, tiles, first tile's index in the image
  };
  struct Block {
    int64_t gi, t0, nb, lanes;  // group, first tile, tiles, lanes transformed (nb rounded up to whole tiles)
    std::vector<Run> runs;
  };
  // the transformed input and the products of one block (written before
  // they are read: the input transform writes all `lanes` of every row, the
  // products `nb` of them and tail() the rest)
  struct Shared {
    HostBuffer<T> v, mm;
    explicit Shared(const TileRunner& r) : v(a2 * r.vxs_), mm(a2 * r.mxs_) {}
  };
  // one thread's gathered tiles, output tiles and strip
  // (small maps: the offset tables of the input tiles' rows and columns, ro
  // and co, and of the grad_out tiles', eo and ec)
  // (fused: the packer and its slivers' transformed weights, u)
  struct Local {
    std::vector<T> d, y, strip;
    std::vector<int32_t> ro, co, eo, ec;
    std::unique_ptr<WeightPacker<T>> packer;
    HostBuffer<T> u;
    explicit Local(const TileRunner& r)
        : d(static_cast<std::size_t>(a2 * r.L_), T(0)), y(static_cast<std::size_t>(M * M * r.L_)),
          strip(static_cast<std::size_t>(r.strip_rows_ * r.Wg_)),
          ro(static_cast<std::size_t>(r.indexed_ ? A * r.L_ : 0)), co(ro.size()),
          eo(static_cast<std::size_t>(r.indexed_ ? M * r.L_ : 0)), ec(eo.size()),
          packer(r.w_ ? std::make_unique<WeightPacker<T>>(r.p_, r.pl_, r.w_, r.kv_) : nullptr),
          u(r.w_ ? a2 * r.fused_slivers() * r.p_.cin * r.pl_.uk->mr : 0) {}
  };

  static bool fits_int32(int64_t elements) { return elements <= int64_t{INT32_MAX}; }

  // The offset tables of a block's tiles of `a` x `a` values: lane l (tile
  // t0 + l) reads rows[y * L + l] + cols[x * L + l] of its channel's plane
  // in image 0; rows holds the image's offset plus the source row (ridx, by
  // position in the tile grid) times `width`, cols the source column (cidx);
  // -1 for a zero, and for every lane past the block's tiles.
  void tile_maps(const Block& bk, int a, const std::vector<int64_t>& ridx, const std::vector<int64_t>& cidx,
                 int64_t image, int64_t width, int32_t* rows, int32_t* cols) const {
    for (int64_t l = 0; l < bk.lanes; ++l) {
      const bool in = l < bk.nb;
      const int64_t t = bk.t0 + l, n = t / per_image_, ti = t % per_image_ / tw_, tj = t % per_image_ % tw_;
      for (int y = 0; y < a; ++y) {
        const int64_t sr = in ? ridx[static_cast<std::size_t>(ti * M + y)] : -1;
        rows[y * L_ + l] = sr < 0 ? -1 : static_cast<int32_t>(n * image + sr * width);
      }
      for (int x = 0; x < a; ++x)
        cols[x * L_ + l] = static_cast<int32_t>(in ? cidx[static_cast<std::size_t>(tj * M + x)] : -1);
    }
  }

  Block block(int64_t task) const {
    Block bk;
    bk.gi = task / blocks_;
    bk.t0 = task % blocks_ * L_;
    bk.nb = std::min(L_, pl_.tiles - bk.t0);
    bk.lanes = std::min(L_, round_up(bk.nb, unit_));
    for (int64_t l = 0; l < bk.nb;) {
      const int64_t t = bk.t0 + l, n = t / per_image_, first = t % per_image_;
      const int64_t count = std::min(bk.nb - l, per_image_ - first);
      bk.runs.push_back(Run{n, l, count, first});
      l += count;
    }
    return bk;
  }

  // Input channels [c0, c1): strip, gather, transform into sh.v.
  bool input(const Block& bk, Shared& sh, Local& lo, int64_t c0, int64_t c1) const {
    const Transforms<T> tm;
    T* d = lo.d.data();
    if (indexed_) {
      tile_maps(bk, A, rows_, cols_, p_.G * p_.cin * p_.H * p_.W, p_.W, lo.ro.data(), lo.co.data());
      for (int64_t c = c0; c < c1; ++c) {
        const T* plane = src_ + (bk.gi * p_.cin + c) * p_.H * p_.W;
        tm.gather_indexed(A, bk.lanes, L_, lo.ro.data(), lo.co.data(), plane, d);
        if (!tm.input(M, bk.lanes, L_, d, sh.v.data() + c * L_, vxs_)) return false;
      }
      return true;
    }
    if (bk.nb < bk.lanes)  // a partial block: lanes past it transform zeros
      for (int64_t e = 0; e < a2; ++e) std::fill(d + e * L_ + bk.nb, d + e * L_ + bk.lanes, T(0));
    for (int64_t c = c0; c < c1; ++c) {
      for (const Run& r : bk.runs) {
        const T* plane = src_ + ((r.n * p_.G + bk.gi) * p_.cin + c) * p_.H * p_.W;
        const int64_t ra = r.first / tw_, rb = (r.first + r.count - 1) / tw_;
        for (int64_t yy = ra * M; yy < rb * M + A; ++yy) {
          T* srow = lo.strip.data() + (yy - ra * M) * Wg_;
          const int64_t sr = rows_[yy];
          if (sr < 0) {
            std::fill(srow, srow + Wg_, T(0));
            continue;
          }
          const T* irow = plane + sr * p_.W;
          for (int64_t xx = 0; xx < cx0_; ++xx) srow[xx] = cols_[xx] < 0 ? T(0) : irow[cols_[xx]];
          const T* from = irow + (cx0_ - p_.pl);
#pragma omp simd
          for (int64_t xx = cx0_; xx < cx1_; ++xx) srow[xx] = from[xx - cx0_];
          for (int64_t xx = cx1_; xx < Wg_; ++xx) srow[xx] = cols_[xx] < 0 ? T(0) : irow[cols_[xx]];
        }
        // tile row by tile row: the run's tiles of strip tile row ti, from column tj
        for (int64_t q = 0, ti = 0, tj = r.first % tw_; q < r.count; tj = 0, ++ti) {
          const int64_t count = std::min(tw_ - tj, r.count - q);
          tm.gather(M, lo.strip.data() + ti * M * Wg_ + tj * M, Wg_, count, d + r.l0 + q, L_);
          q += count;
        }
      }
      if (!tm.input(M, bk.lanes, L_, d, sh.v.data() + c * L_, vxs_)) return false;
    }
    return true;
  }

  // Row slivers [s0, s1) of every element xi: M(xi) = U(xi) * V(xi) on those
  // rows; false (fused) where a transformed weight is not finite.
  bool products(const Block& bk, Shared& sh, Local& lo, int64_t s0, int64_t s1) const {
    const int64_t MR = pl_.uk->mr, sliver = p_.cin * MR;
    if (!w_) {
      products_of(bk, sh, u_ + bk.gi * a2 * pl_.kb * sliver, pl_.kb * sliver, s0, s1, 0);
      return true;
    }
    const int64_t fs = fused_slivers();
    for (int64_t f0 = s0; f0 < s1; f0 += fs) {
      const int64_t f1 = std::min(s1, f0 + fs), us = (f1 - f0) * sliver;
      if (!lo.packer->slivers(bk.gi, f0, f1, lo.u.data(), us)) return false;
      products_of(bk, sh, lo.u.data(), us, f0, f1, f0);
    }
    return true;
  }

  // Slivers [s0, s1) by the transformed weights at u: sliver s of element
  // xi at u + xi * us + (s - first) * sliver.
  void products_of(const Block& bk, Shared& sh, const T* u, int64_t us, int64_t s0, int64_t s1, int64_t first) const {
    const int64_t MR = pl_.uk->mr, NR = pl_.uk->nr;
    const GemmUkernelFn<T> fn = pl_.uk->fn;
    for (int64_t item = 0; item < a2 * (s1 - s0); ++item) {
      const int64_t xi = item / (s1 - s0), s = s0 + item % (s1 - s0);
      const T* vx = sh.v.data() + xi * vxs_;
      T* mx = sh.mm.data() + xi * mxs_ + s * MR * L_;
      const T* a = u + xi * us + (s - first) * p_.cin * MR;
      const int64_t rows_s = std::min(MR, p_.cout - s * MR);
      for (int64_t col = 0; col < bk.nb; col += NR)
        fn(p_.cin, a, vx + col, L_, mx + col, L_, rows_s, std::min(NR, bk.nb - col), false);
      if (bk.nb < bk.lanes)  // the lanes the output transform reads past the tiles
        for (int64_t i = 0; i < rows_s; ++i) std::fill(mx + i * L_ + bk.nb, mx + i * L_ + bk.lanes, T(0));
    }
  }

  int64_t fused_slivers() const { return fused_sliver_count<T>(p_, pl_, get_num_threads()); }

  // Output channels [k0, k1) of grad_out (dst_): each tile gathered (zero
  // past the output) and transformed by A e AT into sh.mm.
  bool grad_out(const Block& bk, Shared& sh, Local& lo, int64_t k0, int64_t k1) const {
    const Transforms<T> tm;
    T* e = lo.y.data();
    if (indexed_) {
      tile_maps(bk, M, out_rows_, out_cols_, p_.G * p_.cout * p_.Ho * p_.Wo, p_.Wo, lo.eo.data(), lo.ec.data());
      for (int64_t k = k0; k < k1; ++k) {
        const T* plane = dst_ + (bk.gi * p_.cout + k) * p_.Ho * p_.Wo;
        if (!tm.gather_indexed(M, bk.lanes, L_, lo.eo.data(), lo.ec.data(), plane, e)) return false;
        tm.grad_out(M, bk.lanes, L_, e, sh.mm.data() + k * L_, mxs_);
      }
      return true;
    }
    if (bk.nb < bk.lanes)
      for (int64_t q = 0; q < M * M; ++q) std::fill(e + q * L_ + bk.nb, e + q * L_ + bk.lanes, T(0));
    for (int64_t k = k0; k < k1; ++k) {
      T probe = 0;
      for (const Run& r : bk.runs) {
        const T* plane = dst_ + ((r.n * p_.G + bk.gi) * p_.cout + k) * p_.Ho * p_.Wo;
        for (int64_t q = 0, ti = r.first / tw_, tj = r.first % tw_; q < r.count; ++q) {
          const T* base = plane + ti * M * p_.Wo + tj * M;
          T* el = e + r.l0 + q;
          const int64_t hi = std::min<int64_t>(M, p_.Ho - ti * M), wi = std::min<int64_t>(M, p_.Wo - tj * M);
          if (hi == M && wi == M) {
#pragma GCC unroll 8
            for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
              for (int j = 0; j < M; ++j) {
                el[(i * M + j) * L_] = base[i * p_.Wo + j];
                probe += base[i * p_.Wo + j] * T(0);
              }
          } else {
            for (int64_t i = 0; i < M; ++i)
              for (int64_t j = 0; j < M; ++j) {
                const T val = i < hi && j < wi ? base[i * p_.Wo + j] : T(0);
                el[(i * M + j) * L_] = val;
                probe += val * T(0);
              }
          }
          if (++tj == tw_) {
            tj = 0;
            ++ti;
          }
        }
      }
      if (probe != T(0)) return false;
      tm.grad_out(M, bk.lanes, L_, e, sh.mm.data() + k * L_, mxs_);
    }
    return true;
  }

  // Elements [x0, x1): du(xi) (cout x cin) = S(xi) (cout x nb) * V(xi)^T, added to du when `add`.
  void weight_products(const Block& bk, const Shared& sh, const GemmUkernel<T>& uk, int64_t x0, int64_t x1, bool add,
                       T* du) const {
    for (int64_t xi = x0; xi < x1; ++xi)
      gemm<T>(uk, false, true, p_.cout, p_.cin, bk.nb, sh.mm.data() + xi * mxs_, L_, sh.v.data() + xi * vxs_, L_,
              add, du + (bk.gi * a2 + xi) * p_.cout * p_.cin, p_.cin, false);
  }

  // Output channels [k0, k1): transform, whole tiles into the strip, its valid part to dst.
  void output(const Block& bk, const Shared& sh, Local& lo, int64_t k0, int64_t k1) const {
    const Transforms<T> tm;
    T* strip = lo.strip.data();
    for (int64_t k = k0; k < k1; ++k) {
      tm.output(M, bk.lanes, L_, sh.mm.data() + k * L_, mxs_, lo.y.data());
      const T b = bias_ ? bias_[bk.gi * p_.cout + k] : T(0);
      for (const Run& r : bk.runs) {
        T* plane = dst_ + ((r.n * p_.G + bk.gi) * p_.cout + k) * p_.Ho * p_.Wo;
        const int64_t ra = r.first / tw_, rb = (r.first + r.count - 1) / tw_;
        for (int64_t q = 0, ti = 0, tj = r.first % tw_; q < r.count; tj = 0, ++ti) {
          const int64_t count = std::min(tw_ - tj, r.count - q);
          tm.scatter(M, lo.y.data() + r.l0 + q, L_, count, strip + ti * M * Wog_ + tj * M, Wog_);
          q += count;
        }
        for (int64_t tr = ra; tr <= rb; ++tr) {
          const int64_t x0 = (tr == ra ? r.first % tw_ : 0) * M;
          const int64_t x1 = std::min(p_.Wo, (tr == rb ? (r.first + r.count - 1) % tw_ + 1 : tw_) * M);
          const int64_t i1 = std::min<int64_t>(M, p_.Ho - tr * M);
          for (int64_t i = 0; i < i1; ++i) {
            const T* from = strip + ((tr - ra) * M + i) * Wog_;
            T* to = plane + (tr * M + i) * p_.Wo;
#pragma omp simd
            for (int64_t x = x0; x < x1; ++x) to[x] = from[x] + b;
          }
        }
      }
    }
  }

  const Problem& p_;
  const Plan<T>& pl_;
  const T* u_;
  const T* w_;  // fused: the raw weights, read through kv_
  const KernelView kv_;
  const T* src_;
  const T* bias_;
  T* dst_;
  const int64_t L_, unit_, tw_, vxs_, mxs_, per_image_, blocks_, Wg_, Wog_, strip_rows_;
  const std::vector<int64_t> rows_, cols_;
  const int64_t cx0_, cx1_;  // strip columns [cx0, cx1) copy input columns [cx0 - pl, cx1 - pl) in one piece
  const bool indexed_;        // tiles gathered through offset tables (small maps)
  const std::vector<int64_t> out_rows_, out_cols_;  // grad_out's rows and columns by tile-grid position
};

template <typename T, int M>
bool run_tiles(const Problem& p, const Plan<T>& pl, const T* u, const T* src, const T* bias, T* dst, const T* w,
               const KernelView* kv) {
  return TileRunner<T, M>(p, pl, u, src, bias, dst, w, kv).run();
}

// `u` the packed transformed weights, or null with w and kv (fused).
template <typename T>
bool run(const Problem& p, const Plan<T>& pl, const T* u, const T* src, const T* bias, T* dst, const T* w = nullptr,
         const KernelView* kv = nullptr) {
  if (pl.m == 2) return run_tiles<T, 2>(p, pl, u, src, bias, dst, w, kv);
  if (pl.m == 4) return run_tiles<T, 4>(p, pl, u, src, bias, dst, w, kv);
  return run_tiles<T, 6>(p, pl, u, src, bias, dst, w, kv);
}

template <typename T>
bool winograd(const Problem& p, int m, const T* w, int64_t w_numel, const KernelView& kv,
              const WeightsFingerprint* seen, const T* src, const T* bias, T* dst, bool* transformed) {
  const Plan<T> pl = make_plan<T>(p, m, get_num_threads());
  bool finite = true, cached = false, fused = false;
  // Weights transformed for this call alone (training's, changing every
  // step) are transformed by the runner as its products need them when
  // one block of tiles covers each group: written to memory and read back,
  // ResNet's 512 -> 512 @4 F(2, 3) transform (16.8 MB) cost a third of
  // that layer's forward at batch 16 inside a training step.
  const bool one_block = pl.L >= pl.tiles && get_num_threads() <= p.G * pl.kb;
  const auto u = transformed_weights<T>(p, pl, w, w_numel, kv, seen, &finite, &cached, one_block, &fused);
  // (non-finite weights are never cached: the exact engine then serves every call)
  if (transformed) *transformed = fused || (finite && !cached);
  if (fused) {
    g_fused_calls.fetch_add(1, std::memory_order_relaxed);
    return run<T>(p, pl, nullptr, src, bias, dst, w, &kv);
  }
  if (!finite) return false;
  return run<T>(p, pl, reinterpret_cast<const T*>(u->buf.data()), src, bias, dst);
}

// Where the forward's (k, c) kernel or the data gradient's (c, k) one
// (w[k][c] rotated; unrotated for a true convolution) keeps its taps.
KernelView kernel_view(const ConvGeometry& g, ConvPass pass) {
  if (pass == ConvPass::backward_data) return KernelView{g.C_out_g * g.C_in_g * 9, 9, g.C_in_g * 9, !g.flip};
  return KernelView{g.C_out_g * g.C_in_g * 9, g.C_in_g * 9, 9, g.flip};
}

// `seen`, where not null, receives the fingerprint when it is computed.
WeightsState observe_weights(const void* w, int64_t bytes, const KernelView& kv, const Problem& p,
                             WeightsFingerprint* seen = nullptr) {
  if (!w || bytes <= 0) return WeightsState::changing;
  WeightCache& cache = weight_cache();
  std::list<WatchEntry>& list = watch_list();
  WatchEntry* e = nullptr;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    for (auto it = list.begin(); it != list.end(); ++it)
      if (it->ptr == w && it->bytes == bytes && it->ks == kv.ks && it->cs == kv.cs && it->rotate == kv.rotate &&
          it->G == p.G && it->cout == p.cout && it->cin == p.cin) {
        list.splice(list.begin(), list, it);
        e = &list.front();
        break;
      }
    if (e && e->changes >= kTrainingChanges && ++e->calls % kRecheck != 0) return WeightsState::changing;
  }
  const uint64_t fp = fingerprint(w, bytes);
  if (seen) *seen = WeightsFingerprint{true, fp};
  std::lock_guard<std::mutex> lock(cache.mu);
  for (WatchEntry& x : list)
    if (x.ptr == w && x.bytes == bytes && x.ks == kv.ks && x.cs == kv.cs && x.rotate == kv.rotate && x.G == p.G &&
        x.cout == p.cout && x.cin == p.cin) {
      if (x.fingerprint == fp) {
        ++x.seen;
        x.changes = 0;
        return WeightsState::stable;
      }
      x.fingerprint = fp;
      x.seen = 1;
      ++x.changes;
      return x.changes >= kTrainingChanges ? WeightsState::changing : WeightsState::unknown;
    }
  list.push_front(WatchEntry{w, bytes, kv.ks, kv.cs, kv.rotate, p.G, p.cout, p.cin, fp, 1, 0, 0});
  while (list.size() > WeightCache::kMaxEntries) list.pop_back();
  return WeightsState::unknown;
}

// Whether the last observation found the weights unchanged (no new fingerprint).
bool weights_stable(const void* w, int64_t bytes, const KernelView& kv, const Problem& p) {
  if (!w) return false;
  std::lock_guard<std::mutex> lock(weight_cache().mu);
  for (const WatchEntry& x : watch_list())
    if (x.ptr == w && x.bytes == bytes && x.ks == kv.ks && x.cs == kv.cs && x.rotate == kv.rotate && x.G == p.G &&
        x.cout == p.cout && x.cin == p.cin)
      return x.seen >= 2 && x.changes == 0;
  return false;
}

Problem forward_problem(const ConvGeometry& g) {
  return Problem{g.N,          g.groups,        g.C_in_g,        g.C_out_g,       g.in[1],
                 g.in[2],      g.out[1],        g.out[2],        g.pad_before[1], g.pad_before[2],
                 g.pad_after[1], g.pad_after[2], g.mode};
}

// The data gradient as a convolution of grad_out: onto diff_src itself
// (zeros padding) or onto the padded input's gradient (2 on every side).
Problem backward_data_problem(const ConvGeometry& g) {
  const bool zeros = g.mode == PaddingMode::zeros;
  const int64_t H = zeros ? g.in[1] : g.in[1] + g.pad_before[1] + g.pad_after[1];
  const int64_t W = zeros ? g.in[2] : g.in[2] + g.pad_before[2] + g.pad_after[2];
  const int64_t pt = zeros ? 2 - g.pad_before[1] : 2, pl = zeros ? 2 - g.pad_before[2] : 2;
  return Problem{g.N, g.groups, g.C_out_g, g.C_in_g, g.out[1], g.out[2], H, W,
                 pt,  pl,       H + 2 - pt - g.out[1], W + 2 - pl - g.out[2], PaddingMode::zeros};
}

}  // namespace

std::string conv_winograd_why_not(const ConvGeometry& g) {
  if (g.nd != 2) return "Winograd serves 2-D convolutions only";
  if (g.k[1] != 3 || g.k[2] != 3) return "Winograd serves 3x3 kernels only";
  if (g.stride[1] != 1 || g.stride[2] != 1) return "Winograd serves stride 1 only";
  if (g.dilation[1] != 1 || g.dilation[2] != 1) return "Winograd serves dilation 1 only";
  return {};
}

namespace {

// ---- the cost model ------------------------------------------------------
// Within this factor of the exact engines' estimate, with the weights
// cached, the model's error (the machines differ: the exact engines' share
// of the peak, the memory's rates) can reverse the order, so auto measures
// instead.
constexpr double kMeasureBand = 1.6;
// Within this factor of each other, the two tiles' estimates are measured
// too (conv_winograd_tiles_close).
constexpr double kTileBand = 1.35;

// Seconds estimated for one thread of the current kernel level, calibrated
// on this project's Zen 5 runs (benchmarks/conv2d.py, the winograd columns):
// the element-wise stage at 90% of the FMA peak over the columns it computes
// (whole NR-wide tiles), the transformed weights streamed once per block
// (from the last-level cache while they fit, else from memory), and the
// transforms with their gathers at about 0.33 ns per tile element per
// channel at AVX-512's width. The exact engines run 3x3 layers at 65% of
// the peak: measured on a Zen 3 (ResNet's 512 -> 512 @7 at batch 1) and on
// an Intel Xeon with AVX-512 (batch 16, one thread: 512 -> 512 @4 at 69%,
// 256 -> 256 @7 at 66%); the model once assumed 85%, and with its Winograd
// estimates right (512 -> 512 @4 by F(2, 3), 6.1 ms against 6.3 measured)
// it kept the exact engine for forwards it lost by 25%.
constexpr double kExactEfficiency = 0.65;

// The FMA peak of one thread at a kernel level as a table has it (a Zen 5's
// AVX-512 and AVX2 rates): what deterministic algorithms plan with, and the
// transforms' width factor below.
double table_flops(Isa isa) { return isa >= Isa::avx512 ? 270e9 : isa >= Isa::avx2 ? 135e9 : 60e9; }

// The one-thread fp32 FMA peak of the current level, measured on first use
// in each process (the better of two 10 ms runs, so that a busy moment does
// not make it low): machines differ by more than the model's margins (an
// Intel Xeon's AVX-512 peak is 210 GFLOP/s a core, a Zen 4's 116, where the
// table says 270). Deterministic algorithms keep the table, so that their
// choices never depend on a timing.
std::atomic<bool> g_table_peak{false};  // set_winograd_model_table_peak

double core_flops(int64_t elem_size) {
  const Isa isa = get_isa();
  double f32 = table_flops(isa);
  if (!get_deterministic() && !g_table_peak.load(std::memory_order_relaxed)) {
    static std::mutex lock;
    static double measured[4] = {0, 0, 0, 0};
    const int level = std::clamp(static_cast<int>(isa), 0, 3);
    std::lock_guard<std::mutex> hold(lock);
    if (measured[level] == 0)
      for (int run = 0; run < 2; ++run)
        measured[level] = std::max(measured[level], measure_fma_peak(1, isa, 0.01).gflops * 1e9);
    f32 = measured[level];
  }
  return elem_size == 4 ? f32 : f32 / 2;
}

// `held`: winograd_cache_bytes() at the call (see the weights' bandwidth below).
double winograd_seconds(const Problem& p, int m, int64_t es, int threads, ConvPass pass, bool pack, int64_t held) {
  const bool weight = pass == ConvPass::backward_weight;
  const int64_t a2 = int64_t{m + 2} * (m + 2);
  const int64_t tiles = p.N * ceil_div(p.Ho, m) * ceil_div(p.Wo, m);
  const double flops = core_flops(es), width = 270e9 / table_flops(get_isa());  // transforms slow with narrower vectors
  const int64_t nr = weight ? 1 : es == 4 ? (get_isa() >= Isa::avx512 ? 16 : 8) : 8;
  const double eff = weight ? 0.8 : 0.9;  // the weight gradient's GEMMs pack their operands
  const double gemm = 2.0 * a2 * p.cin * p.cout * p.G * round_up(tiles, nr) / (eff * flops) / threads;
  const double u_bytes = static_cast<double>(a2) * p.cin * p.cout * es;
  const double per_lane = static_cast<double>(a2) * (p.cin + p.cout) * es;
  // from the last-level cache while they fill at most 12 MiB of it (the
  // data and everything else compete for it): ResNet's 256 -> 256 F(4, 3)
  // transform, 9.4 MB, is served from it at batch 1; its 512 -> 512 F(2, 3)
  // one, 16.8 MB, comes from memory. A core's reads from memory are bound
  // by how many it keeps in flight, so more threads read faster (a Zen 3:
  // 16.8 GB/s on one, 32 on two): counted up to four threads. Cached
  // weights share the last-level cache with every other layer's cached
  // transform, which a network reads between this layer's calls: they are
  // served from it only while all of those together fit (an Intel Xeon
  // with AVX-512: ResNet's three 256 -> 256 @14 layers at batch 1, 28 MB of
  // F(4, 3) transforms, took 2.3 ms a call by F(4, 3) and 1.75 by F(2, 3)
  // against 1.1 and 1.4 for one layer called alone).
  const double resident = pack || weight ? u_bytes : std::max(u_bytes, static_cast<double>(held));
  const double bw = resident <= 12.0 * (1 << 20) ? 100e9 : 15e9 * std::min(threads, 4);
  double stream;
  if (weight) {  // the sums: written by the first block, read and written by the others, read by the last transform
    const double blocks = std::max(1.0, std::ceil(tiles / std::min<double>(kWeightLanes, std::max(16.0, kWeightBlockBytes / per_lane))));
    stream = u_bytes * p.G * 2 * blocks / bw;
  } else {
    const double blocks = std::max(1.0, std::ceil(tiles * per_lane / std::max(2.0 * (1 << 20), u_bytes / 2)));
    stream = u_bytes * p.G * blocks / bw;
  }
  const double transforms = 0.33e-9 * width * (es / 4.0) * a2 * tiles * p.G * (p.cin + p.cout) / threads;
  // transforming and packing the weights: memory-bound, about 11 GB/s of
  // weights read and transformed weights written (measured on 512 -> 512)
  const double packing = pack && !weight ? (u_bytes + 9.0 * p.cin * p.cout * es) * p.G / 11e9 : 0.0;
  return gemm + stream + transforms + packing;
}

// The exact engines: kExactEfficiency of the peak, plus, for the data gradient of a
// small map (at most 64 positions and images together), the transposed
// copy of the weights it made (measured on a Zen 5: ResNet's 512 -> 512 @7
// at batch 1 took 3.7 ms for its data gradient, 1.2 ms for its forward).
// The wide layers' data gradient now reads the weights in place instead
// (conv_im2col_data_gradient_transposed: 4.9 -> 3.9 ms there on a Zen 3);
// the term is kept, so that those problems stay measured on the calls
// rather than the model's efficiency deciding alone.
double exact_seconds(const Problem& p, int64_t es, int threads, ConvPass pass) {
  const double flops = 2.0 * 9 * p.cin * p.cout * p.G * p.N * p.Ho * p.Wo;
  const double compute = flops / (kExactEfficiency * core_flops(es)) / threads;
  const double w_bytes = 9.0 * p.cin * p.cout * p.G * es;
  const bool small = p.N * p.Ho * p.Wo <= 64;
  return compute + (pass == ConvPass::backward_data && small ? w_bytes / 3.5e9 : 0.0);
}

// (the weight gradient: the forward's problem, its sums streamed like weights)
Problem pass_problem(const ConvGeometry& g, ConvPass pass) {
  return pass == ConvPass::backward_data ? backward_data_problem(g) : forward_problem(g);
}

}  // namespace

void set_winograd_model_table_peak(bool on) { g_table_peak.store(on, std::memory_order_relaxed); }

int64_t winograd_fused_calls() { return g_fused_calls.load(std::memory_order_relaxed); }

int conv_winograd_tile(const ConvGeometry& g, ConvPass pass, const void* weights, int64_t weight_bytes) {
  const Problem p = pass_problem(g, pass);
  const int nt = get_num_threads();
  const bool pack = !weights_stable(weights, weight_bytes, kernel_view(g, pass), p);
  const int64_t held = winograd_cache_bytes();
  return winograd_seconds(p, 2, 4, nt, pass, pack, held) < winograd_seconds(p, 4, 4, nt, pass, pack, held) ? 2 : 4;
}

bool conv_winograd_tiles_close(const ConvGeometry& g, ConvPass pass, const void* weights, int64_t weight_bytes,
                               bool* transforming) {
  const Problem p = pass_problem(g, pass);
  const int nt = get_num_threads();
  const bool pack = !weights_stable(weights, weight_bytes, kernel_view(g, pass), p);
  *transforming = pack && pass != ConvPass::backward_weight;
  const int64_t held = winograd_cache_bytes();
  const double t2 = winograd_seconds(p, 2, 4, nt, pass, pack, held), t4 = winograd_seconds(p, 4, 4, nt, pass, pack, held);
  return std::max(t2, t4) < kTileBand * std::min(t2, t4);
}

WinogradVerdict conv_winograd_verdict(const ConvGeometry& g, ConvPass pass, const void* weights,
                                      int64_t weight_bytes, bool measured_exact, WeightsFingerprint* seen) {
  const Problem p = pass_problem(g, pass);
  const int nt = get_num_threads();
  const double exact = exact_seconds(p, 4, nt, pass);
  const int64_t held = winograd_cache_bytes();
  auto best = [&](bool pack) {
    return std::min(winograd_seconds(p, 2, 4, nt, pass, pack, held), winograd_seconds(p, 4, 4, nt, pass, pack, held));
  };
  // a margin: the model's error is about 15-20% on the machine it was
  // calibrated on, more on others
  if (best(false) >= kMeasureBand * exact) return WinogradVerdict::exact;  // slower even with them cached
  if (best(true) < 0.8 * exact) {
    // faster even transforming the weights every call; but which tile is
    // faster depends on whether they change (F(4,3)'s transform is the
    // larger), so the watch follows them as for the close calls
    observe_weights(weights, weight_bytes, kernel_view(g, pass), p, seen);
    return WinogradVerdict::winograd;
  }
  // A clear win with cached weights needs room in the cache: VGG-16's
  // forward at batch 1 would keep 226 MB of F(4, 3) transforms, and with
  // its three 512 -> 512 @14 layers called clear its 128 MiB cache evicted
  // and re-packed them every call (the network 174 -> 213 ms, one thread);
  // measured on the calls, the exact engine wins such a layer there.
  // (the best tile's transform, beside what the cache holds for other weights;
  // asked only of a clear win, as it walks the cache's entries)
  auto room = [&] {
    const int a = winograd_seconds(p, 2, 4, nt, pass, false, held) < winograd_seconds(p, 4, 4, nt, pass, false, held)
                      ? 4 : 6;
    const int64_t u_bytes = int64_t{a} * a * p.cin * p.cout * p.G * 4;
    return held - cached_bytes_of(weights) + u_bytes <= get_winograd_cache_limit();
  };
  const bool clear = best(false) < exact / kMeasureBand && room();
  // measured already, and the exact engine won with the weights cached: it
  // wins all the more when they change, so the weights need no reading
  if (!clear && measured_exact) return WinogradVerdict::exact;
  // Clear wins are taken; near ones measured on the calls themselves,
  // except under deterministic algorithms (a timing may order them
  // differently from run to run): there the model's order, with a margin.
  const bool fixed = get_deterministic();
  const WeightsState state = observe_weights(weights, weight_bytes, kernel_view(g, pass), p, seen);
  if (state == WeightsState::stable) {
    // cached: weights seen unchanged on consecutive calls
    if (clear) return WinogradVerdict::winograd;
    if (fixed) return best(false) < 0.8 * exact ? WinogradVerdict::winograd : WinogradVerdict::exact;
    return WinogradVerdict::measure;
  }
  // transformed on every call: the gradients of training (its weights
  // change every step; the weight gradient has none). A forward pass takes
  // the model's choice here, so that inference from a fresh model gives the
  // same result whatever this process measured before (a new tensor may
  // reuse the address of one whose changes were seen).
  if (pass == ConvPass::forward || fixed || best(true) >= kMeasureBand * exact) return WinogradVerdict::exact;
  return WinogradVerdict::measure_transforming;
}

namespace {

// Everything one call allocates besides its result: each thread's blocks
// and strips, the packed weights (forward, data gradient) or the
// transformed sums (each thread's, weight gradient), and the padded
// gradient of a data gradient under a padding mode other than zeros.
template <typename T>
int64_t call_bytes(const ConvGeometry& g, const Problem& p, int m, ConvPass pass, int threads) {
  const char* op = "conv2d";
  using detail::checked_add;
  using detail::checked_mul;
  const bool weight = pass == ConvPass::backward_weight;
  const Plan<T> pl = weight ? make_weight_plan<T>(p, m) : make_plan<T>(p, m, threads);
  const int64_t a2 = int64_t{pl.alpha} * pl.alpha, L = pl.L;
  const int64_t strip = checked_mul((ceil_div(L, pl.tw) + 1) * m + 2, checked_add(checked_mul(pl.tw, m, op), 2, op), op);
  int64_t per_thread = checked_mul(checked_add(checked_mul(a2, p.cin + p.cout, op), a2 + m * m, op), L, op);
  per_thread = checked_add(checked_add(per_thread, 2 * a2 * kSkew, op), strip, op);
  // each thread's weight packer: taps and tail of a piece of at most
  // WeightPacker::kLanes lanes, and its offset tables (int32, no wider than T)
  if (!weight) per_thread = checked_add(per_thread, (9 + a2 + 6) * WeightPacker<T>::kLanes, op);
  int64_t elems = checked_mul(per_thread, threads, op);
  const int64_t packed = weight ? checked_mul(checked_mul(checked_mul(p.G * a2, p.cout, op), p.cin, op), threads, op)
                                : checked_mul(checked_mul(checked_mul(p.G * a2, pl.kb, op), p.cin, op), pl.uk->mr, op);
  elems = checked_add(elems, packed, op);
  if (pass == ConvPass::backward_data && g.mode != PaddingMode::zeros)
    elems = checked_add(elems, checked_mul(checked_mul(p.N * p.G * p.cout, p.Ho, op), p.Wo, op), op);
  return checked_mul(elems, static_cast<int64_t>(sizeof(T)), op);
}

}  // namespace

int64_t conv_winograd_workspace_bytes(const ConvGeometry& g, int m, int64_t es, ConvPass pass, int threads) {
  const Problem p = pass == ConvPass::backward_data ? backward_data_problem(g) : forward_problem(g);
  return es == 4 ? call_bytes<float>(g, p, m, pass, threads) : call_bytes<double>(g, p, m, pass, threads);
}

namespace {

// Calls with non-finite values run an exact engine: im2col while its
// workspace fits the memory limit beside what the call holds (the budget
// check counted Winograd's), else the reference, which needs none.
template <typename T>
bool im2col_fits(const ConvGeometry& g, ConvPass pass) {
  try {
    check_memory("conv2d", conv_im2col_workspace_bytes(g, sizeof(T), pass, get_num_threads()));
    return true;
  } catch (const value_error&) {
    return false;
  }
}

}  // namespace

template <typename T>
void conv_forward_winograd(const ConvGeometry& g, int m, const T* src, const T* weights, const T* bias, T* dst,
                           const WeightsFingerprint* seen, bool* transformed) {
  const Problem p = forward_problem(g);
  const int64_t cin = g.C_in_g;
  const KernelView kv = kernel_view(g, ConvPass::forward);
  if (!winograd<T>(p, m, weights, g.C_out * cin * 9, kv, seen, src, bias, dst, transformed))
    im2col_fits<T>(g, ConvPass::forward) ? conv_forward_im2col<T>(g, src, weights, bias, dst)
                                          : ref::conv_forward<T>(g, src, weights, bias, dst);
}

template <typename T>
void conv_backward_data_winograd(const ConvGeometry& g, int m, const T* diff_dst, const T* weights, T* diff_src,
                                 const WeightsFingerprint* seen, bool* transformed) {
  const Problem p = backward_data_problem(g);
  const KernelView kv = kernel_view(g, ConvPass::backward_data);
  const int64_t wn = g.C_out * g.C_in_g * 9;
  bool ok;
  if (g.mode == PaddingMode::zeros) {
    ok = winograd<T>(p, m, weights, wn, kv, seen, diff_dst, nullptr, diff_src, transformed);
  } else {
    // the gradient of the padded input, then each padded position's share
    // added to the input position it copies
    HostBuffer<T> padded(p.N * p.G * p.cout * p.Ho * p.Wo);
    ok = winograd<T>(p, m, weights, wn, kv, seen, diff_dst, nullptr, padded.data(), transformed);
    if (ok) {
      const int64_t H = g.in[1], W = g.in[2], Hp = p.Ho, Wp = p.Wo;
      const std::vector<int64_t> rows = source_index(Hp, g.pad_before[1], g.pad_after[1], H, g.mode);
      const std::vector<int64_t> cols = source_index(Wp, g.pad_before[2], g.pad_after[2], W, g.mode);
      const int64_t planes = g.N * g.C_in;
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (planes * Hp * Wp > 65536)
      for (int64_t q = 0; q < planes; ++q) {
        const T* from = padded.data() + q * Hp * Wp;
        T* to = diff_src + q * H * W;
        std::fill(to, to + H * W, T(0));
        for (int64_t yy = 0; yy < Hp; ++yy)
          for (int64_t xx = 0; xx < Wp; ++xx) to[rows[yy] * W + cols[xx]] += from[yy * Wp + xx];
      }
    }
  }
  if (!ok) {
    std::fill(diff_src, diff_src + g.N * g.C_in * g.in[1] * g.in[2], T(0));
    im2col_fits<T>(g, ConvPass::backward_data) ? conv_backward_data_im2col<T>(g, diff_dst, weights, diff_src)
                                                : ref::conv_backward_data<T>(g, diff_dst, weights, diff_src);
  }
}

template <typename T>
void conv_backward_weight_winograd(const ConvGeometry& g, int m, const T* diff_dst, const T* src, T* diff_weights) {
  const Problem p = forward_problem(g);
  Plan<T> pl = make_weight_plan<T>(p, m);
  if (pl.tiles == 0) return std::fill(diff_weights, diff_weights + g.C_out * g.C_in_g * 9, T(0));  // no images
  const int64_t a2 = int64_t{pl.alpha} * pl.alpha, per_group = a2 * p.cout * p.cin;
  HostBuffer<T> du(p.G * per_group);  // written by the runner's first blocks
  bool ok;
  // (TileRunner reads grad_out through its dst pointer)
  T* dy = const_cast<T*>(diff_dst);
  if (m == 2)
    ok = TileRunner<T, 2>(p, pl, nullptr, src, nullptr, dy).run_weight_gradient(du.data());
  else if (m == 4)
    ok = TileRunner<T, 4>(p, pl, nullptr, src, nullptr, dy).run_weight_gradient(du.data());
  else
    ok = TileRunner<T, 6>(p, pl, nullptr, src, nullptr, dy).run_weight_gradient(du.data());
  if (!ok) {
    std::fill(diff_weights, diff_weights + g.C_out * g.C_in_g * 9, T(0));
    return im2col_fits<T>(g, ConvPass::backward_weight)
               ? conv_backward_weight_im2col<T>(g, diff_dst, src, diff_weights)
               : ref::conv_backward_weight<T>(g, diff_dst, src, diff_weights);
  }
  // dW = GT du G per (k, c) pair, 16 input channels at a time
  const Transforms<T> tm;
  const int64_t rows = p.G * p.cout, V = kWinogradLanes;
#pragma omp parallel num_threads(get_num_threads()) if (rows * p.cin > 4096)
  {
    std::vector<T> tail(static_cast<std::size_t>(a2 * V)), out(static_cast<std::size_t>(9 * V));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t gi = r / p.cout, k = r % p.cout;
      for (int64_t c0 = 0; c0 < p.cin; c0 += V) {
        const int64_t n = std::min(V, p.cin - c0);
        const T* at = du.data() + gi * per_group + k * p.cin + c0;
        int64_t stride = p.cout * p.cin;
        if (n < V) {  // a last, partial group of channels: copied out with zeros after it
          for (int64_t xi = 0; xi < a2; ++xi)
            for (int64_t l = 0; l < V; ++l) tail[xi * V + l] = l < n ? at[xi * stride + l] : T(0);
          at = tail.data();
          stride = V;
        }
        tm.grad_weights(m, at, stride, out.data());
        T* dw = diff_weights + (r * p.cin + c0) * 9;
        for (int64_t l = 0; l < n; ++l)
          for (int tap = 0; tap < 9; ++tap) dw[l * 9 + (g.flip ? 8 - tap : tap)] = out[tap * V + l];
      }
    }
  }
}

template void conv_forward_winograd<float>(const ConvGeometry&, int, const float*, const float*, const float*,
                                           float*, const WeightsFingerprint*, bool*);
template void conv_forward_winograd<double>(const ConvGeometry&, int, const double*, const double*, const double*,
                                            double*, const WeightsFingerprint*, bool*);
template void conv_backward_data_winograd<float>(const ConvGeometry&, int, const float*, const float*, float*,
                                                 const WeightsFingerprint*, bool*);
template void conv_backward_data_winograd<double>(const ConvGeometry&, int, const double*, const double*, double*,
                                                  const WeightsFingerprint*, bool*);
template void conv_backward_weight_winograd<float>(const ConvGeometry&, int, const float*, const float*, float*);
template void conv_backward_weight_winograd<double>(const ConvGeometry&, int, const double*, const double*,
                                                    double*);

}  // namespace cnncore::cpu

namespace cnncore {

void set_winograd_cache_limit(int64_t bytes) {
  if (bytes < 0) throw value_error(detail::str("set_winograd_cache_limit: bytes must be >= 0, got ", bytes));
  auto& c = cpu::weight_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.limit = bytes;
  c.trim(bytes);
}

int64_t get_winograd_cache_limit() {
  auto& c = cpu::weight_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.limit;
}

int64_t winograd_cache_bytes() {
  auto& c = cpu::weight_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.held;
}

}  // namespace cnncore
