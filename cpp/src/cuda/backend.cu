// The CUDA backend: the kernel bodies of bodies.hpp launched one device
// thread per work item (grid-stride), device memory from cudaMalloc behind
// the caching allocator of device/backend.cpp, the legacy default stream
// (launches are asynchronous; copies to the host wait for them). Compiled
// only with -DCNNCORE_CUDA=ON.
#include <cuda_runtime.h>

#include <string>

#include "cnncore/error.hpp"
#include "cuda/kernels_impl.hpp"
#include "util/checked.hpp"

namespace cnncore::device {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw value_error(detail::str("cuda: ", what, " failed: ", cudaGetErrorString(e)));
}

template <class F>
__global__ void for_each_item(int64_t n, F body) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) body(i);
}

struct CudaExec {
  template <class F>
  static void run(int64_t n, const F& body) {
    if (n <= 0) return;
    constexpr int kThreads = 256;
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    for_each_item<<<static_cast<unsigned>(blocks < 65535 * 8 ? blocks : 65535 * 8), kThreads>>>(n, body);
    check(cudaGetLastError(), "kernel launch");
  }
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  bool emulated() const override { return false; }
  void* raw_alloc(std::size_t bytes) override {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky out-of-memory error
      return nullptr;
    }
    return p;
  }
  void raw_free(void* p) override { cudaFree(p); }
  void copy(void* dst, const void* src, std::size_t bytes, CopyKind kind) override {
    if (!bytes) return;
    const cudaMemcpyKind k = kind == CopyKind::host_to_device   ? cudaMemcpyHostToDevice
                             : kind == CopyKind::device_to_host ? cudaMemcpyDeviceToHost
                                                                : cudaMemcpyDeviceToDevice;
    check(cudaMemcpy(dst, src, bytes, k), "cudaMemcpy");
  }
  void synchronize() override { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
  const Kernels<float>& kernels(float) const override { return f32_; }
  const Kernels<double>& kernels(double) const override { return f64_; }

 private:
  std::string name_;
  KernelsImpl<CudaExec, float> f32_;
  KernelsImpl<CudaExec, double> f64_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(std::string* why_not) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    *why_not = e != cudaSuccess ? std::string("the CUDA runtime reports: ") + cudaGetErrorString(e)
                                : std::string("the CUDA runtime found no device");
    return nullptr;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  return std::make_unique<CudaBackend>(std::string(prop.name));
}

int cuda_runtime_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

}  // namespace cnncore::device
