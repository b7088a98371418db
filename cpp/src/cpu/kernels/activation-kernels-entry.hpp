// The exported entry points of one float32 elementwise kernel level. Each
// level's source file defines CNNCORE_F32_ELEMENTWISE_SUFFIX and includes
// this after the bodies (which sit in its anonymous namespace); the
// functions' names carry the suffix, so levels never share a symbol.
// Signatures: activation-kernels.hpp.

#define CNNCORE_EW_CAT2(a, b) a##__##b
#define CNNCORE_EW_CAT(a, b) CNNCORE_EW_CAT2(a, b)
#define CNNCORE_EW(name) CNNCORE_EW_CAT(name, CNNCORE_F32_ELEMENTWISE_SUFFIX)

namespace cnncore::cpu {

void CNNCORE_EW(f32_exp)(int64_t n, const float* x, float* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = exp_poly_f32(x[i]);
}

void CNNCORE_EW(f32_activation_forward)(int kind, float slope, int64_t n, const float* x, float* y) {
  activation_forward_body<float>(kind, slope, n, x, y);
}

void CNNCORE_EW(f32_activation_backward)(int kind, float slope, int64_t n, const float* diff_dst, const float* x,
                                         float* diff_src) {
  activation_backward_body<float>(kind, slope, n, diff_dst, x, diff_src);
}

void CNNCORE_EW(f32_softmax_forward)(int64_t L, int64_t inner, int64_t w, bool log, const float* x, float* y) {
  softmax_task_forward<float>(L, inner, w, log, x, y);
}

void CNNCORE_EW(f32_softmax_backward)(int64_t L, int64_t inner, int64_t w, bool log, const float* diff_dst,
                                      const float* x, float* diff_src) {
  softmax_task_backward<float>(L, inner, w, log, diff_dst, x, diff_src);
}

double CNNCORE_EW(f32_cross_entropy_forward)(int64_t C, int64_t inner, int64_t p0, int64_t p1, const float* src,
                                             const float* weights, const int64_t* target, int64_t ignore_index,
                                             double smoothing, float* loss) {
  return ce_forward_range_any<float>(C, inner, p0, p1, src, weights, target, ignore_index, smoothing, loss);
}

void CNNCORE_EW(f32_cross_entropy_backward)(int64_t C, int64_t inner, int64_t p0, int64_t p1,
                                            const float* diff_dst, int64_t dstride, double factor, const float* src,
                                            const float* weights, float wsum, const int64_t* target,
                                            int64_t ignore_index, double smoothing, float* diff_src) {
  ce_backward_range_any<float>(C, inner, p0, p1, diff_dst, dstride, factor, src, weights, wsum, target,
                               ignore_index, smoothing, diff_src);
}

}  // namespace cnncore::cpu

#undef CNNCORE_EW
#undef CNNCORE_EW_CAT
#undef CNNCORE_EW_CAT2
