// Portable bodies of the locally connected convolution micro-kernels. Each
// ISA's source file (local-conv-ukernels-*.cpp) includes this inside an
// anonymous namespace, so that instantiations compiled with different flags
// never merge at link time, and exports named instantiations. V is the number
// of lanes of one vector register for T; the fixed-size inner loops let the
// compiler keep every accumulator in a register.
//
// Both kernels read their operands in place (no packing): the weights of a
// locally connected layer are used by only a few columns (images), so
// repacking them would cost as much as the arithmetic.
#pragma once

#include <cstdint>

// a[v] += a[v + W] for v < W, halving W down to 4 lanes.
template <typename T, int W>
inline void local_fold(T* a) {
  if constexpr (W >= 4) {
#pragma omp simd
    for (int v = 0; v < W; ++v) a[v] += a[v + W];
    local_fold<T, W / 2>(a);
  }
}

// Y[m*ldy + o] = sum_k P[m*ldp + k] * W[o*ldw + k] for an MB x OB tile, over
// nv full vectors of W, then (when Wt) one more vector whose W values come
// from Wt[o*V + v] (the last K % V values of each row, zero-padded; the rows
// of P are zero-padded to match), so no scalar remainder loop is needed.
template <typename T, int V, int MB, int OB>
inline void local_dot_tile(int64_t nv, const T* __restrict P, int64_t ldp, const T* __restrict W, int64_t ldw,
                           const T* __restrict Wt, T* __restrict Y, int64_t ldy) {
  T acc[MB][OB][V];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < OB; ++j)
#pragma omp simd
      for (int v = 0; v < V; ++v) acc[i][j][v] = T(0);
  for (int64_t k = 0; k < nv * V; k += V)
    for (int i = 0; i < MB; ++i)
      for (int j = 0; j < OB; ++j) {
        const T* p = P + i * ldp + k;
        const T* w = W + j * ldw + k;
#pragma omp simd
        for (int v = 0; v < V; ++v) acc[i][j][v] += p[v] * w[v];
      }
  if (Wt)
    for (int i = 0; i < MB; ++i)
      for (int j = 0; j < OB; ++j) {
        const T* p = P + i * ldp + nv * V;
        const T* w = Wt + j * V;
#pragma omp simd
        for (int v = 0; v < V; ++v) acc[i][j][v] += p[v] * w[v];
      }
  // Horizontal sums: fold each accumulator to 4 lanes with whole-vector adds,
  // then add those lanes.
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < OB; ++j) {
      T* a = acc[i][j];
      local_fold<T, V / 2>(a);
      if constexpr (V >= 4)
        Y[i * ldy + j] = (a[0] + a[2]) + (a[1] + a[3]);
      else
        Y[i * ldy + j] = V == 2 ? a[0] + a[V - 1] : a[0];
    }
}

// Y (M x O, row stride ldy) = P (M x K, row stride ldp) * W^T, W (O x K)
// row-major. When K % V != 0, the rows of P are zero-padded to a multiple of
// V and Wt (O x V) holds the last K % V values of each row of W, zero-padded.
// MB x OB accumulators of V lanes stay in registers (2 x 4 for 16 vector
// registers, 4 x 4 for 32).
template <typename T, int V, int MB>
void local_dot_nt_body(int64_t M, int64_t O, int64_t K, const T* P, int64_t ldp, const T* W, const T* Wt, T* Y,
                       int64_t ldy) {
  constexpr int OB = 4;
  const int64_t nv = K / V;
  const T* wt = K % V ? Wt : nullptr;
  int64_t o = 0;
  for (; o + OB <= O; o += OB) {
    const T* w = W + o * K;
    const T* t = wt ? wt + o * V : nullptr;
    int64_t m = 0;
    for (; m + MB <= M; m += MB) local_dot_tile<T, V, MB, OB>(nv, P + m * ldp, ldp, w, K, t, Y + m * ldy + o, ldy);
    if (MB > 2 && m + 2 <= M) {
      local_dot_tile<T, V, 2, OB>(nv, P + m * ldp, ldp, w, K, t, Y + m * ldy + o, ldy);
      m += 2;
    }
    for (; m < M; ++m) local_dot_tile<T, V, 1, OB>(nv, P + m * ldp, ldp, w, K, t, Y + m * ldy + o, ldy);
  }
  for (; o < O; ++o) {
    const T* w = W + o * K;
    const T* t = wt ? wt + o * V : nullptr;
    int64_t m = 0;
    for (; m + MB <= M; m += MB) local_dot_tile<T, V, MB, 1>(nv, P + m * ldp, ldp, w, K, t, Y + m * ldy + o, ldy);
    for (; m < M; ++m) local_dot_tile<T, V, 1, 1>(nv, P + m * ldp, ldp, w, K, t, Y + m * ldy + o, ldy);
  }
}

