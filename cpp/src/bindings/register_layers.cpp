// Bindings of the layer ops (cnncore/layers.hpp). The Python layer
// (cnncore/ops/_layers.py) has already checked argument types and turned
// words and targets into what these take; shapes and values are validated in
// C++.
#include <string>

#include "bindings/common.hpp"

namespace cnncore::bindings {

namespace {

using Targets = py::array_t<int64_t, py::array::c_style>;

Labels labels_of(const Targets& t) {
  Labels l;
  l.data = t.data();
  l.shape.assign(t.shape(), t.shape() + t.ndim());
  return l;
}

CrossEntropyParams ce_params(int64_t ignore_index, const std::string& reduction, double label_smoothing) {
  CrossEntropyParams p;
  p.ignore_index = ignore_index;
  p.reduction = parse_reduction(reduction);
  p.label_smoothing = label_smoothing;
  return p;
}

BatchNormParams bn_params(bool training, double momentum, double eps) {
  BatchNormParams p;
  p.training = training;
  p.momentum = momentum;
  p.eps = eps;
  return p;
}

}  // namespace

void register_layers(py::module_& m) {
  // ---- activations
  m.def(
      "activation_forward",
      [](py::handle x, const std::string& kind, double negative_slope) {
        ActivationParams p{parse_activation(kind), negative_slope};
        Tensor src = from_numpy(x, activation_name(p.kind), "x"), dst;
        {
          py::gil_scoped_release release;
          dst = activation_forward(src, p);
        }
        return to_numpy(dst);
      },
      py::arg("x"), py::arg("kind"), py::arg("negative_slope"));
  m.def(
      "activation_backward",
      [](py::handle gy, py::handle x, const std::string& kind, double negative_slope) {
        ActivationParams p{parse_activation(kind), negative_slope};
        const char* op = activation_name(p.kind);
        Tensor diff_dst = from_numpy(gy, op, "grad_out"), src = from_numpy(x, op, "x"), dx;
        {
          py::gil_scoped_release release;
          dx = activation_backward(diff_dst, src, p);
        }
        return to_numpy(dx);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("kind"), py::arg("negative_slope"));

  // ---- softmax / log_softmax
  m.def(
      "softmax_forward",
      [](py::handle x, int64_t dim, bool log) {
        SoftmaxParams p{dim, log};
        Tensor src = from_numpy(x, log ? "log_softmax" : "softmax", "x"), dst;
        {
          py::gil_scoped_release release;
          dst = softmax_forward(src, p);
        }
        return to_numpy(dst);
      },
      py::arg("x"), py::arg("dim"), py::arg("log"));
  m.def(
      "softmax_backward",
      [](py::handle gy, py::handle x, int64_t dim, bool log) {
        SoftmaxParams p{dim, log};
        const char* op = log ? "log_softmax" : "softmax";
        Tensor diff_dst = from_numpy(gy, op, "grad_out"), src = from_numpy(x, op, "x"), dx;
        {
          py::gil_scoped_release release;
          dx = softmax_backward(diff_dst, src, p);
        }
        return to_numpy(dx);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("dim"), py::arg("log"));

  // ---- cross-entropy
  m.def(
      "cross_entropy_forward",
      [](py::handle input, const Targets& target, py::handle weight, int64_t ignore_index,
         const std::string& reduction, double label_smoothing) {
        const CrossEntropyParams p = ce_params(ignore_index, reduction, label_smoothing);
        const char* op = "cross_entropy";
        Tensor src = from_numpy(input, op, "input"), w = from_numpy_or_none(weight, op, "weight"), dst;
        const Labels t = labels_of(target);
        {
          py::gil_scoped_release release;
          dst = cross_entropy_forward(src, t, w, p);
        }
        return to_numpy(dst);
      },
      py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("ignore_index"), py::arg("reduction"),
      py::arg("label_smoothing"));
  m.def(
      "cross_entropy_backward",
      [](py::handle gy, py::handle input, const Targets& target, py::handle weight, int64_t ignore_index,
         const std::string& reduction, double label_smoothing) {
        const CrossEntropyParams p = ce_params(ignore_index, reduction, label_smoothing);
        const char* op = "cross_entropy";
        Tensor diff_dst = from_numpy(gy, op, "grad_out"), src = from_numpy(input, op, "input");
        Tensor w = from_numpy_or_none(weight, op, "weight"), dx;
        const Labels t = labels_of(target);
        {
          py::gil_scoped_release release;
          dx = cross_entropy_backward(diff_dst, src, t, w, p);
        }
        return to_numpy(dx);
      },
      py::arg("grad_out"), py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("ignore_index"),
      py::arg("reduction"), py::arg("label_smoothing"));

  // ---- dropout
  m.def(
      "dropout_forward",
      [](py::handle x, double prob, bool training, uint64_t seed) {
        DropoutParams p{prob, training, seed};
        Tensor src = from_numpy(x, "dropout", "x"), dst;
        {
          py::gil_scoped_release release;
          dst = dropout_forward(src, p);
        }
        return to_numpy(dst);
      },
      py::arg("x"), py::arg("p"), py::arg("training"), py::arg("seed"));
  m.def(
      "dropout_backward",
      [](py::handle gy, double prob, bool training, uint64_t seed) {
        DropoutParams p{prob, training, seed};
        Tensor diff_dst = from_numpy(gy, "dropout", "grad_out"), dx;
        {
          py::gil_scoped_release release;
          dx = dropout_backward(diff_dst, p);
        }
        return to_numpy(dx);
      },
      py::arg("grad_out"), py::arg("p"), py::arg("training"), py::arg("seed"));

  // ---- local response normalisation
  m.def(
      "lrn_forward",
      [](py::handle x, int64_t size, double alpha, double beta, double k) {
        LrnParams p{size, alpha, beta, k};
        Tensor src = from_numpy(x, "local_response_norm", "x"), dst;
        {
          py::gil_scoped_release release;
          dst = lrn_forward(src, p);
        }
        return to_numpy(dst);
      },
      py::arg("x"), py::arg("size"), py::arg("alpha"), py::arg("beta"), py::arg("k"));
  m.def(
      "lrn_backward",
      [](py::handle gy, py::handle x, int64_t size, double alpha, double beta, double k) {
        LrnParams p{size, alpha, beta, k};
        const char* op = "local_response_norm";
        Tensor diff_dst = from_numpy(gy, op, "grad_out"), src = from_numpy(x, op, "x"), dx;
        {
          py::gil_scoped_release release;
          dx = lrn_backward(diff_dst, src, p);
        }
        return to_numpy(dx);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("size"), py::arg("alpha"), py::arg("beta"), py::arg("k"));

  // ---- batch normalisation (running stats are updated in place: the Python
  // layer passes them only as writeable C-contiguous arrays, which wrap
  // without a copy)
  m.def(
      "batch_norm_forward",
      [](py::handle x, py::handle running_mean, py::handle running_var, py::handle weight, py::handle bias,
         bool training, double momentum, double eps) {
        const BatchNormParams p = bn_params(training, momentum, eps);
        const char* op = "batch_norm";
        Tensor src = from_numpy(x, op, "x");
        Tensor rm = from_numpy_or_none(running_mean, op, "running_mean"), rv = from_numpy_or_none(running_var, op, "running_var");
        Tensor w = from_numpy_or_none(weight, op, "weight"), b = from_numpy_or_none(bias, op, "bias"), dst;
        {
          py::gil_scoped_release release;
          dst = batch_norm_forward(src, rm, rv, w, b, p);
        }
        return to_numpy(dst);
      },
      py::arg("x"), py::arg("running_mean"), py::arg("running_var"), py::arg("weight"), py::arg("bias"),
      py::arg("training"), py::arg("momentum"), py::arg("eps"));
  m.def(
      "batch_norm_backward",
      [](py::handle gy, py::handle x, py::handle running_mean, py::handle running_var, py::handle weight,
         py::handle bias, bool training, double momentum, double eps) {
        const BatchNormParams p = bn_params(training, momentum, eps);
        const char* op = "batch_norm";
        Tensor diff_dst = from_numpy(gy, op, "grad_out"), src = from_numpy(x, op, "x");
        Tensor rm = from_numpy_or_none(running_mean, op, "running_mean"), rv = from_numpy_or_none(running_var, op, "running_var");
        Tensor w = from_numpy_or_none(weight, op, "weight"), b = from_numpy_or_none(bias, op, "bias");
        BatchNormGrads g;
        {
          py::gil_scoped_release release;
          g = batch_norm_backward(diff_dst, src, rm, rv, w, b, p);
        }
        return py::make_tuple(to_numpy(g.diff_src), to_numpy_or_none(g.diff_weights), to_numpy_or_none(g.diff_bias));
      },
      py::arg("grad_out"), py::arg("x"), py::arg("running_mean"), py::arg("running_var"), py::arg("weight"),
      py::arg("bias"), py::arg("training"), py::arg("momentum"), py::arg("eps"));

  // ---- linear
  m.def(
      "linear_forward",
      [](py::handle x, py::handle weight, py::handle bias) {
        const char* op = "linear";
        Tensor src = from_numpy(x, op, "x"), w = from_numpy(weight, op, "weight");
        Tensor b = from_numpy_or_none(bias, op, "bias"), dst;
        {
          py::gil_scoped_release release;
          dst = linear_forward(src, w, b);
        }
        return to_numpy(dst);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"));
  m.def(
      "linear_backward",
      [](py::handle gy, py::handle x, py::handle weight, bool bias) {
        const char* op = "linear";
        Tensor diff_dst = from_numpy(gy, op, "grad_out"), src = from_numpy(x, op, "x");
        Tensor w = from_numpy(weight, op, "weight");
        Gradients grads;
        {
          py::gil_scoped_release release;
          grads = linear_backward(diff_dst, src, w, GradMask{true, true, bias});
        }
        return py::make_tuple(to_numpy(grads.diff_src), to_numpy(grads.diff_weights), to_numpy_or_none(grads.diff_bias));
      },
      py::arg("grad_out"), py::arg("x"), py::arg("weight"), py::arg("bias"));
}

}  // namespace cnncore::bindings
