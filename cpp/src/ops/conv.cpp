// The convolution op layer: validate once, allocate, pick an implementation, run.
#include "cnncore/conv.hpp"

#include <cstring>

#include "cnncore/error.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/conv-direct.hpp"
#include "cpu/kernels/conv-fft.hpp"
#include "cpu/kernels/conv-im2col.hpp"
#include "cpu/ref/conv-ref.hpp"
#include "ops/conv_geometry.hpp"
#include "ops/checks.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::ConvGeometry;
using detail::str;
using detail::check_tensor;
using detail::check_same_dtype;
using detail::with_dtype;

namespace {

using detail::ConvPass;

// The implementation list: the reference, im2col and fft serve everything;
// direct serves what its why_not accepts.
std::string why_not(ConvAlgorithm algo, const ConvGeometry& g) {
  switch (algo) {
    case ConvAlgorithm::direct: return cpu::conv_direct_why_not(g);
    default: return {};
  }
}

ConvAlgorithm choose(const char* op, ConvAlgorithm requested, const ConvGeometry& g) {
  if (requested == ConvAlgorithm::auto_) {
    if (get_isa() == Isa::ref) return ConvAlgorithm::reference;
    // FFT first: it is preferred only for large kernels where its estimate beats direct (depthwise) and im2col.
    if (cpu::conv_fft_preferred(g)) return ConvAlgorithm::fft;
    if (cpu::conv_direct_why_not(g).empty() && cpu::conv_direct_preferred(g)) return ConvAlgorithm::direct;
    return ConvAlgorithm::im2col;
  }
  const std::string why = why_not(requested, g);
  if (!why.empty())
    throw value_error(str(op, ": algorithm='", conv_algorithm_name(requested), "' cannot serve this problem: ", why));
  return requested;
}

int64_t workspace_bytes(ConvAlgorithm algo, const ConvGeometry& g, int64_t es, ConvPass pass) {
  const int nt = get_num_threads();
  switch (algo) {
    case ConvAlgorithm::im2col: return cpu::conv_im2col_workspace_bytes(g, es, pass, nt);
    case ConvAlgorithm::direct: return cpu::conv_direct_workspace_bytes(g, es, pass, nt);
    case ConvAlgorithm::fft: return cpu::conv_fft_workspace_bytes(g, es, pass, nt);
    default: return 0;
  }
}

// Checks that the result plus the chosen algorithm's workspace fits the
// memory limit before anything is allocated.
void check_budget(const char* op, const ConvGeometry& g, ConvAlgorithm algo, ConvPass pass, DType dtype,
                  int64_t result_elems) {
  const int64_t es = static_cast<int64_t>(dtype_size(dtype));
  const int64_t bytes = detail::checked_add(detail::checked_mul(result_elems, es, op),
                                            workspace_bytes(algo, g, es, pass), op);
  check_memory(op, bytes);
}

template <typename T>
void run_forward(ConvAlgorithm algo, const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst) {
  switch (algo) {
    case ConvAlgorithm::reference: return cpu::ref::conv_forward(g, src, weights, bias, dst);
    case ConvAlgorithm::direct: return cpu::conv_forward_direct(g, src, weights, bias, dst);
    case ConvAlgorithm::fft: return cpu::conv_forward_fft(g, src, weights, bias, dst);
    default: return cpu::conv_forward_im2col(g, src, weights, bias, dst);
  }
}

template <typename T>
void run_backward_data(ConvAlgorithm algo, const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src) {
  switch (algo) {
    case ConvAlgorithm::reference: return cpu::ref::conv_backward_data(g, diff_dst, weights, diff_src);
    case ConvAlgorithm::direct: return cpu::conv_backward_data_direct(g, diff_dst, weights, diff_src);
    case ConvAlgorithm::fft: return cpu::conv_backward_data_fft(g, diff_dst, weights, diff_src);
    default: return cpu::conv_backward_data_im2col(g, diff_dst, weights, diff_src);
  }
}

template <typename T>
void run_backward_weight(ConvAlgorithm algo, const ConvGeometry& g, const T* diff_dst, const T* src,
                         T* diff_weights) {
  switch (algo) {
    case ConvAlgorithm::reference: return cpu::ref::conv_backward_weight(g, diff_dst, src, diff_weights);
    case ConvAlgorithm::direct: return cpu::conv_backward_weight_direct(g, diff_dst, src, diff_weights);
    case ConvAlgorithm::fft: return cpu::conv_backward_weight_fft(g, diff_dst, src, diff_weights);
    default: return cpu::conv_backward_weight_im2col(g, diff_dst, src, diff_weights);
  }
}

Tensor forward_nd(const char* op, int nd, const Tensor& src, const Tensor& weights, const Tensor& bias,
                  const ConvParams& params) {
  check_tensor(op, "x", src);
  check_tensor(op, "weight", weights);
  const ConvGeometry g = detail::make_conv_geometry(op, nd, src.shape(), weights.shape(), params);
  check_same_dtype(op, "weight", weights, "x", src.dtype());
  if (bias.defined()) {
    check_tensor(op, "bias", bias);
    detail::check_bias_shape(op, bias.shape(), g.C_out);
    check_same_dtype(op, "bias", bias, "x", src.dtype());
  }
  const ConvAlgorithm algo = choose(op, params.algorithm, g);
  const Shape dst_shape = g.dst_shape();
  check_budget(op, g, algo, ConvPass::forward, src.dtype(), shape_numel(dst_shape));
  Tensor dst = Tensor::empty(dst_shape, src.dtype());
  if (dst.numel() == 0) return dst;
  with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* b = bias.defined() ? bias.data_as<T>() : nullptr;
    run_forward<T>(algo, g, src.data_as<T>(), weights.data_as<T>(), b, dst.data_as<T>());
  });
  return dst;
}

