// Bindings of softmax / log_softmax (cnncore/layers.hpp): convert the arguments the Python
// layer (cnncore/ops/_softmax.py) has normalised and forward them; every check is
// in the C++ op layer.
#include <string>

#include "bindings/common.hpp"

namespace cnncore::bindings {

void register_softmax(py::module_& m) {
  // ---- softmax / log_softmax
  def_op(m, "softmax_forward",
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
  def_op(m, "softmax_backward",
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
}

}  // namespace cnncore::bindings
