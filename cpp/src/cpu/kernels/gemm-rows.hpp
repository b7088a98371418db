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

// prefetch(p, kc, bytes): asks for row p's first `bytes` ahead of use when
// the hardware cannot guess it (p < kc; no-op for rows at a fixed stride).
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
    if (p < kc) {
      const char* r = reinterpret_cast<const char*>(b + off[p]);
      prefetch_line(r);
      prefetch_line(r + bytes - 1);
    }
  }
};

// Defines the four registered variants of one tile (gemm-kernels.inc);
// the caller spells out the four names. BODY is the kernel template
// instantiated for the tile, e.g. gemm_vec_kernel<Zmm<float>, 8, 2>.
// Expanded inside namespace cnncore::cpu by each ISA's source file.
#define CNNCORE_DEFINE_GEMM_VARIANTS(T, MR, BODY, gemm_name, igemm_name, wgemm_name, brgemm_name)                \
  void gemm_name(int64_t kc, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m, int64_t n,       \
                 bool accumulate) {                                                                              \
    BODY(kc, APacked<T, MR>{a}, BStrided<T>{b, ldb}, c, ldc, m, n, accumulate);                                   \
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
