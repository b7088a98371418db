// How a GEMM micro-kernel finds its operands. A: APacked (an MR-row sliver,
// a[p * MR + i]), AColumns (see there) or AStrided (row i of a row-major matrix read in place,
// rows past m repeat row m - 1 so that nothing outside A is read).
// AOffsets: row i at a + off[i] (rows past m repeat row m - 1), the rows
// of a convolution's patch matrix read in place for its weight gradient.
// Row p of B: BStrided (b + p * ldb: a packed
// sliver or a row-major matrix read in place) or BShifted (b + off[p]: the
// rows of a stride-1 convolution read in place from a padded image, one
// offset per (channel, tap)). Included inside each ISA file's anonymous
// namespace.
#pragma once

template <typename T, int MR>
struct APacked {
  const T* a;
  const T* at(int i, int64_t p) const { return a + p * MR + i; }
};

template <typename T, int MR>
struct AStrided {
  const T* r[MR];
  AStrided(const T* a, int64_t lda, int64_t m) {
    for (int i = 0; i < MR; ++i) r[i] = a + (i < m ? i : m - 1) * lda;
  }
  const T* at(int i, int64_t p) const { return r[i] + p; }
};

template <typename T, int MR>
struct AOffsets {
  const T* r[MR];
  AOffsets(const T* a, const int64_t* off, int64_t m) {
    for (int i = 0; i < MR; ++i) r[i] = a + off[i < m ? i : m - 1];
  }
  const T* at(int i, int64_t p) const { return r[i] + p; }
};

// AColumns: column p of A at a + off[p] (element (i, p) at a[off[p] + i]);
// a + off[p] + i must be readable for every i < MR (the values of rows past
// m are computed and discarded). A batch-reduce GEMM's gathered columns.
template <typename T, int MR>
struct AColumns {
  const T* a;
  const int64_t* off;
  const T* at(int i, int64_t p) const { return a + off[p] + i; }
};

// A prefetch the optimiser keeps: GCC 12 dropped __builtin_prefetch from
// the shifted kernels once the one-vector tiles were instantiated beside
// them (seen in the object code).
inline void prefetch_line(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}

// Prefetches the `bytes` from p: every cache line they touch.
inline void prefetch_span(const void* p, int bytes) {
  const char* q = static_cast<const char*>(p);
  for (int o = 0; o < bytes; o += 64) prefetch_line(q + o);
  prefetch_line(q + bytes - 1);  // the last line, where q is not at a line's start
}

// prefetch(p, kc, bytes), called at step p of kc: asks ahead of use for rows
// the hardware cannot guess (the `bytes` of a tile's row). BStrided: none
// (a fixed stride); BShifted: row p + 8 (the order of rows is a table's).
template <typename T>
struct BStrided {
  const T* b;
  int64_t ldb;
  const T* operator()(int64_t p) const { return b + p * ldb; }
  void prefetch(int64_t, int64_t, int) const {}
};

template <typename T>
struct BShifted {
  const T* b;
  const int64_t* off;
  const T* operator()(int64_t p) const { return b + off[p]; }
  void prefetch(int64_t p, int64_t kc, int bytes) const {
    if (p + 8 < kc) {
      const char* r = reinterpret_cast<const char*>(b + off[p + 8]);
      prefetch_line(r);
      prefetch_line(r + bytes - 1);
    }
  }
};

// BStrided that also fetches rows of another operand for later use: at
// every 2^shift-th step p, the first `bytes` of row r = p >> shift of
// `ahead` (row r at ahead + r * ld, r < count). The transposed data
// gradient (conv-im2col.cpp) packs W a band of columns at a time; while one
// band's tiles compute, each prefetches a share of the next band's rows,
// which no hardware prefetcher would follow (one or a few lines a row, 18
// KiB apart at 512 -> 512).
template <typename T>
struct BStridedAhead {
  const T* b;
  int64_t ldb;
  const T* ahead;
  int64_t ld, count;
  int shift, bytes;
  const T* operator()(int64_t p) const { return b + p * ldb; }
  void prefetch(int64_t p, int64_t, int) const {
    const int64_t r = p >> shift;
    if ((p & ((int64_t(1) << shift) - 1)) != 0 || r >= count) return;
    prefetch_span(ahead + r * ld, bytes);
  }
};

// Defines the registered variants of one tile (gemm-kernels.inc); the
// caller spells out four names, and the fifth is gemm_name##_ahead (the
// packed variant with BStridedAhead). BODY is the kernel template
// instantiated for the tile, e.g. gemm_vec_kernel<Zmm<float>, 8, 2>.
// Expanded inside namespace cnncore::cpu by each ISA's source file.
#define CNNCORE_DEFINE_GEMM_VARIANTS(T, MR, BODY, gemm_name, igemm_name, wgemm_name, brgemm_name)                \
  void gemm_name(int64_t kc, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m, int64_t n,       \
                 bool accumulate) {                                                                              \
    BODY(kc, APacked<T, MR>{a}, BStrided<T>{b, ldb}, c, ldc, m, n, accumulate);                                   \
  }                                                                                                              \
  void gemm_name##_ahead(int64_t kc, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m, int64_t n, \
                         bool accumulate, const T* ahead, int64_t ld, int64_t count, int shift, int bytes) {     \
    BODY(kc, APacked<T, MR>{a}, (BStridedAhead<T>{b, ldb, ahead, ld, count, shift, bytes}), c, ldc, m, n, accumulate); \
  }                                                                                                              \
  void igemm_name(int64_t kc, const T* a, int64_t lda, const T* b, const int64_t* off, T* c, int64_t ldc,         \
                  int64_t m, int64_t n, bool accumulate) {                                                       \
    BODY(kc, AStrided<T, MR>(a, lda, m), BShifted<T>{b, off}, c, ldc, m, n, accumulate);                          \
  }                                                                                                              \
  void wgemm_name(int64_t kc, const T* a, const int64_t* off, const T* b, int64_t ldb, T* c, int64_t ldc,         \
                  int64_t m, int64_t n, bool accumulate) {                                                       \
    BODY(kc, AOffsets<T, MR>(a, off, m), BStrided<T>{b, ldb}, c, ldc, m, n, accumulate);                          \
  }                                                                                                              \
  void brgemm_name(int64_t kc, const T* a, const int64_t* aoff, const T* b, const int64_t* boff, T* c,            \
                   int64_t ldc, int64_t m, int64_t n, bool accumulate) {                                         \
    BODY(kc, AColumns<T, MR>{a, aoff}, BShifted<T>{b, boff}, c, ldc, m, n, accumulate);                           \
  }
