// The interface a device backend implements (ggml's idea: a backend says
// which ops it serves; the op layer dispatches on the inputs' device).
//
// The op layer (cpp/src/ops/) validates, allocates on the device and calls
// one method of Kernels<T> with device pointers and the resolved geometry,
// as it calls a CPU kernel. Two implementations share every kernel body
// (cpp/src/cuda/bodies.hpp): the CUDA backend (cpp/src/cuda/backend.cu, one
// device thread per work item) and its host emulator
// (cpp/src/cuda/emulator.cpp, an OpenMP loop over the same work items).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cnncore/device.hpp"
#include "cnncore/layers.hpp"
#include "cnncore/optim.hpp"
#include "ops/axis_geometry.hpp"
#include "ops/conv_geometry.hpp"
#include "ops/pool_geometry.hpp"
#include "util/hd.hpp"

namespace cnncore::device {

constexpr int kMaxDims = 8;  // rank limit of the broadcasting / strided array primitives

// An element-strided view: element k of the view (row-major over shape) is at
// offset + sum(index_d * strides[d]).
struct View {
  int rank = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
  int64_t offset = 0;
  CNNCORE_HD int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= shape[d];
    return n;
  }
  // The memory offset of flat (row-major) element k of the view.
  CNNCORE_HD int64_t at(int64_t k) const {
    int64_t off = offset;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t i = k % shape[d];
      k /= shape[d];
      off += i * strides[d];
    }
    return off;
  }
};

// Up to three operands broadcast to one output shape: strides[d] is 0 where an
// operand has extent 1 (or lacks the axis).
struct Broadcast {
  int rank = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[3][kMaxDims] = {};
  CNNCORE_HD int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= shape[d];
    return n;
  }
  CNNCORE_HD int64_t at(int operand, int64_t k) const {
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t i = k % shape[d];
      k /= shape[d];
      off += i * strides[operand][d];
    }
    return off;
  }
};

// A reduction: output element k is the kept view at k; its inputs are the
// `reduced` view's elements added to that offset.
struct Reduction {
  View kept;     // output shape (without the reduced axes), strides into the input
  View reduced;  // the reduced axes, strides into the input (offset 0)
};

// One plane of a padding: `in` grows to `out` = before + in + after per axis
// (three axes, leading ones of extent 1), the border following `mode`.
struct PadBox {
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, before[3] = {0, 0, 0};
  PaddingMode mode = PaddingMode::zeros;
};

struct LinearDims {
  int64_t rows = 0, in = 0, out = 0;
};

template <typename T>
class Kernels {
 public:
  virtual ~Kernels() = default;

  // ---- array primitives
  virtual void unary(UnaryOp op, int64_t n, const T* src, T* dst) const = 0;
  virtual void binary(BinaryOp op, const Broadcast& b, const T* a, const T* c, T* dst) const = 0;
  virtual void binary_scalar(BinaryOp op, int64_t n, const T* a, T s, bool scalar_first, T* dst) const = 0;
  virtual void where(const Broadcast& b, const T* cond, const T* a, const T* c, T* dst) const = 0;
  virtual void clip(int64_t n, const T* src, T lo, T hi, bool has_lo, bool has_hi, T* dst) const = 0;
  virtual void reduce(ReduceOp op, const Reduction& r, const T* src, T* dst) const = 0;
  virtual void gather(const View& v, const T* src, T* dst) const = 0;
  // dst[view at k] = src[b.at(0, k)] for every k of the view (b broadcasts src to the view).
  virtual void scatter(const View& v, const Broadcast& b, const T* src, T* dst) const = 0;
  virtual void fill(int64_t n, T value, T* dst) const = 0;
  virtual void cast(int64_t n, const T* src, float* dst) const = 0;
  virtual void cast(int64_t n, const T* src, double* dst) const = 0;
  virtual void matmul(int64_t batch, int64_t M, int64_t N, int64_t K, const T* a, const T* b, T* c) const = 0;

  // ---- convolution (ConvGeometry as the CPU kernels take it)
  virtual void conv_forward(const detail::ConvGeometry& g, const T* src, const T* weights, const T* bias,
                            T* dst) const = 0;
  // diff_src from diff_dst through the padded input: `padded` is a workspace of
  // N * C_in * prod(in + pad_before + pad_after) elements.
  virtual void conv_backward_data(const detail::ConvGeometry& g, const T* diff_dst, const T* weights, T* padded,
                                  T* diff_src) const = 0;
  virtual void conv_backward_weight(const detail::ConvGeometry& g, const T* diff_dst, const T* src,
                                    T* diff_weights) const = 0;
  // out[c] = sum over n and i of x[(n * C + c) * inner + i].
  virtual void channel_sum(int64_t N, int64_t C, int64_t inner, const T* src, T* dst) const = 0;

  // ---- padding: `planes` planes of box b
  virtual void pad_forward(const PadBox& b, int64_t planes, T value, const T* src, T* dst) const = 0;
  virtual void pad_backward(const PadBox& b, int64_t planes, const T* diff_dst, T* diff_src) const = 0;

  // ---- pooling (tap_weights: weighted_avg's normalised weights, device memory, else null)
  virtual void pool_forward(const detail::PoolGeometry& g, const T* src, const double* tap_weights,
                            T* dst) const = 0;
  virtual void pool_backward(const detail::PoolGeometry& g, const T* diff_dst, const T* src,
                             const double* tap_weights, T* diff_src) const = 0;

