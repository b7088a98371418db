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
                          {1, 64, 64}, {3, 100, 70}, {16, 65, 300}, {9, 200, 2100}};
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

TEST(gemm_f32_kernels_match_reference) { check_all_kernels<float>(true); }
TEST(gemm_f64_kernels_match_reference) { check_all_kernels<double>(true); }

TEST(gemm_kernel_selection_follows_isa) {
  const auto& k = cpu::gemm_ukernel_for_current_isa<float>();
  CHECK(k.isa <= std::max(Isa::generic, get_isa()));
}
