// Tiled / locally connected convolution: the im2col fast path against the
// reference over awkward configurations (exact with small-integer fills, with
// 1, 2 and 3 threads so every threading mode runs), the adjoint identities,
// the reductions to conv2d, and validation.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cnncore/cnncore.hpp"
#include "harness.hpp"

using namespace cnncore;
using test::dot;
using test::filled;
using test::max_abs_diff;

namespace {

struct Config {
  Shape src;
  int64_t C_out, kH, kW;
  LocalConvParams p;  // p.tile empty: local
};

// Conv-weights shape of one kernel, to get H_out, W_out from the conv geometry.
Shape out_shape(const Config& c) {
  ConvParams q;
  q.stride = c.p.stride;
  q.dilation = c.p.dilation;
  q.padding = c.p.padding;
  q.padding_preset = c.p.padding_preset;
  q.padding_mode = c.p.padding_mode;
  return conv_output_shape(c.src, {c.C_out, c.src[1], c.kH, c.kW}, q, "test", 2);
}

Shape weights_shape(const Config& c) {
  const Shape o = out_shape(c);
  const int64_t tH = c.p.tile.empty() ? o[2] : c.p.tile[0], tW = c.p.tile.empty() ? o[3] : c.p.tile[1];
  return {tH, tW, c.C_out, c.src[1], c.kH, c.kW};
}

Shape bias_shape(const Config& c) {
  const Shape w = weights_shape(c);
  return {c.C_out, w[0], w[1]};
}

std::vector<Config> configs() {
  std::vector<Config> v;
  const PaddingMode modes[] = {PaddingMode::zeros, PaddingMode::reflect, PaddingMode::replicate,
                               PaddingMode::circular, PaddingMode::symmetric};
  const std::vector<std::vector<int64_t>> tiles = {{}, {1, 1}, {2, 3}, {3, 1}, {40, 40}};
  int i = 0;
  for (int64_t cin : {1, 3, 17})
    for (int64_t cout : {1, 5, 17})
      for (int64_t n : {0, 1, 2, 5})
        for (const auto& tile : tiles) {
          if ((i % 3) != 0 && cin == 17 && cout == 17) {
            ++i;
            continue;
          }
          Config c;
          c.src = {n, cin, 5 + i % 5, 7 - i % 3};
          c.C_out = cout;
          c.kH = 1 + i % 3;
          c.kW = 1 + (i / 3) % 3;
          c.p.tile = tile;
          c.p.stride = {1 + i % 2, 1 + (i / 2) % 2};
          c.p.dilation = {1 + (i / 4) % 2, 1};
          c.p.flip = i % 2 == 1;
          c.p.padding_mode = modes[i % 5];
          c.p.padding = {i % 2, (i + 1) % 2, (i / 2) % 2, 1};
          if (i % 7 == 0) {
            c.p.padding.clear();
            c.p.padding_preset = i % 14 == 0 ? PaddingPreset::same : PaddingPreset::full;
            if (c.p.padding_mode == PaddingMode::reflect || c.p.padding_mode == PaddingMode::symmetric)
              c.p.padding_mode = PaddingMode::replicate;
          }
          v.push_back(c);
          ++i;
        }
  return v;
}

Tensor fwd(const Config& c, const Tensor& x, const Tensor& w, const Tensor& b) {
  return c.p.tile.empty() ? local_conv2d_forward(x, w, b, c.p) : tiled_conv2d_forward(x, w, b, c.p);
}
Tensor bwd_data(const Config& c, const Tensor& g, const Tensor& w, const Shape& s) {
  return c.p.tile.empty() ? local_conv2d_backward_data(g, w, s, c.p) : tiled_conv2d_backward_data(g, w, s, c.p);
}
Tensor bwd_weight(const Config& c, const Tensor& g, const Tensor& x, const Shape& s) {
  return c.p.tile.empty() ? local_conv2d_backward_weight(g, x, s, c.p) : tiled_conv2d_backward_weight(g, x, s, c.p);
}

template <typename T>
void fast_equals_reference(bool ints, int every = 1, std::vector<int> thread_counts = {1, 2, 3}) {
  int n = 0;
  const int old_threads = get_num_threads();
  for (Config c : configs()) {
    if (n++ % every) continue;
    const Shape ws = weights_shape(c);
    Tensor x = filled<T>(c.src, 11 + n, ints), w = filled<T>(ws, 12 + n, ints);
    Tensor b = filled<T>(bias_shape(c), 13 + n, ints);
    c.p.algorithm = LocalConvAlgorithm::reference;
    Tensor y_ref = fwd(c, x, w, b);
    CHECK(y_ref.shape() == out_shape(c));
    Tensor g = filled<T>(y_ref.shape(), 14 + n, ints);
    Tensor dx_ref = bwd_data(c, g, w, x.shape());
    Tensor dw_ref = bwd_weight(c, g, x, ws);
    c.p.algorithm = LocalConvAlgorithm::im2col;
    for (int threads : thread_counts) {
      set_num_threads(threads);
      const double tol = ints ? 0.0 : 1e-11;
      CHECK(max_abs_diff<T>(fwd(c, x, w, b), y_ref) <= tol);
      CHECK(max_abs_diff<T>(fwd(c, x, w, Tensor()), fwd(c, x, w, Tensor())) == 0.0);
      CHECK(max_abs_diff<T>(bwd_data(c, g, w, x.shape()), dx_ref) <= tol);
      CHECK(max_abs_diff<T>(bwd_weight(c, g, x, ws), dw_ref) <= tol);
    }
  }
  set_num_threads(old_threads);
  CHECK(n > 100 / every);
}

}  // namespace

