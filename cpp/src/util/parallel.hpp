// When a loop deserves the other threads. With passive waiting (cnncore's
// default, docs/threads.md) each parallel region wakes its workers through
// the kernel: 55-65 us a region on this project's 2-core VM (an empty region
// between 20 us of serial work, against under 10 us when spinning). A loop
// pays only when half its serial time plus that is less than all of it, so
// below about 256K simple elements (some 100 us) it stays on the calling
// thread: batch norm on 32x64x8x8 at 2 threads took 0.28 ms forward against
// 0.087 on one.
#pragma once

#include <cstdint>

namespace cnncore::detail {

constexpr int64_t kParallelMinWork = int64_t{1} << 18;

// `work`: elements the loop reads or writes (or window taps it visits).
inline bool parallel_pays(int64_t work) { return work >= kParallelMinWork; }

}  // namespace cnncore::detail
