// Process-wide settings: threads, the memory limit and the kernel level.
#pragma once

#include <cstdint>
#include <string>

namespace cnncore {

// Number of OpenMP threads every kernel uses (default: OpenMP's maximum).
void set_num_threads(int n);  // 1 <= n <= 1024, else value_error
int get_num_threads();

// Largest number of bytes one operation may allocate for its result and
// workspace together. Default: the machine's physical memory.
void set_memory_limit(int64_t bytes);  // bytes >= 1, else value_error
int64_t get_memory_limit();

// Throws value_error naming `op` when `bytes` exceeds the memory limit.
void check_memory(const char* op, int64_t bytes);

// Kernel level in use: "ref", "generic", "avx2" or "avx512" (AVX-512F). Chosen once from the CPU
// and the environment variable CNNCORE_ISA; set_isa overrides it.
enum class Isa { ref = 0, generic = 1, avx2 = 2, avx512 = 3 };
Isa get_isa();
void set_isa(Isa isa);           // value_error if the CPU lacks it
Isa parse_isa(const std::string& name);
const char* isa_name(Isa isa);
Isa best_supported_isa();

}  // namespace cnncore
