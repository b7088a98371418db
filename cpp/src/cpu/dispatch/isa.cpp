// CPU feature detection, done once, and the kernel level in use.
#include <atomic>
#include <cstdlib>
#include <string>

#include "cnncore/error.hpp"
#include "cnncore/runtime.hpp"

namespace cnncore {

namespace {

Isa detect() {
#if defined(CNNCORE_HAVE_AVX2_KERNELS) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
#if defined(CNNCORE_HAVE_AVX512_KERNELS)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return Isa::avx512;
#endif
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::generic;
}

Isa initial() {
  const Isa best = detect();
  const char* env = std::getenv("CNNCORE_ISA");
  if (!env || !*env) return best;
  Isa wanted;
  try {
    wanted = parse_isa(env);
  } catch (const value_error&) {
    return best;  // an unknown value is ignored rather than failing at load time
  }
  return static_cast<int>(wanted) <= static_cast<int>(best) ? wanted : best;
}

std::atomic<Isa>& isa_setting() {
  static std::atomic<Isa> isa{initial()};
  return isa;
}

}  // namespace

Isa best_supported_isa() {
  static const Isa best = detect();
  return best;
}

Isa get_isa() { return isa_setting(); }

void set_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(best_supported_isa()))
    throw value_error(detail::str("set_isa: this CPU does not support '", isa_name(isa),
                                  "'; the best it supports is '", isa_name(best_supported_isa()), "'"));
  isa_setting() = isa;
}

Isa parse_isa(const std::string& name) {
  if (name == "ref") return Isa::ref;
  if (name == "generic") return Isa::generic;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  throw value_error(detail::str("isa must be one of 'ref', 'generic', 'avx2', 'avx512', got '", name, "'"));
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::ref: return "ref";
    case Isa::generic: return "generic";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

}  // namespace cnncore
