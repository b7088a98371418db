#include "cnncore/runtime.hpp"

#include <omp.h>
#include <unistd.h>

#include <atomic>

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

void set_memory_limit(int64_t bytes) {
  if (bytes < 1)
    throw value_error(detail::str("set_memory_limit: nbytes must be at least 1, got ", bytes));
  memory_limit_setting() = bytes;
}

int64_t get_memory_limit() { return memory_limit_setting(); }

void check_memory(const char* op, int64_t bytes) {
  const int64_t limit = get_memory_limit();
  if (bytes > limit)
    throw value_error(detail::str(op, ": the result and workspace for these input sizes and parameters need ", bytes,
                                  " bytes of memory, more than the memory limit of ", limit,
                                  " bytes (cnncore.set_memory_limit changes it)"));
}

}  // namespace cnncore
