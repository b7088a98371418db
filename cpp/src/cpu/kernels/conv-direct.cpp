// Placeholder until the direct depthwise path lands: it serves nothing, so asking for it
// is a clear error and "auto" never picks it.
#include "cpu/kernels/conv-direct.hpp"

namespace cnncore::cpu {

using detail::ConvGeometry;

std::string conv_direct_why_not(const ConvGeometry&) { return "the direct depthwise path is not built yet"; }
bool conv_direct_preferred(const ConvGeometry&) { return false; }
int64_t conv_direct_workspace_bytes(const ConvGeometry&, int64_t, detail::ConvPass, int) { return 0; }

template <typename T>
void conv_forward_direct(const ConvGeometry&, const T*, const T*, const T*, T*) {}
template <typename T>
void conv_backward_data_direct(const ConvGeometry&, const T*, const T*, T*) {}
template <typename T>
void conv_backward_weight_direct(const ConvGeometry&, const T*, const T*, T*) {}

#define CNNCORE_INSTANTIATE(T)                                                                   \
  template void conv_forward_direct<T>(const ConvGeometry&, const T*, const T*, const T*, T*);     \
  template void conv_backward_data_direct<T>(const ConvGeometry&, const T*, const T*, T*);         \
  template void conv_backward_weight_direct<T>(const ConvGeometry&, const T*, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
