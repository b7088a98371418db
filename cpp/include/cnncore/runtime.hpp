// Process-wide settings: threads, the memory limit and the kernel level.
#pragma once

#include <cstdint>
#include <string>

namespace cnncore {

// Number of OpenMP threads every kernel uses (default: OpenMP's maximum).
void set_num_threads(int n);  // 1 <= n <= 1024, else value_error
int get_num_threads();

// Largest number of bytes one operation may hold at once: its input copies,
// workspace and result together. Default: the machine's physical memory.
void set_memory_limit(int64_t bytes);  // bytes >= 1, else value_error
int64_t get_memory_limit();

// Freed tensor buffers of 256 KiB or more are kept for reuse, up to this
// many bytes in all (default 64 MiB, or CNNCORE_HOST_CACHE_MB at start), so
// that the next op's result of a similar size does not fault in fresh pages;
// 0 turns the cache off. Lowering the limit frees what is above it.
void set_host_cache_limit(int64_t bytes);  // bytes >= 0, else value_error
int64_t get_host_cache_limit();
int64_t host_cache_bytes();  // bytes the cache holds now
void empty_host_cache();     // frees them

// The memory account of one call. While a scope is open on a thread, every
// tensor buffer that thread allocates is charged to it until the buffer is
// freed, and check_memory counts what the call already holds. Scopes nest:
// an inner scope joins the outermost one on its thread. The Python bindings
// open one per op call, so an op's input copies, workspace and result are
// summed against the limit; C++ callers may open their own.
class MemoryScope {
 public:
  MemoryScope();
  ~MemoryScope();
  MemoryScope(const MemoryScope&) = delete;
  MemoryScope& operator=(const MemoryScope&) = delete;

 private:
  bool outermost_;
};

// Bytes of tensor buffers charged to the current thread's open scope that
// are still alive (0 when no scope is open).
int64_t memory_held();

// Throws value_error naming `op` when `bytes` more, on top of what the
// current call holds (memory_held), would exceed the memory limit. Ops call
// it with their whole need before their first allocation.
void check_memory(const char* op, int64_t bytes);

// Deterministic algorithms (default off). Every op is bit-reproducible run
// to run for a fixed thread count and kernel level, except where threads add
// into private partial sums that are then combined: convolution weight
// gradients with at least as many images as threads (Winograd's: with at
// least two blocks of tiles per thread), and locally connected /
// tiled convolution gradients with fewer images (data) or weight classes
// (weights) than threads. There the work goes to whichever thread is free
// (dynamic scheduling, which keeps a loaded machine's cores busy), so the
// partial sums, and the last bits of the result, vary. With deterministic
// algorithms on, those loops assign work statically and every op is
// bit-reproducible. Results never depend on this beyond rounding.
void set_deterministic(bool on);
bool get_deterministic();

// Exact algorithms only (default off, or on when CNNCORE_EXACT=1 at start).
// With it on, algorithm="auto" never picks an algorithm whose rounding
// differs in kind from the direct definition's: Winograd convolution (whose
// transforms round, error growing with the tile) and FFT convolution. An
// explicitly requested algorithm still runs.
void set_exact_algorithms(bool on);
bool get_exact_algorithms();

// Winograd convolution keeps the transformed weights of a weight tensor it
// has seen twice unchanged (inference), up to this many bytes in all
// (default 128 MiB, or CNNCORE_WINOGRAD_CACHE_MB at start); weights that
// change between calls (training) are transformed each call and not kept.
// 0 turns the cache off; lowering the limit frees what is above it.
void set_winograd_cache_limit(int64_t bytes);  // bytes >= 0, else value_error
int64_t get_winograd_cache_limit();
int64_t winograd_cache_bytes();  // bytes held now

// Kernel level in use: "ref", "generic", "avx2" or "avx512" (AVX-512F). Chosen once from the CPU
// and the environment variable CNNCORE_ISA; set_isa overrides it.
enum class Isa { ref = 0, generic = 1, avx2 = 2, avx512 = 3 };
Isa get_isa();
void set_isa(Isa isa);           // value_error if the CPU lacks it
Isa parse_isa(const std::string& name);
const char* isa_name(Isa isa);
Isa best_supported_isa();

}  // namespace cnncore
