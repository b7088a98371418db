// The pooling op layer: validate once, allocate, pick an implementation, run.
#include "cnncore/pool.hpp"

#include <algorithm>

#include "cnncore/device.hpp"
#include "device/backend.hpp"

#include "cnncore/error.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/pool-direct.hpp"
#include "cpu/ref/pool-ref.hpp"
#include "ops/pool_geometry.hpp"
#include "ops/checks.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::PoolGeometry;
using detail::str;
using detail::check_tensor;
using detail::check_same_dtype;
using detail::with_dtype;

namespace {

// The implementation list: the direct path serves every problem; the
// reference is the oracle and the Isa::ref choice.
PoolAlgorithm choose(PoolAlgorithm requested) {
  if (requested != PoolAlgorithm::auto_) return requested;
  return get_isa() == Isa::ref ? PoolAlgorithm::reference : PoolAlgorithm::direct;
}

// The result (plus `extra` bytes) and the chosen algorithm's workspace must
// fit the memory limit before anything is allocated.
void check_budget(const char* op, const PoolGeometry& g, PoolAlgorithm algo, DType dtype, int64_t result_elems,
                  int64_t extra = 0) {
  const int64_t es = static_cast<int64_t>(dtype_size(dtype));
  const int64_t ws = algo == PoolAlgorithm::direct ? cpu::pool_direct_workspace_bytes(g, es, get_num_threads()) : 0;
  const int64_t bytes =
      detail::checked_add(detail::checked_add(detail::checked_mul(result_elems, es, op), ws, op), extra, op);
  check_memory(op, bytes);
}

// grad_out has the output's rank, then its shape.
void check_grad_out(const char* op, const Shape& diff_dst, const PoolGeometry& g) {
  const Shape want = g.dst_shape();
  if (diff_dst.size() != want.size())
    throw value_error(str(op, ": grad_out must have ", want.size(), " dimensions like the output ",
                          shape_str(want), ", got ", diff_dst.size(), " with shape ", detail::tuple_str(diff_dst)));
  detail::check_grad_out_shape(op, diff_dst, want);
}

// The device branch: weighted_avg's tap weights travel to the device once per call.
Tensor device_tap_weights(const char* op, const PoolGeometry& g, Device dev) {
  if (g.kind != PoolKind::weighted_avg) return Tensor();
  const std::vector<double> w = cpu::ref::pool_gaussian_weights(g);
  Tensor host = Tensor::empty({static_cast<int64_t>(w.size())}, DType::f64);
  std::copy(w.begin(), w.end(), host.data_as<double>());
  (void)op;
  return to_device(host, dev);
}

void check_device_pool(const char* op, const PoolParams& params) {
  if (params.algorithm == PoolAlgorithm::direct)
    throw value_error(str(op, ": algorithm='direct' is a CPU algorithm; on CUDA use 'auto' or 'reference'"));
}

}  // namespace

Tensor pool_forward(const Tensor& src, const PoolParams& params, int64_t* indices, const char* op, int spatial_dims) {
  detail::AllowDevice allow(src.defined() ? src.device() : Device::cpu);
  check_tensor(op, "x", src);
  const int nd = detail::pool_spatial_rank(op, spatial_dims, src.shape());
  const PoolGeometry g = detail::make_pool_geometry(op, nd, src.shape(), params);
  if (indices && g.kind != PoolKind::max)
    throw value_error(str(op, ": indices are only produced by max pooling, not ", pool_kind_name(g.kind)));
  if (src.device() != Device::cpu) {
    check_device_pool(op, params);
    if (indices)
      throw value_error(str(op, ": return_indices is not available on CUDA (the backward pass finds the maxima "
                                "again); pool on the CPU for the indices"));
    Tensor dst = device::allocate(op, g.dst_shape(), src.dtype(), src.device());
    if (dst.numel() == 0) return dst;
    const Tensor tw = device_tap_weights(op, g, src.device());
    device::Backend& be = device::backend_for(op, src.device());
    with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      be.kernels(T{}).pool_forward(g, src.data_as<T>(), tw.defined() ? tw.data_as<double>() : nullptr,
                                   dst.data_as<T>());
    });
    return dst;
  }
  const PoolAlgorithm algo = choose(params.algorithm);
  const Shape dst_shape = g.dst_shape();
  check_budget(op, g, algo, src.dtype(), shape_numel(dst_shape));
  Tensor dst = Tensor::empty(dst_shape, src.dtype());
  if (dst.numel() == 0) return dst;
  with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (algo == PoolAlgorithm::reference)
      cpu::ref::pool_forward<T>(g, src.data_as<T>(), dst.data_as<T>(), indices);
    else
      cpu::pool_forward_direct<T>(g, src.data_as<T>(), dst.data_as<T>(), indices);
  });
  return dst;
}