TEST(local_conv_im2col_equals_reference_f32_exact) { fast_equals_reference<float>(true); }
TEST(local_conv_im2col_equals_reference_f64) { fast_equals_reference<double>(false); }

TEST(local_conv_every_kernel_level_equals_reference) {
  // The micro-kernels of every level this CPU supports (ctest also forces each
  // level through CNNCORE_ISA for the whole suite).
  const Isa old = get_isa();
  for (int level = static_cast<int>(Isa::generic); level <= static_cast<int>(best_supported_isa()); ++level) {
    set_isa(static_cast<Isa>(level));
    fast_equals_reference<float>(true, 4, {1, 2});
    fast_equals_reference<double>(false, 4, {1});
  }
  set_isa(old);
}

TEST(local_conv_adjoint_identities) {
  int checked = 0;
  for (Config c : configs()) {
    if (c.src[0] == 0) continue;
    for (auto algo : {LocalConvAlgorithm::reference, LocalConvAlgorithm::im2col}) {
      c.p.algorithm = algo;
      Tensor x = filled<double>(c.src, 1, false), w = filled<double>(weights_shape(c), 2, false);
      Tensor y = fwd(c, x, w, Tensor());
      Tensor g = filled<double>(y.shape(), 3, false);
      const double lhs = dot<double>(y, g);
      const double via_data = dot<double>(x, bwd_data(c, g, w, x.shape()));
      const double via_weight = dot<double>(w, bwd_weight(c, g, x, w.shape()));
      CHECK_NEAR(lhs, via_data, 1e-9 * (1 + std::fabs(lhs)));
      CHECK_NEAR(lhs, via_weight, 1e-9 * (1 + std::fabs(lhs)));
      ++checked;
    }
  }
  CHECK(checked > 100);
}

TEST(tiled_conv_one_tile_is_conv2d) {
  // Tile (1, 1) with weights (1, 1, C_out, C_in, kH, kW) and bias (C_out, 1, 1)
  // is conv2d with weights[0, 0] and bias (C_out,).
  Tensor x = filled<float>({3, 3, 9, 8}, 31, true);
  Tensor w = filled<float>({1, 1, 4, 3, 3, 2}, 32, true), b = filled<float>({4, 1, 1}, 33, true);
  LocalConvParams lp;
  lp.tile = {1, 1};
  lp.stride = {2, 1};
  lp.padding_preset = PaddingPreset::same;
  lp.padding_mode = PaddingMode::reflect;
  lp.flip = true;
  ConvParams cp;
  cp.stride = lp.stride;
  cp.padding_preset = lp.padding_preset;
  cp.padding_mode = lp.padding_mode;
  cp.flip = true;
  Tensor w2 = Tensor::wrap(w.data(), {4, 3, 3, 2}, DType::f32, w.storage());
  Tensor b2 = Tensor::wrap(b.data(), {4}, DType::f32, b.storage());
  Tensor y = conv2d_forward(x, w2, b2, cp);
  for (auto algo : {LocalConvAlgorithm::reference, LocalConvAlgorithm::im2col}) {
    lp.algorithm = algo;
    CHECK(max_abs_diff<float>(tiled_conv2d_forward(x, w, b, lp), y) == 0.0);
    Tensor g = filled<float>(y.shape(), 34, true);
    CHECK(max_abs_diff<float>(tiled_conv2d_backward_data(g, w, x.shape(), lp),
                              conv2d_backward_data(g, w2, x.shape(), cp)) == 0.0);
    Tensor dw = tiled_conv2d_backward_weight(g, x, w.shape(), lp);
    Tensor dw2 = conv2d_backward_weight(g, x, w2.shape(), cp);
    CHECK(dw.numel() == dw2.numel());
    double m = 0;
    for (int64_t i = 0; i < dw.numel(); ++i) m = std::max(m, double(std::fabs(dw.data_as<float>()[i] - dw2.data_as<float>()[i])));
    CHECK(m == 0.0);
    Tensor db = tiled_conv2d_backward_bias(g, lp), db2 = conv2d_backward_bias(g);
    CHECK(db.shape() == Shape({4, 1, 1}));
    for (int64_t i = 0; i < 4; ++i) CHECK(db.data_as<float>()[i] == db2.data_as<float>()[i]);
  }
}

