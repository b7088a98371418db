#include "cnncore/runtime.hpp"

#include <omp.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "util/memory_ledger.hpp"

#include "cnncore/error.hpp"

namespace cnncore {

namespace {

// More threads than this only oversubscribe the machine, and asking the OS
// for thousands can fail inside OpenMP, which then aborts the process.
constexpr int kMaxThreads = 1024;

std::atomic<int>& threads_setting() {
  static std::atomic<int> n{omp_get_max_threads()};
  return n;
}

int64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return int64_t{1} << 40;
  return static_cast<int64_t>(pages) * static_cast<int64_t>(page);
}

std::atomic<int64_t>& memory_limit_setting() {
  static std::atomic<int64_t> n{physical_memory_bytes()};
  return n;
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1) throw value_error(detail::str("set_num_threads: n must be at least 1, got ", n));
  if (n > kMaxThreads)
    throw value_error(detail::str("set_num_threads: n must be at most ", kMaxThreads, ", got ", n));
  threads_setting() = n;
}

int get_num_threads() { return threads_setting(); }

namespace {
std::atomic<bool>& deterministic_setting() {
  static std::atomic<bool> on{false};
  return on;
}
}  // namespace

void set_deterministic(bool on) { deterministic_setting() = on; }
bool get_deterministic() { return deterministic_setting(); }

namespace {
std::atomic<bool>& exact_setting() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("CNNCORE_EXACT");
    return v != nullptr && std::string(v) == "1";
  }()};
  return on;
}
}  // namespace

void set_exact_algorithms(bool on) { exact_setting() = on; }
bool get_exact_algorithms() { return exact_setting(); }

void set_memory_limit(int64_t bytes) {
  if (bytes < 1)
    throw value_error(detail::str("set_memory_limit: nbytes must be at least 1, got ", bytes));
  memory_limit_setting() = bytes;
}

int64_t get_memory_limit() { return memory_limit_setting(); }

namespace detail {

thread_local std::shared_ptr<MemoryLedger> current_ledger;

std::shared_ptr<MemoryLedger> memory_ledger() { return current_ledger; }

namespace {

void copy_strided(const PendingCopy& c) {
  const std::size_t rank = c.shape.size();
  int64_t n = 1;
  for (int64_t d : c.shape) n *= d;
  if (n == 0) return;
  // Walk the elements in C order with an odometer over the source strides;
  // memcpy of one item tolerates any source alignment.
  std::vector<int64_t> idx(rank, 0);
  auto* dst = static_cast<unsigned char*>(c.dst);
  const unsigned char* src = c.src;
  const int64_t inner = rank ? c.shape[rank - 1] : 1, step = rank ? c.byte_strides[rank - 1] : 0;
  for (int64_t done = 0; done < n; done += inner) {
    const unsigned char* s = src;
    for (int64_t i = 0; i < inner; ++i, s += step, dst += c.itemsize) std::memcpy(dst, s, c.itemsize);
    for (std::size_t a = rank ? rank - 1 : 0; a-- > 0;) {  // advance the outer axes (none for 0-d)
      src += c.byte_strides[a];
      if (++idx[a] < c.shape[a]) break;
      src -= c.byte_strides[a] * c.shape[a];
      idx[a] = 0;
    }
  }
}

void run_pending_copies() {
  const auto& l = current_ledger;
  if (!l || l->pending.empty()) return;
  std::vector<PendingCopy> todo;
  todo.swap(l->pending);
  for (const PendingCopy& c : todo) copy_strided(c);
}

}  // namespace

void copy_strided_later(PendingCopy c) {
  if (current_ledger)
    current_ledger->pending.push_back(std::move(c));
  else
    copy_strided(c);
}

}  // namespace detail

MemoryScope::MemoryScope() : outermost_(!detail::current_ledger) {
  if (outermost_) detail::current_ledger = std::make_shared<detail::MemoryLedger>();
}

MemoryScope::~MemoryScope() {
  if (!outermost_) return;
  // Copies never made (the call failed before its memory check) release
  // their sources now: the ledger itself may live on in result buffers.
  detail::current_ledger->pending.clear();
  detail::current_ledger.reset();
}

int64_t memory_held() {
  const auto& l = detail::current_ledger;
  return l ? l->held.load(std::memory_order_relaxed) : 0;
}

void check_memory(const char* op, int64_t bytes) {
  const int64_t limit = get_memory_limit(), held = memory_held();
  if (bytes > limit - held) {
    if (held > 0)
      throw value_error(detail::str(op, ": these input sizes and parameters need ", bytes,
                                    " bytes of memory on top of the ", held,
                                    " bytes this call already holds (input copies and earlier buffers), more than "
                                    "the memory limit of ",
                                    limit, " bytes (cnncore.set_memory_limit changes it)"));
    throw value_error(detail::str(op, ": the result and workspace for these input sizes and parameters need ", bytes,
                                  " bytes of memory, more than the memory limit of ", limit,
                                  " bytes (cnncore.set_memory_limit changes it)"));
  }
  detail::run_pending_copies();
}

}  // namespace cnncore
