// Every registered GEMM micro-kernel (that this CPU can run) against the
// naive GEMM, over awkward sizes and all transpose combinations.
#include <vector>

#include "cnncore/runtime.hpp"
#include "cpu/kernels/gemm.hpp"
#include "cpu/ref/gemm-ref.hpp"
#include "harness.hpp"

using namespace cnncore;

template <typename T>
static void check_all_kernels(bool exact) {
  int count = 0;
  const cpu::GemmUkernel<T>* kernels = cpu::gemm_ukernels<T>(&count);
  CHECK(count >= 1);
  const int sizes[][3] = {{1, 1, 1}, {3, 17, 5}, {7, 23, 300}, {13, 1, 9}, {17, 33, 1}, {64, 70, 257}, {5, 3100, 4},
                          {1, 64, 64}, {3, 100, 70}, {16, 65, 300}, {9, 200, 2100},
                          // big enough for threads (2^23 multiply-adds): C's columns split, then its rows
                          {67, 333, 389}, {300, 40, 701}};
  for (int ki = 0; ki < count; ++ki) {
    const auto& k = kernels[ki];
    if (k.isa > best_supported_isa()) continue;
    for (const auto& s : sizes)
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
          for (int acc = 0; acc < 2; ++acc)
            for (int par = 0; par < 2; ++par) {
              const int64_t M = s[0], N = s[1], K = s[2];
              std::vector<T> A(M * K), B(K * N), C(M * N), R(M * N);
              test::fill_ints(A.data(), M * K, 1 + ki);
              test::fill_ints(B.data(), K * N, 2 + ki);
              test::fill_ints(C.data(), M * N, 3);
              R = C;
              const int64_t lda = ta ? M : K, ldb = tb ? K : N;
              cpu::gemm(k, ta, tb, M, N, K, A.data(), lda, B.data(), ldb, acc != 0, C.data(), N, par != 0);
              cpu::ref::gemm(ta != 0, tb != 0, M, N, K, A.data(), lda, B.data(), ldb, acc != 0, R.data(), N);
              bool same = true;
              for (int64_t i = 0; i < M * N; ++i) same = same && (exact ? C[i] == R[i] : std::fabs(C[i] - R[i]) < 1e-3);
              if (!same) std::fprintf(stderr, "  %s M=%ld N=%ld K=%ld ta=%d tb=%d\n", k.name, (long)M, (long)N, (long)K, ta, tb);
              CHECK(same);
            }
  }
}

