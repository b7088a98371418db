// The private extension module cnncore._core; the Python package re-exports it.
#include <new>

#include "bindings/common.hpp"
#include "util/checked.hpp"
#include "util/memory_ledger.hpp"

namespace cnncore::bindings {

Tensor from_numpy(const py::handle& obj, const char* op, const char* name) {
  if (py::isinstance<DeviceTensor>(obj)) return obj.cast<const DeviceTensor&>().t;
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
  Shape shape(arr.shape(), arr.shape() + arr.ndim());
  const bool contiguous = arr.flags() & py::array::c_style;
  if (!contiguous || !(arr.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) {
    // The kernels read C-order data aligned to its dtype. The copy is part
    // of the call's memory (the open MemoryScope), checked before it is made.
    const int64_t bytes = detail::checked_mul(shape_numel(shape, op), static_cast<int64_t>(dtype_size(dtype)), op);
    if (bytes > get_memory_limit() - memory_held())
      throw value_error(detail::str(op, ": ", name,
                                    contiguous ? " is not aligned to its dtype and its aligned copy would need "
                                               : " is not C-contiguous and its C-order copy would need ",
                                    bytes, " bytes, more than the memory limit of ", get_memory_limit(), " bytes",
                                    memory_held() ? detail::str(" less the ", memory_held(), " this call holds") : "",
                                    " (cnncore.set_memory_limit changes it)"));
    Tensor copy = detail::charged_empty(shape, dtype);
    detail::PendingCopy c;
    c.dst = copy.data();
    c.src = static_cast<const unsigned char*>(arr.data());
    c.shape = shape;
    c.byte_strides.assign(arr.strides(), arr.strides() + arr.ndim());
    c.itemsize = static_cast<int64_t>(dtype_size(dtype));
    auto* keep = new py::object(arr);
    c.keep = std::shared_ptr<void>(keep, [](void* p) {
      py::gil_scoped_acquire gil;
      delete static_cast<py::object*>(p);
    });
    detail::copy_strided_later(std::move(c));
    return copy;
  }
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

py::object to_numpy(const Tensor& t) {
  if (t.device() != Device::cpu) return wrap_device_tensor(t);
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
  b::register_device(m);
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
  b::register_optim(m);
}