Tensor backward_data_nd(const char* op, int nd, const Tensor& diff_dst, const Tensor& weights,
                        const Shape& src_shape, const ConvParams& params) {
  check_tensor(op, "grad_out", diff_dst);
  check_tensor(op, "weight", weights);
  const ConvGeometry g = detail::make_conv_geometry(op, nd, src_shape, weights.shape(), params);
  detail::check_grad_out_shape(op, diff_dst.shape(), g.dst_shape());
  check_same_dtype(op, "weight", weights, "grad_out", diff_dst.dtype());
  const ConvAlgorithm algo = choose(op, params.algorithm, g);
  check_budget(op, g, algo, ConvPass::backward_data, diff_dst.dtype(), shape_numel(src_shape));
  Tensor diff_src = Tensor::zeros(src_shape, diff_dst.dtype());
  if (diff_src.numel() == 0) return diff_src;
  with_dtype(diff_dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    run_backward_data<T>(algo, g, diff_dst.data_as<T>(), weights.data_as<T>(), diff_src.data_as<T>());
  });
  return diff_src;
}

Tensor backward_weight_nd(const char* op, int nd, const Tensor& diff_dst, const Tensor& src,
                          const Shape& weights_shape, const ConvParams& params) {
  check_tensor(op, "grad_out", diff_dst);
  check_tensor(op, "x", src);
  const ConvGeometry g = detail::make_conv_geometry(op, nd, src.shape(), weights_shape, params);
  detail::check_grad_out_shape(op, diff_dst.shape(), g.dst_shape());
  check_same_dtype(op, "grad_out", diff_dst, "x", src.dtype());
  const ConvAlgorithm algo = choose(op, params.algorithm, g);
  check_budget(op, g, algo, ConvPass::backward_weight, src.dtype(), shape_numel(weights_shape));
  Tensor diff_weights = Tensor::zeros(weights_shape, src.dtype());
  with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    run_backward_weight<T>(algo, g, diff_dst.data_as<T>(), src.data_as<T>(), diff_weights.data_as<T>());
  });
  return diff_weights;
}

}  // namespace

