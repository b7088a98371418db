// Bindings of the transposed convolutions (cnncore/conv.hpp): convert and
// forward; the checks are in cpp/src/ops/conv_transpose.cpp.
#include <string>
#include <vector>

#include "bindings/common.hpp"

namespace cnncore::bindings {

using Ints = std::vector<int64_t>;

namespace {

ConvTransposeParams make_transpose_params(const Ints& stride, const Ints& dilation, const Ints& padding,
                                          const Ints& output_padding, int64_t groups, const std::string& algorithm) {
  ConvTransposeParams p;
  p.stride = stride;
  p.dilation = dilation;
  p.padding = padding;
  p.output_padding = output_padding;
  p.groups = groups;
  p.algorithm = parse_conv_algorithm(algorithm);
  return p;
}

}  // namespace

#define CNNCORE_CONV_TRANSPOSE_ARGS                                                                  \
  py::arg("stride"), py::arg("dilation"), py::arg("padding"), py::arg("output_padding"), py::arg("groups"), \
      py::arg("algorithm"), py::arg("op"), py::arg("spatial_dims")

void register_conv_transpose(py::module_& m) {
  def_op(m, "conv_transpose_forward",
      [](py::handle x, py::handle w, py::handle bias, const Ints& stride, const Ints& dilation, const Ints& padding,
         const Ints& output_padding, int64_t groups, const std::string& algorithm, const std::string& op, int nd) {
        const auto p = make_transpose_params(stride, dilation, padding, output_padding, groups, algorithm);
        Tensor src = from_numpy(x, op.c_str(), "x"), weights = from_numpy(w, op.c_str(), "weight");
        Tensor b = from_numpy_or_none(bias, op.c_str(), "bias");
        Tensor dst;
        {
          py::gil_scoped_release release;
          dst = conv_transpose_forward(src, weights, b, p, op.c_str(), nd);
        }
        return to_numpy(dst);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), CNNCORE_CONV_TRANSPOSE_ARGS);
  def_op(m, "conv_transpose_backward",
      [](py::handle gy, py::handle x, py::handle w, bool bias, const Ints& stride, const Ints& dilation,
         const Ints& padding, const Ints& output_padding, int64_t groups, const std::string& algorithm,
         const std::string& op, int nd) {
        const auto p = make_transpose_params(stride, dilation, padding, output_padding, groups, algorithm);
        Tensor diff_dst = from_numpy(gy, op.c_str(), "grad_out");
        Tensor src = from_numpy(x, op.c_str(), "x"), weights = from_numpy(w, op.c_str(), "weight");
        Tensor dx, dw, db;
        {
          py::gil_scoped_release release;
          dx = conv_transpose_backward_data(diff_dst, weights, src.shape(), p, op.c_str(), nd);
          dw = conv_transpose_backward_weight(diff_dst, src, weights.shape(), p, op.c_str(), nd);
          if (bias) db = conv_backward_bias(diff_dst, op.c_str());
        }
        return py::make_tuple(to_numpy(dx), to_numpy(dw), to_numpy_or_none(db));
      },
      py::arg("grad_out"), py::arg("x"), py::arg("weight"), py::arg("bias"), CNNCORE_CONV_TRANSPOSE_ARGS);
  def_op(m, "conv_transpose_output_shape",
      [](py::handle src_shape, py::handle w_shape, const Ints& stride, const Ints& dilation, const Ints& padding,
         const Ints& output_padding, int64_t groups, const std::string& algorithm, const std::string& op, int nd) {
        const auto p = make_transpose_params(stride, dilation, padding, output_padding, groups, algorithm);
        return py::tuple(py::cast(conv_transpose_output_shape(shape_from_sequence(src_shape, op.c_str(), "input_shape"),
                                                              shape_from_sequence(w_shape, op.c_str(), "weight_shape"),
                                                              p, op.c_str(), nd)));
      },
      py::arg("input_shape"), py::arg("weight_shape"), CNNCORE_CONV_TRANSPOSE_ARGS);
}


}  // namespace cnncore::bindings
