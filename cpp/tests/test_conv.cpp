// The im2col fast path against the reference over many configurations
// (exact with small-integer fills), the adjoint identities, and the 1-D and
// 3-D ranks the same geometry serves.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cnncore/cnncore.hpp"
#include "cpu/kernels/conv-im2col.hpp"
#include "harness.hpp"
#include "ops/conv_geometry.hpp"

using namespace cnncore;
using test::dot;
using test::filled;
using test::max_abs_diff;

namespace {

struct Config {
  Shape src, weights;
  ConvParams p;
};

std::vector<Config> configs() {
  std::vector<Config> v;
  const PaddingMode modes[] = {PaddingMode::zeros, PaddingMode::reflect, PaddingMode::replicate,
                               PaddingMode::circular};
  int i = 0;
  for (int64_t cin : {1, 3, 17})
    for (int64_t groups : {1, 3})
      for (int64_t k : {1, 2, 3})
        for (int64_t s : {1, 2})
          for (int64_t d : {1, 2}) {
            if (cin % groups) continue;
            Config c;
            const int64_t cout = groups * (1 + i % 3);
            c.src = {int64_t(i % 7 == 3 ? 5 : i % 3), cin, 7 + i % 4, 9 - i % 3};
            c.weights = {cout, cin / groups, k, k + (i % 2)};
            c.p.stride = {s, s + (i % 2)};
            c.p.dilation = {d, 1};
            c.p.groups = groups;
            c.p.flip = i % 2 == 1;
            c.p.padding_mode = modes[i % 4];
            c.p.padding = {i % 3, (i + 1) % 3, (i + 2) % 3, i % 2};
            if (i % 5 == 0) {
              c.p.padding.clear();
              c.p.padding_preset = i % 10 == 0 ? PaddingPreset::same : PaddingPreset::full;
              if (c.p.padding_mode == PaddingMode::reflect) c.p.padding_mode = PaddingMode::replicate;
            }
            v.push_back(c);
            ++i;
          }
  return v;
}

template <typename T>
void fast_equals_reference(bool ints) {
  // auto equals the definition exactly only among the exact algorithms
  // (Winograd rounds even small integers: its transforms hold fractions)
  const bool was_exact = get_exact_algorithms();
  set_exact_algorithms(ints);
  int n = 0;
  for (Config c : configs()) {
    ++n;
    Tensor x = filled<T>(c.src, 11 + n, ints), w = filled<T>(c.weights, 12 + n, ints);
    Tensor b = filled<T>({c.weights[0]}, 13 + n, ints);
    c.p.algorithm = ConvAlgorithm::reference;
    Tensor y_ref = conv2d_forward(x, w, b, c.p);
    Tensor g = filled<T>(y_ref.shape(), 14 + n, ints);
    Tensor dx_ref = conv2d_backward_data(g, w, x.shape(), c.p);
    Tensor dw_ref = conv2d_backward_weight(g, x, w.shape(), c.p);
    const bool depthwise = c.p.groups == c.src[1];
    const bool stride_1 = c.p.stride[0] == 1 && c.p.stride[1] == 1;
    for (ConvAlgorithm algo : {ConvAlgorithm::im2col, ConvAlgorithm::direct, ConvAlgorithm::auto_}) {
      if (algo == ConvAlgorithm::direct && !depthwise && !stride_1) continue;
      c.p.algorithm = algo;
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        const double tol = ints ? 0.0 : 1e-10;
        CHECK(max_abs_diff<T>(conv2d_forward(x, w, b, c.p), y_ref) <= tol);
        CHECK(max_abs_diff<T>(conv2d_backward_data(g, w, x.shape(), c.p), dx_ref) <= tol);
        CHECK(max_abs_diff<T>(conv2d_backward_weight(g, x, w.shape(), c.p), dw_ref) <= tol);
      }
    }
  }
  CHECK(n > 30);
  set_exact_algorithms(was_exact);
}

