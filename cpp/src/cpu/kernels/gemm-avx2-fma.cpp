// AVX2 + FMA GEMM micro-kernels (cpu/kernels/gemm-vec-body.hpp on ymm
// registers: 6 x 2 vectors, 12 accumulators of 16). This file alone is
// compiled with -mavx2 -mfma; its kernels run only after cpu/dispatch found
// both features.
#include <immintrin.h>

#include <cstdint>

namespace {

#include "cpu/kernels/simd-ymm.hpp"
#include "cpu/kernels/gemm-vec-body.hpp"

}  // namespace

namespace cnncore::cpu {

CNNCORE_DEFINE_GEMM_VARIANTS(float, 6, (gemm_vec_kernel<Ymm<float>, 6, 2>), f32_gemm_6x16__avx2_fma, f32_igemm_6x16__avx2_fma,
                             f32_wgemm_6x16__avx2_fma,
                             f32_brgemm_6x16__avx2_fma)
CNNCORE_DEFINE_GEMM_VARIANTS(double, 6, (gemm_vec_kernel<Ymm<double>, 6, 2>), f64_gemm_6x8__avx2_fma, f64_igemm_6x8__avx2_fma,
                             f64_wgemm_6x8__avx2_fma,
                             f64_brgemm_6x8__avx2_fma)

}  // namespace cnncore::cpu
