// Parameter validation and the output-size function.
#include "cnncore/cnncore.hpp"
#include "harness.hpp"

using namespace cnncore;

TEST(output_size_formula) {
  // floor((in + pb + pa - d*(k-1) - 1) / s) + 1
  for (int64_t in = 1; in <= 12; ++in)
    for (int64_t k = 1; k <= 4; ++k)
      for (int64_t s = 1; s <= 3; ++s)
        for (int64_t d = 1; d <= 2; ++d)
          for (int64_t p = 0; p <= 2; ++p) {
            const int64_t span = d * (k - 1) + 1;
            if (span > in + 2 * p) continue;
            CHECK(conv_output_size(in, k, s, d, p, p) == (in + 2 * p - span) / s + 1);
          }
  CHECK_THROWS(value_error, "larger than the padded input", conv_output_size(3, 5, 1, 1, 0, 0));
}

TEST(named_paddings) {
  ConvParams p;
  for (int64_t s = 1; s <= 3; ++s)
    for (int64_t k = 1; k <= 4; ++k)
      for (int64_t in = 1; in <= 9; ++in) {
        p.stride = {s, s};
        p.padding_preset = PaddingPreset::same;
        const Shape same = conv_output_shape({1, 1, in, in}, {1, 1, k, k}, p);
        CHECK(same[2] == (in + s - 1) / s);
        p.padding_preset = PaddingPreset::full;
        p.stride = {1, 1};
        const Shape full = conv_output_shape({1, 1, in, in}, {1, 1, k, k}, p);
        CHECK(full[3] == in + k - 1);
      }
  p = ConvParams{};
  p.padding_preset = PaddingPreset::valid;
  CHECK((conv_output_shape({2, 3, 7, 9}, {4, 3, 3, 2}, p) == Shape{2, 4, 5, 8}));
}

TEST(validation_messages) {
  ConvParams p;
  CHECK_THROWS(value_error, "x must have 4 dimensions", conv2d_forward(Tensor::zeros({1, 3, 5}, DType::f32),
                                                                      Tensor::zeros({1, 3, 3, 3}, DType::f32),
                                                                      Tensor(), p));
  CHECK_THROWS(value_error, "weight expects 3 input channels per group (groups=1), x has 4",
               conv_output_shape({1, 4, 5, 5}, {2, 3, 3, 3}, p, "conv2d"));
  p.groups = 0;
  CHECK_THROWS(value_error, "groups must be a positive integer, got 0",
               conv_output_shape({1, 4, 5, 5}, {2, 4, 3, 3}, p));
  p.groups = 3;
  CHECK_THROWS(value_error, "groups=3 must divide the input channels",
               conv_output_shape({1, 4, 5, 5}, {3, 1, 3, 3}, p));
  p = ConvParams{};
  p.stride = {1, 0};
  CHECK_THROWS(value_error, "stride must be positive", conv_output_shape({1, 1, 5, 5}, {1, 1, 3, 3}, p));
  p = ConvParams{};
  p.padding = {0, 0, -1, 0};
  CHECK_THROWS(value_error, "padding must be non-negative", conv_output_shape({1, 1, 5, 5}, {1, 1, 3, 3}, p));
  p = ConvParams{};
  p.padding = {4, 4, 0, 0};
  p.padding_mode = PaddingMode::reflect;
  CHECK_THROWS(value_error, "reflect padding must be smaller", conv_output_shape({1, 1, 4, 5}, {1, 1, 3, 3}, p));
  p = ConvParams{};
  p.padding = {int64_t{1} << 62, int64_t{1} << 62, 0, 0};
  CHECK_THROWS(value_error, "overflow", conv_output_shape({1, 1, 5, 5}, {1, 1, 3, 3}, p));
  CHECK_THROWS(value_error, "padding_mode", parse_padding_mode("mirror"));
  CHECK_THROWS(value_error, "algorithm", parse_conv_algorithm("winograd9"));
}

TEST(huge_padding_is_refused_before_allocating) {
  ConvParams p;
  p.padding = {int64_t{1} << 31, int64_t{1} << 31, int64_t{1} << 31, int64_t{1} << 31};
  Tensor x = Tensor::zeros({1, 1, 5, 5}, DType::f32), w = Tensor::zeros({1, 1, 3, 3}, DType::f32);
  CHECK_THROWS(value_error, "conv2d", conv2d_forward(x, w, Tensor(), p));
  p.padding = {int64_t{1} << 31, int64_t{1} << 31, 0, 0};
  CHECK_THROWS(value_error, "memory", conv2d_forward(x, w, Tensor(), p));
}
