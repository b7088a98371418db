// Bindings of pad (cnncore/pad.hpp): convert and forward; the checks are in
// cpp/src/ops/pad.cpp.
#include <string>
#include <vector>

#include "bindings/common.hpp"

namespace cnncore::bindings {

void register_pad(py::module_& m) {
  using Ints = std::vector<int64_t>;
  def_op(m, "pad_forward",
      [](py::handle x, const Ints& padding, const std::string& mode, double value) {
        PadParams p{padding, parse_padding_mode(mode), value};
        Tensor src = from_numpy(x, "pad", "x");
        Tensor dst;
        {
          py::gil_scoped_release release;
          dst = pad_forward(src, p);
        }
        return to_numpy(dst);
      },
      py::arg("x"), py::arg("padding"), py::arg("mode"), py::arg("value"));
  def_op(m, "pad_backward",
      [](py::handle gy, const Ints& src_shape, const Ints& padding, const std::string& mode) {
        PadParams p{padding, parse_padding_mode(mode), 0.0};
        Tensor diff_dst = from_numpy(gy, "pad", "grad_out");
        Tensor diff_src;
        {
          py::gil_scoped_release release;
          diff_src = pad_backward(diff_dst, src_shape, p);
        }
        return to_numpy(diff_src);
      },
      py::arg("grad_out"), py::arg("src_shape"), py::arg("padding"), py::arg("mode"));
}

}  // namespace cnncore::bindings
