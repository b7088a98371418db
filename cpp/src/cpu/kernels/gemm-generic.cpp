// Baseline-ISA GEMM micro-kernels (any x86-64 / aarch64).
#include <cstdint>

namespace {
#include "cpu/kernels/gemm-ukernel.hpp"
}

namespace cnncore::cpu {

CNNCORE_DEFINE_GEMM_VARIANTS(float, 4, (gemm_ukernel_body<float, 4, 8>), f32_gemm_4x8__generic, f32_igemm_4x8__generic,
                             f32_wgemm_4x8__generic,
                             f32_brgemm_4x8__generic)
CNNCORE_DEFINE_GEMM_VARIANTS(double, 4, (gemm_ukernel_body<double, 4, 4>), f64_gemm_4x4__generic, f64_igemm_4x4__generic,
                             f64_wgemm_4x4__generic,
                             f64_brgemm_4x4__generic)

}  // namespace cnncore::cpu
