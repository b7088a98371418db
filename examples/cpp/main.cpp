// Convolves a 5x5 ramp with a 3x3 box filter ("same" padding, replicate
// border) using cnncore from C++, and prints the result.
#include <cstdio>

#include <cnncore/cnncore.hpp>

int main() {
  using namespace cnncore;
  Tensor x = Tensor::empty({1, 1, 5, 5}, DType::f32);
  for (int i = 0; i < 25; ++i) x.data_as<float>()[i] = static_cast<float>(i);
  Tensor w = Tensor::empty({1, 1, 3, 3}, DType::f32);
  for (int i = 0; i < 9; ++i) w.data_as<float>()[i] = 1.0f / 9.0f;

  ConvParams p;
  p.padding_preset = PaddingPreset::same;
  p.padding_mode = PaddingMode::replicate;
  Tensor y = conv2d_forward(x, w, Tensor(), p);

  std::printf("conv2d output %s (kernel level %s):\n", shape_str(y.shape()).c_str(), isa_name(get_isa()));
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 5; ++j) std::printf(" %6.2f", y.data_as<float>()[i * 5 + j]);
    std::printf("\n");
  }
  try {
    p.groups = 0;
    conv2d_forward(x, w, Tensor(), p);
  } catch (const value_error& e) {
    std::printf("bad input is reported: %s\n", e.what());
  }
  return 0;
}
