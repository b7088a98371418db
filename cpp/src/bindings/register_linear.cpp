// Bindings of the fully connected layer (cnncore/layers.hpp): convert the arguments the Python
// layer (cnncore/ops/_linear.py) has normalised and forward them; every check is
// in the C++ op layer.
#include <string>

#include "bindings/common.hpp"

namespace cnncore::bindings {

void register_linear(py::module_& m) {
  // ---- linear
  def_op(m, "linear_forward",
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
  def_op(m, "linear_backward",
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
