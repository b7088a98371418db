// The three Winograd F(m, 3) transforms over blocks of tiles, vectorised
// across tiles: lane l of every array is tile l of the block; arrays hold
// L lanes per row and the first n are transformed (n a multiple of 16). Included inside an anonymous namespace by
// f32-elementwise-level.inc (float, once per kernel level) and by
// conv-winograd.cpp (double, baseline flags). The matrices are constants, so
// after the loops over their entries are unrolled the zero entries vanish
// and the unit ones become additions.
//
//   input:   v[xi * vs + l]      = (BT d_l B)[xi],   d_l[y][x] = d[(y * alpha + x) * L + l];
//            returns whether every v is finite
//   output:  y[(i * m + j) * L + l] = (AT M_l A)[i][j], M_l[xi] = mm[xi * ms + l]
//   weights: u[xi * L + l]       = (G g_l GT)[xi],   g_l[r][s] = g[(r * 3 + s) * L + l]
// and for the weight gradient (the adjoints of the output and weight
// transforms):
//   grad_out: s[xi * ss + l]     = (A e_l AT)[xi],   e_l[i][j] = e[(i * m + j) * L + l]
//   grad_weights: g[(r * 3 + s) * 16 + l] = (GT du_l G)[r][s], du_l[xi] = du[xi * ds + l]
//             (16 lanes)
// with xi = i * alpha + j.
#include "cpu/kernels/winograd-matrices.hpp"

constexpr int kWinogradLanes = 16;

template <typename T, int M>
bool winograd_input_m(int64_t n, int64_t L, const T* d, T* v, int64_t vs) {
  using W = cnncore::cpu::winograd::Transforms<M>;
  constexpr int A = W::alpha, V = kWinogradLanes;
  T probe[V] = {};  // sums v * 0: NaN once any v is NaN or infinite
  for (int64_t l0 = 0; l0 < n; l0 += V) {
    T t[A][A][V];  // BT d
#pragma GCC unroll 8
    for (int i = 0; i < A; ++i)
#pragma GCC unroll 8
      for (int x = 0; x < A; ++x) {
        T acc[V] = {};
#pragma GCC unroll 8
        for (int y = 0; y < A; ++y) {
          const T c = static_cast<T>(W::BT[i][y]);
          if (c == T(0)) continue;
          const T* row = d + (y * A + x) * L + l0;
#pragma omp simd
          for (int l = 0; l < V; ++l) acc[l] += c * row[l];
        }
#pragma omp simd
        for (int l = 0; l < V; ++l) t[i][x][l] = acc[l];
      }
#pragma GCC unroll 8
    for (int i = 0; i < A; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < A; ++j) {
        T acc[V] = {};
#pragma GCC unroll 8
        for (int x = 0; x < A; ++x) {
          const T c = static_cast<T>(W::BT[j][x]);
          if (c == T(0)) continue;
#pragma omp simd
          for (int l = 0; l < V; ++l) acc[l] += c * t[i][x][l];
        }
        T* out = v + (i * A + j) * vs + l0;
#pragma omp simd
        for (int l = 0; l < V; ++l) {
          out[l] = acc[l];
          probe[l] += acc[l] * T(0);
        }
      }
  }
  T all = 0;
  for (int l = 0; l < V; ++l) all += probe[l];
  return all == T(0);
}

template <typename T, int M>
void winograd_output_m(int64_t n, int64_t L, const T* mm, int64_t ms, T* y) {
  using W = cnncore::cpu::winograd::Transforms<M>;
  constexpr int A = W::alpha, V = kWinogradLanes;
  for (int64_t l0 = 0; l0 < n; l0 += V) {
    T t[M][A][V];  // AT M
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
      for (int x = 0; x < A; ++x) {
        T acc[V] = {};
#pragma GCC unroll 8
        for (int r = 0; r < A; ++r) {
          const T c = static_cast<T>(W::AT[i][r]);
          if (c == T(0)) continue;
          const T* row = mm + (r * A + x) * ms + l0;
#pragma omp simd
          for (int l = 0; l < V; ++l) acc[l] += c * row[l];
        }
#pragma omp simd
        for (int l = 0; l < V; ++l) t[i][x][l] = acc[l];
      }
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < M; ++j) {
        T acc[V] = {};
#pragma GCC unroll 8
        for (int x = 0; x < A; ++x) {
          const T c = static_cast<T>(W::AT[j][x]);
          if (c == T(0)) continue;
#pragma omp simd
          for (int l = 0; l < V; ++l) acc[l] += c * t[i][x][l];
        }
        T* out = y + (i * M + j) * L + l0;
#pragma omp simd
        for (int l = 0; l < V; ++l) out[l] = acc[l];
      }
  }
}

template <typename T, int M>
void winograd_weights_m(int64_t n, int64_t L, const T* g, T* u) {
  using W = cnncore::cpu::winograd::Transforms<M>;
  constexpr int A = W::alpha, V = kWinogradLanes;
  for (int64_t l0 = 0; l0 < n; l0 += V) {
    T t[A][3][V];  // G g
#pragma GCC unroll 8
    for (int i = 0; i < A; ++i)
#pragma GCC unroll 3
      for (int s = 0; s < 3; ++s) {
        T acc[V] = {};
#pragma GCC unroll 3
        for (int r = 0; r < 3; ++r) {
          const T c = static_cast<T>(W::G[i][r]);
          if (c == T(0)) continue;
          const T* row = g + (r * 3 + s) * L + l0;
#pragma omp simd
          for (int l = 0; l < V; ++l) acc[l] += c * row[l];
        }
#pragma omp simd
        for (int l = 0; l < V; ++l) t[i][s][l] = acc[l];
      }
#pragma GCC unroll 8
    for (int i = 0; i < A; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < A; ++j) {
        T acc[V] = {};
#pragma GCC unroll 3
        for (int s = 0; s < 3; ++s) {
          const T c = static_cast<T>(W::G[j][s]);
          if (c == T(0)) continue;
#pragma omp simd
          for (int l = 0; l < V; ++l) acc[l] += c * t[i][s][l];
        }
        T* out = u + (i * A + j) * L + l0;
#pragma omp simd
        for (int l = 0; l < V; ++l) out[l] = acc[l];
      }
  }
}

