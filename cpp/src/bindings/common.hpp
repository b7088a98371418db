// NumPy <-> cnncore::Tensor without copies, shared by every register_*.cpp.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cnncore/cnncore.hpp"

namespace cnncore::bindings {

namespace py = pybind11;

// The Python handle of a device tensor (register_device.cpp): the base class
// of cnncore.cuda.CudaArray.
struct DeviceTensor {
  Tensor t;
};

// Wraps a C-contiguous, aligned float32/float64 array (the Tensor keeps the
// array alive), or copies any other layout into a tensor charged to the
// call's MemoryScope. `op` and `name` go into error messages.
Tensor from_numpy(const py::handle& obj, const char* op, const char* name);

// (A device array passes through as its device tensor.)

// from_numpy, or an undefined Tensor for None (an optional argument).
Tensor from_numpy_or_none(const py::handle& obj, const char* op, const char* name);

// Hands the tensor's storage to NumPy (no copy): the array owns a reference.
// A device tensor becomes a device array (cnncore.cuda.CudaArray) instead.
py::object to_numpy(const Tensor& t);
// The device array (of the class cnncore.cuda registered, else DeviceTensor) holding t.
py::object wrap_device_tensor(const Tensor& t);
// to_numpy, or None for an undefined tensor (a gradient nobody asked for).
py::object to_numpy_or_none(const Tensor& t);

// m.def for an op: the call runs inside a MemoryScope, so everything it
// allocates, input copies included, is summed against the memory limit.
template <typename F, typename... Extra>
void def_op(py::module_& m, const char* name, F&& f, const Extra&... extra) {
  m.def(name, std::forward<F>(f), extra..., py::call_guard<MemoryScope>());
}

Shape shape_from_sequence(const py::handle& seq, const char* op, const char* name);

void register_runtime(py::module_& m);
void register_device(py::module_& m);
void register_conv(py::module_& m);
void register_local_conv(py::module_& m);
void register_pool(py::module_& m);
void register_conv_transpose(py::module_& m);
void register_pad(py::module_& m);
void register_activation(py::module_& m);
void register_softmax(py::module_& m);
void register_cross_entropy(py::module_& m);
void register_dropout(py::module_& m);
void register_norm(py::module_& m);
void register_linear(py::module_& m);
void register_fft(py::module_& m);
void register_optim(py::module_& m);

}  // namespace cnncore::bindings
