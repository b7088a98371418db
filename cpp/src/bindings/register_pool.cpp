#include <string>
#include <vector>

#include "bindings/common.hpp"
#include "util/checked.hpp"

namespace cnncore::bindings {

namespace {

using Ints = std::vector<int64_t>;

// The Python layer has already turned every argument form into lists of
// numbers and names; this builds the C++ parameter struct from them.
PoolParams make_params(const std::string& kind, const Ints& kernel, const Ints& stride, const Ints& padding,
                       const Ints& dilation, bool ceil_mode, const Ints& output_size, bool count_include_pad,
                       int64_t divisor_override, double norm_type, const std::vector<double>& sigma,
                       const std::string& algorithm) {
  PoolParams p;
  p.kind = parse_pool_kind(kind);
  p.kernel = kernel;
  p.stride = stride;
  p.padding = padding;
  p.dilation = dilation;
  p.ceil_mode = ceil_mode;
  p.output_size = output_size;
  p.count_include_pad = count_include_pad;
  p.divisor_override = divisor_override;
  p.norm_type = norm_type;
  p.sigma = sigma;
  p.algorithm = parse_pool_algorithm(algorithm);
  return p;
}

#define CNNCORE_POOL_PARAM_ARGS                                                                          \
  py::arg("kind"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),  \
      py::arg("ceil_mode"), py::arg("output_size"), py::arg("count_include_pad"),                        \
      py::arg("divisor_override"), py::arg("norm_type"), py::arg("sigma"), py::arg("algorithm"),        \
      py::arg("op"), py::arg("spatial_dims")

#define CNNCORE_POOL_PARAMS                                                                              \
  const std::string &kind, const Ints &kernel, const Ints &stride, const Ints &padding, const Ints &dilation, \
      bool ceil_mode, const Ints &output_size, bool count_include_pad, int64_t divisor_override,         \
      double norm_type, const std::vector<double>&sigma, const std::string &algorithm, const std::string &op, int nd

#define CNNCORE_MAKE_POOL_PARAMS                                                                         \
  make_params(kind, kernel, stride, padding, dilation, ceil_mode, output_size, count_include_pad,         \
              divisor_override, norm_type, sigma, algorithm)

}  // namespace

void register_pool(py::module_& m) {
  def_op(m, "pool_forward",
      [](py::handle x, bool return_indices, CNNCORE_POOL_PARAMS) -> py::object {
        const PoolParams p = CNNCORE_MAKE_POOL_PARAMS;
        Tensor src = from_numpy(x, op.c_str(), "x");
        if (!return_indices) {
          Tensor dst;
          {
            py::gil_scoped_release release;
            dst = pool_forward(src, p, nullptr, op.c_str(), nd);
          }
          return to_numpy(dst);
        }
        // The indices array is made (and the problem validated) first, with the GIL.
        const Shape shape = pool_output_shape(src.shape(), p, op.c_str(), nd);
        // An 8-byte tensor buffer holds them, so they count towards the call's memory.
        check_memory(op.c_str(), detail::checked_mul(shape_numel(shape), 8, op.c_str()));
        Tensor index_buffer = Tensor::empty(shape, DType::f64);
        py::object indices = to_numpy(index_buffer).attr("view")(py::dtype::of<int64_t>());
        int64_t* ip = static_cast<int64_t*>(index_buffer.data());
        Tensor dst;
        {
          py::gil_scoped_release release;
          dst = pool_forward(src, p, ip, op.c_str(), nd);
        }
        return py::make_tuple(to_numpy(dst), indices);
      },
      py::arg("x"), py::arg("return_indices"), CNNCORE_POOL_PARAM_ARGS);

  def_op(m, "pool_backward",
      [](py::handle gy, py::handle x, py::handle indices, CNNCORE_POOL_PARAMS) {
        const PoolParams p = CNNCORE_MAKE_POOL_PARAMS;
        Tensor diff_dst = from_numpy(gy, op.c_str(), "grad_out");
        Tensor src = from_numpy(x, op.c_str(), "x");
        Tensor dx;
        if (indices.is_none()) {
          py::gil_scoped_release release;
          dx = pool_backward(diff_dst, src, p, op.c_str(), nd);
        } else {
          // The Python layer has checked that indices is an int64 array.
          auto ix = py::array_t<int64_t, py::array::c_style>::ensure(indices);
          if (!ix) throw py::error_already_set();
          const Shape ishape(ix.shape(), ix.shape() + ix.ndim());
          const int64_t* ip = ix.data();
          py::gil_scoped_release release;
          dx = max_pool_backward_indices(diff_dst, ip, ishape, src.shape(), p, op.c_str(), nd);
        }
        return to_numpy(dx);
      },
      py::arg("grad_out"), py::arg("x"), py::arg("indices"), CNNCORE_POOL_PARAM_ARGS);

  def_op(m, "pool_output_shape",
      [](py::handle src_shape, CNNCORE_POOL_PARAMS) {
        const PoolParams p = CNNCORE_MAKE_POOL_PARAMS;
        const Shape s = pool_output_shape(shape_from_sequence(src_shape, op.c_str(), "input_shape"), p, op.c_str(), nd);
        return py::tuple(py::cast(s));
      },
      py::arg("input_shape"), CNNCORE_POOL_PARAM_ARGS);
}

}  // namespace cnncore::bindings
