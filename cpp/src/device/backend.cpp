// Which backend serves Device::cuda, its caching allocator, and the public
// device API of cnncore/device.hpp.
#include "device/backend.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cnncore/error.hpp"
#include "util/checked.hpp"

namespace cnncore::device {

using detail::str;

#if !defined(CNNCORE_WITH_CUDA)
std::unique_ptr<Backend> make_cuda_backend(std::string* why_not) {
  *why_not = "cnncore was built without CUDA (rebuild with -DCNNCORE_CUDA=ON, e.g. "
             "pip install . -Ccmake.define.CNNCORE_CUDA=ON)";
  return nullptr;
}
#endif

namespace {

// Freed blocks are kept by size class and handed out again for a request of
// the same class; the device's allocator is called only on a miss, and once
// more after emptying the cache when it reports out of memory. Size classes:
// multiples of 512 bytes below 1 MiB, above it the next of 1, 1.25, 1.5 and
// 1.75 times a power of two (at most 25% slack).
class CachingAllocator {
 public:
  explicit CachingAllocator(Backend* be) : be_(be) {}

  static std::size_t size_class(std::size_t bytes) {
    constexpr std::size_t kSmall = 512, kLarge = std::size_t(1) << 20;
    if (bytes < kLarge) return std::max<std::size_t>(kSmall, (bytes + kSmall - 1) / kSmall * kSmall);
    std::size_t p = kLarge;
    while (p * 2 <= bytes) p *= 2;
    for (std::size_t q = 0; q <= 4; ++q) {
      const std::size_t c = p + q * (p / 4);
      if (c >= bytes) return c;
    }
    return 2 * p;
  }

  void* get(const char* op, std::size_t bytes, std::size_t* cls) {
    *cls = size_class(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(*cls);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= static_cast<int64_t>(*cls);
      ++stats_.cache_hits;
      hand_out(*cls);
      return p;
    }
    void* p = be_->raw_alloc(*cls);
    if (!p) {
      release_cached();
      p = be_->raw_alloc(*cls);
    }
    if (!p)
      throw value_error(str(op, ": the ", be_->name(), " device is out of memory allocating ", bytes,
                            " bytes (", stats_.allocated, " bytes in use by tensors)"));
    ++stats_.device_allocs;
    reserved_ += static_cast<int64_t>(*cls);
    hand_out(*cls);
    return p;
  }

  void put(void* p, std::size_t cls) {
    std::lock_guard<std::mutex> lock(mu_);
    free_[cls].push_back(p);
    cached_ += static_cast<int64_t>(cls);
    stats_.allocated -= static_cast<int64_t>(cls);
  }

  void empty() {
    std::lock_guard<std::mutex> lock(mu_);
    release_cached();
  }

  DeviceMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    DeviceMemoryStats s = stats_;
    s.reserved = reserved_;
    return s;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_allocated = stats_.allocated;
  }

 private:
  void hand_out(std::size_t cls) {
    stats_.allocated += static_cast<int64_t>(cls);
    stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  }
  void release_cached() {  // mu_ held
    for (auto& [cls, blocks] : free_) {
      for (void* p : blocks) be_->raw_free(p);
      reserved_ -= static_cast<int64_t>(cls) * static_cast<int64_t>(blocks.size());
      blocks.clear();
    }
    cached_ = 0;
  }

  Backend* be_;
  std::mutex mu_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  DeviceMemoryStats stats_;
  int64_t reserved_ = 0, cached_ = 0;
};

// A backend with its allocator. Never destroyed: tensors may outlive static
// destruction order, and the CUDA runtime may be torn down before us.
struct Served {
  std::unique_ptr<Backend> backend;
  CachingAllocator* allocator;
};

struct Registry {
  std::mutex mu;
  bool probed = false;
  Served real{nullptr, nullptr};
  std::string why_not;
  Served emulator{nullptr, nullptr};
  bool use_emulator = false;

  void probe() {  // mu held
    if (probed) return;
    probed = true;
    real.backend = make_cuda_backend(&why_not);
    if (real.backend) real.allocator = new CachingAllocator(real.backend.get());
  }
  Served* active() {  // mu held
    probe();
    if (real.backend) return &real;
    if (use_emulator) {
      if (!emulator.backend) {
        emulator.backend = make_emulator_backend();
        emulator.allocator = new CachingAllocator(emulator.backend.get());
      }
      return &emulator;
    }
    return nullptr;
  }
};

Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

Served& served(const char* op) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  Served* s = r.active();
  if (!s) throw value_error(str(op, ": CUDA is not available: ", r.why_not));
  return *s;
}

// The entry points with a device branch (the op layer's names).
const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = {
      "activation_backward", "activation_forward", "adam_update", "array_binary", "array_cast", "array_clip",
      "array_fill", "array_gather", "array_matmul", "array_reduce", "array_scatter", "array_unary", "array_where",
      "batch_norm_backward", "batch_norm_forward", "conv_backward_bias", "conv_backward_data",
      "conv_backward_weight", "conv_forward", "conv_transpose_backward_data", "conv_transpose_backward_weight",
      "conv_transpose_forward", "cross_entropy_backward", "cross_entropy_forward", "dropout_backward", "dropout_forward",
      "linear_backward_bias", "linear_backward_data", "linear_backward_weight", "linear_forward",
      "lrn_backward", "lrn_forward", "nll_loss_backward", "nll_loss_forward", "pad_backward", "pad_forward", "pool_backward", "pool_forward", "separable_conv_backward", "separable_conv_forward", "sgd_update", "softmax_backward", "softmax_forward", "to_device"};
  return ops;
}

}  // namespace

