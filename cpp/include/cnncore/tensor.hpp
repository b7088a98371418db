// cnncore::Tensor — a shared, contiguous, typed block of memory with a shape.
//
// Layout contract (the one public layout of the library): tensors are dense
// and row-major ("C order"). Activations are N, C, spatial... — NCHW for 2-D
// (N, C, D, H, W for 3-D, N, C, L for 1-D). Convolution weights are
// (C_out, C_in / groups, kernel...). Strides are implied by the shape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cnncore {

enum class DType { f32, f64 };
enum class Device { cpu, cuda };

using Shape = std::vector<int64_t>;

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"

// Number of elements of a shape; throws value_error on negative extents or
// 64-bit overflow, naming `what` (e.g. "pad: the padded x").
int64_t shape_numel(const Shape& shape, const char* what = "tensor");

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised / zero-filled CPU tensors, 64-byte aligned. The byte size
  // is checked against the memory limit (runtime.hpp) before allocating.
  static Tensor empty(const Shape& shape, DType dtype);
  static Tensor zeros(const Shape& shape, DType dtype);

  // Wraps memory owned elsewhere without copying; `owner` keeps it alive.
  // The memory must be contiguous in the layout above.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner,
                     Device device = Device::cpu);

  bool defined() const { return data_ != nullptr || !shape_.empty(); }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t axis) const { return shape_.at(static_cast<std::size_t>(axis)); }
  int64_t numel() const { return numel_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }
  Shape strides() const;  // in elements
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }

  void* data() const { return data_; }
  template <typename T> T* data_as() const { return static_cast<T*>(data_); }
  const std::shared_ptr<void>& storage() const { return storage_; }

 private:
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

// Which gradients a weighted op's backward computes (convolution, locally
// connected and tiled convolution, linear); Python: input_grad, weight_grad, bias.
struct GradMask {
  bool diff_src = true;
  bool diff_weights = true;
  bool diff_bias = false;
};

// The gradients of a weighted op; those not requested stay undefined.
struct Gradients {
  Tensor diff_src, diff_weights, diff_bias;
};

}  // namespace cnncore
