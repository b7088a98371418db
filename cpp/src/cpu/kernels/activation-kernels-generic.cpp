// Baseline-ISA (any x86-64 / aarch64) float32 elementwise kernels: the generic level.
// The bodies sit in an anonymous namespace so that copies compiled with
// different flags never merge at link time; see activation-kernels.hpp.

// GCC: let the vectoriser turn selects into blends even where the arms do
// floating-point arithmetic (with -ftrapping-math it keeps such loops scalar).
// These kernels never read the floating-point exception flags.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <cstdint>

namespace {
#include "cpu/kernels/softmax-exp-body.hpp"
#include "cpu/kernels/activation-body.hpp"
#include "cpu/kernels/softmax-body.hpp"
#include "cpu/kernels/cross-entropy-body.hpp"
}  // namespace

#define CNNCORE_F32_ELEMENTWISE_SUFFIX generic
#include "cpu/kernels/activation-kernels-entry.hpp"