template <typename T, int M>
void winograd_grad_out_m(int64_t n, int64_t L, const T* e, T* sv, int64_t ss) {
  using W = cnncore::cpu::winograd::Transforms<M>;
  constexpr int A = W::alpha, V = kWinogradLanes;
  for (int64_t l0 = 0; l0 < n; l0 += V) {
    T t[A][M][V];  // A e: t[i][j] = sum_p AT[p][i] e[p][j]
#pragma GCC unroll 8
    for (int i = 0; i < A; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < M; ++j) {
        T acc[V] = {};
#pragma GCC unroll 8
        for (int q = 0; q < M; ++q) {
          const T c = static_cast<T>(W::AT[q][i]);
          if (c == T(0)) continue;
          const T* row = e + (q * M + j) * L + l0;
#pragma omp simd
          for (int l = 0; l < V; ++l) acc[l] += c * row[l];
        }
#pragma omp simd
        for (int l = 0; l < V; ++l) t[i][j][l] = acc[l];
      }
#pragma GCC unroll 8
    for (int i = 0; i < A; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < A; ++j) {
        T acc[V] = {};
#pragma GCC unroll 8
        for (int q = 0; q < M; ++q) {
          const T c = static_cast<T>(W::AT[q][j]);
          if (c == T(0)) continue;
#pragma omp simd
          for (int l = 0; l < V; ++l) acc[l] += c * t[i][q][l];
        }
        T* out = sv + (i * A + j) * ss + l0;
#pragma omp simd
        for (int l = 0; l < V; ++l) out[l] = acc[l];
      }
  }
}

template <typename T, int M>
void winograd_grad_weights_m(const T* du, int64_t ds, T* g) {
  using W = cnncore::cpu::winograd::Transforms<M>;
  constexpr int A = W::alpha, V = kWinogradLanes;
  T t[3][A][V];  // GT du: t[r][j] = sum_i G[i][r] du[i][j]
#pragma GCC unroll 3
  for (int r = 0; r < 3; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < A; ++j) {
      T acc[V] = {};
#pragma GCC unroll 8
      for (int i = 0; i < A; ++i) {
        const T c = static_cast<T>(W::G[i][r]);
        if (c == T(0)) continue;
        const T* row = du + (i * A + j) * ds;
#pragma omp simd
        for (int l = 0; l < V; ++l) acc[l] += c * row[l];
      }
#pragma omp simd
      for (int l = 0; l < V; ++l) t[r][j][l] = acc[l];
    }
#pragma GCC unroll 3
  for (int r = 0; r < 3; ++r)
#pragma GCC unroll 3
    for (int s = 0; s < 3; ++s) {
      T acc[V] = {};
#pragma GCC unroll 8
      for (int j = 0; j < A; ++j) {
        const T c = static_cast<T>(W::G[j][s]);
        if (c == T(0)) continue;
#pragma omp simd
        for (int l = 0; l < V; ++l) acc[l] += c * t[r][j][l];
      }
      T* out = g + (r * 3 + s) * V;
#pragma omp simd
      for (int l = 0; l < V; ++l) out[l] = acc[l];
    }
}

// Entry points by tile size m (2, 4 or 6; the caller has checked it).
// (input: whether every transformed value is finite)
template <typename T>
bool winograd_input_body(int m, int64_t n, int64_t L, const T* d, T* v, int64_t vs) {
  if (m == 2) return winograd_input_m<T, 2>(n, L, d, v, vs);
  if (m == 4) return winograd_input_m<T, 4>(n, L, d, v, vs);
  return winograd_input_m<T, 6>(n, L, d, v, vs);
}

template <typename T>
void winograd_output_body(int m, int64_t n, int64_t L, const T* mm, int64_t ms, T* y) {
  if (m == 2) return winograd_output_m<T, 2>(n, L, mm, ms, y);
  if (m == 4) return winograd_output_m<T, 4>(n, L, mm, ms, y);
  winograd_output_m<T, 6>(n, L, mm, ms, y);
}

template <typename T>
void winograd_weights_body(int m, int64_t n, int64_t L, const T* g, T* u) {
  if (m == 2) return winograd_weights_m<T, 2>(n, L, g, u);
  if (m == 4) return winograd_weights_m<T, 4>(n, L, g, u);
  winograd_weights_m<T, 6>(n, L, g, u);
}

template <typename T>
void winograd_grad_out_body(int m, int64_t n, int64_t L, const T* e, T* sv, int64_t ss) {
  if (m == 2) return winograd_grad_out_m<T, 2>(n, L, e, sv, ss);
  if (m == 4) return winograd_grad_out_m<T, 4>(n, L, e, sv, ss);
  winograd_grad_out_m<T, 6>(n, L, e, sv, ss);
}

template <typename T>
void winograd_grad_weights_body(int m, const T* du, int64_t ds, T* g) {
  if (m == 2) return winograd_grad_weights_m<T, 2>(du, ds, g);
  if (m == 4) return winograd_grad_weights_m<T, 4>(du, ds, g);
  winograd_grad_weights_m<T, 6>(du, ds, g);
}