Backend& backend_for(const char* op, Device device) {
  if (device != Device::cuda) throw value_error(str(op, ": no device backend for ", device_name(device)));
  return *served(op).backend;
}

Tensor allocate(const char* op, const Shape& shape, DType dtype, Device device) {
  const int64_t bytes =
      detail::checked_mul(shape_numel(shape, op), static_cast<int64_t>(dtype_size(dtype)), op);
  if (device == Device::cpu) return Tensor::empty(shape, dtype);
  Served& s = served(op);
  std::size_t cls = 0;
  void* p = s.allocator->get(op, static_cast<std::size_t>(bytes), &cls);
  CachingAllocator* alloc = s.allocator;
  std::shared_ptr<void> owner(p, [alloc, cls](void* q) { alloc->put(q, cls); });
  return Tensor::wrap(p, shape, dtype, std::move(owner), device);
}

Tensor reshaped(const Tensor& t, const Shape& shape) {
  return Tensor::wrap(t.data(), shape, t.dtype(), t.storage(), t.device());
}

Device common_device(const char* op, std::initializer_list<Named> args) {
  const Named* first = nullptr;
  for (const Named& a : args) {
    if (!a.t || !a.t->defined()) continue;
    if (!first) {
      first = &a;
      continue;
    }
    if (a.t->device() != first->t->device())
      throw value_error(str(op, ": ", a.name, " is on ", device_name(a.t->device()), " but ", first->name, " is on ",
                            device_name(first->t->device()), "; move them to one device (.to(...))"));
  }
  return first ? first->t->device() : Device::cpu;
}

void check_supported(const char* op, Device device, DType dtype) {
  if (device == Device::cpu) return;
  if (!cuda_supports(op, dtype))
    throw value_error(str(op, ": has no CUDA kernel; move its inputs to the CPU (.cpu()) for this op"));
}

}  // namespace cnncore::device

namespace cnncore {

using detail::str;

const char* device_name(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

CudaInfo cuda_info() {
  auto& r = device::registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.probe();
  CudaInfo info;
#if defined(CNNCORE_WITH_CUDA)
  info.built = true;
#endif
  info.available = r.real.backend != nullptr;
  info.device_count = info.available ? 1 : 0;
  if (info.available) {
    info.device_name = r.real.backend->name();
  } else {
    info.why_unavailable = r.why_not;
    if (r.use_emulator) {
      info.emulated = true;
      info.device_name = "host emulator (no GPU)";
    }
  }
  return info;
}

void cuda_synchronize() {
  auto& r = device::registry();
  device::Backend* be = nullptr;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    if (device::Served* s = r.active()) be = s->backend.get();
  }
  if (be) be->synchronize();
}

bool cuda_use_emulator(bool on) {
  auto& r = device::registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.probe();
  if (on && r.real.backend)
    throw value_error("cuda_use_emulator: a real CUDA device is present; the emulator only stands in without one");
  const bool was = r.use_emulator;
  r.use_emulator = on;
  return was;
}

DeviceMemoryStats cuda_memory_stats() {
  auto& r = device::registry();
  std::lock_guard<std::mutex> lock(r.mu);
  device::Served* s = r.active();
  return s ? s->allocator->stats() : DeviceMemoryStats{};
}

void cuda_empty_cache() {
  auto& r = device::registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (device::Served* s = r.active()) s->allocator->empty();
}

void cuda_reset_peak_memory() {
  auto& r = device::registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (device::Served* s = r.active()) s->allocator->reset_peak();
}

std::vector<std::string> cuda_supported_ops() { return device::supported_ops(); }

bool cuda_supports(const std::string& op, DType) {
  const auto& ops = device::supported_ops();
  return std::find(ops.begin(), ops.end(), op) != ops.end();
}

Tensor empty_on(const Shape& shape, DType dtype, Device device) {
  return device::allocate("empty", shape, dtype, device);
}

Tensor zeros_on(const Shape& shape, DType dtype, Device device) {
  if (device == Device::cpu) return Tensor::zeros(shape, dtype);
  Tensor t = device::allocate("zeros", shape, dtype, device);
  array_fill(t, 0.0);
  return t;
}

Tensor to_device(const Tensor& src, Device device) {
  const char* op = "to_device";
  if (!src.defined()) throw value_error(str(op, ": the tensor is undefined"));
  if (src.device() == device) return src;
  const Device remote = device == Device::cpu ? src.device() : device;
  device::Backend& be = device::backend_for(op, remote);
  Tensor dst = device::allocate(op, src.shape(), src.dtype(), device);
  be.copy(dst.data(), src.data(), src.nbytes(),
          device == Device::cpu ? device::CopyKind::device_to_host : device::CopyKind::host_to_device);
  return dst;
}

}  // namespace cnncore
