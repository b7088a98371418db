#include "bindings/common.hpp"

namespace cnncore::bindings {

void register_runtime(py::module_& m) {
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("set_deterministic", &set_deterministic, py::arg("on"));
  m.def("get_deterministic", &get_deterministic);
  m.def("get_num_threads", &get_num_threads);
  m.def("set_memory_limit", &set_memory_limit, py::arg("nbytes"));
  m.def("get_memory_limit", &get_memory_limit);
  m.def("get_isa", [] { return std::string(isa_name(get_isa())); });
  m.def("set_isa", [](const std::string& name) { set_isa(parse_isa(name)); }, py::arg("name"));
  m.def("best_isa", [] { return std::string(isa_name(best_supported_isa())); });
}

}  // namespace cnncore::bindings