// Small output maps go to the GEMM several images at a time (im2col: their
// patch matrices side by side; direct: their padded images side by side on
// one grid): every batch size, a short last batch, batches in
// parallel and one after another, pointwise and grouped layers.
template <typename T>
void batched_small_maps_equal_reference() {
  int n = 0;
  for (int64_t N : {1, 2, 3, 5, 17})
    for (int64_t hw : {1, 2, 4, 5})
      for (int64_t cin : {1, 3, 6})
        for (int64_t k : {1, 3}) {
          ++n;
          ConvParams p;
          const int64_t groups = cin % 3 == 0 && n % 2 ? 3 : 1;
          p.groups = groups;
          p.padding = k == 3 && n % 3 ? std::vector<int64_t>{1, 1, 1, 1} : std::vector<int64_t>{0, 0, 0, 0};
          if (k == 3 && hw < 3) p.padding = {1, 1, 1, 1};
          p.stride = {n % 4 == 0 ? 2 : 1, 1};
          const Shape xs{N, cin, hw, hw + n % 2}, ws{groups * (1 + n % 5), cin / groups, k, k};
          Tensor x = filled<T>(xs, 31 + n, true), w = filled<T>(ws, 32 + n, true);
          Tensor b = filled<T>({ws[0]}, 33 + n, true);
          p.algorithm = ConvAlgorithm::reference;
          Tensor y_ref = conv2d_forward(x, w, b, p);
          Tensor g = filled<T>(y_ref.shape(), 34 + n, true);
          Tensor dx_ref = conv2d_backward_data(g, w, xs, p), dw_ref = conv2d_backward_weight(g, x, ws, p);
          for (ConvAlgorithm algo : {ConvAlgorithm::im2col, ConvAlgorithm::direct})  // direct: images side by side
            for (int threads : {1, 2, 3}) {
              p.algorithm = algo;
              set_num_threads(threads);
              CHECK(max_abs_diff<T>(conv2d_forward(x, w, b, p), y_ref) == 0);
              ConvParams pr = p;
              pr.algorithm = ConvAlgorithm::reference;
              CHECK(max_abs_diff<T>(conv2d_forward(x, w, Tensor(), p), conv2d_forward(x, w, Tensor(), pr)) == 0);
              CHECK(max_abs_diff<T>(conv2d_backward_data(g, w, xs, p), dx_ref) == 0);
              CHECK(max_abs_diff<T>(conv2d_backward_weight(g, x, ws, p), dw_ref) == 0);
            }
        }
  set_num_threads(2);
}

