// Bindings of the activations (cnncore/layers.hpp): convert the arguments the Python
// layer (cnncore/ops/_activation.py) has normalised and forward them; every check is
// in the C++ op layer.
#include <string>

#include "bindings/common.hpp"

namespace cnncore::bindings {

void register_activation(py::module_& m) {
  // ---- activations
  def_op(m, "activation_forward",
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
  def_op(m, "activation_backward",
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
}

}  // namespace cnncore::bindings
