// Bindings of convolution and separable convolution (cnncore/conv.hpp):
// convert the arguments the Python layer (cnncore/ops/_conv.py) has
// normalised and forward them; every check is in cpp/src/ops/conv.cpp.
#include <string>
#include <vector>

#include "bindings/common.hpp"

namespace cnncore::bindings {

namespace {

using Ints = std::vector<int64_t>;

// The Python layer has already turned every argument form into lists of
// integers and names; this builds the C++ parameter struct from them.
ConvParams make_params(const std::vector<int64_t>& stride, const std::vector<int64_t>& dilation,
                       const std::vector<int64_t>& padding, const std::string& preset, const std::string& mode,
                       int64_t groups, bool flip, const std::string& algorithm) {
  ConvParams p;
  p.stride = stride;
  p.dilation = dilation;
  p.padding = padding;
  if (!preset.empty()) p.padding_preset = parse_padding_preset(preset);
  p.padding_mode = parse_padding_mode(mode);
  p.groups = groups;
  p.flip = flip;
  p.algorithm = parse_conv_algorithm(algorithm);
  return p;
}

#define CNNCORE_CONV_PARAM_ARGS                                                                      \
  py::arg("stride"), py::arg("dilation"), py::arg("padding"), py::arg("preset"), py::arg("padding_mode"), \
      py::arg("groups"), py::arg("flip"), py::arg("algorithm"), py::arg("op"), py::arg("spatial_dims")


}  // namespace

void register_conv(py::module_& m) {
  def_op(m, "separable_conv_forward",
      [](py::handle x, py::handle dw, py::handle pw, py::handle bias, const Ints& stride, const Ints& dilation,
         const Ints& padding, const std::string& preset, const std::string& mode, int64_t groups, bool flip,
         const std::string& algorithm, const std::string& op, int nd) {
        const ConvParams p = make_params(stride, dilation, padding, preset, mode, groups, flip, algorithm);
        Tensor src = from_numpy(x, op.c_str(), "x");
        Tensor d = from_numpy(dw, op.c_str(), "depthwise_weight"), q = from_numpy(pw, op.c_str(), "pointwise_weight");
        Tensor b = from_numpy_or_none(bias, op.c_str(), "bias");
        Tensor dst;
        {
          py::gil_scoped_release release;
          dst = separable_conv_forward(src, d, q, b, p, op.c_str(), nd);
        }
        return to_numpy(dst);
      },
      py::arg("x"), py::arg("depthwise_weight"), py::arg("pointwise_weight"), py::arg("bias"), CNNCORE_CONV_PARAM_ARGS);
  def_op(m, "separable_conv_backward",
      [](py::handle gy, py::handle x, py::handle dw, py::handle pw, bool bias, const Ints& stride,
         const Ints& dilation, const Ints& padding, const std::string& preset, const std::string& mode, int64_t groups,
         bool flip, const std::string& algorithm, const std::string& op, int nd) {
        const ConvParams p = make_params(stride, dilation, padding, preset, mode, groups, flip, algorithm);
        Tensor diff_dst = from_numpy(gy, op.c_str(), "grad_out"), src = from_numpy(x, op.c_str(), "x");
        Tensor d = from_numpy(dw, op.c_str(), "depthwise_weight"), q = from_numpy(pw, op.c_str(), "pointwise_weight");
        std::vector<Tensor> grads;
        {
          py::gil_scoped_release release;
          grads = separable_conv_backward(diff_dst, src, d, q, bias, p, op.c_str(), nd);
        }
        return py::make_tuple(to_numpy(grads[0]), to_numpy(grads[1]), to_numpy(grads[2]),
                              to_numpy_or_none(grads[3]));
      },
      py::arg("grad_out"), py::arg("x"), py::arg("depthwise_weight"), py::arg("pointwise_weight"), py::arg("bias"),
      CNNCORE_CONV_PARAM_ARGS);
  def_op(m, "conv_forward",
      [](py::handle x, py::handle w, py::handle bias, const Ints& stride, const Ints& dilation, const Ints& padding,
         const std::string& preset, const std::string& mode, int64_t groups, bool flip, const std::string& algorithm,
         const std::string& op, int nd) {
        const ConvParams p = make_params(stride, dilation, padding, preset, mode, groups, flip, algorithm);
        Tensor src = from_numpy(x, op.c_str(), "x"), weights = from_numpy(w, op.c_str(), "weight");
        Tensor b = from_numpy_or_none(bias, op.c_str(), "bias");
        Tensor dst;
        {
          py::gil_scoped_release release;
          dst = conv_forward(src, weights, b, p, op.c_str(), nd);
        }
        return to_numpy(dst);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), CNNCORE_CONV_PARAM_ARGS);

  def_op(m, "conv_backward",
      [](py::handle gy, py::handle x, py::handle w, bool bias, bool input_grad, bool weight_grad, const Ints& stride,
         const Ints& dilation, const Ints& padding, const std::string& preset, const std::string& mode, int64_t groups,
         bool flip, const std::string& algorithm, const std::string& op, int nd) {
        const ConvParams p = make_params(stride, dilation, padding, preset, mode, groups, flip, algorithm);
        Tensor diff_dst = from_numpy(gy, op.c_str(), "grad_out");
        Tensor src = from_numpy(x, op.c_str(), "x"), weights = from_numpy(w, op.c_str(), "weight");
        Gradients grads;
        {
          py::gil_scoped_release release;
          grads = conv_backward(diff_dst, src, weights, GradMask{input_grad, weight_grad, bias}, p, op.c_str(), nd);
        }
        return py::make_tuple(to_numpy_or_none(grads.diff_src), to_numpy_or_none(grads.diff_weights),
                              to_numpy_or_none(grads.diff_bias));
      },
      py::arg("grad_out"), py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("input_grad"),
      py::arg("weight_grad"), CNNCORE_CONV_PARAM_ARGS);

  def_op(m, "conv_output_shape",
      [](py::handle src_shape, py::handle w_shape, const Ints& stride, const Ints& dilation, const Ints& padding,
         const std::string& preset, const std::string& mode, int64_t groups, bool flip, const std::string& algorithm,
         const std::string& op, int nd) {
        const ConvParams p = make_params(stride, dilation, padding, preset, mode, groups, flip, algorithm);
        const Shape s = conv_output_shape(shape_from_sequence(src_shape, op.c_str(), "input_shape"),
                                          shape_from_sequence(w_shape, op.c_str(), "weight_shape"), p, op.c_str(), nd);
        return py::tuple(py::cast(s));
      },
      py::arg("input_shape"), py::arg("weight_shape"), CNNCORE_CONV_PARAM_ARGS);
}

}  // namespace cnncore::bindings