// The data gradient of few columns and wide weights multiplies dy^T W (the
// weights read in place) and adds the transposed patch gradient back:
// batch 1 and 2, maps down to 1x1, stride, dilation, asymmetric padding,
// reflect and circular padding, flip, groups, 1x1 kernels, a 3-D layer,
// channel counts off the tiles' sizes and bands of W of every width; the direct engine takes it too. Integer data: equal to the reference.
template <typename T>
void transposed_data_gradient_equals_reference() {
  struct Case {
    Shape x, w;
    std::vector<int64_t> stride, dilation, padding;
    int64_t groups;
    bool flip;
    PaddingMode mode = PaddingMode::zeros;
  };
  const Case cases[] = {
      {{1, 64, 7, 7}, {64, 64, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, false},
      {{2, 29, 7, 7}, {70, 29, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, true},
      {{1, 58, 5, 6}, {128, 29, 3, 3}, {1, 1}, {1, 1}, {0, 2, 1, 0}, 2, false},
      {{1, 40, 1, 1}, {66, 40, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, false},
      {{1, 36, 2, 3}, {80, 36, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, true},
      {{1, 33, 13, 12}, {65, 33, 3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1, false},
      {{1, 30, 11, 9}, {64, 30, 3, 3}, {1, 1}, {2, 2}, {2, 2, 2, 2}, 1, false},
      {{2, 300, 14, 14}, {67, 300, 1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1, false},
      {{1, 32, 7, 6}, {64, 32, 3, 3}, {1, 1}, {1, 1}, {1, 1, 2, 1}, 1, false, PaddingMode::reflect},
      {{1, 30, 5, 5}, {72, 30, 3, 3}, {1, 1}, {1, 1}, {2, 0, 1, 1}, 1, true, PaddingMode::circular},
      {{1, 12, 3, 4, 5}, {64, 12, 3, 3, 3}, {1, 2, 1}, {1, 1, 1}, {1, 1, 0, 1, 1, 1}, 1, false},
      // K >= 384 and 6+ tiles: W packed (transposed_packs_bands), in bands of four slivers, and
      // of one to three (transposed_band_columns); channels off the bands' widths
      {{1, 29, 7, 7}, {400, 29, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, false},
      {{2, 31, 5, 5}, {384, 31, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, true},
      {{1, 30, 7, 7}, {1100, 30, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, false},
      {{1, 37, 6, 7}, {600, 37, 3, 3}, {1, 1}, {1, 1}, {0, 1, 1, 1}, 1, true},
      // past 128 columns (packed W only): one image of 14x14, three of 9x10
      {{1, 29, 14, 14}, {400, 29, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, false},
      {{3, 30, 9, 10}, {390, 30, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, true},
  };
  int n = 0;
  for (const Case& c : cases) {
    ++n;
    ConvParams p;
    p.stride = c.stride;
    p.dilation = c.dilation;
    p.padding = c.padding;
    p.groups = c.groups;
    p.flip = c.flip;
    p.padding_mode = c.mode;
    const int nd = static_cast<int>(c.x.size()) - 2;
    const char* op = nd == 3 ? "conv3d" : "conv2d";
    const detail::ConvGeometry geo = detail::make_conv_geometry(op, nd, c.x, c.w, p);
    Tensor w = filled<T>(c.w, 41 + n, true);
    p.algorithm = ConvAlgorithm::reference;
    const Tensor g = filled<T>(geo.dst_shape(), 42 + n, true);
    const Tensor dx_ref = conv_backward_data(g, w, c.x, p, op, nd);
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      CHECK(cpu::conv_im2col_data_gradient_transposed(geo, threads));  // the path under test
      for (ConvAlgorithm algo : {ConvAlgorithm::im2col, ConvAlgorithm::direct}) {
        if (algo == ConvAlgorithm::direct && (nd == 3 || c.stride[0] != 1 || c.dilation[0] != 1)) continue;
        p.algorithm = algo;
        CHECK(max_abs_diff<T>(conv_backward_data(g, w, c.x, p, op, nd), dx_ref) == 0);
      }
    }
  }
  set_num_threads(2);
}

}  // namespace

TEST(conv2d_im2col_batches_small_maps_f32) { batched_small_maps_equal_reference<float>(); }
TEST(conv2d_im2col_batches_small_maps_f64) { batched_small_maps_equal_reference<double>(); }

TEST(conv2d_transposed_data_gradient_equals_reference_f32) { transposed_data_gradient_equals_reference<float>(); }
TEST(conv2d_transposed_data_gradient_equals_reference_f64) { transposed_data_gradient_equals_reference<double>(); }
TEST(conv2d_im2col_equals_reference_f32_exact) { fast_equals_reference<float>(true); }
TEST(conv2d_im2col_equals_reference_f64) { fast_equals_reference<double>(false); }

TEST(conv2d_adjoint_identities) {
  for (Config c : configs()) {
    if (c.src[0] == 0) continue;
    Tensor x = filled<double>(c.src, 1, false), w = filled<double>(c.weights, 2, false);
    Tensor y = conv2d_forward(x, w, Tensor(), c.p);
    Tensor g = filled<double>(y.shape(), 3, false);
    const double lhs = dot<double>(y, g);
    const double via_data = dot<double>(x, conv2d_backward_data(g, w, x.shape(), c.p));
    const double via_weight = dot<double>(w, conv2d_backward_weight(g, x, w.shape(), c.p));
    CHECK_NEAR(lhs, via_data, 1e-9 * (1 + std::fabs(lhs)));
    CHECK_NEAR(lhs, via_weight, 1e-9 * (1 + std::fabs(lhs)));
  }
}

TEST(conv2d_backward_bias_sums_grad) {
  Tensor g = filled<double>({3, 4, 5, 6}, 7, true);
  Tensor db = conv2d_backward_bias(g);
  for (int64_t c = 0; c < 4; ++c) {
    double s = 0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t i = 0; i < 30; ++i) s += g.data_as<double>()[(n * 4 + c) * 30 + i];
    CHECK(db.data_as<double>()[c] == s);
  }
}

TEST(conv1d_and_conv3d_share_the_geometry) {
  ConvParams p;
  p.padding_preset = PaddingPreset::same;
  p.padding_mode = PaddingMode::circular;
  for (const auto& shapes : {std::pair<Shape, Shape>{{2, 3, 11}, {4, 3, 3}},
                             std::pair<Shape, Shape>{{2, 3, 5, 6, 7}, {4, 3, 3, 2, 3}}}) {
    Tensor x = filled<float>(shapes.first, 5, true), w = filled<float>(shapes.second, 6, true);
    p.algorithm = ConvAlgorithm::reference;
    Tensor y_ref = conv_forward(x, w, Tensor(), p);
    Tensor g = filled<float>(y_ref.shape(), 8, true);
    Tensor dx_ref = conv_backward_data(g, w, x.shape(), p);
    Tensor dw_ref = conv_backward_weight(g, x, w.shape(), p);
    p.algorithm = ConvAlgorithm::im2col;
    CHECK(max_abs_diff<float>(conv_forward(x, w, Tensor(), p), y_ref) == 0.0);
    CHECK(max_abs_diff<float>(conv_backward_data(g, w, x.shape(), p), dx_ref) == 0.0);
    CHECK(max_abs_diff<float>(conv_backward_weight(g, x, w.shape(), p), dw_ref) == 0.0);
    CHECK(y_ref.shape()[2] == shapes.first[2]);
  }
}

TEST(conv2d_true_convolution_commutes) {
  // Single channel, full padding, flip: conv(a, b) == conv(b, a).
  Tensor a = filled<double>({1, 1, 4, 6}, 21, true), b = filled<double>({1, 1, 3, 2}, 22, true);
  ConvParams p;
  p.padding_preset = PaddingPreset::full;
  p.flip = true;
  Tensor ab = conv2d_forward(a, b, Tensor(), p);
  Tensor a_as_w = Tensor::wrap(a.data(), {1, 1, 4, 6}, DType::f64, a.storage());
  Tensor ba = conv2d_forward(b, a_as_w, Tensor(), p);
  CHECK(max_abs_diff<double>(ab, ba) == 0.0);
}

TEST(conv_direct_serves_depthwise_and_two_axes) {
  ConvParams p;
  p.groups = 2;
  p.stride = {1, 2, 1};
  p.algorithm = ConvAlgorithm::direct;
  CHECK_THROWS(value_error, "depthwise", conv_forward(Tensor::zeros({1, 4, 3, 5, 5}, DType::f32),
                                                     Tensor::zeros({4, 2, 2, 3, 3}, DType::f32), Tensor(), p));
  p.stride = {2, 1};
  CHECK(conv2d_forward(Tensor::zeros({1, 4, 5, 5}, DType::f32), Tensor::zeros({4, 2, 3, 3}, DType::f32), Tensor(), p)
            .numel() == 4 * 2 * 3);
}

// Small maps at batches filling the column tiles: the direct path's
// batch-reduce GEMM over live taps (forward and data gradient) against the reference, over batches
// spanning several column tiles, groups, flip, dilation and uneven padding;
// a non-finite weight must spread as in the reference (which multiplies the
// padding zeros), so that forward takes another route.
TEST(conv2d_direct_small_maps_skip_padding_taps) {
  int n = 0;
  for (int64_t N : {8, 16, 24, 57, 100})  // 16 on AVX-512: the 16-wide tile; 8 there: no small-map path
    for (int64_t hw : {1, 2, 3, 4})
      for (int64_t groups : {1, 2}) {
        ++n;
        ConvParams p;
        p.groups = groups;
        p.flip = n % 2 == 0;
        p.dilation = {1, n % 3 == 0 && hw > 2 ? 2 : 1};
        p.padding = {1, n % 4 == 1 ? 2 : 1, 2, 1};
        // every third case: more channels than one tile of the tallest (16 rows) and widest (32
        // columns) kernels, ragged
        const int64_t ci = n % 3 == 0 ? 40 : 6, co = n % 3 == 0 ? 17 + n % 4 : 3 + n % 4;
        const Shape xs{N, ci, hw, hw == 4 ? 4 : hw + n % 2}, ws{groups * co, ci / groups, 3, 3};
        Tensor x = filled<float>(xs, 71 + n, true), w = filled<float>(ws, 72 + n, true);
        Tensor b = filled<float>({ws[0]}, 73 + n, true);
        p.algorithm = ConvAlgorithm::reference;
        Tensor y_ref = conv2d_forward(x, w, b, p);
        Tensor g = filled<float>(y_ref.shape(), 74 + n, true);
        Tensor dx_ref = conv2d_backward_data(g, w, xs, p), dw_ref = conv2d_backward_weight(g, x, ws, p);
        ConvParams q = p;
        q.algorithm = ConvAlgorithm::direct;
        for (int threads : {1, 2}) {
          set_num_threads(threads);
          CHECK(max_abs_diff<float>(conv2d_forward(x, w, b, q), y_ref) == 0);
          CHECK(max_abs_diff<float>(conv2d_backward_data(g, w, xs, q), dx_ref) == 0);
          CHECK(max_abs_diff<float>(conv2d_backward_weight(g, x, ws, q), dw_ref) == 0);
        }
        if (n % 5 == 0) {
          w.data_as<float>()[n % 9] = std::numeric_limits<float>::infinity();
          Tensor a = conv2d_forward(x, w, b, q), r = conv2d_forward(x, w, b, p);
          for (int64_t i = 0; i < a.numel(); ++i) {
            const float u = a.data_as<float>()[i], v = r.data_as<float>()[i];
            CHECK(std::isnan(u) == std::isnan(v) && (std::isnan(u) || u == v));
          }
          Tensor xd = filled<double>(xs, 75 + n, false), wd = filled<double>(ws, 76 + n, false);
          Tensor gd = filled<double>(y_ref.shape(), 77 + n, false);
          CHECK(max_abs_diff<double>(conv2d_forward(xd, wd, Tensor(), q), conv2d_forward(xd, wd, Tensor(), p)) < 1e-12);
          CHECK(max_abs_diff<double>(conv2d_backward_data(gd, wd, xs, q), conv2d_backward_data(gd, wd, xs, p)) < 1e-12);
        }
      }
  set_num_threads(2);
}

// The depthwise direct kernels over rows wider than their register blocks
// (full blocks, masked tails), channel multipliers, every padding mode, flip,
// stride, dilation and the 1-D and 3-D ranks; exact with small-integer fills.
// A non-finite weight takes the data gradient's scatter path and must spread
// exactly as in the reference.
TEST(conv_direct_depthwise_equals_reference) {
  const PaddingMode modes[] = {PaddingMode::zeros, PaddingMode::reflect, PaddingMode::replicate,
                               PaddingMode::circular, PaddingMode::symmetric};
  int n = 0;
  for (int nd : {1, 2, 3})
    for (int64_t width : {1, 7, 16, 17, 63, 64, 65, 131})
      for (int64_t s : {1, 2}) {
        ++n;
        const int64_t C = n % 3 == 0 ? 17 : 1 + n % 3, m = 1 + n % 2, k = 1 + n % 4, d = n % 5 == 0 ? 2 : 1;
        const int64_t pad = width > 1 ? (n % 3 == 0 ? 0 : 1) : 0;
        if (d * (k - 1) + 1 > width + 2 * pad) continue;
        ConvParams p;
        p.groups = C;
        p.flip = n % 2 == 1;
        p.padding_mode = pad && width > 2 ? modes[n % 5] : PaddingMode::zeros;
        Shape xs{1 + n % 2, C}, ws{C * m, 1};
        for (int a = 0; a < nd; ++a) {
          const int64_t len = a == nd - 1 ? width : 3 + (n + a) % 4;
          xs.push_back(len);
          ws.push_back(a == nd - 1 ? k : std::min<int64_t>(1 + (n + a) % 3, len));
          p.stride.push_back(a == nd - 1 ? s : 1 + a % 2);
          p.dilation.push_back(a == nd - 1 ? d : 1);
        }
        for (int a = 0; a < nd; ++a) {
          const int64_t pa = a == nd - 1 ? pad : 1;
          p.padding.push_back(std::min(pa, xs[2 + a] - 1));
        }
        for (int a = 0; a < nd; ++a) p.padding.push_back(a == nd - 1 ? 0 : std::min<int64_t>(1, xs[2 + a] - 1));
        Tensor x = filled<float>(xs, 51 + n, true), w = filled<float>(ws, 52 + n, true);
        Tensor b = filled<float>({ws[0]}, 53 + n, true);
        p.algorithm = ConvAlgorithm::reference;
        Tensor y_ref = conv_forward(x, w, b, p);
        Tensor g = filled<float>(y_ref.shape(), 54 + n, true);
        Tensor dx_ref = conv_backward_data(g, w, xs, p), dw_ref = conv_backward_weight(g, x, ws, p);
        ConvParams q = p;
        q.algorithm = ConvAlgorithm::direct;
        for (int threads : {1, 2}) {
          set_num_threads(threads);
          CHECK(max_abs_diff<float>(conv_forward(x, w, b, q), y_ref) == 0);
          CHECK(max_abs_diff<float>(conv_backward_data(g, w, xs, q), dx_ref) == 0);
          CHECK(max_abs_diff<float>(conv_backward_weight(g, x, ws, q), dw_ref) == 0);
        }
        if (n % 4 == 1) {  // a non-finite weight, and float64
          w.data_as<float>()[0] = std::numeric_limits<float>::infinity();
          Tensor dx_inf = conv_backward_data(g, w, xs, p), got = conv_backward_data(g, w, xs, q);
          const float *a = got.data_as<float>(), *r = dx_inf.data_as<float>();
          for (int64_t i = 0; i < got.numel(); ++i) CHECK(std::isnan(a[i]) == std::isnan(r[i]) && (std::isnan(a[i]) || a[i] == r[i]));
          Tensor xd = filled<double>(xs, 55 + n, false), wd = filled<double>(ws, 56 + n, false);
          Tensor gd = filled<double>(y_ref.shape(), 57 + n, false);
          CHECK(max_abs_diff<double>(conv_forward(xd, wd, Tensor(), q), conv_forward(xd, wd, Tensor(), p)) < 1e-12);
          CHECK(max_abs_diff<double>(conv_backward_data(gd, wd, xs, q), conv_backward_data(gd, wd, xs, p)) < 1e-12);
          CHECK(max_abs_diff<double>(conv_backward_weight(gd, xd, ws, q), conv_backward_weight(gd, xd, ws, p)) < 1e-12);
        }
      }
  set_num_threads(2);
}

// The direct path's forward, data and weight gradients of a 2-D layer equal
// the reference's exactly (small-integer fills from `seed` on), at 1 and 2
// threads; p's algorithm is overwritten.
static void direct_equals_reference_exact(const Shape& xs, const Shape& ws, bool with_bias, ConvParams p, unsigned seed) {
  Tensor x = filled<float>(xs, seed, true), w = filled<float>(ws, seed + 1, true);
  Tensor b = with_bias ? filled<float>({ws[0]}, seed + 2, true) : Tensor();
  p.algorithm = ConvAlgorithm::reference;
  Tensor y_ref = conv2d_forward(x, w, b, p);
  Tensor g = filled<float>(y_ref.shape(), seed + 3, true);
  Tensor dx_ref = conv_backward_data(g, w, xs, p), dw_ref = conv_backward_weight(g, x, ws, p);
  p.algorithm = ConvAlgorithm::direct;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    CHECK(max_abs_diff<float>(conv2d_forward(x, w, b, p), y_ref) == 0);
    CHECK(max_abs_diff<float>(conv_backward_data(g, w, xs, p), dx_ref) == 0);
    CHECK(max_abs_diff<float>(conv_backward_weight(g, x, ws, p), dw_ref) == 0);
  }
  set_num_threads(2);
}

// The small-map path on maps past 4x4 (up to 8x8) serves the forward and
// data gradient of layers of 256 channels or more: a ragged 6x5 map with
// 256 -> 257 channels at a batch that fills the column tiles, flipped, with
// uneven padding, against the reference (exact: small-integer fills).
TEST(conv2d_direct_wide_layers_on_larger_maps) {
  ConvParams p;
  p.flip = true;
  p.padding = {1, 2, 1, 1};
  direct_equals_reference_exact({12, 256, 6, 5}, {257, 256, 3, 3}, true, p, 81);
}

// The small-map data gradient on maps up to 16x16 where most (position, tap)
// pairs read outside the image: LeNet's 5x5 valid layer shape (ragged: 7 ->
// 17 channels on 13x14) and a padded, dilated, flipped 5x5 on 9x9; every
// pass against the reference, exact.
TEST(conv2d_direct_data_gradient_of_large_kernels_on_small_maps) {
  direct_equals_reference_exact({16, 7, 13, 14}, {17, 7, 5, 5}, false, ConvParams{}, 91);
  ConvParams p;
  p.padding = {1, 2, 2, 1};
  p.dilation = {2, 1};
  p.flip = true;
  direct_equals_reference_exact({13, 4, 9, 9}, {6, 4, 5, 5}, false, p, 95);
}

// The depthwise kernels' register blocks: channel multipliers that fill 8, 4,
// 2 and 1 output-channel groups and more than 8 (with and without a bias),
// one channel's rows grouped on short rows, batches that span several image
// blocks of the weight gradient (16 images each), LeNet's first layer (one
// input channel, six outputs, 5x5 on 32x32) among them; exact with
// small-integer fills, at 1 and 2 threads.
TEST(conv2d_direct_depthwise_register_blocks) {
  struct Case {
    int64_t N, C, m, H, W, k;
  };
  const Case cases[] = {{64, 1, 6, 32, 32, 5}, {17, 2, 3, 13, 7, 3}, {40, 1, 11, 5, 28, 3}, {3, 3, 9, 13, 33, 3},
                        {33, 2, 1, 20, 9, 5},  {1, 1, 5, 9, 65, 3},  {18, 1, 2, 6, 17, 1}};
  int n = 0;
  for (const Case& c : cases)
    for (bool with_bias : {true, false}) {
      ++n;
      ConvParams p;
      p.groups = c.C;
      p.flip = n % 3 == 0;
      p.padding = {n % 2, n % 2, 0, n % 2};
      const Shape xs{c.N, c.C, c.H, c.W}, ws{c.C * c.m, 1, c.k, c.k};
      direct_equals_reference_exact(xs, ws, with_bias, p, 71 + n);
    }
}

// Small maps at batches that share a grid on the shifted path: valid
// convolutions (LeNet's c3 among them), whose images' columns interleave so
// the GEMMs skip the columns that are no output, and zero-padded ones,
// whose neighbours share padding columns; forward, data and weight
// gradients against the reference, exact with small-integer fills.
TEST(conv2d_direct_shared_grids_equal_reference) {
  struct Case {
    int64_t N, C, K, H, W, k, pad;
  };
  const Case cases[] = {{64, 6, 16, 14, 14, 5, 0}, {17, 3, 5, 9, 11, 3, 0}, {5, 2, 7, 8, 15, 5, 0},
                        {33, 4, 9, 7, 7, 3, 1},    {16, 1, 3, 12, 13, 3, 2}, {2, 5, 4, 10, 9, 3, 0}};
  int n = 0;
  for (const Case& c : cases) {
    ++n;
    ConvParams p;
    p.padding = {c.pad, c.pad, c.pad, n % 2 ? c.pad : 0};
    p.flip = n % 3 == 0;
    const Shape xs{c.N, c.C, c.H, c.W}, ws{c.K, c.C, c.k, c.k};
    direct_equals_reference_exact(xs, ws, true, p, 81 + n);
  }
}

// Strided layers on the shifted path with grids large enough for its weight
// gradient (at least 512 grid positions): the stem-like few-channel case and
// a 7x7 kernel with stride 2 and 3, odd sizes so the phase planes are ragged.
TEST(conv2d_direct_strided_phases_equal_reference) {
  int n = 0;
  for (int64_t s : {2, 3})
    for (int64_t k : {3, 7})
      for (PaddingMode mode : {PaddingMode::zeros, PaddingMode::reflect}) {
        ++n;
        ConvParams p;
        p.stride = {s, n % 2 ? s : 1};
        p.padding = {k / 2, k / 2 - n % 2, k / 2, k / 2};
        p.padding_mode = mode;
        p.flip = n % 3 == 0;
        p.dilation = {1, n % 4 == 1 ? 2 : 1};
        const Shape xs{1 + n % 2, 3, 61, 67}, ws{5 + n, 3, k, k};
        Tensor x = filled<float>(xs, 61 + n, true), w = filled<float>(ws, 62 + n, true);
        Tensor b = filled<float>({ws[0]}, 63 + n, true);
        p.algorithm = ConvAlgorithm::reference;
        Tensor y_ref = conv2d_forward(x, w, b, p);
        Tensor g = filled<float>(y_ref.shape(), 64 + n, true);
        Tensor dx_ref = conv2d_backward_data(g, w, xs, p), dw_ref = conv2d_backward_weight(g, x, ws, p);
        p.algorithm = ConvAlgorithm::direct;
        for (int threads : {1, 2}) {
          set_num_threads(threads);
          CHECK(max_abs_diff<float>(conv2d_forward(x, w, b, p), y_ref) == 0);
          CHECK(max_abs_diff<float>(conv2d_backward_data(g, w, xs, p), dx_ref) == 0);
          CHECK(max_abs_diff<float>(conv2d_backward_weight(g, x, ws, p), dw_ref) == 0);
        }
      }
  set_num_threads(2);
}

// The shifted direct path over sizes that span several kernel tiles, K
// blocks (Kd > 256) and images in parallel, each padding mode, flip and
// strides (phase planes).
TEST(conv2d_direct_shifted_spans_blocks) {
  const PaddingMode modes[] = {PaddingMode::zeros, PaddingMode::reflect, PaddingMode::circular, PaddingMode::symmetric};
  int n = 0;
  for (PaddingMode mode : modes)
    for (int64_t N : {1, 3}) {
      ++n;
      ConvParams p;
      p.padding = {1, 2, 2, 1};
      p.padding_mode = mode;
      p.flip = n % 2 == 0;
      p.dilation = {1, n % 3 == 0 ? 2 : 1};
      p.stride = {n % 4 == 3 ? 2 : 1, n % 3 == 1 ? 2 : (n % 5 == 0 ? 3 : 1)};  // stride phases
      const Shape xs{N, 40, 24, 25}, ws{17, 40, 3, 3};  // a grid of 24 x 28 or more: the shifted weight gradient runs
      Tensor x = filled<float>(xs, 41 + n, true), w = filled<float>(ws, 42 + n, true);
      Tensor b = filled<float>({17}, 43 + n, true);
      p.algorithm = ConvAlgorithm::reference;
      Tensor y_ref = conv2d_forward(x, w, b, p);
      Tensor g = filled<float>(y_ref.shape(), 44 + n, true);
      Tensor dx_ref = conv2d_backward_data(g, w, xs, p), dw_ref = conv2d_backward_weight(g, x, ws, p);
      p.algorithm = ConvAlgorithm::direct;
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        CHECK(max_abs_diff<float>(conv2d_forward(x, w, b, p), y_ref) == 0);
        CHECK(max_abs_diff<float>(conv2d_backward_data(g, w, xs, p), dx_ref) == 0);
        CHECK(max_abs_diff<float>(conv2d_backward_weight(g, x, ws, p), dw_ref) == 0);
      }
    }
  set_num_threads(2);
}

TEST(conv_transpose_is_the_adjoint_of_conv) {
  // <conv_transpose(x), g> == <x, conv(g)> for stride 2, padding 1, no output padding.
  Tensor x = filled<double>({2, 3, 4, 5}, 31, false), w = filled<double>({3, 2, 3, 3}, 32, false);
  ConvTransposeParams tp;
  tp.stride = {2, 2};
  tp.padding = {1, 1, 1, 1};
  Tensor y = conv_transpose_forward(x, w, Tensor(), tp);
  CHECK((y.shape() == Shape{2, 2, 7, 9}));
  Tensor g = filled<double>(y.shape(), 33, false);
  ConvParams cp;
  cp.stride = {2, 2};
  cp.padding = {1, 1, 1, 1};
  Tensor back = conv2d_forward(g, w, Tensor(), cp);
  CHECK(back.shape() == x.shape());
  CHECK_NEAR(dot<double>(y, g), dot<double>(x, back), 1e-10);
}

TEST(conv2d_dtype_mismatch_is_a_type_error) {
  ConvParams p;
  CHECK_THROWS(type_error, "dtype", conv2d_forward(Tensor::zeros({1, 1, 4, 4}, DType::f32),
                                                   Tensor::zeros({1, 1, 3, 3}, DType::f64), Tensor(), p));
  CHECK_THROWS(value_error, "grad_out must have the forward output's shape",
               conv2d_backward_data(Tensor::zeros({1, 1, 3, 3}, DType::f32), Tensor::zeros({1, 1, 3, 3}, DType::f32),
                                    {1, 1, 4, 4}, p));
  CHECK_THROWS(value_error, "bias must have shape", conv2d_forward(Tensor::zeros({1, 1, 4, 4}, DType::f32),
                                                                  Tensor::zeros({2, 1, 3, 3}, DType::f32),
                                                                  Tensor::zeros({3}, DType::f32), p));
}

// Deep layers of one image on the shifted path, where the weights outgrow
// L2 (1.4 MB here): the GEMM walks the weight rows outermost and the data
// gradient packs its transposed weights panel by panel as it goes; with two
// groups (360 KB a group) the data gradient packs them whole first. Every
// pass against the reference, exact, flipped, with uneven padding.
TEST(conv2d_direct_deep_layers_of_one_image) {
  for (int64_t groups : {1, 2}) {
    ConvParams p;
    p.groups = groups;
    p.flip = groups == 2;
    p.padding = {1, 1, 2, 1};
    direct_equals_reference_exact({1, 200, 7, 6}, {200, 200 / groups, 3, 3}, true, p, 101 + groups);
  }
}
