// Bindings of dropout (cnncore/layers.hpp): convert the arguments the Python
// layer (cnncore/ops/_dropout.py) has normalised and forward them; every check is
// in the C++ op layer.
#include <string>

#include "bindings/common.hpp"

namespace cnncore::bindings {

void register_dropout(py::module_& m) {
  // ---- dropout
  def_op(m, "dropout_forward",
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
  def_op(m, "dropout_backward",
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
}

}  // namespace cnncore::bindings
