// Placeholder until the FFT path lands: it serves nothing, so asking for it
// is a clear error and "auto" never picks it.
#include "cpu/kernels/conv-fft.hpp"

namespace cnncore::cpu {

using detail::ConvGeometry;

std::string conv_fft_why_not(const ConvGeometry&) { return "the FFT path is not built yet"; }
bool conv_fft_preferred(const ConvGeometry&) { return false; }
int64_t conv_fft_workspace_bytes(const ConvGeometry&, int64_t, detail::ConvPass, int) { return 0; }

template <typename T>
void conv_forward_fft(const ConvGeometry&, const T*, const T*, const T*, T*) {}
template <typename T>
void conv_backward_data_fft(const ConvGeometry&, const T*, const T*, T*) {}
template <typename T>
void conv_backward_weight_fft(const ConvGeometry&, const T*, const T*, T*) {}

#define CNNCORE_INSTANTIATE(T)                                                                   \
  template void conv_forward_fft<T>(const ConvGeometry&, const T*, const T*, const T*, T*);     \
  template void conv_backward_data_fft<T>(const ConvGeometry&, const T*, const T*, T*);         \
  template void conv_backward_weight_fft<T>(const ConvGeometry&, const T*, const T*, T*);
CNNCORE_INSTANTIATE(float)
CNNCORE_INSTANTIATE(double)
#undef CNNCORE_INSTANTIATE

}  // namespace cnncore::cpu
