// The Winograd F(m, 3) transforms over blocks of tiles, vectorised across
// tiles: lane l of every array is tile l of the block; the first n lanes are
// transformed (n a multiple of 16). Included inside an anonymous namespace by
// f32-elementwise-level.inc (float, once per kernel level) and by
// conv-winograd.cpp (double, baseline flags).
//
// Every transform is one two-sided product Y = P X PT per lane (sandwich
// below) with a constant matrix P; after the loops over its entries are
// unrolled the zero entries vanish and the unit ones become additions:
//
//   input:   v[xi * vs + l]      = (BT d_l B)[xi],   d_l[y][x] = d[(y * alpha + x) * L + l];
//   output:  y[(i * m + j) * L + l] = (AT M_l A)[i][j], M_l[xi] = mm[xi * ms + l]
//   weights: u[xi * us + l]      = (G g_l GT)[xi],   g_l[r][s] = g[(r * 3 + s) * L + l]
// and for the weight gradient (the adjoints of the output and weight
// transforms):
//   grad_out: s[xi * ss + l]     = (A e_l AT)[xi],   e_l[i][j] = e[(i * m + j) * L + l]
//   grad_weights: g[(r * 3 + s) * 16 + l] = (GT du_l G)[r][s], du_l[xi] = du[xi * ds + l]
//             (16 lanes)
// with xi = i * alpha + j. input and weights return whether every value
// they wrote is finite.
#include "cpu/kernels/winograd-matrices.hpp"

constexpr int kWinogradLanes = 16;

// The matrices P of the five transforms, R x S, by entry.
template <int M>
struct WinogradBT {  // input
  using W = cnncore::cpu::winograd::Transforms<M>;
  static constexpr int rows = W::alpha, cols = W::alpha;
  static constexpr double at(int r, int c) { return W::BT[r][c]; }
};
template <int M>
struct WinogradAT {  // output
  using W = cnncore::cpu::winograd::Transforms<M>;
  static constexpr int rows = M, cols = W::alpha;
  static constexpr double at(int r, int c) { return W::AT[r][c]; }
};
template <int M>
struct WinogradG {  // weights
  using W = cnncore::cpu::winograd::Transforms<M>;
  static constexpr int rows = W::alpha, cols = 3;
  static constexpr double at(int r, int c) { return W::G[r][c]; }
};
template <int M>
struct WinogradA {  // grad_out: AT's transpose
  using W = cnncore::cpu::winograd::Transforms<M>;
  static constexpr int rows = W::alpha, cols = M;
  static constexpr double at(int r, int c) { return W::AT[c][r]; }
};
template <int M>
struct WinogradGT {  // grad_weights: G's transpose
  using W = cnncore::cpu::winograd::Transforms<M>;
  static constexpr int rows = 3, cols = W::alpha;
  static constexpr double at(int r, int c) { return W::G[c][r]; }
};

// Y = P X PT for lanes [0, n): X's entry (y, x) at x[(y * S + x) * xs + l],
// Y's (i, j) at y[(i * R + j) * ys + l]. With Probe, returns whether every
// value written is finite (sums of v * 0 in independent lanes: NaN once any
// v is NaN or infinite); else true.
template <typename T, class P, bool Probe>
bool sandwich(int64_t n, const T* x, int64_t xs, T* y, int64_t ys) {
  constexpr int R = P::rows, S = P::cols, V = kWinogradLanes;
  T probe[V] = {};
  for (int64_t l0 = 0; l0 < n; l0 += V) {
    T t[R][S][V];  // P X
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
      for (int c = 0; c < S; ++c) {
        T acc[V] = {};
#pragma GCC unroll 8
        for (int r = 0; r < S; ++r) {
          const T k = static_cast<T>(P::at(i, r));
          if (k == T(0)) continue;
          const T* row = x + (r * S + c) * xs + l0;
#pragma omp simd
          for (int l = 0; l < V; ++l) acc[l] += k * row[l];
        }
#pragma omp simd
        for (int l = 0; l < V; ++l) t[i][c][l] = acc[l];
      }
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < R; ++j) {
        T acc[V] = {};
#pragma GCC unroll 8
        for (int c = 0; c < S; ++c) {
          const T k = static_cast<T>(P::at(j, c));
          if (k == T(0)) continue;
#pragma omp simd
          for (int l = 0; l < V; ++l) acc[l] += k * t[i][c][l];
        }
        T* out = y + (i * R + j) * ys + l0;
#pragma omp simd
        for (int l = 0; l < V; ++l) out[l] = acc[l];
        if constexpr (Probe) {
#pragma omp simd
          for (int l = 0; l < V; ++l) probe[l] += acc[l] * T(0);
        }
      }
  }
  T all = 0;
  for (int l = 0; l < V; ++l) all += probe[l];
  return all == T(0);
}

