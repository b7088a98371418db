// AVX-512F GEMM micro-kernels (cpu/kernels/gemm-vec-body.hpp on zmm
// registers: 8 x 2 vectors, and 16 x 1 vector for narrow products). This file alone is compiled with -mavx512f -mfma; its kernels run only
// after cpu/dispatch found AVX-512F.
#include <immintrin.h>

#include <cstdint>

namespace {

#include "cpu/kernels/simd-zmm.hpp"
#include "cpu/kernels/gemm-vec-body.hpp"

}  // namespace

namespace cnncore::cpu {

CNNCORE_DEFINE_GEMM_VARIANTS(float, 8, (gemm_vec_kernel<Zmm<float>, 8, 2>), f32_gemm_8x32__avx512,
                             f32_igemm_8x32__avx512, f32_wgemm_8x32__avx512,
                             f32_brgemm_8x32__avx512)
CNNCORE_DEFINE_GEMM_VARIANTS(double, 8, (gemm_vec_kernel<Zmm<double>, 8, 2>), f64_gemm_8x16__avx512,
                             f64_igemm_8x16__avx512, f64_wgemm_8x16__avx512,
                             f64_brgemm_8x16__avx512)
CNNCORE_DEFINE_GEMM_VARIANTS(float, 16, (gemm_vec_kernel<Zmm<float>, 16, 1>), f32_gemm_16x16__avx512,
                             f32_igemm_16x16__avx512, f32_wgemm_16x16__avx512,
                             f32_brgemm_16x16__avx512)
CNNCORE_DEFINE_GEMM_VARIANTS(double, 16, (gemm_vec_kernel<Zmm<double>, 16, 1>), f64_gemm_16x8__avx512,
                             f64_igemm_16x8__avx512, f64_wgemm_16x8__avx512,
                             f64_brgemm_16x8__avx512)

}  // namespace cnncore::cpu
