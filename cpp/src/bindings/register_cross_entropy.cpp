// Bindings of cross-entropy and the negative log-likelihood (cnncore/layers.hpp): convert the arguments the Python
// layer (cnncore/ops/_cross_entropy.py) has normalised and forward them; every check is
// in the C++ op layer.
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

}  // namespace

void register_cross_entropy(py::module_& m) {
  // ---- cross-entropy
  def_op(m, "cross_entropy_forward",
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
  def_op(m, "cross_entropy_backward",
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
  def_op(m, "nll_loss_forward",
      [](py::handle input, const Targets& target, py::handle weight, int64_t ignore_index,
         const std::string& reduction) {
        const NllLossParams p{ignore_index, parse_reduction(reduction)};
        const char* op = "nll_loss";
        Tensor src = from_numpy(input, op, "input"), w = from_numpy_or_none(weight, op, "weight"), dst;
        const Labels t = labels_of(target);
        {
          py::gil_scoped_release release;
          dst = nll_loss_forward(src, t, w, p);
        }
        return to_numpy(dst);
      },
      py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("ignore_index"), py::arg("reduction"));
  def_op(m, "nll_loss_backward",
      [](py::handle gy, py::handle input, const Targets& target, py::handle weight, int64_t ignore_index,
         const std::string& reduction) {
        const NllLossParams p{ignore_index, parse_reduction(reduction)};
        const char* op = "nll_loss";
        Tensor diff_dst = from_numpy(gy, op, "grad_out"), src = from_numpy(input, op, "input");
        Tensor w = from_numpy_or_none(weight, op, "weight"), dx;
        const Labels t = labels_of(target);
        {
          py::gil_scoped_release release;
          dx = nll_loss_backward(diff_dst, src, t, w, p);
        }
        return to_numpy(dx);
      },
      py::arg("grad_out"), py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("ignore_index"),
      py::arg("reduction"));
}

}  // namespace cnncore::bindings
