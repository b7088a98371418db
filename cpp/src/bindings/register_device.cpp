// Bindings of cnncore/device.hpp: the device tensor handle (the base class of
// cnncore.cuda.CudaArray), host <-> device copies, the backend's state and the
// array primitives the Python device array is built from. Checks live in the
// C++ op layer.
#include <string>

#include "bindings/common.hpp"
#include "cnncore/device.hpp"

namespace cnncore::bindings {

namespace {

py::object& device_array_type() {
  static py::object* type = new py::object();  // set by cnncore.cuda; never destroyed
  return *type;
}

DType parse_dtype(const py::handle& dt) {
  const py::dtype d = py::dtype::from_args(py::reinterpret_borrow<py::object>(dt));
  if (d.is(py::dtype::of<float>())) return DType::f32;
  if (d.is(py::dtype::of<double>())) return DType::f64;
  throw type_error(detail::str("device arrays hold float32 or float64, got dtype ", std::string(py::str(d))));
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  throw value_error(detail::str("device must be 'cpu' or 'cuda', got '", name, "'"));
}

std::vector<int64_t> int_list(const py::handle& seq, const char* op, const char* name) {
  return shape_from_sequence(seq, op, name);
}

}  // namespace

py::object wrap_device_tensor(const Tensor& t) {
  py::object& type = device_array_type();
  if (!type || type.is_none()) return py::cast(DeviceTensor{t});
  return type(py::cast(DeviceTensor{t}));
}

void register_device(py::module_& m) {
  py::class_<DeviceTensor>(m, "DeviceTensor", py::dynamic_attr(),
                           "A tensor in device memory (the base of cnncore.cuda.CudaArray)")
      .def(py::init([](const DeviceTensor& other) { return DeviceTensor{other.t}; }), py::arg("other"))
      .def_property_readonly("shape",
                             [](const DeviceTensor& d) {
                               py::tuple s(d.t.shape().size());
                               for (std::size_t i = 0; i < d.t.shape().size(); ++i) s[i] = d.t.shape()[i];
                               return s;
                             })
      .def_property_readonly("dtype",
                             [](const DeviceTensor& d) {
                               return d.t.dtype() == DType::f32 ? py::dtype::of<float>() : py::dtype::of<double>();
                             })
      .def_property_readonly("ndim", [](const DeviceTensor& d) { return d.t.dim(); })
      .def_property_readonly("size", [](const DeviceTensor& d) { return d.t.numel(); })
      .def_property_readonly("nbytes", [](const DeviceTensor& d) { return d.t.nbytes(); })
      .def_property_readonly("_device_name", [](const DeviceTensor& d) { return std::string(device_name(d.t.device())); })
      .def("_same_storage", [](const DeviceTensor& a, const DeviceTensor& b) { return a.t.storage() == b.t.storage(); });

  m.def("_set_device_array_type", [](py::object type) { device_array_type() = std::move(type); });

  def_op(m, "to_device", [](py::handle x, const std::string& device) {
        const Tensor src = from_numpy(x, "to_device", "x");
        const Device d = parse_device(device);
        Tensor out;
        {
          py::gil_scoped_release release;
          out = to_device(src, d);
        }
        return to_numpy(out);
      }, py::arg("x"), py::arg("device"));

  m.def("cuda_info", []() {
    const CudaInfo i = cuda_info();
    py::dict d;
    d["built"] = i.built;
    d["available"] = i.available;
    d["emulated"] = i.emulated;
    d["device_count"] = i.device_count;
    d["device_name"] = i.device_name;
    d["why_unavailable"] = i.why_unavailable;
    return d;
  });
  m.def("cuda_synchronize", []() {
    py::gil_scoped_release release;
    cuda_synchronize();
  });
  m.def("cuda_use_emulator", &cuda_use_emulator, py::arg("on"));
  m.def("cuda_memory_stats", []() {
    const DeviceMemoryStats s = cuda_memory_stats();
    py::dict d;
    d["allocated"] = s.allocated;
    d["reserved"] = s.reserved;
    d["peak_allocated"] = s.peak_allocated;
    d["device_allocs"] = s.device_allocs;
    d["cache_hits"] = s.cache_hits;
    return d;
  });
  m.def("cuda_empty_cache", &cuda_empty_cache);
  m.def("cuda_reset_peak_memory", &cuda_reset_peak_memory);
  m.def("cuda_supported_ops", &cuda_supported_ops);

  // ---- array primitives (device tensors only)
  def_op(m, "device_empty", [](py::handle shape, py::handle dtype) {
        return to_numpy(empty_on(shape_from_sequence(shape, "empty", "shape"), parse_dtype(dtype), Device::cuda));
      }, py::arg("shape"), py::arg("dtype"));
  def_op(m, "device_full", [](py::handle shape, py::handle dtype, double value) {
        Tensor t = empty_on(shape_from_sequence(shape, "full", "shape"), parse_dtype(dtype), Device::cuda);
        array_fill(t, value);
        return to_numpy(t);
      }, py::arg("shape"), py::arg("dtype"), py::arg("value"));
  def_op(m, "array_unary", [](py::handle x, const std::string& op) {
        return to_numpy(array_unary(from_numpy(x, "array_unary", "x"), parse_unary_op(op)));
      }, py::arg("x"), py::arg("op"));
  def_op(m, "array_binary", [](py::handle a, py::handle b, const std::string& op) {
        return to_numpy(array_binary(from_numpy(a, "array_binary", "a"), from_numpy(b, "array_binary", "b"),
                                     parse_binary_op(op)));
      }, py::arg("a"), py::arg("b"), py::arg("op"));
  def_op(m, "array_binary_scalar", [](py::handle a, double s, const std::string& op, bool scalar_first) {
        return to_numpy(array_binary_scalar(from_numpy(a, "array_binary", "a"), s, parse_binary_op(op), scalar_first));
      }, py::arg("a"), py::arg("s"), py::arg("op"), py::arg("scalar_first"));
  def_op(m, "array_where", [](py::handle c, py::handle a, py::handle b) {
        return to_numpy(array_where(from_numpy(c, "array_where", "condition"), from_numpy(a, "array_where", "x"),
                                    from_numpy(b, "array_where", "y")));
      }, py::arg("condition"), py::arg("x"), py::arg("y"));
  def_op(m, "array_clip", [](py::handle x, double lo, double hi) {
        return to_numpy(array_clip(from_numpy(x, "array_clip", "x"), lo, hi));
      }, py::arg("x"), py::arg("lo"), py::arg("hi"));
  def_op(m, "array_reduce", [](py::handle x, py::handle axes, const std::string& op, bool keepdims) {
        return to_numpy(array_reduce(from_numpy(x, "array_reduce", "x"), int_list(axes, "array_reduce", "axes"),
                                     parse_reduce_op(op), keepdims));
      }, py::arg("x"), py::arg("axes"), py::arg("op"), py::arg("keepdims"));
  def_op(m, "array_gather", [](py::handle x, py::handle shape, py::handle strides, int64_t offset) {
        return to_numpy(array_gather(from_numpy(x, "array_gather", "x"), int_list(shape, "array_gather", "shape"),
                                     int_list(strides, "array_gather", "strides"), offset));
      }, py::arg("x"), py::arg("shape"), py::arg("strides"), py::arg("offset"));
  def_op(m, "array_scatter", [](py::handle dst, py::handle shape, py::handle strides, int64_t offset, py::handle value) {
        Tensor d = from_numpy(dst, "array_scatter", "dst");
        array_scatter(d, int_list(shape, "array_scatter", "shape"), int_list(strides, "array_scatter", "strides"),
                      offset, from_numpy(value, "array_scatter", "value"));
      }, py::arg("dst"), py::arg("shape"), py::arg("strides"), py::arg("offset"), py::arg("value"));
  def_op(m, "array_cast", [](py::handle x, py::handle dtype) {
        return to_numpy(array_cast(from_numpy(x, "array_cast", "x"), parse_dtype(dtype)));
      }, py::arg("x"), py::arg("dtype"));
  def_op(m, "array_matmul", [](py::handle a, py::handle b) {
        return to_numpy(array_matmul(from_numpy(a, "array_matmul", "a"), from_numpy(b, "array_matmul", "b")));
      }, py::arg("a"), py::arg("b"));
  def_op(m, "array_reshape", [](py::handle x, py::handle shape) {
        const Tensor t = from_numpy(x, "reshape", "x");
        const Shape s = shape_from_sequence(shape, "reshape", "shape");
        if (shape_numel(s, "reshape") != t.numel())
          throw value_error(detail::str("cannot reshape array of size ", t.numel(), " into shape ", shape_str(s)));
        return to_numpy(Tensor::wrap(t.data(), s, t.dtype(), t.storage(), t.device()));
      }, py::arg("x"), py::arg("shape"));
}

}  // namespace cnncore::bindings
