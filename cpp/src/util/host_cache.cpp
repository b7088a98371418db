#include "util/host_cache.hpp"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>

#include "cnncore/error.hpp"
#include "cnncore/runtime.hpp"

namespace cnncore {

namespace {

int64_t limit_from_environment() {
  const char* v = std::getenv("CNNCORE_HOST_CACHE_MB");
  if (!v || !*v) return int64_t{64} << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(v, &end, 10);
  // an unreadable value keeps the default rather than failing at import
  if (end == v || *end != '\0' || mb < 0 || mb > (int64_t{1} << 30)) return int64_t{64} << 20;
  return static_cast<int64_t>(mb) << 20;
}

struct Cache {
  std::mutex mu;
  std::multimap<std::size_t, void*> blocks;  // size -> block
  int64_t held = 0;
  int64_t limit = limit_from_environment();

  // Frees blocks, smallest first, until at most `keep` bytes stay. Caller holds mu.
  void trim(int64_t keep) {
    while (held > keep && !blocks.empty()) {
      auto it = blocks.begin();
      held -= static_cast<int64_t>(it->first);
      std::free(it->second);
      blocks.erase(it);
    }
  }
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may outlive static destruction
  return *c;
}

}  // namespace

void set_host_cache_limit(int64_t bytes) {
  if (bytes < 0) throw value_error(detail::str("set_host_cache_limit: bytes must be >= 0, got ", bytes));
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.limit = bytes;
  c.trim(bytes);
}

int64_t get_host_cache_limit() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.limit;
}

int64_t host_cache_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.held;
}

void empty_host_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.trim(0);
}

namespace detail {

HostBlock host_alloc(std::size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
  if (bytes >= kHostCacheMinBytes) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.blocks.lower_bound(bytes);
    if (it != c.blocks.end() && it->first - bytes <= it->first / 5) {
      const HostBlock b{it->second, it->first};
      c.held -= static_cast<int64_t>(it->first);
      c.blocks.erase(it);
      return b;
    }
  }
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  return {p, bytes};
}

void host_free(HostBlock block) {
  if (block.bytes >= kHostCacheMinBytes) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    const auto size = static_cast<int64_t>(block.bytes);
    if (size <= c.limit) {
      c.trim(c.limit - size);
      c.blocks.emplace(block.bytes, block.ptr);
      c.held += size;
      return;
    }
  }
  std::free(block.ptr);
}

}  // namespace detail

}  // namespace cnncore