  // ---- activations (kind: the value of cnncore::Activation)
  virtual void activation_forward(int kind, T slope, int64_t n, const T* src, T* dst) const = 0;
  virtual void activation_backward(int kind, T slope, int64_t n, const T* diff_dst, const T* src,
                                   T* diff_src) const = 0;

  // ---- softmax / cross-entropy over axis 1 of (outer, axis, inner)
  virtual void softmax_forward(const detail::AxisGeometry& g, bool log, const T* src, T* dst) const = 0;
  virtual void softmax_backward(const detail::AxisGeometry& g, bool log, const T* diff_dst, const T* src,
                                T* diff_src) const = 0;
  // loss[p] per position p = (o, i); target in device memory.
  virtual void cross_entropy_forward(const detail::AxisGeometry& g, const T* src, const T* weights,
                                     const int64_t* target, int64_t ignore_index, double smoothing,
                                     T* loss) const = 0;
  // scale[p] = diff_dst[p * dstride] * factor.
  virtual void cross_entropy_backward(const detail::AxisGeometry& g, const T* diff_dst, int64_t dstride,
                                      double factor, const T* src, const T* weights, const int64_t* target,
                                      int64_t ignore_index, double smoothing, T* diff_src) const = 0;

  virtual void nll_loss_forward(const detail::AxisGeometry& g, const T* src, const T* weights, const int64_t* target,
                                int64_t ignore_index, T* loss) const = 0;
  virtual void nll_loss_backward(const detail::AxisGeometry& g, const T* diff_dst, int64_t dstride, double factor,
                                 const T* weights, const int64_t* target, int64_t ignore_index,
                                 T* diff_src) const = 0;

  // ---- dropout (the CPU's counter-based mask from seed and p) and LRN
  virtual void dropout(uint64_t seed, double p, int64_t n, const T* src, T* dst) const = 0;
  virtual void lrn_forward(const detail::AxisGeometry& g, const LrnParams& p, const T* src, T* dst) const = 0;
  virtual void lrn_backward(const detail::AxisGeometry& g, const LrnParams& p, const T* diff_dst, const T* src,
                            T* diff_src) const = 0;

  // ---- batch norm over axis 1 (statistics in double, device memory)
  virtual void batch_norm_stats(const detail::AxisGeometry& g, const T* src, double* mean, double* var) const = 0;
  // mean/var <- running (training=false), then invstd = 1/sqrt(var + eps); when
  // training and running stats are given, they move towards the batch's.
  virtual void batch_norm_finish(int64_t C, int64_t M, bool training, double eps, double momentum, double* mean,
                                 double* var, double* invstd, T* running_mean, T* running_var) const = 0;
  virtual void batch_norm_apply(const detail::AxisGeometry& g, const T* src, const double* mean,
                                const double* invstd, const T* weights, const T* bias, T* dst) const = 0;
  virtual void batch_norm_backward(const detail::AxisGeometry& g, bool training, const T* diff_dst, const T* src,
                                   const double* mean, const double* invstd, const T* weights,
                                   double* partials /* 2C: sum dy, then sum dy * xhat */,
                                   T* diff_src, T* diff_weights, T* diff_bias) const = 0;

  // ---- linear: y (rows, out) = x (rows, in) @ w (out, in)^T + b
  virtual void linear_forward(const LinearDims& d, const T* src, const T* weights, const T* bias, T* dst) const = 0;
  virtual void linear_backward_data(const LinearDims& d, const T* diff_dst, const T* weights, T* diff_src) const = 0;
  virtual void linear_backward_weight(const LinearDims& d, const T* diff_dst, const T* src,
                                      T* diff_weights) const = 0;

  // ---- optimiser updates, in place
  virtual void sgd_update(int64_t n, T* weights, const T* grad, T* buffer, const SgdParams& p) const = 0;
  virtual void adam_update(int64_t n, T* weights, const T* grad, T* m, T* v, T* vmax, const AdamParams& p) const = 0;
};

enum class CopyKind { host_to_device, device_to_host, device_to_device };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual bool emulated() const = 0;
  // Device memory: null when the device is out of memory.
  virtual void* raw_alloc(std::size_t bytes) = 0;
  virtual void raw_free(void* p) = 0;
  virtual void copy(void* dst, const void* src, std::size_t bytes, CopyKind kind) = 0;
  virtual void synchronize() = 0;
  virtual const Kernels<float>& kernels(float) const = 0;
  virtual const Kernels<double>& kernels(double) const = 0;
};

// The backend serving `device` for `op`, or value_error saying why there is
// none (no CUDA build, no device, the emulator off).
Backend& backend_for(const char* op, Device device);

// The backends (defined by cuda/backend.cu and cuda/emulator.cpp).
std::unique_ptr<Backend> make_cuda_backend(std::string* why_not);  // null when no device
std::unique_ptr<Backend> make_emulator_backend();

// Allocation from `device`'s caching allocator (value_error naming `op` when
// the device is out of memory even after emptying the cache).
Tensor allocate(const char* op, const Shape& shape, DType dtype, Device device);

// `t` viewed with another shape of the same size (shares the storage).
Tensor reshaped(const Tensor& t, const Shape& shape);

// The op-layer side: every defined tensor in `args` is on `device` (the first
// one's), else value_error naming the odd one; returns that device.
struct Named {
  const char* name;
  const Tensor* t;
};
Device common_device(const char* op, std::initializer_list<Named> args);
// value_error unless `op` runs on `device` for `dtype` (cuda_supports).
void check_supported(const char* op, Device device, DType dtype);

}  // namespace cnncore::device
