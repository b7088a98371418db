// The host emulator of the CUDA backend: the kernel bodies of bodies.hpp run
// by an OpenMP loop over their work items, "device" memory from the host heap.
// It serves Device::cuda only when asked (cuda_use_emulator) and no real
// device is present, so that tests reach the backend's kernels and plumbing
// on machines without a GPU. Always compiled, CUDA build or not.
#include <cstdlib>
#include <cstring>

#include "cnncore/runtime.hpp"
#include "cuda/kernels_impl.hpp"

namespace cnncore::device {

namespace {

struct HostExec {
  template <class F>
  static void run(int64_t n, const F& body) {
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (n > 4096)
    for (int64_t i = 0; i < n; ++i) body(i);
  }
};

class Emulator final : public Backend {
 public:
  std::string name() const override { return "host emulator (no GPU)"; }
  bool emulated() const override { return true; }
  void* raw_alloc(std::size_t bytes) override { return std::aligned_alloc(256, (bytes + 255) / 256 * 256); }
  void raw_free(void* p) override { std::free(p); }
  void copy(void* dst, const void* src, std::size_t bytes, CopyKind) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void synchronize() override {}
  const Kernels<float>& kernels(float) const override { return f32_; }
  const Kernels<double>& kernels(double) const override { return f64_; }

 private:
  KernelsImpl<HostExec, float> f32_;
  KernelsImpl<HostExec, double> f64_;
};

}  // namespace

std::unique_ptr<Backend> make_emulator_backend() { return std::make_unique<Emulator>(); }

}  // namespace cnncore::device
