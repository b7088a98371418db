// The optimiser updates' op layer: checks the tensors and the hyper-parameters,
// then runs one pass in parallel chunks (memory-bound: the baseline ISA serves).
#include "device/backend.hpp"
#include "cnncore/optim.hpp"

#include <algorithm>
#include <cmath>

#include "cnncore/error.hpp"
#include "cnncore/runtime.hpp"
#include "ops/checks.hpp"

namespace cnncore {

using detail::str;

namespace {

void check_like(const char* op, const char* name, const Tensor& t, const Tensor& grad) {
  detail::check_tensor(op, name, t);
  detail::check_same_dtype(op, name, t, "grad", grad.dtype());
  if (t.shape() != grad.shape())
    throw value_error(str(op, ": ", name, " has shape ", shape_str(t.shape()), ", grad has ", shape_str(grad.shape())));
}

void check_finite(const char* op, const char* name, double v, bool non_negative = true) {
  if (!std::isfinite(v) || (non_negative && v < 0))
    throw value_error(str(op, ": ", name, " must be a finite", non_negative ? " non-negative" : "", " number, got ", v));
}

// f(i0, i1) over [0, n) in chunks, in parallel when n is large enough to pay.
template <typename F>
void chunks(int64_t n, F&& f) {
  constexpr int64_t kChunk = 16384;
  const int64_t count = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (n >= 4 * kChunk)
  for (int64_t c = 0; c < count; ++c) f(c * kChunk, std::min(n, (c + 1) * kChunk));
}

// One chunk of SGD, the hyper-parameter choices fixed at compile time so the
// loop has no branches and vectorises.
template <bool kDecay, bool kMomentum, bool kInit, bool kNesterov, typename T>
void sgd_chunk(int64_t n, T* __restrict w, const T* __restrict g, T* __restrict buf, T lr, T mom, T keep, T wd) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    T gi = g[i];
    if constexpr (kDecay) gi = gi + wd * w[i];
    T d = gi;
    if constexpr (kMomentum) {
      T b;
      if constexpr (kInit)
        b = gi;
      else
        b = mom * buf[i] + keep * gi;
      buf[i] = b;
      if constexpr (kNesterov)
        d = gi + mom * b;
      else
        d = b;
    }
    w[i] = w[i] - lr * d;
  }
}

template <typename T>
void sgd(int64_t n, T* w, const T* g, T* buf, const SgdParams& p) {
  const T lr = static_cast<T>(p.lr), mom = static_cast<T>(p.momentum), wd = static_cast<T>(p.weight_decay);
  const T keep = static_cast<T>(1 - p.dampening);
  using Chunk = void (*)(int64_t, T*, const T*, T*, T, T, T, T);
  // [decay][momentum: none, first step, later, later with Nesterov, first with Nesterov]
  static constexpr Chunk table[2][5] = {
      {sgd_chunk<false, false, false, false, T>, sgd_chunk<false, true, true, false, T>,
       sgd_chunk<false, true, false, false, T>, sgd_chunk<false, true, false, true, T>,
       sgd_chunk<false, true, true, true, T>},
      {sgd_chunk<true, false, false, false, T>, sgd_chunk<true, true, true, false, T>,
       sgd_chunk<true, true, false, false, T>, sgd_chunk<true, true, false, true, T>,
       sgd_chunk<true, true, true, true, T>}};
  const int kind = p.momentum == 0 ? 0 : p.nesterov ? (p.init_buffer ? 4 : 3) : (p.init_buffer ? 1 : 2);
  const Chunk f = table[p.weight_decay != 0][kind];
  chunks(n, [=](int64_t i0, int64_t i1) { f(i1 - i0, w + i0, g + i0, buf ? buf + i0 : nullptr, lr, mom, keep, wd); });
}

// One chunk of Adam (see sgd_chunk).
template <bool kDecay, bool kDecoupled, bool kAmsgrad, typename T>
void adam_chunk(int64_t n, T* __restrict w, const T* __restrict g, T* __restrict m, T* __restrict v,
                T* __restrict vmax, T b1, T b2, T one_b1, T one_b2, T wd, T shrink, T step, T root_bc2, T eps) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    T gi = g[i];
    T wi = w[i];
    if constexpr (kDecay) {
      if constexpr (kDecoupled)
        wi = wi * shrink;
      else
        gi = gi + wd * wi;
    }
    const T mi = b1 * m[i] + one_b1 * gi;
    T vi = b2 * v[i] + one_b2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    if constexpr (kAmsgrad) {  // NaN wins, as in np.maximum
      const T a = vmax[i];
      vi = a > vi || a != a ? a : vi;
      vmax[i] = vi;
    }
    w[i] = wi - step * (mi / (std::sqrt(vi) / root_bc2 + eps));
  }
}

