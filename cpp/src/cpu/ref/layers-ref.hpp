// Naive reference layer kernels: each definition written as the obvious loop
// nest over an (outer, axis, inner) view, one output element at a time, no
// blocking, no fusion. The oracle the fast kernels are tested against.
#pragma once

#include <cstdint>

#include "cnncore/layers.hpp"
#include "cpu/kernels/cross-entropy-fused.hpp"
#include "cpu/kernels/linear-gemm.hpp"
#include "ops/axis_geometry.hpp"

namespace cnncore::cpu::ref {

// y[o, a, i] = exp(x[o, a, i] - m) / sum_a' exp(x[o, a', i] - m), m = max_a' x[o, a', i]
// (log: (x - m) - log sum).
template <typename T>
void softmax_forward(const detail::AxisGeometry& g, bool log, const T* src, T* dst);
template <typename T>
void softmax_backward(const detail::AxisGeometry& g, bool log, const T* diff_dst, const T* src, T* diff_src);

// Through a full log_softmax buffer; same contract as the fused kernels.
template <typename T>
double cross_entropy_forward(const detail::AxisGeometry& g, const T* src, const T* weights,
                             const CrossEntropyTerms& t, T* loss);
template <typename T>
void cross_entropy_backward(const detail::AxisGeometry& g, const T* diff_dst, int64_t dstride, double factor,
                            const T* src, const T* weights, const CrossEntropyTerms& t, T* diff_src);

// loss[p] = -w[t_p] * src[o, t_p, i] at position p = o * inner + i (0 where
// t_p == ignore); returns the sum of the losses. loss may be null.
template <typename T>
double nll_loss_forward(const detail::AxisGeometry& g, const T* src, const T* weights, const int64_t* target,
                        int64_t ignore, T* loss);
// diff_src = 0 except diff_src[o, t_p, i] = -w[t_p] * factor * diff_dst[p * dstride].
template <typename T>
void nll_loss_backward(const detail::AxisGeometry& g, const T* diff_dst, int64_t dstride, double factor,
                       const T* weights, const int64_t* target, int64_t ignore, T* diff_src);

template <typename T>
void lrn_forward(const detail::AxisGeometry& g, const LrnParams& p, const T* src, T* dst);
template <typename T>
void lrn_backward(const detail::AxisGeometry& g, const LrnParams& p, const T* diff_dst, const T* src, T* diff_src);

// Same contracts as cpu/kernels/batch-norm-partials.hpp.
template <typename T>
void batch_norm_stats(const detail::AxisGeometry& g, const T* src, double* mean, double* var);
template <typename T>
void batch_norm_apply(const detail::AxisGeometry& g, const T* src, const double* mean, const double* invstd,
                      const T* w, const T* b, T* dst);
template <typename T>
void batch_norm_backward(const detail::AxisGeometry& g, bool training, const T* diff_dst, const T* src,
                         const double* mean, const double* invstd, const T* w, T* diff_src, T* diff_w, T* diff_b);

// Same contracts as cpu/kernels/linear-gemm.hpp.
template <typename T>
void linear_forward(const LinearDims& d, const T* src, const T* weights, const T* bias, T* dst);
template <typename T>
void linear_backward_data(const LinearDims& d, const T* diff_dst, const T* weights, T* diff_src);
template <typename T>
void linear_backward_weight(const LinearDims& d, const T* diff_dst, const T* src, T* diff_weights);
template <typename T>
void linear_backward_bias(const LinearDims& d, const T* diff_dst, T* diff_bias);

}  // namespace cnncore::cpu::ref
