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
#include <cstdint>

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

// A kernel's workspace of n elements from the host cache, given back when
// it goes: the large ones come back without page faults on the next call
// (a 512-channel 3x3 weight gradient at batch 1 faulted in about 1 MB of
// patch matrix and packed panels on every call). Not initialised; empty
// for n <= 0; reset(n) drops the old block and takes a new one.
template <typename T>
class HostBuffer {
 public:
  HostBuffer() = default;
  explicit HostBuffer(int64_t n) { reset(n); }
  ~HostBuffer() { release(); }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  void reset(int64_t n) {
    release();
    if (n > 0) block_ = host_alloc(static_cast<std::size_t>(n) * sizeof(T));
  }
  T* data() const { return static_cast<T*>(block_.ptr); }

 private:
  void release() {
    if (block_.ptr) host_free(block_);
    block_ = HostBlock{nullptr, 0};
  }
  HostBlock block_{nullptr, 0};
};

}  // namespace cnncore::detail
