// Picking among a family's kernel sets, one per kernel level (entries with an
// `isa` member, lowest level first; the first is the generic one, always built).
#pragma once

#include <vector>

#include "cnncore/runtime.hpp"

namespace cnncore::cpu {

// The highest-level entry that the current kernel level (get_isa()) may run.
template <typename K>
const K& kernel_for_current_isa(const std::vector<K>& levels) {
  const Isa level = get_isa();
  const K* best = &levels.front();
  for (const auto& k : levels)
    if (k.isa <= level && k.isa > best->isa) best = &k;
  return *best;
}

}  // namespace cnncore::cpu