// By tile size m (2, 4 or 6; the caller has checked it).
template <typename T, template <int> class P, bool Probe>
bool sandwich_m(int m, int64_t n, const T* x, int64_t xs, T* y, int64_t ys) {
  if (m == 2) return sandwich<T, P<2>, Probe>(n, x, xs, y, ys);
  if (m == 4) return sandwich<T, P<4>, Probe>(n, x, xs, y, ys);
  return sandwich<T, P<6>, Probe>(n, x, xs, y, ys);
}

template <typename T>
bool winograd_input_body(int m, int64_t n, int64_t L, const T* d, T* v, int64_t vs) {
  return sandwich_m<T, WinogradBT, true>(m, n, d, L, v, vs);
}

template <typename T>
void winograd_output_body(int m, int64_t n, int64_t L, const T* mm, int64_t ms, T* y) {
  sandwich_m<T, WinogradAT, false>(m, n, mm, ms, y, L);
}

template <typename T>
bool winograd_weights_body(int m, int64_t n, int64_t L, const T* g, T* u, int64_t us) {
  return sandwich_m<T, WinogradG, true>(m, n, g, L, u, us);
}

template <typename T>
void winograd_grad_out_body(int m, int64_t n, int64_t L, const T* e, T* sv, int64_t ss) {
  sandwich_m<T, WinogradA, false>(m, n, e, L, sv, ss);
}

template <typename T>
void winograd_grad_weights_body(int m, const T* du, int64_t ds, T* g) {
  sandwich_m<T, WinogradGT, false>(m, kWinogradLanes, du, ds, g, kWinogradLanes);
}

// The tiles of one tile row, `count` of them side by side in a strip of
// rows `ws` apart (tile q's top-left at s + q * m), into lanes 0 .. count-1
// of d: d[(y * alpha + x) * L + q] = s[y * ws + q * m + x]. Lanes run along
// the stores, the loads stride m (a gather at this level's width).
template <typename T, int M>
void winograd_gather_m(const T* s, int64_t ws, int64_t count, T* d, int64_t L) {
  constexpr int A = M + 2;
  for (int y = 0; y < A; ++y)
    for (int x = 0; x < A; ++x) {
      const T* from = s + y * ws + x;
      T* to = d + (y * A + x) * L;
#pragma omp simd
      for (int64_t q = 0; q < count; ++q) to[q] = from[q * M];
    }
}

// The inverse placement for the output tiles: o[i * ws + q * m + j] =
// y[(i * m + j) * L + q] for q < count.
template <typename T, int M>
void winograd_scatter_m(const T* y, int64_t L, int64_t count, T* o, int64_t ws) {
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < M; ++j) {
      const T* from = y + (i * M + j) * L;
      T* to = o + i * ws + j;
#pragma omp simd
      for (int64_t q = 0; q < count; ++q) to[q * M] = from[q];
    }
}

