// The account behind MemoryScope (cnncore/runtime.hpp): the bytes of tensor
// buffers a call has allocated and not yet freed, and the input copies it
// has promised but not yet made. A buffer keeps a reference to the ledger it
// was charged to and credits it when freed, whichever thread frees it and
// whether or not the scope is still open.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "cnncore/tensor.hpp"

namespace cnncore::detail {

// A strided array to be copied into a C-order buffer: `keep` holds the
// source alive until then.
struct PendingCopy {
  void* dst = nullptr;
  const unsigned char* src = nullptr;
  std::vector<int64_t> shape, byte_strides;
  int64_t itemsize = 0;
  std::shared_ptr<void> keep;
};

struct MemoryLedger {
  std::atomic<int64_t> held{0};
  std::vector<PendingCopy> pending;  // touched only by the scope's thread
};

// The ledger of the current thread's open scope, or null.
std::shared_ptr<MemoryLedger> memory_ledger();

// A 64-byte aligned buffer for `shape`, charged to the open scope, with no
// check_memory (the caller has checked) and so no pending copies run.
Tensor charged_empty(const Shape& shape, DType dtype);

// Copies `c` now, or, inside a scope, at the call's first check_memory: an
// input copy's buffer is allocated (address space only, its pages untouched)
// when the input is converted, so the op's own estimate, which runs later,
// sees it among the bytes held and can refuse the call before any page of
// the copy is written. check_memory runs before every allocation (Tensor::
// empty calls it), hence before any kernel reads an input.
void copy_strided_later(PendingCopy c);

}  // namespace cnncore::detail
