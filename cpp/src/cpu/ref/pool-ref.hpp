// Naive reference pooling: the definitions of cnncore/pool.hpp as loop nests,
// window by window, with the window bounds, padding and divisors worked out
// from the formulas (no tables) and the Gaussian weights of weighted_avg
// taken from the Euclidean distance of each tap. The oracle the fast paths
// are tested against.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/pool_geometry.hpp"

namespace cnncore::cpu::ref {

// `indices` may be null; it is only written for max pooling.
template <typename T>
void pool_forward(const detail::PoolGeometry& g, const T* src, T* dst, int64_t* indices);

// weighted_avg's normalised tap weights, in scan order over the kernel (the
// CUDA backend takes them from here too).
std::vector<double> pool_gaussian_weights(const detail::PoolGeometry& g);

// diff_src is overwritten.
template <typename T>
void pool_backward(const detail::PoolGeometry& g, const T* diff_dst, const T* src, T* diff_src);

}  // namespace cnncore::cpu::ref
