// The dropout op layer: a counter-based mask (cpu/kernels/dropout-counter.hpp),
// so forward and backward regenerate the same mask from (seed, index).
#include "cnncore/layers.hpp"
#include "device/backend.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/dropout-counter.hpp"
#include "ops/checks.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::str;

namespace {

void check_dropout_params(const DropoutParams& p) {
  // Written so that NaN fails too.
  if (!(p.p >= 0.0 && p.p <= 1.0)) throw value_error(str("dropout: p must be in [0, 1], got ", p.p));
}

// Forward and backward are the same masked scaling: d(x * m * s)/dx = m * s.
Tensor dropout_run(const char* name, const Tensor& t, const DropoutParams& params) {
  const char* op = "dropout";
  detail::AllowDevice allow(t.defined() ? t.device() : Device::cpu);
  detail::check_tensor(op, name, t);
  check_dropout_params(params);
  if (t.device() != Device::cpu) {
    device::Backend& be = device::backend_for(op, t.device());
    Tensor out = device::allocate(op, t.shape(), t.dtype(), t.device());
    if (!params.training) {
      be.copy(out.data(), t.data(), t.nbytes(), device::CopyKind::device_to_device);
      return out;
    }
    detail::with_dtype(t.dtype(), [&](auto tag) {
      using T = decltype(tag);
      be.kernels(T{}).dropout(params.seed, params.p, t.numel(), t.data_as<T>(), out.data_as<T>());
    });
    return out;
  }
  Tensor out = detail::allocate_checked(op, t.shape(), t.dtype(), 0);
  detail::with_dtype(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (!params.training) {
      std::copy(t.data_as<T>(), t.data_as<T>() + t.numel(), out.data_as<T>());
      return;
    }
    cpu::dropout_apply<T>(params.seed, params.p, t.numel(), t.data_as<T>(), out.data_as<T>());
  });
  return out;
}

}  // namespace

bool dropout_keep(uint64_t seed, int64_t index, double p) {
  if (p >= 1.0) return false;
  return cpu::dropout_keep(cpu::dropout_key(seed, p), static_cast<uint64_t>(index));
}

Tensor dropout_forward(const Tensor& src, const DropoutParams& params) { return dropout_run("x", src, params); }

Tensor dropout_backward(const Tensor& diff_dst, const DropoutParams& params) {
  return dropout_run("grad_out", diff_dst, params);
}

}  // namespace cnncore