// Tiles of a few columns each (small maps), every lane's from its own place:
// d[(y * a + x) * L + l] = base[ro[y * L + l] + co[x * L + l]], zero where
// either offset is negative, for lanes [0, n). Returns whether every value
// gathered is finite.
// One row of lanes [0, n) of the indexed gather; adds v * 0 of every value to *probe.
template <typename T>
void gather_indexed_row(int64_t n, const int32_t* r, const int32_t* c, const T* base, T* to, T* probe) {
  for (int64_t l = 0; l < n; ++l) {
    const bool in = (r[l] | c[l]) >= 0;
    const T v = in ? base[r[l] + c[l]] : T(0);
    to[l] = v;
    *probe += v * T(0);
  }
}

#if defined(__AVX512F__)
// GCC does not emit gathers when tuning for generic x86; AVX-512's and
// AVX2's masked gathers read only the lanes inside the plane (the caller's
// includes provide immintrin.h at these levels).
inline void gather_indexed_row(int64_t n, const int32_t* r, const int32_t* c, const float* base, float* to,
                               float* probe) {
  __m512 pv = _mm512_setzero_ps();
  int64_t l = 0;
  for (; l + 16 <= n; l += 16) {
    const __m512i rv = _mm512_loadu_si512(r + l), cv = _mm512_loadu_si512(c + l);
    const __mmask16 in = _mm512_cmpge_epi32_mask(_mm512_or_si512(rv, cv), _mm512_setzero_si512());
    const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), in, _mm512_add_epi32(rv, cv), base, 4);
    _mm512_storeu_ps(to + l, v);
    pv = _mm512_fmadd_ps(v, _mm512_setzero_ps(), pv);
  }
  *probe += _mm512_reduce_add_ps(pv);
  gather_indexed_row<float>(n - l, r + l, c + l, base, to + l, probe);
}
#elif defined(__AVX2__)
inline void gather_indexed_row(int64_t n, const int32_t* r, const int32_t* c, const float* base, float* to,
                               float* probe) {
  __m256 pv = _mm256_setzero_ps();
  int64_t l = 0;
  for (; l + 8 <= n; l += 8) {
    const __m256i rv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + l));
    const __m256i cv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + l));
    // lanes inside: offsets whose OR is not negative (the mask is each lane's sign bit)
    const __m256 in = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_or_si256(rv, cv), _mm256_set1_epi32(-1)));
    const __m256 v = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, _mm256_add_epi32(rv, cv), in, 4);
    _mm256_storeu_ps(to + l, v);
    pv = _mm256_fmadd_ps(v, _mm256_setzero_ps(), pv);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, pv);
  for (float x : lanes) *probe += x;
  gather_indexed_row<float>(n - l, r + l, c + l, base, to + l, probe);
}
#endif

template <typename T>
bool winograd_gather_indexed_body(int a, int64_t n, int64_t L, const int32_t* ro, const int32_t* co, const T* base,
                                  T* d) {
  T probe = 0;
  for (int y = 0; y < a; ++y)
    for (int x = 0; x < a; ++x) gather_indexed_row(n, ro + y * L, co + x * L, base, d + (y * a + x) * L, &probe);
  return probe == T(0);
}

template <typename T>
void winograd_gather_body(int m, const T* s, int64_t ws, int64_t count, T* d, int64_t L) {
  if (m == 2) return winograd_gather_m<T, 2>(s, ws, count, d, L);
  if (m == 4) return winograd_gather_m<T, 4>(s, ws, count, d, L);
  winograd_gather_m<T, 6>(s, ws, count, d, L);
}

template <typename T>
void winograd_scatter_body(int m, const T* y, int64_t L, int64_t count, T* o, int64_t ws) {
  if (m == 2) return winograd_scatter_m<T, 2>(y, L, count, o, ws);
  if (m == 4) return winograd_scatter_m<T, 4>(y, L, count, o, ws);
  winograd_scatter_m<T, 6>(y, L, count, o, ws);
}
