// Kernels<T> over an executor: each method launches one body of bodies.hpp
// over its work items. Exec::run(n, body) runs body(0) .. body(n - 1) (on the
// GPU for backend.cu's CudaExec, on the host for emulator.cpp's HostExec).
// Included by exactly those two files.
#pragma once

#include <cmath>

#include "cuda/bodies.hpp"
#include "device/backend.hpp"

namespace cnncore::device {

// Ranges per item of a split sum: enough work items to fill a large GPU
// (~2^18 threads), each range at least 512 terms long; 1 for short sums.
inline int64_t split_count(int64_t items, int64_t len) {
  constexpr int64_t kThreads = int64_t(1) << 18, kMinRange = 512;
  if (items <= 0 || len < 2 * kMinRange || items >= kThreads) return 1;
  int64_t s = (kThreads + items - 1) / items;
  const int64_t most = len / kMinRange;
  return s < most ? s : most;
}

template <class Exec, typename T>
class KernelsImpl final : public Kernels<T> {
  // out[item] = scale * sum_j term(item, j) as PartialSums + FinishSums.
  template <typename Acc, class Term, typename Out>
  static void split_sum(int64_t items, int64_t len, const Term& term, double scale, Out* out) {
    if (items <= 0) return;
    const int64_t splits = split_count(items, len);
    Tensor partial = device::allocate("split_sum", {items * splits}, dtype_of<Acc>(), Device::cuda);
    Exec::run(items * splits, bodies::PartialSums<Term, Acc>{term, len, splits, partial.data_as<Acc>()});
    Exec::run(items, bodies::FinishSums<Acc, Out>{partial.data_as<Acc>(), splits, scale, out});
  }

 public:
  void unary(UnaryOp op, int64_t n, const T* src, T* dst) const override {
    Exec::run(n, bodies::Unary<T>{op, src, dst});
  }
  void binary(BinaryOp op, const Broadcast& b, const T* a, const T* c, T* dst) const override {
    Exec::run(b.numel(), bodies::BinaryB<T>{op, b, a, c, dst});
  }
  void binary_scalar(BinaryOp op, int64_t n, const T* a, T s, bool scalar_first, T* dst) const override {
    Exec::run(n, bodies::BinaryScalar<T>{op, a, s, scalar_first, dst});
  }
  void where(const Broadcast& b, const T* cond, const T* a, const T* c, T* dst) const override {
    Exec::run(b.numel(), bodies::WhereB<T>{b, cond, a, c, dst});
  }
  void clip(int64_t n, const T* src, T lo, T hi, bool has_lo, bool has_hi, T* dst) const override {
    Exec::run(n, bodies::Clip<T>{src, lo, hi, has_lo, has_hi, dst});
  }
  void reduce(ReduceOp op, const Reduction& r, const T* src, T* dst) const override {
    Exec::run(r.kept.numel(), bodies::Reduce<T>{op, r, src, dst});
  }
  void gather(const View& v, const T* src, T* dst) const override {
    Exec::run(v.numel(), bodies::Gather<T>{v, src, dst});
  }
  void scatter(const View& v, const Broadcast& b, const T* src, T* dst) const override {
    Exec::run(v.numel(), bodies::Scatter<T>{v, b, src, dst});
  }
  void fill(int64_t n, T value, T* dst) const override { Exec::run(n, bodies::Fill<T>{value, dst}); }
  void cast(int64_t n, const T* src, float* dst) const override {
    Exec::run(n, bodies::Cast<T, float>{src, dst});
  }
  void cast(int64_t n, const T* src, double* dst) const override {
    Exec::run(n, bodies::Cast<T, double>{src, dst});
  }
  void matmul(int64_t batch, int64_t M, int64_t N, int64_t K, const T* a, const T* b, T* c) const override {
    Exec::run(batch * M * N, bodies::MatMul<T>{M, N, K, a, b, c});
  }

