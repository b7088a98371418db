// Blocked GEMM on packed panels with per-ISA micro-kernels.
//
//   C (M x N) = [C +] op(A) (M x K) * op(B) (K x N), all row-major,
//   op(A)(i, p) = transA ? A[p*lda + i] : A[i*lda + p]   (likewise B).
#pragma once

#include <cstdint>
#include <functional>

#include "cnncore/runtime.hpp"

namespace cnncore::cpu {

// Micro-kernel contract: `a` holds kc steps of MR values (a[p*MR + i]), `b`
// holds kc rows of NR values, row p at b + p*ldb (ldb = NR for a packed
// sliver; every row has NR readable values). Computes the MR x NR tile
// sum_p a[p][i] * b[p][j] and writes its top-left m x n corner (m <= MR,
// n <= NR) to c (row stride ldc), adding to c when `accumulate`.
template <typename T>
using GemmUkernelFn = void (*)(int64_t kc, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m,
                               int64_t n, bool accumulate);

// The same tile reading A in place (row i at a + i*lda, i < m) and row p
// of B at b + off[p] (see gemm-rows.hpp); every row of B has NR readable
// values.
template <typename T>
using GemmShiftedUkernelFn = void (*)(int64_t kc, const T* a, int64_t lda, const T* b, const int64_t* off, T* c,
                                      int64_t ldc, int64_t m, int64_t n, bool accumulate);

// The same tile reading row i of A at a + off[i] (i < m) and B packed or
// strided as in GemmUkernelFn.
template <typename T>
using GemmOffsetAUkernelFn = void (*)(int64_t kc, const T* a, const int64_t* off, const T* b, int64_t ldb, T* c,
                                      int64_t ldc, int64_t m, int64_t n, bool accumulate);

// The same tile reading column p of A at a + aoff[p] (element (i, p) at
// a[aoff[p] + i]; MR values readable there) and row p of B at b + boff[p]
// (NR values readable): a batch-reduce GEMM whose K runs over gathered
// (column, row) pairs, e.g. a convolution's weight gradient summed over the
// (output, input) position pairs of one tap.
template <typename T>
using GemmBrgemmUkernelFn = void (*)(int64_t kc, const T* a, const int64_t* aoff, const T* b, const int64_t* boff,
                                     T* c, int64_t ldc, int64_t m, int64_t n, bool accumulate);

// The packed kernel (GemmUkernelFn) that also prefetches rows of another
// operand for a later call: at every 2^shift-th step p, the first `bytes`
// of row r = p >> shift of `ahead` (row r at ahead + r * ld, r < count).
// For operands read from a wide matrix at a large stride, whose rows no
// hardware prefetcher follows. The result is the packed kernel's.
template <typename T>
using GemmAheadUkernelFn = void (*)(int64_t kc, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m,
                                    int64_t n, bool accumulate, const T* ahead, int64_t ld, int64_t count, int shift,
                                    int bytes);

template <typename T>
struct GemmUkernel {
  const char* name;  // e.g. "f32_gemm_6x16__avx2_fma"
  int mr, nr;
  Isa isa;  // the kernel level it needs
  GemmUkernelFn<T> fn;
  GemmShiftedUkernelFn<T> shifted;  // e.g. "f32_igemm_6x16__avx2_fma"
  GemmOffsetAUkernelFn<T> offset_a;  // e.g. "f32_wgemm_6x16__avx2_fma"
  GemmBrgemmUkernelFn<T> brgemm;  // e.g. "f32_brgemm_6x16__avx2_fma"
  GemmAheadUkernelFn<T> ahead;    // e.g. "f32_gemm_6x16__avx2_fma_ahead"
};

// Every micro-kernel built into this library (from gemm-kernels.inc), and the
// one the current kernel level selects (its widest tile).
template <typename T> const GemmUkernel<T>* gemm_ukernels(int* count);
template <typename T> const GemmUkernel<T>& gemm_ukernel_for_current_isa();

// The kernel for an m x n product: the current level's, unless a narrower
// SIMD kernel this CPU runs leaves fewer lanes idle on the shape (computes
// under 90% of the padded elements round_up(m, mr) * round_up(n, nr)); e.g.
// a convolution's weight gradient with 16 output channels takes AVX-512's
// 16-wide tile rather than half of its 32-wide one. Of kernels of one width
// only the highest level's competes (AVX-512's 16 x 16 over AVX2's 6 x 16).
template <typename T> const GemmUkernel<T>& gemm_ukernel_for_shape(int64_t m, int64_t n);
// Cache blocking of the GEMM for a kernel's tile: kc steps of K per packed
// sliver, mc rows of A per block (kept in L2), nc columns of B per panel.
// Derived once from the CPU's cache sizes (sysconf, with defaults where the
// system does not say).
struct GemmBlocking {
  int64_t kc, mc, nc;
};
GemmBlocking gemm_blocking(int mr, int nr, int elem_size);

template <typename T>
void gemm(const GemmUkernel<T>& uk, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const T* A,
          int64_t lda, const T* B, int64_t ldb, bool accumulate, T* C, int64_t ldc, bool parallel);

// C (M x N, row stride ldc) = [C +] A (M x K, row-major, read in place) * B
// where B(p, j) = b[off[p] + j] (a stride-1 convolution's patch matrix read
// from its padded image); b[off[p] + j] must be readable for every j below N
// rounded up to the kernel's NR.
template <typename T>
void gemm_shifted(const GemmUkernel<T>& uk, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* b,
                  const int64_t* off, bool accumulate, T* C, int64_t ldc, bool parallel);

// gemm_shifted on the columns r * S + [0, L) for r < R only (the columns
// between are neither computed nor written): a grid whose rows end in
// columns that are no output.
template <typename T>
void gemm_shifted_segments(const GemmUkernel<T>& uk, int64_t M, int64_t R, int64_t L, int64_t S, int64_t K,
                           const T* A, int64_t lda, const T* b, const int64_t* off, bool accumulate, T* C,
                           int64_t ldc, bool parallel);

// gemm_shifted over a grid of Q columns in rows of S, written straight to
// the output rows instead of the grid: grid column q = r * S + c goes to
// dst[i * ldd + r * L + c] (+ bias[i] when given) for c < L, and columns
// c >= L are computed and dropped. Each tile runs over all of K into a
// buffer in L1, so the grid is never stored (for a big map it was written
// to memory and read back by a separate copy: 9% of ResNet's 7x7/2 stem).
template <typename T>
void gemm_shifted_to_rows(const GemmUkernel<T>& uk, int64_t M, int64_t Q, int64_t S, int64_t L, int64_t K,
                          const T* A, int64_t lda, const T* b, const int64_t* off, const T* bias, T* dst,
                          int64_t ldd, bool parallel);
// The same with A supplied by a packer: pack(i0, m, panel, ld) writes
// A(i0 + i, p) to panel[i * ld + p] for i < m and every p < K. It is
// called per MR-row panel as the tiles need them when A is much larger than
// L2 (so a transposition of A, such as a data gradient's of its weights, is
// never stored whole), else once per MR rows into one buffer.
template <typename T>
using GemmPackA = std::function<void(int64_t i0, int64_t m, T* panel, int64_t ld)>;
template <typename T>
void gemm_shifted_to_rows(const GemmUkernel<T>& uk, int64_t M, int64_t Q, int64_t S, int64_t L, int64_t K,
                          const GemmPackA<T>& pack, const T* b, const int64_t* off, const T* bias, T* dst,
                          int64_t ldd, bool parallel);

// C (M x N, row stride ldc) = [C +] A * B where A(i, q) = a[off[i] + q] (a
// stride-1 convolution's patch matrix read from its padded image) and B is
// packed in NR-column slivers over all of K: sliver s at bpack + s * K * NR,
// B(q, s * NR + j) at [q * NR + j].
template <typename T>
void gemm_offset_a(const GemmUkernel<T>& uk, int64_t M, int64_t N, int64_t K, const T* a, const int64_t* off,
                   const T* bpack, bool accumulate, T* C, int64_t ldc, bool parallel);

// gemm_offset_a summing over the positions r * S + [0, L) of a for r < R
// only: B is packed over those R * L positions (segment r at K index r * L).
template <typename T>
void gemm_offset_a_segments(const GemmUkernel<T>& uk, int64_t M, int64_t N, int64_t R, int64_t L, int64_t S,
                            const T* a, const int64_t* off, const T* bpack, bool accumulate, T* C, int64_t ldc,
                            bool parallel);

// C (M x N, row stride ldc) = [C +] A * B where A(i, p) = a[aoff[p] + i]
// and B(p, j) = b[boff[p] + j]: a batch-reduce GEMM over K gathered
// (column of A, row of B) pairs. a[aoff[p] + i] must be readable for every i
// below M rounded up to the kernel's MR, b[boff[p] + j] for every j below N
// rounded up to its NR (the values past M and N are computed and dropped).
template <typename T>
void gemm_brgemm(const GemmUkernel<T>& uk, int64_t M, int64_t N, int64_t K, const T* a, const int64_t* aoff,
                 const T* b, const int64_t* boff, bool accumulate, T* C, int64_t ldc, bool parallel);

// Same, with the kernel of the current level.
template <typename T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, bool accumulate, T* C, int64_t ldc, bool parallel);

}  // namespace cnncore::cpu
