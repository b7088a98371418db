// Dropout with a counter-based mask: element i is kept iff a 53-bit hash of
// (seed, i) is >= ceil(p * 2^53) (see cnncore/layers.hpp for the formula).
// The mask is a pure function of (seed, i), so any thread count, any split of
// the work, the backward pass and other backends (the CUDA kernels call
// dropout_keep too) reproduce it exactly.
#pragma once

#include <cmath>
#include <cstdint>

#include "util/hd.hpp"

namespace cnncore::cpu {

// SplitMix64's finaliser (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
CNNCORE_HD inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Per-call constants: the stream key and the 53-bit threshold.
struct DropoutKey {
  uint64_t key;
  uint64_t threshold;  // keep iff hash >> 11 >= threshold
};

inline DropoutKey dropout_key(uint64_t seed, double p) {
  // p * 2^53 is exact in double (a power-of-two scaling), so the ceiling is exact.
  return {mix64(seed), static_cast<uint64_t>(std::ceil(p * 9007199254740992.0))};
}

CNNCORE_HD inline bool dropout_keep(const DropoutKey& k, uint64_t index) {
  return (mix64(k.key + (index + 1) * 0x9E3779B97F4A7C15ULL) >> 11) >= k.threshold;
}

// dst[i] = keep(i) ? src[i] * scale : 0 for the elements of flat indices
// [0, n); scale = 1 / (1 - p). p = 1 gives zeros.
template <typename T>
void dropout_apply(uint64_t seed, double p, int64_t n, const T* src, T* dst);

}  // namespace cnncore::cpu
