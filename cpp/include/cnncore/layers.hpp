// Layer kernels: activations, softmax, cross-entropy, dropout, local response
// normalisation, batch normalisation and the linear (fully connected) layer.
//
// Every op has a forward and a backward entry point taking the same params
// struct. Tensors are float32 or float64, all of one dtype; activations are
// laid out (N, C, spatial...) as everywhere in cnncore. Where torch has the
// op, the definition (and every edge case listed below) follows
// torch.nn.functional.
#pragma once

#include <cstdint>
#include <string>

#include "cnncore/tensor.hpp"

namespace cnncore {

// ---- elementwise activations ---------------------------------------------------
//   relu       max(x, 0)              gradient 0 at x = 0
//   leaky_relu x > 0 ? x : slope * x  gradient slope at x = 0
//   sigmoid    1 / (1 + exp(-x))
//   tanh       tanh(x)
// NaN inputs give NaN outputs. The backward takes the forward input.
enum class Activation { relu, leaky_relu, sigmoid, tanh, silu, gelu, gelu_tanh };

struct ActivationParams {
  Activation kind = Activation::relu;
  double negative_slope = 0.01;  // leaky_relu only
};

// "relu", "leaky_relu", "sigmoid", "tanh", "silu" (x sigmoid(x)), "gelu" (x Phi(x), exact),
// "gelu_tanh" (GELU's tanh approximation, torch's approximate="tanh")
Activation parse_activation(const std::string& name);
const char* activation_name(Activation kind);

Tensor activation_forward(const Tensor& src, const ActivationParams& params);
Tensor activation_backward(const Tensor& diff_dst, const Tensor& src, const ActivationParams& params);

// ---- softmax / log-softmax over one axis ----------------------------------------
// y = exp(x - m) / sum exp(x - m), log y = x - m - log sum exp(x - m), with m the
// maximum along `dim` (numerically stable). `dim` may be negative (counted from
// the end); x of any rank >= 1. The backward takes the forward input.
struct SoftmaxParams {
  int64_t dim = -1;
  bool log = false;  // log_softmax
};

Tensor softmax_forward(const Tensor& src, const SoftmaxParams& params);
Tensor softmax_backward(const Tensor& diff_dst, const Tensor& src, const SoftmaxParams& params);

// ---- cross-entropy from logits with class indices ---------------------------------
// input (N, C) or (N, C, d...); target (N) or (N, d...), each value in [0, C) or
// equal to ignore_index. With logp = log_softmax(input) over C, eps the label
// smoothing and w the class weights (1 when absent), the loss at position n is
//   l_n = (1 - eps) * w[t_n] * -logp[n, t_n] + eps / C * sum_c w[c] * -logp[n, c]
// and 0 where t_n == ignore_index. Reduction: none -> l (shape of target);
// sum -> sum l; mean -> sum l / sum of w[t_n] over non-ignored positions (NaN
// when there are none, like torch). mean and sum give a 0-d tensor.
enum class Reduction { none, mean, sum };
Reduction parse_reduction(const std::string& name);  // "none", "mean", "sum"
const char* reduction_name(Reduction reduction);

struct CrossEntropyParams {
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::mean;
  double label_smoothing = 0.0;  // in [0, 1]
};

// A dense row-major array of class indices (the tensor type holds floats only).
struct Labels {
  const int64_t* data = nullptr;
  Shape shape;
};

// `weights` (C) may be an undefined Tensor().
Tensor cross_entropy_forward(const Tensor& src, const Labels& target, const Tensor& weights,
                             const CrossEntropyParams& params);
// diff_dst has the shape of the forward result; returns the gradient of src.
Tensor cross_entropy_backward(const Tensor& diff_dst, const Tensor& src, const Labels& target,
                              const Tensor& weights, const CrossEntropyParams& params);

// Negative log-likelihood of log-probabilities `src` (N, C[, d...]): the loss at
// position n is -w[t_n] * src[n, t_n] (0 where t_n == ignore_index), reduced
// as cross_entropy reduces (mean divides by the total weight of the
// non-ignored targets). Target and weight rules as for cross_entropy.
struct NllLossParams {
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::mean;
};
Tensor nll_loss_forward(const Tensor& src, const Labels& target, const Tensor& weights, const NllLossParams& params);
Tensor nll_loss_backward(const Tensor& diff_dst, const Tensor& src, const Labels& target, const Tensor& weights,
                         const NllLossParams& params);

// ---- dropout ------------------------------------------------------------------------
// Element i (row-major flat index) is kept iff
//   (mix64(mix64(seed) + (i + 1) * 0x9E3779B97F4A7C15) >> 11) >= ceil(p * 2^53)
// with mix64 the SplitMix64 finaliser, i.e. iff a uniform u in [0, 1) drawn
// from (seed, i) alone is >= p. Kept elements are scaled by 1 / (1 - p). The
// mask depends on nothing else (not the thread count, not the shape), so the
// backward recomputes it. p in [0, 1] (p = 1 gives zeros); training = false
// is the identity.
struct DropoutParams {
  double p = 0.5;
  bool training = true;
  uint64_t seed = 0;
};

bool dropout_keep(uint64_t seed, int64_t index, double p);  // the mask, element by element
Tensor dropout_forward(const Tensor& src, const DropoutParams& params);
Tensor dropout_backward(const Tensor& diff_dst, const DropoutParams& params);

// ---- local response normalisation across channels (AlexNet) ------------------------
// x (N, C, spatial...) with at least one spatial axis, like torch:
//   y[c] = x[c] / (k + alpha / size * sum_{c' in W(c)} x[c']^2)^beta,
//   W(c) = [c - size/2, c + (size-1)/2] clipped to [0, C)   (integer division)
struct LrnParams {
  int64_t size = 5;  // >= 1
  double alpha = 1e-4;
  double beta = 0.75;
  double k = 1.0;
};

Tensor lrn_forward(const Tensor& src, const LrnParams& params);
Tensor lrn_backward(const Tensor& diff_dst, const Tensor& src, const LrnParams& params);

// ---- batch normalisation -------------------------------------------------------------
// x (N, C) or (N, C, spatial...); statistics per channel over N and spatial.
//   training: y = (x - mean) / sqrt(var + eps) * weight + bias with the batch
//             mean and biased variance; when running stats are given they are
//             updated in place: r = (1 - momentum) * r + momentum * batch, the
//             variance unbiased (times M / (M - 1), M = N * spatial). M must be
//             > 1 (or 0: an empty batch leaves the running stats alone).
//   eval:     the same with running_mean / running_var in place of the batch
//             statistics (both required).
// running_mean, running_var, weights and bias are (C) and may each be an
// undefined Tensor() (the running stats together, and only when training).
struct BatchNormParams {
  bool training = false;
  double momentum = 0.1;  // in [0, 1]
  double eps = 1e-5;      // >= 0
};

Tensor batch_norm_forward(const Tensor& src, const Tensor& running_mean, const Tensor& running_var,
                          const Tensor& weights, const Tensor& bias, const BatchNormParams& params);

struct BatchNormGrads {
  Tensor diff_src;
  Tensor diff_weights;  // undefined when weights is undefined
  Tensor diff_bias;     // undefined when bias is undefined
};
// Gradients through the same statistics the forward used (the batch's in
// training, recomputed from src; the running ones in eval). Updates nothing.
BatchNormGrads batch_norm_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& running_mean,
                                   const Tensor& running_var, const Tensor& weights, const Tensor& bias,
                                   const BatchNormParams& params);

// ---- linear (fully connected) --------------------------------------------------------
// y = x @ weights^T + bias, x (..., in), weights (out, in), bias (out) or
// undefined; y (..., out). Runs on the blocked GEMM of the convolutions.
Tensor linear_forward(const Tensor& src, const Tensor& weights, const Tensor& bias);
Tensor linear_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape);
Tensor linear_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape);
Tensor linear_backward_bias(const Tensor& diff_dst);
// The whole backward pass (x and weights checked against each other first).
Gradients linear_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weights, GradMask mask);

}  // namespace cnncore