// C[i*ldc + n] (+)= sum_p A[i*sai + p*sap] * B[p*ldb + n] for an MB x NW tile.
template <typename T, int MB, int NW>
inline void local_bcast_tile(int64_t Kd, const T* __restrict A, int64_t sai, int64_t sap, const T* __restrict B,
                             int64_t ldb, T* __restrict C, int64_t ldc, bool accumulate) {
  T acc[MB][NW];
  for (int i = 0; i < MB; ++i)
#pragma omp simd
    for (int n = 0; n < NW; ++n) acc[i][n] = accumulate ? C[i * ldc + n] : T(0);
  for (int64_t p = 0; p < Kd; ++p) {
    const T* b = B + p * ldb;
    for (int i = 0; i < MB; ++i) {
      const T a = A[i * sai + p * sap];
#pragma omp simd
      for (int n = 0; n < NW; ++n) acc[i][n] += a * b[n];
    }
  }
  for (int i = 0; i < MB; ++i)
#pragma omp simd
    for (int n = 0; n < NW; ++n) C[i * ldc + n] = acc[i][n];
}

// Columns [n, n + NW) of every row, four rows at a time.
template <typename T, int NW>
inline void local_bcast_columns(int64_t M, int64_t n, int64_t Kd, const T* A, int64_t sai, int64_t sap, const T* B,
                                int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  int64_t i = 0;
  for (; i + 4 <= M; i += 4)
    local_bcast_tile<T, 4, NW>(Kd, A + i * sai, sai, sap, B + n, ldb, C + i * ldc + n, ldc, accumulate);
  for (; i < M; ++i)
    local_bcast_tile<T, 1, NW>(Kd, A + i * sai, sai, sap, B + n, ldb, C + i * ldc + n, ldc, accumulate);
}

// The last N - n < 2*NW columns, in blocks of NW, NW/2, ..., 1 (each at most once).
template <typename T, int NW>
inline void local_bcast_remainder(int64_t M, int64_t N, int64_t n, int64_t Kd, const T* A, int64_t sai, int64_t sap,
                                  const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  if constexpr (NW >= 1) {
    if (N - n >= NW) {
      local_bcast_columns<T, NW>(M, n, Kd, A, sai, sap, B, ldb, C, ldc, accumulate);
      n += NW;
    }
    local_bcast_remainder<T, NW / 2>(M, N, n, Kd, A, sai, sap, B, ldb, C, ldc, accumulate);
  }
}

// C (M x N, row stride ldc) (+)= A (M x Kd, element (i, p) at A[i*sai + p*sap])
// * B (Kd x N, row-major, row stride ldb): every column vector of C is a sum of
// rows of B scaled by broadcast entries of A. Tiles of 4 rows x 2V columns.
template <typename T, int V>
void local_gemm_bcast_body(int64_t M, int64_t N, int64_t Kd, const T* A, int64_t sai, int64_t sap, const T* B,
                           int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  int64_t n = 0;
  for (; n + 2 * V <= N; n += 2 * V)
    local_bcast_columns<T, 2 * V>(M, n, Kd, A, sai, sap, B, ldb, C, ldc, accumulate);
  local_bcast_remainder<T, V>(M, N, n, Kd, A, sai, sap, B, ldb, C, ldc, accumulate);
}
