// Bindings of the in-place optimiser updates (cnncore/optim.hpp), used by
// cnncore/optim/optimizer.py. The updated arrays must be the caller's own
// buffers (C-contiguous, aligned, writable), so that the update lands in them.
#include <string>

#include "bindings/common.hpp"
#include "cnncore/optim.hpp"

namespace cnncore::bindings {

namespace {

// A Tensor over the memory of `obj` itself; refuses arrays it would have to copy.
Tensor in_place(py::handle obj, const char* op, const char* name) {
  Tensor t = from_numpy(obj, op, name);
  if (t.device() != Device::cpu) return t;  // a device array is its own memory
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (t.data() != arr.data() || !arr.writeable())
    throw value_error(detail::str(op, ": ", name,
                                  " must be a writable, C-contiguous and aligned array (it is updated in place)"));
  return t;
}

Tensor in_place_or_none(py::handle obj, const char* op, const char* name) {
  return obj.is_none() ? Tensor() : in_place(obj, op, name);
}

}  // namespace

void register_optim(py::module_& m) {
  def_op(m, "sgd_update",
      [](py::handle w, py::handle g, py::handle buf, double lr, double momentum, double dampening,
         double weight_decay, bool nesterov, bool init_buffer) {
        const char* op = "sgd_update";
        Tensor tw = in_place(w, op, "weight"), tg = from_numpy(g, op, "grad");
        Tensor tb = in_place_or_none(buf, op, "momentum_buffer");
        SgdParams p{lr, momentum, dampening, weight_decay, nesterov, init_buffer};
        py::gil_scoped_release release;
        sgd_update(tw, tg, tb, p);
      },
      py::arg("weight"), py::arg("grad"), py::arg("momentum_buffer"), py::arg("lr"), py::arg("momentum"),
      py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("init_buffer"));
  def_op(m, "adam_update",
      [](py::handle w, py::handle g, py::handle m1, py::handle m2, py::handle vmax, double lr, double beta1,
         double beta2, double eps, double weight_decay, bool decoupled, bool amsgrad, int64_t step) {
        const char* op = "adam_update";
        Tensor tw = in_place(w, op, "weight"), tg = from_numpy(g, op, "grad");
        Tensor a = in_place(m1, op, "exp_avg"), b = in_place(m2, op, "exp_avg_sq");
        Tensor c = in_place_or_none(vmax, op, "max_exp_avg_sq");
        AdamParams p{lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, step};
        py::gil_scoped_release release;
        adam_update(tw, tg, a, b, c, p);
      },
      py::arg("weight"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"),
      py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
      py::arg("decoupled"), py::arg("amsgrad"), py::arg("step"));
}

}  // namespace cnncore::bindings