// The convolution variants of every kernel: B's rows through an offset
// table (gemm_shifted, A read in place), A's rows through an offset table
// (gemm_offset_a, B packed) and both A's columns and B's rows through tables
// (gemm_brgemm), against the naive GEMM on the gathered matrices.
template <typename T>
static void check_offset_variants() {
  int count = 0;
  const cpu::GemmUkernel<T>* kernels = cpu::gemm_ukernels<T>(&count);
  const int sizes[][3] = {{1, 1, 1}, {3, 17, 5}, {9, 40, 300}, {17, 33, 2100}, {64, 70, 257}};
  for (int ki = 0; ki < count; ++ki) {
    const auto& k = kernels[ki];
    if (k.isa > best_supported_isa()) continue;
    for (const auto& s : sizes)
      for (int acc = 0; acc < 2; ++acc)
        for (int par = 0; par < 2; ++par) {
          const int64_t M = s[0], N = s[1], K = s[2];
          const int64_t span = 3 * K + ((N + k.nr - 1) / k.nr) * k.nr + 7;  // the source buffer
          std::vector<T> src(static_cast<std::size_t>(span)), A(M * K), G(K * N), C(M * N), R(M * N);
          test::fill_ints(src.data(), span, 5 + ki);
          test::fill_ints(A.data(), M * K, 6 + ki);
          test::fill_ints(C.data(), M * N, 7);
          std::vector<int64_t> off(static_cast<std::size_t>(K));
          for (int64_t p = 0; p < K; ++p) off[p] = (p * 7 + 3) % (3 * K);  // scattered, some repeated
          for (int64_t p = 0; p < K; ++p)
            for (int64_t j = 0; j < N; ++j) G[p * N + j] = src[off[p] + j];
          R = C;
          cpu::gemm_shifted(k, M, N, K, A.data(), K, src.data(), off.data(), acc != 0, C.data(), N, par != 0);
          cpu::ref::gemm(false, false, M, N, K, A.data(), K, G.data(), N, acc != 0, R.data(), N);
          bool same = true;
          for (int64_t i = 0; i < M * N; ++i) same = same && C[i] == R[i];
          if (!same) std::fprintf(stderr, "  shifted %s M=%ld N=%ld K=%ld\n", k.name, (long)M, (long)N, (long)K);
          CHECK(same);

          // gemm_offset_a: A'(i, q) = src[aoff[i] + q] (M x K), B packed from G' (K x N)
          const int64_t aspan = 2 * M + K + 1;
          std::vector<T> asrc(static_cast<std::size_t>(aspan)), A2(M * K), B(K * N);
          test::fill_ints(asrc.data(), aspan, 8 + ki);
          test::fill_ints(B.data(), K * N, 9 + ki);
          std::vector<int64_t> aoff(static_cast<std::size_t>(M));
          for (int64_t i = 0; i < M; ++i) aoff[i] = (i * 5 + 1) % (2 * M);
          for (int64_t i = 0; i < M; ++i)
            for (int64_t q = 0; q < K; ++q) A2[i * K + q] = asrc[aoff[i] + q];
          const int64_t slivers = (N + k.nr - 1) / k.nr;
          std::vector<T> bpack(static_cast<std::size_t>(slivers * K * k.nr), T(0));
          for (int64_t sl = 0; sl < slivers; ++sl)
            for (int64_t q = 0; q < K; ++q)
              for (int64_t j = 0; j < k.nr && sl * k.nr + j < N; ++j)
                bpack[(sl * K + q) * k.nr + j] = B[q * N + sl * k.nr + j];
          test::fill_ints(C.data(), M * N, 10);
          R = C;
          cpu::gemm_offset_a(k, M, N, K, asrc.data(), aoff.data(), bpack.data(), acc != 0, C.data(), N, par != 0);
          cpu::ref::gemm(false, false, M, N, K, A2.data(), K, B.data(), N, acc != 0, R.data(), N);
          same = true;
          for (int64_t i = 0; i < M * N; ++i) same = same && C[i] == R[i];
          if (!same) std::fprintf(stderr, "  offset_a %s M=%ld N=%ld K=%ld\n", k.name, (long)M, (long)N, (long)K);
          CHECK(same);

          // brgemm: A''(i, q) = asrc[acol[q] + i] (M x K; MR values readable at each
          // column), B''(q, j) = src[off[q] + j] (the gathered G above)
          std::vector<int64_t> acol(static_cast<std::size_t>(K));
          for (int64_t q = 0; q < K; ++q) acol[q] = (q * 3 + 2) % (2 * K) * M;  // scattered, some repeated
          std::vector<T> csrc(static_cast<std::size_t>(2 * K * M + k.mr)), A3(M * K);
          test::fill_ints(csrc.data(), static_cast<int64_t>(csrc.size()), 11 + ki);
          for (int64_t i = 0; i < M; ++i)
            for (int64_t q = 0; q < K; ++q) A3[i * K + q] = csrc[acol[q] + i];
          test::fill_ints(C.data(), M * N, 12);
          R = C;
          cpu::gemm_brgemm(k, M, N, K, csrc.data(), acol.data(), src.data(), off.data(), acc != 0, C.data(), N,
                           par != 0);
          cpu::ref::gemm(false, false, M, N, K, A3.data(), K, G.data(), N, acc != 0, R.data(), N);
          same = true;
          for (int64_t i = 0; i < M * N; ++i) same = same && C[i] == R[i];
          if (!same) std::fprintf(stderr, "  brgemm %s M=%ld N=%ld K=%ld\n", k.name, (long)M, (long)N, (long)K);
          CHECK(same);
        }
  }
}

// gemm_shifted_to_rows: the grid product written to output rows, against
// the naive product on the gathered grid with its kept columns picked out.
// Rows of S = 9, 19 and 40 columns keep L of them: tiles inside a row (in
// place), tiles crossing rows (through the buffer), a last row shorter than
// S, K past one block (2100 > 2048: in-place accumulation), bias or none,
// and both tile orders.
template <typename T>
static void check_shifted_to_rows() {
  int count = 0;
  const cpu::GemmUkernel<T>* kernels = cpu::gemm_ukernels<T>(&count);
  const int sizes[][5] = {{1, 7, 9, 7, 1}, {13, 61, 9, 7, 300}, {7, 90, 19, 17, 2100}, {64, 198, 40, 37, 70},
                          {5, 30, 40, 1, 3},
                          // more A than an L2 of up to 1 MB, a small image: the A slivers outermost
                          {130, 61, 9, 7, 2100}};
  for (int ki = 0; ki < count; ++ki) {
    const auto& k = kernels[ki];
    if (k.isa > best_supported_isa()) continue;
    for (const auto& s : sizes)
      for (int with_bias = 0; with_bias < 2; ++with_bias)
        for (int par = 0; par < 2; ++par) {
          const int64_t M = s[0], Q = s[1], S = s[2], L = s[3], K = s[4], rows = (Q + S - 1) / S;
          const int64_t span = 3 * K + Q + 64;
          std::vector<T> src(static_cast<std::size_t>(span)), A(M * K), G(K * Q), bias(M), R(M * Q);
          test::fill_ints(src.data(), span, 13 + ki);
          test::fill_ints(A.data(), M * K, 14 + ki);
          test::fill_ints(bias.data(), M, 15);
          std::vector<int64_t> off(static_cast<std::size_t>(K));
          for (int64_t p = 0; p < K; ++p) off[p] = (p * 5 + 2) % (3 * K);
          for (int64_t p = 0; p < K; ++p)
            for (int64_t q = 0; q < Q; ++q) G[p * Q + q] = src[off[p] + q];
          cpu::ref::gemm(false, false, M, Q, K, A.data(), K, G.data(), Q, false, R.data(), Q);
          const T sentinel = T(-12345);
          std::vector<T> out(static_cast<std::size_t>(M * rows * L), sentinel);
          cpu::gemm_shifted_to_rows(k, M, Q, S, L, K, A.data(), K, src.data(), off.data(),
                                    with_bias ? bias.data() : nullptr, out.data(), rows * L, par != 0);
          bool same = true;
          for (int64_t i = 0; i < M; ++i)
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t c = 0; c < L; ++c) {
                const int64_t q = r * S + c;
                const T want = q < Q ? R[i * Q + q] + (with_bias ? bias[i] : T(0)) : sentinel;
                same = same && out[(i * rows + r) * L + c] == want;
              }
          if (!same)
            std::fprintf(stderr, "  to_rows %s M=%ld Q=%ld S=%ld L=%ld K=%ld\n", k.name, (long)M, (long)Q, (long)S,
                         (long)L, (long)K);
          CHECK(same);
        }
  }
}