Tensor conv_forward(const Tensor& src, const Tensor& weights, const Tensor& bias, const ConvParams& params,
                    const char* op, int spatial_dims) {
  return forward_nd(op, detail::resolve_spatial_rank(op, spatial_dims, src.shape()), src, weights, bias, params);
}

Tensor conv_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                          const ConvParams& params, const char* op, int spatial_dims) {
  return backward_data_nd(op, detail::resolve_spatial_rank(op, spatial_dims, src_shape), diff_dst, weights, src_shape, params);
}

Tensor conv_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                            const ConvParams& params, const char* op, int spatial_dims) {
  return backward_weight_nd(op, detail::resolve_spatial_rank(op, spatial_dims, src.shape()), diff_dst, src, weights_shape,
                            params);
}

Gradients conv_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weights, GradMask mask,
                        const ConvParams& params, const char* op, int spatial_dims) {
  detail::check_pair(op, "x", src, "weight", weights);
  check_tensor(op, "grad_out", diff_dst);
  check_same_dtype(op, "grad_out", diff_dst, "x", src.dtype());
  const int nd = detail::resolve_spatial_rank(op, spatial_dims, src.shape());
  const ConvGeometry g = detail::make_conv_geometry(op, nd, src.shape(), weights.shape(), params);
  detail::check_grad_out_shape(op, diff_dst.shape(), g.dst_shape());
  Gradients grads;
  if (mask.diff_src) grads.diff_src = backward_data_nd(op, nd, diff_dst, weights, src.shape(), params);
  if (mask.diff_weights) grads.diff_weights = backward_weight_nd(op, nd, diff_dst, src, weights.shape(), params);
  if (mask.diff_bias) grads.diff_bias = conv_backward_bias(diff_dst, op);
  return grads;
}

// grad_bias[c] = sum over images and positions of grad_out[:, c, ...].
Tensor conv_backward_bias(const Tensor& diff_dst, const char* op) {
  check_tensor(op, "grad_out", diff_dst);
  const Shape& s = diff_dst.shape();
  if (s.size() < 3)
    throw value_error(str(op, ": grad_out must have at least 3 dimensions (N, C_out, spatial...), got shape ",
                          shape_str(s)));
  const int64_t N = s[0], C = s[1];
  const int64_t inner = C == 0 || N == 0 ? 0 : diff_dst.numel() / (N * C);
  Tensor db = Tensor::zeros({C}, diff_dst.dtype());
  with_dtype(diff_dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* dy = diff_dst.data_as<T>();
    T* out = db.data_as<T>();
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
    for (int64_t c = 0; c < C; ++c) {
      T sum = 0;
      for (int64_t n = 0; n < N; ++n) {
        const T* row = dy + (n * C + c) * inner;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < inner; ++i) sum += row[i];
      }
      out[c] = sum;
    }
  });
  return db;
}

Tensor conv2d_forward(const Tensor& src, const Tensor& weights, const Tensor& bias, const ConvParams& params) {
  return forward_nd("conv2d", 2, src, weights, bias, params);
}

Tensor conv2d_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                            const ConvParams& params) {
  return backward_data_nd("conv2d", 2, diff_dst, weights, src_shape, params);
}

Tensor conv2d_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                              const ConvParams& params) {
  return backward_weight_nd("conv2d", 2, diff_dst, src, weights_shape, params);
}

Tensor conv2d_backward_bias(const Tensor& diff_dst) {
  if (diff_dst.defined() && diff_dst.dim() != 4)
    throw value_error(str("conv2d: grad_out must have 4 dimensions (N, C_out, H_out, W_out), got shape ",
                          shape_str(diff_dst.shape())));
  return conv_backward_bias(diff_dst, "conv2d");
}

}  // namespace cnncore
