// Devices other than the CPU: the optional CUDA backend.
//
// A Tensor whose device() is Device::cuda holds device memory from the
// backend's caching allocator. Ops that the backend serves (cuda_supports)
// take such tensors and return results on the same device; an op given
// tensors on two devices, or a CUDA tensor it has no kernel for, throws
// value_error naming the argument. The array primitives below (elementwise,
// broadcasting, reductions, strided copies, matmul) exist for device tensors
// only: they are what the Python device array (cnncore.cuda) is built from,
// where CPU arrays use NumPy.
//
// The backend is there when cnncore was built with -DCNNCORE_CUDA=ON and the
// CUDA runtime finds a device. A host emulator of the backend (the same
// kernel bodies run by an OpenMP loop over host memory) can stand in for it
// where there is no GPU (cuda_use_emulator): the tests use it to exercise the
// backend's kernels and plumbing on any machine. It is never picked silently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnncore/tensor.hpp"

namespace cnncore {

struct CudaInfo {
  bool built = false;      // compiled with CNNCORE_CUDA=ON
  bool available = false;  // a real device answered
  bool emulated = false;   // the host emulator serves Device::cuda now
  int device_count = 0;
  std::string device_name;  // of device 0, or "host emulator (no GPU)"
  std::string why_unavailable;  // empty when available
};
CudaInfo cuda_info();

// Blocks until every queued device operation has finished (no-op without a device).
void cuda_synchronize();

// Lets the host emulator serve Device::cuda when no real device is available
// (testing); value_error when a real device is present. Returns the previous setting.
bool cuda_use_emulator(bool on);

// Caching-allocator figures of the active CUDA backend, in bytes.
struct DeviceMemoryStats {
  int64_t allocated = 0;       // held by live tensors
  int64_t reserved = 0;        // allocated + cached free blocks
  int64_t peak_allocated = 0;  // since the last reset
  int64_t device_allocs = 0;   // calls to the device's own allocator (cache misses)
  int64_t cache_hits = 0;      // requests served from the cache
};
DeviceMemoryStats cuda_memory_stats();
void cuda_empty_cache();       // return cached free blocks to the device
void cuda_reset_peak_memory();

// The ops (by their C++ entry name, e.g. "conv_forward") the CUDA backend serves, and
// whether it serves one for a dtype.
std::vector<std::string> cuda_supported_ops();
bool cuda_supports(const std::string& op, DType dtype);

// A copy of `src` on `device` (src itself when it is already there).
Tensor to_device(const Tensor& src, Device device);
// Uninitialised / zero-filled tensors on `device`.
Tensor empty_on(const Shape& shape, DType dtype, Device device);
Tensor zeros_on(const Shape& shape, DType dtype, Device device);
// "cpu" / "cuda".
const char* device_name(Device device);

// ---- array primitives for device tensors -------------------------------------------

enum class UnaryOp { neg, exp, log, sqrt, abs, sign, square, reciprocal, tanh, sigmoid, floor, ceil, isnan };
enum class BinaryOp { add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, fmax, fmin };
enum class ReduceOp { sum, max, min, prod, argmax, argmin, any_nan };

UnaryOp parse_unary_op(const std::string& name);
BinaryOp parse_binary_op(const std::string& name);
ReduceOp parse_reduce_op(const std::string& name);

Tensor array_unary(const Tensor& src, UnaryOp op);
// NumPy broadcasting of a and b; comparisons give 1 or 0 in the inputs' dtype.
Tensor array_binary(const Tensor& a, const Tensor& b, BinaryOp op);
// a op s (or s op a when scalar_first).
Tensor array_binary_scalar(const Tensor& a, double s, BinaryOp op, bool scalar_first);
// cond != 0 ? a : b, all three broadcast together.
Tensor array_where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor array_clip(const Tensor& src, double lo, double hi);  // NaN bounds mean "none"
// Reduces the listed axes (each once, in [0, rank)); argmax/argmin take one
// axis (or all, flattened) and give indices in the input's dtype.
Tensor array_reduce(const Tensor& src, const std::vector<int64_t>& axes, ReduceOp op, bool keepdims);
// The contiguous copy of the view of src's memory with `shape`, element
// strides `strides` (may be 0 or negative) and element offset `offset`;
// every address it reaches is checked to lie inside src.
Tensor array_gather(const Tensor& src, const Shape& shape, const std::vector<int64_t>& strides, int64_t offset);
// Writes src (broadcast to `shape`) into the view of dst's memory described likewise.
void array_scatter(Tensor& dst, const Shape& shape, const std::vector<int64_t>& strides, int64_t offset,
                   const Tensor& src);
Tensor array_cast(const Tensor& src, DType dtype);
void array_fill(Tensor& dst, double value);
// (B..., M, K) @ (B..., K, N) with equal leading dims (the caller broadcasts), or 2-D.
Tensor array_matmul(const Tensor& a, const Tensor& b);

}  // namespace cnncore