// The prefetching tile (GemmUkernel::ahead): one tile of every kernel, m x n
// up to mr x nr, B read at a stride wider than the tile, against the naive
// product; the rows it is asked to prefetch (some steps, some bytes, of a
// separate buffer) do not change the result, whatever the shift and count.
template <typename T>
static void check_ahead_tiles() {
  int count = 0;
  const cpu::GemmUkernel<T>* kernels = cpu::gemm_ukernels<T>(&count);
  for (int ki = 0; ki < count; ++ki) {
    const auto& k = kernels[ki];
    if (k.isa > best_supported_isa()) continue;
    for (int64_t kc : {1, 7, 300})
      for (int64_t m : {int64_t(1), int64_t(k.mr) - 1, int64_t(k.mr)})
        for (int64_t n : {int64_t(1), int64_t(k.nr) / 2 + 1, int64_t(k.nr)})
          for (int shift : {0, 3})
            for (int acc = 0; acc < 2; ++acc) {
              if (m < 1) continue;
              const int64_t ldb = k.nr + 5, ldc = k.nr + 3, ld = 40;
              std::vector<T> A(kc * k.mr), B(kc * ldb), C(m * ldc), R, far(kc * ld + 64);
              test::fill_ints(A.data(), kc * k.mr, 20 + ki);
              for (int64_t p = 0; p < kc; ++p)  // rows past m of the packed A are zero, as packed
                for (int64_t i = m; i < k.mr; ++i) A[p * k.mr + i] = T(0);
              test::fill_ints(B.data(), kc * ldb, 21 + ki);
              test::fill_ints(C.data(), m * ldc, 22);
              R = C;
              k.ahead(kc, A.data(), B.data(), ldb, C.data(), ldc, m, n, acc != 0, far.data(), ld,
                      (kc >> shift) + 1, shift, 100);
              for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) {
                  T v = acc ? R[i * ldc + j] : T(0);
                  for (int64_t p = 0; p < kc; ++p) v += A[p * k.mr + i] * B[p * ldb + j];
                  R[i * ldc + j] = v;
                }
              const bool same = C == R;  // untouched entries (j >= n) stay as they were
              if (!same)
                std::fprintf(stderr, "  ahead %s kc=%ld m=%ld n=%ld\n", k.name, (long)kc, (long)m, (long)n);
              CHECK(same);
            }
  }
}

TEST(gemm_ahead_tiles_f32_match_reference) { check_ahead_tiles<float>(); }
TEST(gemm_ahead_tiles_f64_match_reference) { check_ahead_tiles<double>(); }
TEST(gemm_shifted_to_rows_f32_matches_reference) { check_shifted_to_rows<float>(); }
TEST(gemm_shifted_to_rows_f64_matches_reference) { check_shifted_to_rows<double>(); }
TEST(gemm_f32_kernels_match_reference) { check_all_kernels<float>(true); }
TEST(gemm_f32_offset_variants_match_reference) { check_offset_variants<float>(); }
TEST(gemm_f64_offset_variants_match_reference) { check_offset_variants<double>(); }
TEST(gemm_f64_kernels_match_reference) { check_all_kernels<double>(true); }

TEST(gemm_kernel_selection_follows_isa) {
  const auto& k = cpu::gemm_ukernel_for_current_isa<float>();
  CHECK(k.isa <= std::max(Isa::generic, get_isa()));
  int count = 0;
  const cpu::GemmUkernel<float>* all = cpu::gemm_ukernels<float>(&count);
  for (int i = 0; i < count; ++i)  // the level's widest tile
    if (all[i].isa == k.isa) CHECK(all[i].nr <= k.nr);
  // A product 16 columns wide takes a 16-wide tile of the highest level that
  // has one (AVX-512's 16 x 16 zmm tile over AVX2's 6 x 16).
  if (get_isa() > Isa::generic) {
    const auto& narrow = cpu::gemm_ukernel_for_shape<float>(64, 16);
    CHECK(narrow.nr == 16);
    for (int i = 0; i < count; ++i)
      if (all[i].nr == 16 && all[i].isa <= get_isa()) CHECK(all[i].isa <= narrow.isa);
  }
}
