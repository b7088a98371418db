// Private testing hook: the core's own FFT, so Python tests can compare it
// with numpy.fft. Not part of the public API.
#include <complex>
#include <cstring>
#include <vector>

#include "bindings/common.hpp"
#include "cpu/kernels/fft.hpp"

namespace cnncore::bindings {

void register_fft(py::module_& m) {
  def_op(m, "_fft",
      [](py::handle obj, bool inverse) {
        using C = std::complex<double>;
        if (!py::isinstance<py::array>(obj))
          throw type_error(detail::str("_fft: x must be a NumPy array, got ",
                                       std::string(py::str(py::type::of(obj).attr("__name__")))));
        auto any = py::reinterpret_borrow<py::array>(obj);
        if (!any.dtype().is(py::dtype::of<C>()))
          throw type_error(detail::str("_fft: x must be a complex128 array, got dtype ",
                                       std::string(py::str(any.dtype()))));
        auto x = py::array_t<C, py::array::c_style | py::array::forcecast>::ensure(any);
        if (x.ndim() < 1 || x.ndim() > 3)
          throw value_error(detail::str("_fft: x must have 1, 2 or 3 dimensions, got ", x.ndim()));
        int64_t n[3] = {1, 1, 1};
        for (py::ssize_t a = 0; a < x.ndim(); ++a) {
          if (x.shape(a) < 1)
            throw value_error(detail::str("_fft: x must have a positive length on every axis, got shape axis ", a,
                                          " of length ", x.shape(a)));
          n[3 - x.ndim() + a] = x.shape(a);
        }
        const int64_t total = n[0] * n[1] * n[2];
        std::vector<cpu::fft::cplx> buf(static_cast<std::size_t>(total));
        std::memcpy(buf.data(), x.data(), sizeof(C) * static_cast<std::size_t>(total));
        {
          py::gil_scoped_release release;
          const cpu::fft::PlanNd plan(n[0], n[1], n[2]);
          std::vector<cpu::fft::cplx> scratch(static_cast<std::size_t>(plan.scratch_elems()));
          plan.execute(buf.data(), inverse, scratch.data());
          if (inverse) {  // numpy.fft's normalisation: 1/n on the inverse
            const double s = 1.0 / static_cast<double>(total);
            for (auto& v : buf) v = {v.re * s, v.im * s};
          }
        }
        py::array_t<C> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
        std::memcpy(out.mutable_data(), buf.data(), sizeof(C) * static_cast<std::size_t>(total));
        return out;
      },
      py::arg("x"), py::arg("inverse") = false,
      "The core's FFT over every axis of a complex128 array (1-3 axes); inverse=True divides by the size, "
      "like numpy.fft.ifftn. Private: for tests.");
}

}  // namespace cnncore::bindings