  void conv_forward(const detail::ConvGeometry& g, const T* src, const T* weights, const T* bias,
                    T* dst) const override {
    Exec::run(g.N * g.C_out * g.out_size(), bodies::ConvForward<T>{g, src, weights, bias, dst});
  }
  void conv_backward_data(const detail::ConvGeometry& g, const T* diff_dst, const T* weights, T* padded,
                          T* diff_src) const override {
    bodies::ConvBackwardPadded<T> pass{g, {}, diff_dst, weights, padded};
    for (int a = 0; a < 3; ++a) pass.P[a] = g.in[a] + g.pad_before[a] + g.pad_after[a];
    Exec::run(g.N * g.C_in * pass.P[0] * pass.P[1] * pass.P[2], pass);
    PadBox box;
    for (int a = 0; a < 3; ++a) {
      box.in[a] = g.in[a];
      box.out[a] = pass.P[a];
      box.before[a] = g.pad_before[a];
    }
    box.mode = g.mode;
    pad_backward(box, g.N * g.C_in, padded, diff_src);
  }
  void pad_forward(const PadBox& b, int64_t planes, T value, const T* src, T* dst) const override {
    Exec::run(planes * b.out[0] * b.out[1] * b.out[2], bodies::PadGather<T>{b, value, src, dst});
  }
  void pad_backward(const PadBox& b, int64_t planes, const T* diff_dst, T* diff_src) const override {
    Exec::run(planes * b.in[0] * b.in[1] * b.in[2], bodies::PadFold<T>{b, diff_dst, diff_src});
  }
  void conv_backward_weight(const detail::ConvGeometry& g, const T* diff_dst, const T* src,
                            T* diff_weights) const override {
    split_sum<T>(g.C_out * g.C_in_g * g.k_size(), g.N * g.out_size(), bodies::ConvWeightTerm<T>{g, diff_dst, src},
                 1.0, diff_weights);
  }
  void channel_sum(int64_t N, int64_t C, int64_t inner, const T* src, T* dst) const override {
    split_sum<T>(C, N * inner, bodies::ChannelTerm<T>{detail::AxisGeometry{N, C, inner}, src}, 1.0, dst);
  }

  void pool_forward(const detail::PoolGeometry& g, const T* src, const double* tap_weights, T* dst) const override {
    Exec::run(g.planes() * g.out_size(), bodies::PoolForward<T>{g, src, tap_weights, dst});
  }
  void pool_backward(const detail::PoolGeometry& g, const T* diff_dst, const T* src, const double* tap_weights,
                     T* diff_src) const override {
    Exec::run(g.planes(), bodies::PoolBackward<T>{g, diff_dst, src, tap_weights, diff_src});
  }

  void activation_forward(int kind, T slope, int64_t n, const T* src, T* dst) const override {
    Exec::run(n, bodies::ActivationForward<T>{kind, slope, src, dst});
  }
  void activation_backward(int kind, T slope, int64_t n, const T* diff_dst, const T* src,
                           T* diff_src) const override {
    Exec::run(n, bodies::ActivationBackward<T>{kind, slope, diff_dst, src, diff_src});
  }

  void softmax_forward(const detail::AxisGeometry& g, bool log, const T* src, T* dst) const override {
    Exec::run(g.outer * g.inner, bodies::SoftmaxForward<T>{g, log, src, dst});
  }
  void softmax_backward(const detail::AxisGeometry& g, bool log, const T* diff_dst, const T* src,
                        T* diff_src) const override {
    Exec::run(g.outer * g.inner, bodies::SoftmaxBackward<T>{g, log, diff_dst, src, diff_src});
  }
  void cross_entropy_forward(const detail::AxisGeometry& g, const T* src, const T* weights, const int64_t* target,
                             int64_t ignore_index, double smoothing, T* loss) const override {
    Exec::run(g.outer * g.inner,
              bodies::CrossEntropyForward<T>{g, src, weights, target, ignore_index, smoothing, loss});
  }
  void cross_entropy_backward(const detail::AxisGeometry& g, const T* diff_dst, int64_t dstride, double factor,
                              const T* src, const T* weights, const int64_t* target, int64_t ignore_index,
                              double smoothing, T* diff_src) const override {
    Exec::run(g.outer * g.inner, bodies::CrossEntropyBackward<T>{g, diff_dst, dstride, factor, src, weights, target,
                                                                 ignore_index, smoothing, diff_src});
  }

  void nll_loss_forward(const detail::AxisGeometry& g, const T* src, const T* weights, const int64_t* target,
                        int64_t ignore_index, T* loss) const override {
    Exec::run(g.outer * g.inner, bodies::NllForward<T>{g, src, weights, target, ignore_index, loss});
  }
  void nll_loss_backward(const detail::AxisGeometry& g, const T* diff_dst, int64_t dstride, double factor,
                         const T* weights, const int64_t* target, int64_t ignore_index, T* diff_src) const override {
    Exec::run(g.outer * g.inner,
              bodies::NllBackward<T>{g, diff_dst, dstride, factor, weights, target, ignore_index, diff_src});
  }

  void dropout(uint64_t seed, double p, int64_t n, const T* src, T* dst) const override {
    const bool all = p >= 1.0;
    const cpu::DropoutKey key = all ? cpu::DropoutKey{0, 0} : cpu::dropout_key(seed, p);
    Exec::run(n, bodies::Dropout<T>{key, all, all ? T(0) : static_cast<T>(1.0 / (1.0 - p)), src, dst});
  }
  void lrn_forward(const detail::AxisGeometry& g, const LrnParams& p, const T* src, T* dst) const override {
    Exec::run(g.numel(), bodies::LrnForward<T>{g, p, src, dst});
  }
  void lrn_backward(const detail::AxisGeometry& g, const LrnParams& p, const T* diff_dst, const T* src,
                    T* diff_src) const override {
    Exec::run(g.numel(), bodies::LrnBackward<T>{g, p, diff_dst, src, diff_src});
  }