Tensor pool_backward(const Tensor& diff_dst, const Tensor& src, const PoolParams& params, const char* op,
                     int spatial_dims) {
  const Device dev = device::common_device(op, {{"x", &src}, {"grad_out", &diff_dst}});
  detail::AllowDevice allow(dev);
  check_tensor(op, "grad_out", diff_dst);
  check_tensor(op, "x", src);
  check_same_dtype(op, "grad_out", diff_dst, "x", src.dtype());
  const int nd = detail::pool_spatial_rank(op, spatial_dims, src.shape());
  const PoolGeometry g = detail::make_pool_geometry(op, nd, src.shape(), params);
  check_grad_out(op, diff_dst.shape(), g);
  if (dev != Device::cpu) {
    check_device_pool(op, params);
    Tensor diff_src = device::allocate(op, src.shape(), src.dtype(), dev);
    if (diff_src.numel() == 0) return diff_src;
    const Tensor tw = device_tap_weights(op, g, dev);
    device::Backend& be = device::backend_for(op, dev);
    with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      be.kernels(T{}).pool_backward(g, diff_dst.data_as<T>(), src.data_as<T>(),
                                    tw.defined() ? tw.data_as<double>() : nullptr, diff_src.data_as<T>());
    });
    return diff_src;
  }
  const PoolAlgorithm algo = choose(params.algorithm);
  check_budget(op, g, algo, src.dtype(), src.numel());
  Tensor diff_src = Tensor::empty(src.shape(), src.dtype());
  if (diff_src.numel() == 0) return diff_src;
  with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (algo == PoolAlgorithm::reference)
      cpu::ref::pool_backward<T>(g, diff_dst.data_as<T>(), src.data_as<T>(), diff_src.data_as<T>());
    else
      cpu::pool_backward_direct<T>(g, diff_dst.data_as<T>(), src.data_as<T>(), diff_src.data_as<T>());
  });
  return diff_src;
}

Tensor max_pool_backward_indices(const Tensor& diff_dst, const int64_t* indices, const Shape& indices_shape,
                                 const Shape& src_shape, const PoolParams& params, const char* op, int spatial_dims) {
  check_tensor(op, "grad_out", diff_dst);
  const int nd = detail::pool_spatial_rank(op, spatial_dims, src_shape);
  const PoolGeometry g = detail::make_pool_geometry(op, nd, src_shape, params);
  if (g.kind != PoolKind::max)
    throw value_error(str(op, ": a gradient from indices needs max pooling, not ", pool_kind_name(g.kind)));
  check_grad_out(op, diff_dst.shape(), g);
  if (indices_shape != diff_dst.shape())
    throw value_error(str(op, ": indices must have grad_out's shape ", shape_str(diff_dst.shape()), ", got ",
                          shape_str(indices_shape)));
  const int64_t n = diff_dst.numel(), plane = g.in_size();
  if (n > 0 && !indices) throw value_error(str(op, ": indices is missing"));
  for (int64_t i = 0; i < n; ++i)
    if (indices[i] < -1 || indices[i] >= plane)
      throw value_error(str(op, ": indices must lie in [-1, ", plane, ") (flat positions in one input plane), got ",
                            indices[i], " at position ", i));
  check_budget(op, g, PoolAlgorithm::reference, diff_dst.dtype(), shape_numel(src_shape));
  Tensor diff_src = Tensor::empty(src_shape, diff_dst.dtype());
  if (diff_src.numel() == 0) return diff_src;
  with_dtype(diff_dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::max_pool_backward_indices_direct<T>(g, diff_dst.data_as<T>(), indices, diff_src.data_as<T>());
  });
  return diff_src;
}

}  // namespace cnncore
