// Bindings of tiled / locally connected convolution (python/cnncore/ops/_local.py).
#include <string>
#include <vector>

#include "bindings/common.hpp"

namespace cnncore::bindings {

namespace {

using Ints = std::vector<int64_t>;

// The Python layer has turned every argument form into lists of integers and
// words; an empty tile means local_conv2d.
LocalConvParams make_params(const Ints& tile, const Ints& stride, const Ints& dilation, const Ints& padding,
                            const std::string& preset, const std::string& mode, bool flip,
                            const std::string& algorithm) {
  LocalConvParams p;
  p.tile = tile;
  p.stride = stride;
  p.dilation = dilation;
  p.padding = padding;
  if (!preset.empty()) p.padding_preset = parse_padding_preset(preset);
  p.padding_mode = parse_padding_mode(mode);
  p.flip = flip;
  p.algorithm = parse_local_conv_algorithm(algorithm);
  return p;
}

#define CNNCORE_LOCAL_PARAM_ARGS                                                                       \
  py::arg("tile"), py::arg("stride"), py::arg("dilation"), py::arg("padding"), py::arg("preset"),      \
      py::arg("padding_mode"), py::arg("flip"), py::arg("algorithm")

}  // namespace

void register_local_conv(py::module_& m) {
  def_op(m, "local_conv_forward",
      [](py::handle x, py::handle w, py::handle bias, const Ints& tile, const Ints& stride, const Ints& dilation,
         const Ints& padding, const std::string& preset, const std::string& mode, bool flip,
         const std::string& algorithm) {
        const LocalConvParams p = make_params(tile, stride, dilation, padding, preset, mode, flip, algorithm);
        const char* op = tile.empty() ? "local_conv2d" : "tiled_conv2d";
        Tensor src = from_numpy(x, op, "x"), weights = from_numpy(w, op, "weight");
        Tensor b = from_numpy_or_none(bias, op, "bias");
        Tensor dst;
        {
          py::gil_scoped_release release;
          dst = tile.empty() ? local_conv2d_forward(src, weights, b, p) : tiled_conv2d_forward(src, weights, b, p);
        }
        return to_numpy(dst);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), CNNCORE_LOCAL_PARAM_ARGS);

  def_op(m, "local_conv_backward",
      [](py::handle gy, py::handle x, py::handle w, bool bias, const Ints& tile, const Ints& stride,
         const Ints& dilation, const Ints& padding, const std::string& preset, const std::string& mode, bool flip,
         const std::string& algorithm) {
        const LocalConvParams p = make_params(tile, stride, dilation, padding, preset, mode, flip, algorithm);
        const bool local = tile.empty();
        const char* op = local ? "local_conv2d" : "tiled_conv2d";
        Tensor diff_dst = from_numpy(gy, op, "grad_out");
        Tensor src = from_numpy(x, op, "x"), weights = from_numpy(w, op, "weight");
        Gradients grads;
        {
          py::gil_scoped_release release;
          const GradMask mask{true, true, bias};
          grads = local ? local_conv2d_backward(diff_dst, src, weights, mask, p)
                        : tiled_conv2d_backward(diff_dst, src, weights, mask, p);
        }
        return py::make_tuple(to_numpy(grads.diff_src), to_numpy(grads.diff_weights), to_numpy_or_none(grads.diff_bias));
      },
      py::arg("grad_out"), py::arg("x"), py::arg("weight"), py::arg("bias"), CNNCORE_LOCAL_PARAM_ARGS);

}

}  // namespace cnncore::bindings
