// Cross-entropy from logits, fused: computes the log-sum-exp over the classes
// and the loss terms without materialising log_softmax. Positions are (n, i)
// of an (N, C, inner) view; class c of position (n, i) is at
// (n * C + c) * inner + i. With inner == 1 each position's classes are one
// contiguous row; otherwise blocks of up to 64 neighbouring positions are
// processed together, looping over the classes with the positions vectorised
// (cross-entropy-body.hpp). Totals are summed in double
// over fixed chunks of positions, in chunk order, so the result does not
// depend on the thread count.
#pragma once

#include <cstdint>

#include "ops/axis_geometry.hpp"

namespace cnncore::cpu {

struct CrossEntropyTerms {
  const int64_t* target;  // N * inner indices, each in [0, C) or ignore_index
  int64_t ignore_index;
  double smoothing;       // label smoothing eps
};

// Writes l_n to loss (when not null) and returns sum_n l_n.
template <typename T>
double cross_entropy_forward(const detail::AxisGeometry& g, const T* src, const T* weights,
                             const CrossEntropyTerms& t, T* loss);

// diff_src[n, c, i] = s_n * dl_n / dx[n, c, i] with s_n = diff_dst[p * dstride] * factor
// (p the position; dstride 0 for a scalar diff_dst). Zero at ignored positions.
template <typename T>
void cross_entropy_backward(const detail::AxisGeometry& g, const T* diff_dst, int64_t dstride, double factor,
                            const T* src, const T* weights, const CrossEntropyTerms& t, T* diff_src);

}  // namespace cnncore::cpu