TEST(tiled_conv_output_tile_is_local_conv) {
  Tensor x = filled<double>({2, 3, 6, 7}, 41, false);
  LocalConvParams lp;
  lp.padding = {1, 0, 2, 1};
  lp.padding_mode = PaddingMode::circular;
  const Shape o = local_conv2d_output_shape(x.shape(), {1, 1, 5, 3, 3, 3}, lp);
  CHECK(o == Shape({2, 5, 5, 8}));
  Tensor w = filled<double>({o[2], o[3], 5, 3, 3, 3}, 42, false), b = filled<double>({5, o[2], o[3]}, 43, false);
  Tensor y_local = local_conv2d_forward(x, w, b, lp);
  LocalConvParams tp = lp;
  tp.tile = {o[2], o[3]};
  CHECK(max_abs_diff<double>(tiled_conv2d_forward(x, w, b, tp), y_local) == 0.0);
  Tensor g = filled<double>(y_local.shape(), 44, false);
  CHECK(max_abs_diff<double>(local_conv2d_backward_bias(g), tiled_conv2d_backward_bias(g, tp)) == 0.0);
  CHECK(max_abs_diff<double>(local_conv2d_backward_weight(g, x, w.shape(), lp),
                             tiled_conv2d_backward_weight(g, x, w.shape(), tp)) == 0.0);
}

