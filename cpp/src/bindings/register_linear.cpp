// Bindings of the fully connected layer (cnncore/layers.hpp): convert the arguments the Python
// layer (cnncore/ops/_linear.py) has normalised and forward them; every check is
// in the C++ op layer.
#include <string>

#include "bindings/common.hpp"
#include "cpu/kernels/gemm.hpp"
#include "ops/checks.hpp"
#include "util/checked.hpp"

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

  // ---- the blocked GEMM itself, for benchmarks/gemm.py and the tests: C = op(A) op(B)
  // with a named micro-kernel ("" for the current level's).
  m.def("_gemm_kernels", [] {
    py::list names;
    int count = 0;
    const auto* f32 = cpu::gemm_ukernels<float>(&count);
    for (int i = 0; i < count; ++i)
      if (f32[i].isa <= best_supported_isa()) names.append(f32[i].name);
    const auto* f64 = cpu::gemm_ukernels<double>(&count);
    for (int i = 0; i < count; ++i)
      if (f64[i].isa <= best_supported_isa()) names.append(f64[i].name);
    return names;
  });
  def_op(m, "_gemm",
      [](py::handle a, py::handle b, bool trans_a, bool trans_b, const std::string& kernel) {
        const char* op = "_gemm";
        Tensor A = from_numpy(a, op, "a"), B = from_numpy(b, op, "b");
        if (A.dim() != 2 || B.dim() != 2)
          throw value_error(detail::str(op, ": a and b must be 2-D, got shapes ", shape_str(A.shape()), " and ",
                                        shape_str(B.shape())));
        if (A.dtype() != B.dtype()) throw type_error(detail::str(op, ": a and b must have the same dtype"));
        const int64_t M = trans_a ? A.shape()[1] : A.shape()[0], K = trans_a ? A.shape()[0] : A.shape()[1];
        const int64_t K2 = trans_b ? B.shape()[1] : B.shape()[0], N = trans_b ? B.shape()[0] : B.shape()[1];
        if (K != K2)
          throw value_error(detail::str(op, ": op(a) is ", M, "x", K, " but op(b) is ", K2, "x", N));
        check_memory(op, detail::checked_mul(detail::checked_mul(M, N, op), int64_t(dtype_size(A.dtype())), op));
        Tensor C = Tensor::empty({M, N}, A.dtype());
        detail::with_dtype(A.dtype(), [&](auto tag) {
          using T = decltype(tag);
          int count = 0;
          const cpu::GemmUkernel<T>* ks = cpu::gemm_ukernels<T>(&count);
          const cpu::GemmUkernel<T>* uk = kernel.empty() ? &cpu::gemm_ukernel_for_current_isa<T>() : nullptr;
          for (int i = 0; i < count && !uk; ++i)
            if (kernel == ks[i].name && ks[i].isa <= best_supported_isa()) uk = &ks[i];
          if (!uk) throw value_error(detail::str(op, ": no kernel named '", kernel, "' for this dtype and CPU"));
          py::gil_scoped_release release;
          cpu::gemm(*uk, trans_a, trans_b, M, N, K, A.data_as<T>(), A.shape()[1], B.data_as<T>(), B.shape()[1],
                    false, C.data_as<T>(), N, true);
        });
        return to_numpy(C);
      },
      py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("kernel") = "");
}

}  // namespace cnncore::bindings