  void batch_norm_stats(const detail::AxisGeometry& g, const T* src, double* mean, double* var) const override {
    const int64_t M = g.outer * g.inner;
    split_sum<double>(g.axis, M, bodies::ChannelTerm<T>{g, src}, 1.0 / double(M), mean);
    split_sum<double>(g.axis, M, bodies::CenteredSquareTerm<T>{g, src, mean}, 1.0 / double(M), var);
  }
  void batch_norm_finish(int64_t C, int64_t M, bool training, double eps, double momentum, double* mean,
                         double* var, double* invstd, T* running_mean, T* running_var) const override {
    Exec::run(C, bodies::BatchNormFinish<T>{M, training, eps, momentum, mean, var, invstd, running_mean,
                                            running_var});
  }
  void batch_norm_apply(const detail::AxisGeometry& g, const T* src, const double* mean, const double* invstd,
                        const T* weights, const T* bias, T* dst) const override {
    Exec::run(g.numel(), bodies::BatchNormApply<T>{g, src, mean, invstd, weights, bias, dst});
  }
  void batch_norm_backward(const detail::AxisGeometry& g, bool training, const T* diff_dst, const T* src,
                           const double* mean, const double* invstd, const T* weights, double* partials,
                           T* diff_src, T* diff_weights, T* diff_bias) const override {
    // partials: sum dy per channel, then sum dy * xhat per channel
    const int64_t C = g.axis, M = g.outer * g.inner;
    split_sum<double>(C, M, bodies::ChannelTerm<T>{g, diff_dst}, 1.0, partials);
    split_sum<double>(C, M, bodies::DyXhatTerm<T>{g, diff_dst, src, mean, invstd}, 1.0, partials + C);
    if (diff_bias) Exec::run(C, bodies::Cast<double, T>{partials, diff_bias});
    if (diff_weights) Exec::run(C, bodies::Cast<double, T>{partials + C, diff_weights});
    if (diff_src)
      Exec::run(g.numel(), bodies::BatchNormBackward<T>{g, training, diff_dst, src, mean, invstd, weights, partials,
                                                        diff_src});
  }

  void linear_forward(const LinearDims& d, const T* src, const T* weights, const T* bias, T* dst) const override {
    Exec::run(d.rows * d.out, bodies::LinearForward<T>{d, src, weights, bias, dst});
  }
  void linear_backward_data(const LinearDims& d, const T* diff_dst, const T* weights, T* diff_src) const override {
    Exec::run(d.rows * d.in, bodies::LinearBackwardData<T>{d, diff_dst, weights, diff_src});
  }
  void linear_backward_weight(const LinearDims& d, const T* diff_dst, const T* src, T* diff_weights) const override {
    Exec::run(d.out * d.in, bodies::LinearBackwardWeight<T>{d, diff_dst, src, diff_weights});
  }

  void sgd_update(int64_t n, T* weights, const T* grad, T* buffer, const SgdParams& p) const override {
    bodies::Sgd<T> body{weights, grad, p.momentum != 0 ? buffer : nullptr, static_cast<T>(p.lr),
                        static_cast<T>(p.momentum), static_cast<T>(1 - p.dampening),
                        static_cast<T>(p.weight_decay), p.weight_decay != 0, p.init_buffer, p.nesterov};
    Exec::run(n, body);
  }
  void adam_update(int64_t n, T* weights, const T* grad, T* m, T* v, T* vmax, const AdamParams& p) const override {
    const double t = static_cast<double>(p.step);
    bodies::Adam<T> body{weights,
                         grad,
                         m,
                         v,
                         p.amsgrad ? vmax : nullptr,
                         static_cast<T>(p.beta1),
                         static_cast<T>(p.beta2),
                         static_cast<T>(1 - p.beta1),
                         static_cast<T>(1 - p.beta2),
                         static_cast<T>(p.weight_decay),
                         static_cast<T>(1 - p.lr * p.weight_decay),
                         static_cast<T>(p.lr / (1 - std::pow(p.beta1, t))),
                         static_cast<T>(std::sqrt(1 - std::pow(p.beta2, t))),
                         static_cast<T>(p.eps),
                         p.weight_decay != 0,
                         p.decoupled};
    Exec::run(n, body);
  }
};

}  // namespace cnncore::device
