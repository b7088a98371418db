#include "bindings/common.hpp"

namespace cnncore::bindings {

void register_pool(py::module_& m) { (void)m; }

}  // namespace cnncore::bindings
