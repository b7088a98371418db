// AVX-512F GEMM micro-kernels (cpu/kernels/gemm-2v-body.hpp on zmm
// registers). This file alone is compiled with -mavx512f -mfma; its kernels run only
// after cpu/dispatch found AVX-512F.
#include <immintrin.h>

#include <cstdint>

namespace {

#include "cpu/kernels/simd-zmm.hpp"
#include "cpu/kernels/gemm-2v-body.hpp"

}  // namespace

namespace cnncore::cpu {

CNNCORE_DEFINE_GEMM_VARIANTS(float, 8, (gemm_2v_kernel<Zmm<float>, 8>), f32_gemm_8x32__avx512, f32_igemm_8x32__avx512,
                             f32_wgemm_8x32__avx512)
CNNCORE_DEFINE_GEMM_VARIANTS(double, 8, (gemm_2v_kernel<Zmm<double>, 8>), f64_gemm_8x16__avx512, f64_igemm_8x16__avx512,
                             f64_wgemm_8x16__avx512)

}  // namespace cnncore::cpu
