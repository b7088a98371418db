// The private extension module cnncore._core; the Python package re-exports it.
#include <new>

#include "bindings/common.hpp"

namespace cnncore::bindings {

Tensor from_numpy(const py::handle& obj, const char* op, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw type_error(detail::str(op, ": ", name, " must be a NumPy array, got ",
                                 std::string(py::str(py::type::of(obj).attr("__name__")))));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  DType dtype;
  if (arr.dtype().is(py::dtype::of<float>()))
    dtype = DType::f32;
  else if (arr.dtype().is(py::dtype::of<double>()))
    dtype = DType::f64;
  else
    throw type_error(detail::str(op, ": ", name, " must be a float32 or float64 array, got dtype ",
                                 std::string(py::str(arr.dtype()))));
  if (!(arr.flags() & py::array::c_style))
    arr = py::module_::import("numpy").attr("ascontiguousarray")(arr).cast<py::array>();
  Shape shape(arr.shape(), arr.shape() + arr.ndim());
  // The deleter may run without the GIL (a Tensor dropped inside a released
  // region), so it takes the GIL itself.
  auto* keep = new py::object(arr);
  std::shared_ptr<void> owner(keep, [](void* p) {
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(p);
  });
  return Tensor::wrap(const_cast<void*>(arr.data()), shape, dtype, std::move(owner));
}

Tensor from_numpy_or_none(const py::handle& obj, const char* op, const char* name) {
  return obj.is_none() ? Tensor() : from_numpy(obj, op, name);
}

py::array to_numpy(const Tensor& t) {
  auto* keep = new std::shared_ptr<void>(t.storage());
  py::capsule owner(keep, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
  const py::dtype dt = t.dtype() == DType::f32 ? py::dtype::of<float>() : py::dtype::of<double>();
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  std::vector<py::ssize_t> strides;
  for (int64_t s : t.strides()) strides.push_back(static_cast<py::ssize_t>(s * dtype_size(t.dtype())));
  return py::array(dt, shape, strides, t.data(), owner);
}

py::object to_numpy_or_none(const Tensor& t) { return t.defined() ? py::object(to_numpy(t)) : py::none(); }

Shape shape_from_sequence(const py::handle& seq, const char* op, const char* name) {
  Shape s;
  for (const auto& item : py::iter(seq)) {
    if (!py::isinstance<py::int_>(item) || py::isinstance<py::bool_>(item))
      throw type_error(detail::str(op, ": ", name, " must be a sequence of integers"));
    s.push_back(item.cast<int64_t>());
  }
  return s;
}

}  // namespace cnncore::bindings

PYBIND11_MODULE(_core, m) {
  namespace b = cnncore::bindings;
  namespace py = pybind11;
  m.doc() = "cnncore's C++ core (private; use the cnncore package)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const cnncore::type_error& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const cnncore::value_error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  b::register_runtime(m);
  b::register_conv(m);
  b::register_conv_transpose(m);
  b::register_local_conv(m);
  b::register_pad(m);
  b::register_pool(m);
  b::register_activation(m);
  b::register_softmax(m);
  b::register_cross_entropy(m);
  b::register_dropout(m);
  b::register_norm(m);
  b::register_linear(m);
  b::register_fft(m);
}
