#include "bindings/common.hpp"

namespace cnncore::bindings {

void register_layers(py::module_& m) { (void)m; }

}  // namespace cnncore::bindings
