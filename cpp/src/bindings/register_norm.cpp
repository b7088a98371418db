// Bindings of local response and batch normalisation (cnncore/layers.hpp): convert the arguments the Python
// layer (cnncore/ops/_norm.py) has normalised and forward them; every check is
// in the C++ op layer.
#include <string>

#include "bindings/common.hpp"

namespace cnncore::bindings {

namespace {

BatchNormParams bn_params(bool training, double momentum, double eps) {
  BatchNormParams p;
  p.training = training;
  p.momentum = momentum;
  p.eps = eps;
  return p;
}

}  // namespace

void register_norm(py::module_& m) {
  // ---- local response normalisation
  def_op(m, "lrn_forward",
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
  def_op(m, "lrn_backward",
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
  def_op(m, "batch_norm_forward",
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
  def_op(m, "batch_norm_backward",
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
}

}  // namespace cnncore::bindings
