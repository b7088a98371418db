// The schedule of a parallel loop whose iterations add into per-thread
// partial sums (combined afterwards in thread order). Call it on the thread
// that opens the region, then use `schedule(runtime)` on the loop: dynamic
// (with `chunk`) by default, static when deterministic algorithms are on, so
// each thread sums the same iterations in every run (see set_deterministic).
#pragma once

#include <omp.h>

#include <cstdint>

#include "cnncore/runtime.hpp"

namespace cnncore::detail {

inline void schedule_partial_sums(int64_t chunk) {
  if (get_deterministic())
    omp_set_schedule(omp_sched_static, 0);
  else
    omp_set_schedule(omp_sched_dynamic, chunk > 0 && chunk < (int64_t{1} << 30) ? static_cast<int>(chunk) : 1);
}

}  // namespace cnncore::detail