template <typename T>
void adam(int64_t n, T* w, const T* g, T* m, T* v, T* vmax, const AdamParams& p) {
  const T b1 = static_cast<T>(p.beta1), b2 = static_cast<T>(p.beta2), eps = static_cast<T>(p.eps);
  const T wd = static_cast<T>(p.weight_decay), shrink = static_cast<T>(1 - p.lr * p.weight_decay);
  const T one_b1 = static_cast<T>(1 - p.beta1), one_b2 = static_cast<T>(1 - p.beta2);
  const double t = static_cast<double>(p.step);
  const T step = static_cast<T>(p.lr / (1 - std::pow(p.beta1, t)));
  const T root_bc2 = static_cast<T>(std::sqrt(1 - std::pow(p.beta2, t)));
  using Chunk = void (*)(int64_t, T*, const T*, T*, T*, T*, T, T, T, T, T, T, T, T, T);
  static constexpr Chunk table[3][2] = {{adam_chunk<false, false, false, T>, adam_chunk<false, false, true, T>},
                                        {adam_chunk<true, false, false, T>, adam_chunk<true, false, true, T>},
                                        {adam_chunk<true, true, false, T>, adam_chunk<true, true, true, T>}};
  const Chunk f = table[p.weight_decay == 0 ? 0 : p.decoupled ? 2 : 1][vmax != nullptr];
  chunks(n, [=](int64_t i0, int64_t i1) {
    f(i1 - i0, w + i0, g + i0, m + i0, v + i0, vmax ? vmax + i0 : nullptr, b1, b2, one_b1, one_b2, wd, shrink, step,
      root_bc2, eps);
  });
}

}  // namespace

void sgd_update(Tensor& weights, const Tensor& grad, Tensor& momentum_buffer, const SgdParams& p) {
  const char* op = "sgd_update";
  const Device dev =
      device::common_device(op, {{"grad", &grad}, {"weight", &weights}, {"momentum_buffer", &momentum_buffer}});
  detail::AllowDevice allow(dev);
  detail::check_tensor(op, "grad", grad);
  check_like(op, "weight", weights, grad);
  check_finite(op, "lr", p.lr);
  check_finite(op, "momentum", p.momentum);
  check_finite(op, "dampening", p.dampening, false);
  check_finite(op, "weight_decay", p.weight_decay);
  if (p.nesterov && (p.momentum <= 0 || p.dampening != 0))
    throw value_error(str(op, ": nesterov needs momentum > 0 and dampening = 0, got momentum ", p.momentum,
                          " and dampening ", p.dampening));
  if (p.momentum != 0) check_like(op, "momentum_buffer", momentum_buffer, grad);
  detail::with_dtype(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (dev != Device::cpu)
      return device::backend_for(op, dev).kernels(T{}).sgd_update(
          grad.numel(), weights.data_as<T>(), grad.data_as<T>(),
          p.momentum != 0 ? momentum_buffer.data_as<T>() : nullptr, p);
    sgd<T>(grad.numel(), weights.data_as<T>(), grad.data_as<T>(),
           p.momentum != 0 ? momentum_buffer.data_as<T>() : nullptr, p);
  });
}

void adam_update(Tensor& weights, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                 const AdamParams& p) {
  const char* op = "adam_update";
  const Device dev = device::common_device(op, {{"grad", &grad}, {"weight", &weights}, {"exp_avg", &exp_avg},
                                                {"exp_avg_sq", &exp_avg_sq}, {"max_exp_avg_sq", &max_exp_avg_sq}});
  detail::AllowDevice allow(dev);
  detail::check_tensor(op, "grad", grad);
  check_like(op, "weight", weights, grad);
  check_like(op, "exp_avg", exp_avg, grad);
  check_like(op, "exp_avg_sq", exp_avg_sq, grad);
  if (p.amsgrad) check_like(op, "max_exp_avg_sq", max_exp_avg_sq, grad);
  check_finite(op, "lr", p.lr);
  check_finite(op, "weight_decay", p.weight_decay);
  check_finite(op, "eps", p.eps);
  if (!(p.beta1 >= 0 && p.beta1 < 1) || !(p.beta2 >= 0 && p.beta2 < 1))
    throw value_error(str(op, ": betas must be in [0, 1), got (", p.beta1, ", ", p.beta2, ")"));
  if (p.step < 1) throw value_error(str(op, ": step counts from 1, got ", p.step));
  detail::with_dtype(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (dev != Device::cpu)
      return device::backend_for(op, dev).kernels(T{}).adam_update(
          grad.numel(), weights.data_as<T>(), grad.data_as<T>(), exp_avg.data_as<T>(), exp_avg_sq.data_as<T>(),
          p.amsgrad ? max_exp_avg_sq.data_as<T>() : nullptr, p);
    adam<T>(grad.numel(), weights.data_as<T>(), grad.data_as<T>(), exp_avg.data_as<T>(), exp_avg_sq.data_as<T>(),
            p.amsgrad ? max_exp_avg_sq.data_as<T>() : nullptr, p);
  });
}

}  // namespace cnncore
