// Tensor buffers on the host, with freed large ones kept for reuse.
//
// A fresh buffer of a few MB costs a page fault per 4 KiB page the first time
// it is written (about 1.5 us each on this project's VM: ResNet-18's stem
// output, 3.2 MB, took 1.2 ms to fault in, as long as the ReLU after it), and
// glibc hands a freed block that large straight back to the kernel. So freed
// buffers of at least kHostCacheMinBytes wait in a cache, up to a limit
// (set_host_cache_limit, default 64 MiB, CNNCORE_HOST_CACHE_MB), and the
// next request of a size between theirs and 4/5 of it takes one.
#pragma once

#include <cstddef>

namespace cnncore::detail {

constexpr std::size_t kHostCacheMinBytes = std::size_t{256} << 10;

struct HostBlock {
  void* ptr;
  std::size_t bytes;  // the block's size, at least what was asked for
};

// 64-byte aligned, at least `bytes` (> 0); std::bad_alloc when none.
HostBlock host_alloc(std::size_t bytes);
// Gives back a block host_alloc returned.
void host_free(HostBlock block);

}  // namespace cnncore::detail
