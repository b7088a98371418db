// In-place optimiser updates: one pass over a parameter, its gradient and its
// state, instead of the several passes (and temporaries) of array arithmetic.
// All tensors have one shape and one dtype; weights and state are updated in
// place. The formulas are torch.optim's, computed in the tensors' dtype.
#pragma once

#include <cstdint>

#include "cnncore/tensor.hpp"

namespace cnncore {

// g' = g + weight_decay * w;  buf = init ? g' : momentum * buf + (1 - dampening) * g'
// (when momentum != 0, else buf is not touched and may be undefined);
// d = nesterov ? g' + momentum * buf : (momentum != 0 ? buf : g');  w -= lr * d.
struct SgdParams {
  double lr = 1e-3, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool init_buffer = false;  // the first step: buf = g'
};
void sgd_update(Tensor& weights, const Tensor& grad, Tensor& momentum_buffer, const SgdParams& params);

// decoupled: w *= 1 - lr * weight_decay, else g' = g + weight_decay * w;
// m = beta1 * m + (1 - beta1) * g';  v = beta2 * v + (1 - beta2) * g'^2;
// amsgrad: vmax = max(vmax, v) and vmax replaces v below;
// w -= (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps).
struct AdamParams {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false, amsgrad = false;
  int64_t step = 1;  // counted from 1, this update included
};
void adam_update(Tensor& weights, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                 const AdamParams& params);

}  // namespace cnncore