TEST(local_conv_validation) {
  const Tensor x = Tensor::zeros({2, 3, 7, 7}, DType::f32);
  LocalConvParams p;  // 7x7 input, 3x3 kernel, no padding: 5x5 output
  CHECK_THROWS(value_error, "(H_out, W_out, C_out, C_in, kH, kW) = (5, 5, 4, 3, 3, 3), got (4, 5, 4, 3, 3, 3)",
               local_conv2d_forward(x, Tensor::zeros({4, 5, 4, 3, 3, 3}, DType::f32), Tensor(), p));
  CHECK_THROWS(value_error, "weight has C_in=2 (weight.shape[3]) but x has 3",
               local_conv2d_forward(x, Tensor::zeros({5, 5, 4, 2, 3, 3}, DType::f32), Tensor(), p));
  CHECK_THROWS(value_error, "weight must have 6 dimensions",
               local_conv2d_forward(x, Tensor::zeros({4, 3, 3, 3}, DType::f32), Tensor(), p));
  CHECK_THROWS(value_error, "bias must have one value per output channel and position, shape (C_out, H_out, W_out) = (4, 5, 5), got (4,)",
               local_conv2d_forward(x, Tensor::zeros({5, 5, 4, 3, 3, 3}, DType::f32), Tensor::zeros({4}, DType::f32),
                                    p));
  CHECK_THROWS(type_error, "dtype", local_conv2d_forward(x, Tensor::zeros({5, 5, 4, 3, 3, 3}, DType::f64), Tensor(), p));
  CHECK_THROWS(value_error, "grad_out must have the forward output's shape (N, C_out, H_out, W_out) = (2, 4, 5, 5)",
               local_conv2d_backward_data(Tensor::zeros({2, 4, 5, 4}, DType::f32),
                                          Tensor::zeros({5, 5, 4, 3, 3, 3}, DType::f32), x.shape(), p));
  LocalConvParams with_tile = p;
  with_tile.tile = {2, 2};
  CHECK_THROWS(value_error, "tile is not a parameter of local_conv2d",
               local_conv2d_forward(x, Tensor::zeros({5, 5, 4, 3, 3, 3}, DType::f32), Tensor(), with_tile));

  LocalConvParams t;
  t.tile = {0, 2};
  CHECK_THROWS(value_error, "tile must be positive, got 0 on axis H",
               tiled_conv2d_forward(x, Tensor::zeros({1, 2, 4, 3, 3, 3}, DType::f32), Tensor(), t));
  t.tile = {2};
  CHECK_THROWS(value_error, "tile must have 2 values",
               tiled_conv2d_forward(x, Tensor::zeros({2, 2, 4, 3, 3, 3}, DType::f32), Tensor(), t));
  t.tile = {2, 3};
  CHECK_THROWS(value_error, "(tH, tW, C_out, C_in, kH, kW) = (2, 3, 4, 3, 3, 3), got (3, 2, 4, 3, 3, 3)",
               tiled_conv2d_forward(x, Tensor::zeros({3, 2, 4, 3, 3, 3}, DType::f32), Tensor(), t));
  CHECK_THROWS(value_error, "shape (C_out, tH, tW) = (4, 2, 3)",
               tiled_conv2d_forward(x, Tensor::zeros({2, 3, 4, 3, 3, 3}, DType::f32),
                                    Tensor::zeros({2, 3, 4}, DType::f32), t));
  // The convolution geometry's own checks come through with the op's name.
  t.stride = {0, 1};
  CHECK_THROWS(value_error, "tiled_conv2d: stride must be positive",
               tiled_conv2d_forward(x, Tensor::zeros({2, 3, 4, 3, 3, 3}, DType::f32), Tensor(), t));
  t.stride.clear();
  t.padding = {7, 7, 0, 0};
  t.padding_mode = PaddingMode::reflect;
  CHECK_THROWS(value_error, "tiled_conv2d: reflect padding must be smaller",
               tiled_conv2d_forward(x, Tensor::zeros({2, 3, 4, 3, 3, 3}, DType::f32), Tensor(), t));
  // Still usable afterwards.
  Tensor y = local_conv2d_forward(Tensor::zeros({1, 1, 3, 3}, DType::f64), Tensor::zeros({1, 1, 1, 1, 3, 3}, DType::f64),
                                  Tensor::zeros({1, 1, 1}, DType::f64), LocalConvParams{});
  CHECK(y.shape() == Shape({1, 1, 1, 1}));
}

TEST(local_conv_large_inner_dimensions) {
  // Inner dimensions beyond one GEMM block (256) on the packed path: K =
  // C_in*kH*kW = 320 (forward), C_out = 270 (backward data); the same sizes on
  // the in-place path (local), and units of more than 256 columns (backward
  // weight of a single-tile layer over many positions).
  struct Big {
    Shape src;
    int64_t C_out, k;
    std::vector<int64_t> tile;
  };
  // A locally connected layer with a batch of 33 takes the packed path (and
  // the position-major staging of outputs and output gradients).
  const Big bigs[] = {{{3, 20, 6, 6}, 270, 4, {}},      {{3, 20, 10, 10}, 270, 4, {1, 1}},
                      {{4, 2, 20, 20}, 3, 3, {1, 1}},   {{5, 2, 20, 20}, 3, 3, {2, 1}},
                      {{33, 3, 6, 5}, 5, 3, {}},         {{40, 2, 5, 5}, 17, 2, {7, 9}}};
  int seed = 0;
  for (const Big& big : bigs) {
    Config c;
    c.src = big.src;
    c.C_out = big.C_out;
    c.kH = c.kW = big.k;
    c.p.tile = big.tile;
    const Shape ws = weights_shape(c);
    Tensor x = filled<float>(c.src, 51 + seed, true), w = filled<float>(ws, 52 + seed, true);
    Tensor b = filled<float>(bias_shape(c), 53 + seed, true);
    ++seed;
    c.p.algorithm = LocalConvAlgorithm::reference;
    Tensor y_ref = fwd(c, x, w, b);
    Tensor g = filled<float>(y_ref.shape(), 54, true);
    Tensor dx_ref = bwd_data(c, g, w, x.shape()), dw_ref = bwd_weight(c, g, x, ws);
    c.p.algorithm = LocalConvAlgorithm::im2col;
    CHECK(max_abs_diff<float>(fwd(c, x, w, b), y_ref) == 0.0);
    CHECK(max_abs_diff<float>(bwd_data(c, g, w, x.shape()), dx_ref) == 0.0);
    CHECK(max_abs_diff<float>(bwd_weight(c, g, x, ws), dw_ref) == 0.0);
  }
}
