// Layer kernels: every fast kernel against its naive twin (kernel level
// "ref") over awkward sizes, thread-count independence, the dropout mask
// contract, and the op layer's error messages. Every test name starts with
// "layers_" (run them with `cnncore_tests layers`).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cnncore/cnncore.hpp"
#include "cpu/kernels/f32-elementwise.hpp"
#include "cpu/kernels/activation-parallel.hpp"
#include "cpu/kernels/exp-tanh.hpp"
#include "harness.hpp"

using namespace cnncore;
using test::max_abs_diff;

namespace {

// Integer fills in [-4, 4], half the harness's default range.
template <typename T>
Tensor filled(const Shape& s, unsigned seed, bool ints) {
  return test::filled<T>(s, seed, ints, -4, 4);
}

// Runs f() at kernel level "ref", then at every other level the CPU supports
// (the GEMM micro-kernel changes with it) with 1 and 2 threads;
// `check(reference_result, fast_result)` compares them.
template <typename R, typename F, typename C>
void ref_vs_fast(F&& f, C&& check) {
  const Isa saved = get_isa();
  const int saved_threads = get_num_threads();
  set_isa(Isa::ref);
  const R ref = f();
  for (int level = 1; level <= static_cast<int>(best_supported_isa()); ++level) {
    set_isa(static_cast<Isa>(level));
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      check(ref, f());
    }
  }
  set_num_threads(saved_threads);
  set_isa(saved);
}

template <typename T>
double tol(double f64_tol, double f32_tol) {
  return sizeof(T) == 8 ? f64_tol : f32_tol;
}

// (N, C, spatial...) shapes with channels 1, 3, 17, inner sizes 1, odd, and
// past the 64-wide blocks, and empty batches.
std::vector<Shape> nc_shapes() {
  return {{2, 1, 5}, {3, 3, 1}, {2, 17, 3, 3}, {1, 3, 70}, {0, 3, 4}, {2, 17, 1}, {1, 5, 2, 67}, {4, 2}};
}

template <typename T>
void softmax_case(bool ints) {
  unsigned seed = 1;
  for (const Shape& s : nc_shapes())
    for (int64_t dim = 0; dim < static_cast<int64_t>(s.size()); ++dim)
      for (bool log : {false, true}) {
        Tensor x = filled<T>(s, seed++, ints), g = filled<T>(s, seed++, ints);
        const SoftmaxParams p{dim - static_cast<int64_t>(s.size()) * (dim % 2), log};
        ref_vs_fast<Tensor>([&] { return softmax_forward(x, p); },
                            [&](const Tensor& r, const Tensor& f) { CHECK(max_abs_diff<T>(r, f) <= tol<T>(1e-14, 1e-6)); });
        ref_vs_fast<Tensor>([&] { return softmax_backward(g, x, p); },
                            [&](const Tensor& r, const Tensor& f) { CHECK(max_abs_diff<T>(r, f) <= tol<T>(1e-13, 1e-5)); });
      }
}

template <typename T>
void cross_entropy_case() {
  unsigned seed = 100;
  std::vector<Shape> shapes = nc_shapes();
  // spatial positions past one 256-position piece, pieces ending inside a sample
  shapes.push_back({3, 4, 130});
  shapes.push_back({2, 3, 1, 300});
  for (Shape s : shapes) {
    if (s.size() < 2 || s[1] < 1) continue;
    const int64_t C = s[1];
    Tensor x = filled<T>(s, seed++, false);
    Shape ts{s[0]};
    ts.insert(ts.end(), s.begin() + 2, s.end());
    std::vector<int64_t> t(static_cast<std::size_t>(shape_numel(ts)));
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = i % 4 == 3 ? -100 : static_cast<int64_t>((i * 7) % C);
    const Labels labels{t.data(), ts};
    Tensor w = filled<T>({C}, seed++, false);
    for (T* p = w.data_as<T>(); p < w.data_as<T>() + C; ++p) *p = std::fabs(*p) + T(0.25);
    for (Reduction red : {Reduction::none, Reduction::mean, Reduction::sum})
      for (double eps : {0.0, 0.3})
        for (bool weighted : {false, true}) {
          const CrossEntropyParams p{-100, red, eps};
          const Tensor wt = weighted ? w : Tensor();
          const Tensor y = cross_entropy_forward(x, labels, wt, p);
          Tensor g = filled<T>(y.shape(), seed++, false);
          ref_vs_fast<Tensor>([&] { return cross_entropy_forward(x, labels, wt, p); },
                              [&](const Tensor& r, const Tensor& f) {
                                CHECK(max_abs_diff<T>(r, f) <= tol<T>(1e-13, 1e-5) * (1 + shape_numel(ts)));
                              });
          ref_vs_fast<Tensor>([&] { return cross_entropy_backward(g, x, labels, wt, p); },
                              [&](const Tensor& r, const Tensor& f) { CHECK(max_abs_diff<T>(r, f) <= tol<T>(1e-14, 1e-6)); });
          if (eps == 0.0) {
            // nll_loss of log_softmax is cross-entropy, forward and (chained through
            // log_softmax's backward) backward.
            const Tensor logp = softmax_forward(x, SoftmaxParams{1, true});
            const NllLossParams q{-100, red};
            CHECK(max_abs_diff<T>(nll_loss_forward(logp, labels, wt, q), y) <= tol<T>(1e-12, 1e-4) * (1 + shape_numel(ts)));
            const Tensor chained = softmax_backward(nll_loss_backward(g, logp, labels, wt, q), x, SoftmaxParams{1, true});
            CHECK(max_abs_diff<T>(chained, cross_entropy_backward(g, x, labels, wt, p)) <= tol<T>(1e-12, 1e-5));
          }
        }
  }
}

template <typename T>
void lrn_case(bool ints) {
  unsigned seed = 200;
  for (Shape s : nc_shapes()) {
    if (s.size() < 3) continue;
    for (int64_t size : {1, 2, 3, 5, 20}) {
      const LrnParams p{size, 0.3, 0.75, 1.5};
      Tensor x = filled<T>(s, seed++, ints), g = filled<T>(s, seed++, ints);
      // The tiled forward adds the same squares in the same order: bit-identical.
      ref_vs_fast<Tensor>([&] { return lrn_forward(x, p); },
                          [&](const Tensor& r, const Tensor& f) { CHECK(max_abs_diff<T>(r, f) == 0.0); });
      ref_vs_fast<Tensor>([&] { return lrn_backward(g, x, p); },
                          [&](const Tensor& r, const Tensor& f) { CHECK(max_abs_diff<T>(r, f) <= tol<T>(1e-13, 1e-5)); });
    }
  }
}

template <typename T>
void batch_norm_case(bool ints) {
  unsigned seed = 300;
  for (Shape s : nc_shapes()) {
    const int64_t C = s[1];
    const int64_t M = shape_numel(s) / C;
    for (bool training : {false, true})
      for (bool affine : {false, true}) {
        if (training && M == 1) continue;
        Tensor x = filled<T>(s, seed++, ints), g = filled<T>(s, seed++, ints);
        Tensor w = affine ? filled<T>({C}, seed++, ints) : Tensor();
        Tensor b = affine ? filled<T>({C}, seed++, ints) : Tensor();
        Tensor rm0 = filled<T>({C}, seed++, false), rv0 = filled<T>({C}, seed++, false);
        for (int64_t c = 0; c < C; ++c) rv0.data_as<T>()[c] = std::fabs(rv0.data_as<T>()[c]) + T(0.5);
        const BatchNormParams p{training, 0.25, 1e-3};
        struct Out {
          Tensor y, rm, rv;
        };
        ref_vs_fast<Out>(
            [&] {
              Tensor rm = Tensor::empty({C}, dtype_of<T>()), rv = Tensor::empty({C}, dtype_of<T>());
              std::copy(rm0.data_as<T>(), rm0.data_as<T>() + C, rm.data_as<T>());
              std::copy(rv0.data_as<T>(), rv0.data_as<T>() + C, rv.data_as<T>());
              Tensor y = batch_norm_forward(x, rm, rv, w, b, p);
              return Out{y, rm, rv};
            },
            [&](const Out& r, const Out& f) {
              CHECK(max_abs_diff<T>(r.y, f.y) <= tol<T>(1e-12, 2e-5));
              CHECK(max_abs_diff<T>(r.rm, f.rm) <= tol<T>(1e-14, 1e-6));
              CHECK(max_abs_diff<T>(r.rv, f.rv) <= tol<T>(1e-13, 1e-5));
            });
        ref_vs_fast<BatchNormGrads>([&] { return batch_norm_backward(g, x, rm0, rv0, w, b, p); },
                                    [&](const BatchNormGrads& r, const BatchNormGrads& f) {
                                      const double scale = 1 + double(M);
                                      CHECK(max_abs_diff<T>(r.diff_src, f.diff_src) <= tol<T>(1e-12, 5e-5));
                                      CHECK(r.diff_weights.defined() == affine && f.diff_weights.defined() == affine);
                                      if (affine) {
                                        CHECK(max_abs_diff<T>(r.diff_weights, f.diff_weights) <= tol<T>(1e-12, 1e-5) * scale);
                                        CHECK(max_abs_diff<T>(r.diff_bias, f.diff_bias) <= tol<T>(1e-12, 1e-5) * scale);
                                      }
                                    });
      }
  }
}

template <typename T>
void linear_case() {
  unsigned seed = 400;
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{5, 3}, {4, 3}},   {{2, 3, 17}, {1, 17}}, {{0, 7}, {5, 7}}, {{9}, {3, 9}},
      {{33, 70}, {19, 70}}, {{2, 2, 2, 1}, {300, 1}}, {{4, 0}, {3, 0}}, {{3, 5}, {0, 5}},
      // at most 8 rows: the weight-streaming path (gemv-rows-body.hpp), odd rows and
      // outputs past its blocks of 2 and 4; 9 rows: the GEMM again
      {{1, 301}, {13, 301}}, {{7, 64}, {6, 64}}, {{8, 129}, {9, 129}}, {{9, 40}, {5, 40}}, {{3, 1}, {2, 1}}};
  for (const auto& c : cases) {
    Tensor x = filled<T>(c.first, seed++, true), w = filled<T>(c.second, seed++, true);
    Tensor b = filled<T>({c.second[0]}, seed++, true);
    const Tensor y = linear_forward(x, w, b);
    Tensor g = filled<T>(y.shape(), seed++, true);
    // Small-integer fills: every sum is exact, so the GEMM must agree bit for bit.
    auto exact = [&](const Tensor& r, const Tensor& f) { CHECK(max_abs_diff<T>(r, f) == 0.0); };
    ref_vs_fast<Tensor>([&] { return linear_forward(x, w, b); }, exact);
    ref_vs_fast<Tensor>([&] { return linear_forward(x, w, Tensor()); }, exact);
    ref_vs_fast<Tensor>([&] { return linear_backward_data(g, w, x.shape()); }, exact);
    ref_vs_fast<Tensor>([&] { return linear_backward_weight(g, x, w.shape()); }, exact);
    ref_vs_fast<Tensor>([&] { return linear_backward_bias(g); }, exact);
  }
}

}  // namespace

TEST(layers_softmax_fast_equals_reference) {
  softmax_case<float>(false);
  softmax_case<double>(false);
  softmax_case<double>(true);
}

TEST(layers_cross_entropy_fast_equals_reference) {
  cross_entropy_case<float>();
  cross_entropy_case<double>();
}

TEST(layers_lrn_fast_equals_reference) {
  lrn_case<float>(true);
  lrn_case<float>(false);
  lrn_case<double>(false);
}

TEST(layers_batch_norm_fast_equals_reference) {
  batch_norm_case<float>(true);
  batch_norm_case<double>(false);
}

TEST(layers_linear_fast_equals_reference_exact) {
  linear_case<float>();
  linear_case<double>();
}

TEST(layers_softmax_rows_sum_to_one) {
  Tensor x = filled<double>({3, 4, 5}, 7, false);
  for (double* p = x.data_as<double>(); p < x.data_as<double>() + x.numel(); ++p) *p *= 300;  // exp overflows unshifted
  Tensor y = softmax_forward(x, SoftmaxParams{1, false});
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t i = 0; i < 5; ++i) {
      double s = 0;
      for (int64_t c = 0; c < 4; ++c) s += y.data_as<double>()[(n * 4 + c) * 5 + i];
      CHECK_NEAR(s, 1.0, 1e-14);
    }
}

TEST(layers_dropout_mask_contract) {
  const int64_t n = 20000;
  Tensor ones = Tensor::empty({n}, DType::f64);
  std::fill(ones.data_as<double>(), ones.data_as<double>() + n, 1.0);
  const DropoutParams p{0.25, true, 1234};
  const int saved = get_num_threads();
  set_num_threads(1);
  Tensor a = dropout_forward(ones, p);
  set_num_threads(2);
  Tensor b = dropout_forward(ones, p);
  set_num_threads(saved);
  CHECK(max_abs_diff<double>(a, b) == 0.0);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = a.data_as<double>()[i];
    CHECK(v == 0.0 || v == 1.0 / 0.75);
    CHECK((v != 0.0) == dropout_keep(1234, i, 0.25));
    kept += v != 0.0;
  }
  CHECK_NEAR(double(kept) / n, 0.75, 0.015);
  // The backward applies the same mask and scale.
  CHECK(max_abs_diff<double>(dropout_backward(ones, p), a) == 0.0);
  // Another seed gives another mask; p = 0 keeps all, p = 1 drops all, eval is the identity.
  CHECK(max_abs_diff<double>(dropout_forward(ones, DropoutParams{0.25, true, 1235}), a) > 0.0);
  CHECK(max_abs_diff<double>(dropout_forward(ones, DropoutParams{0.0, true, 1}), ones) == 0.0);
  Tensor zero = dropout_forward(ones, DropoutParams{1.0, true, 1});
  CHECK(std::all_of(zero.data_as<double>(), zero.data_as<double>() + n, [](double v) { return v == 0.0; }));
  CHECK(max_abs_diff<double>(dropout_forward(ones, DropoutParams{0.9, false, 1}), ones) == 0.0);
}

TEST(layers_batch_norm_updates_running_stats) {
  // Channel 0 holds 1..4, channel 1 holds 2, 4, 6, 8: mean 2.5 / 5, unbiased var 5/3 / 20/3.
  Tensor x = Tensor::empty({4, 2}, DType::f64);
  for (int64_t n = 0; n < 4; ++n) {
    x.data_as<double>()[n * 2] = double(n + 1);
    x.data_as<double>()[n * 2 + 1] = 2.0 * double(n + 1);
  }
  Tensor rm = Tensor::zeros({2}, DType::f64), rv = Tensor::zeros({2}, DType::f64);
  rv.data_as<double>()[0] = rv.data_as<double>()[1] = 1.0;
  batch_norm_forward(x, rm, rv, Tensor(), Tensor(), BatchNormParams{true, 0.5, 0.0});
  CHECK_NEAR(rm.data_as<double>()[0], 1.25, 1e-15);
  CHECK_NEAR(rm.data_as<double>()[1], 2.5, 1e-15);
  CHECK_NEAR(rv.data_as<double>()[0], 0.5 + 0.5 * 5.0 / 3.0, 1e-15);
  CHECK_NEAR(rv.data_as<double>()[1], 0.5 + 0.5 * 20.0 / 3.0, 1e-14);
  // Eval mode reads them and changes nothing.
  Tensor y = batch_norm_forward(x, rm, rv, Tensor(), Tensor(), BatchNormParams{false, 0.5, 0.0});
  CHECK_NEAR(y.data_as<double>()[0], (1.0 - 1.25) / std::sqrt(rv.data_as<double>()[0]), 1e-15);
  CHECK_NEAR(rm.data_as<double>()[0], 1.25, 1e-15);
}

TEST(layers_errors_name_the_argument) {
  const Tensor x = Tensor::zeros({2, 3, 4}, DType::f32), x64 = Tensor::zeros({2, 3, 4}, DType::f64);
  CHECK_THROWS(value_error, "softmax: dim must be in [-3, 2]", softmax_forward(x, SoftmaxParams{3, false}));
  CHECK_THROWS(value_error, "log_softmax: dim", softmax_forward(x, SoftmaxParams{-4, true}));
  CHECK_THROWS(type_error, "grad_out has dtype float64", softmax_backward(x64, x, SoftmaxParams{}));
  CHECK_THROWS(value_error, "relu: grad_out must have shape",
               activation_backward(Tensor::zeros({2, 3}, DType::f32), x, ActivationParams{}));
  CHECK_THROWS(value_error, "negative_slope must be a finite",
               activation_forward(x, ActivationParams{Activation::leaky_relu, NAN}));
  CHECK_THROWS(value_error, "dropout: p must be in [0, 1]", dropout_forward(x, DropoutParams{1.5, true, 0}));
  CHECK_THROWS(value_error, "dropout: p must be in [0, 1]", dropout_forward(x, DropoutParams{-0.1, true, 0}));
  CHECK_THROWS(value_error, "local_response_norm: size must be a positive", lrn_forward(x, LrnParams{0}));
  CHECK_THROWS(value_error, "local_response_norm: x must have at least 3",
               lrn_forward(Tensor::zeros({2, 3}, DType::f32), LrnParams{}));

  const std::vector<int64_t> t = {0, 1, 2, -100, 1, 0, 2, 7};  // 7 is out of range for C = 3
  CHECK_THROWS(value_error, "target values must be class indices in [0, 2] or ignore_index=-100, got 7",
               cross_entropy_forward(x, Labels{t.data(), {2, 4}}, Tensor(), CrossEntropyParams{}));
  CHECK_THROWS(value_error, "target must have shape [2, 4]",
               cross_entropy_forward(x, Labels{t.data(), {2, 3}}, Tensor(), CrossEntropyParams{}));
  CHECK_THROWS(value_error, "weight must have shape [3]",
               cross_entropy_forward(x, Labels{t.data(), {2, 4}}, Tensor::zeros({4}, DType::f32),
                                     CrossEntropyParams{-100, Reduction::mean, 0.0}));
  CHECK_THROWS(value_error, "label_smoothing must be in [0, 1]",
               cross_entropy_forward(x, Labels{t.data(), {2, 4}}, Tensor(), CrossEntropyParams{-100, Reduction::sum, 1.5}));

  const Tensor c3 = Tensor::zeros({3}, DType::f32);
  CHECK_THROWS(value_error, "running_mean must have shape [3]",
               batch_norm_forward(x, Tensor::zeros({4}, DType::f32), c3, Tensor(), Tensor(), BatchNormParams{}));
  CHECK_THROWS(type_error, "running_var has dtype float64",
               batch_norm_forward(x, c3, Tensor::zeros({3}, DType::f64), Tensor(), Tensor(), BatchNormParams{}));
  CHECK_THROWS(value_error, "eps must be a finite number >= 0",
               batch_norm_forward(x, c3, c3, Tensor(), Tensor(), BatchNormParams{false, 0.1, -1e-5}));
  CHECK_THROWS(value_error, "required when training=False",
               batch_norm_forward(x, Tensor(), Tensor(), Tensor(), Tensor(), BatchNormParams{}));
  CHECK_THROWS(value_error, "more than 1 value per channel",
               batch_norm_forward(Tensor::zeros({1, 3}, DType::f32), c3, c3, Tensor(), Tensor(),
                                  BatchNormParams{true, 0.1, 1e-5}));

  CHECK_THROWS(value_error, "linear: weight expects 5 input features",
               linear_forward(x, Tensor::zeros({2, 5}, DType::f32), Tensor()));
  CHECK_THROWS(value_error, "linear: bias must have shape [2]",
               linear_forward(x, Tensor::zeros({2, 4}, DType::f32), c3));
  CHECK_THROWS(type_error, "linear: weight has dtype float64",
               linear_forward(x, Tensor::zeros({2, 4}, DType::f64), Tensor()));
}

TEST(layers_exp_poly_within_one_ulp_of_libm) {
  // 300000 points spread over [-104, 88.8]: normal and subnormal results, and overflow.
  double worst = 0;
  const int steps = 300000;
  for (int i = 0; i <= steps; ++i) {
    const float x = -104.0f + 192.8f * static_cast<float>(i) / steps;
    const float got = cpu::exp_poly(x), want = std::exp(x);
    if (std::isinf(want)) {
      CHECK(std::isinf(got) && got > 0);
      continue;
    }
    const float ulp = std::nextafter(want, INFINITY) - want;
    worst = std::max(worst, std::fabs(double(got) - double(want)) / double(ulp));
  }
  CHECK(worst <= 1.0);
  CHECK(cpu::exp_poly(-INFINITY) == 0.0f);
  CHECK(cpu::exp_poly(-1e30f) == 0.0f);
  CHECK(std::isinf(cpu::exp_poly(INFINITY)) && std::isinf(cpu::exp_poly(1e30f)));
  CHECK(std::isnan(cpu::exp_poly(NAN)) && std::isnan(cpu::exp_poly(-NAN)));
  CHECK(cpu::exp_poly(0.0f) == 1.0f && cpu::exp_poly(-0.0f) == 1.0f);
}

TEST(layers_tanh_poly_within_three_ulp_of_libm) {
  double worst = 0;
  const int steps = 200000;
  for (int i = 0; i <= steps; ++i) {
    for (float x : {-12.0f + 24.0f * static_cast<float>(i) / steps, 1e-3f * static_cast<float>(i) / steps}) {
      const float got = cpu::tanh_poly(x), want = std::tanh(x);
      const float ulp = std::nextafter(std::fabs(want), INFINITY) - std::fabs(want);
      worst = std::max(worst, std::fabs(double(got) - double(want)) / double(ulp));
    }
  }
  CHECK(worst <= 3.0);
  CHECK(cpu::tanh_poly(INFINITY) == 1.0f && cpu::tanh_poly(-INFINITY) == -1.0f);
  CHECK(cpu::tanh_poly(0.0f) == 0.0f && std::isnan(cpu::tanh_poly(NAN)));
  CHECK(cpu::tanh_poly(1e-30f) == 1e-30f);
}

// The same bounds for every float32 kernel level's own copy of exp and tanh
// (compiled with that level's flags, FMA contraction included), and each
// level's activations against libm over awkward lengths.
TEST(layers_f32_elementwise_levels_within_ulp_of_libm) {
  int count = 0;
  const cpu::F32ElementwiseKernels* levels = cpu::f32_elementwise_kernels(&count);
  const int steps = 300000;
  std::vector<float> x(steps + 1), y(steps + 1), t(2 * (steps + 1)), ty(t.size());
  for (int i = 0; i <= steps; ++i) {
    x[i] = -104.0f + 192.8f * static_cast<float>(i) / steps;
    t[2 * i] = -12.0f + 24.0f * static_cast<float>(i) / steps;
    t[2 * i + 1] = 1e-3f * static_cast<float>(i) / steps;
  }
  for (int l = 0; l < count; ++l) {
    const cpu::F32ElementwiseKernels& k = levels[l];
    if (k.isa > best_supported_isa()) continue;
    k.exp(static_cast<int64_t>(x.size()), x.data(), y.data());
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float want = std::exp(x[i]);
      if (std::isinf(want)) {
        CHECK(std::isinf(y[i]) && y[i] > 0);
        continue;
      }
      const float ulp = std::nextafter(want, INFINITY) - want;
      worst = std::max(worst, std::fabs(double(y[i]) - double(want)) / double(ulp));
    }
    CHECK(worst <= 1.0);
    const float special[] = {-INFINITY, -1e30f, INFINITY, 1e30f, NAN, -NAN, 0.0f, -0.0f};
    float sy[8];
    k.exp(8, special, sy);
    CHECK(sy[0] == 0.0f && sy[1] == 0.0f && std::isinf(sy[2]) && std::isinf(sy[3]));
    CHECK(std::isnan(sy[4]) && std::isnan(sy[5]) && sy[6] == 1.0f && sy[7] == 1.0f);

    k.activation_forward(3, 0.0f, static_cast<int64_t>(t.size()), t.data(), ty.data());
    worst = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
      const float want = std::tanh(t[i]);
      const float ulp = std::nextafter(std::fabs(want), INFINITY) - std::fabs(want);
      worst = std::max(worst, std::fabs(double(ty[i]) - double(want)) / double(ulp));
    }
    CHECK(worst <= 3.0);
    const float tspecial[] = {INFINITY, -INFINITY, 0.0f, NAN, 1e-30f};
    float tsy[5];
    k.activation_forward(3, 0.0f, 5, tspecial, tsy);
    CHECK(tsy[0] == 1.0f && tsy[1] == -1.0f && tsy[2] == 0.0f && std::isnan(tsy[3]) && tsy[4] == 1e-30f);

    // Every activation, forward and backward, over lengths around the vector widths.
    for (int64_t n : {0, 1, 7, 8, 15, 16, 17, 33, 100}) {
      std::vector<float> a(n), g(n), out(n), d(n);
      for (int64_t i = 0; i < n; ++i) {
        a[i] = 0.37f * static_cast<float>(i - n / 2);
        g[i] = 1.0f + 0.25f * static_cast<float>(i % 5);
      }
      for (int kind = 0; kind < 7; ++kind) {
        k.activation_forward(kind, 0.1f, n, a.data(), out.data());
        k.activation_backward(kind, 0.1f, n, g.data(), a.data(), d.data());
        for (int64_t i = 0; i < n; ++i) {
          const double v = a[i], s = 1 / (1 + std::exp(-v)), th = std::tanh(v);
          const double cdf = 0.5 * (1 + std::erf(v / std::sqrt(2.0)));
          const double pdf = std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI);
          const double c = std::sqrt(2 / M_PI), u = c * (v + 0.044715 * v * v * v), tu = std::tanh(u);
          const double f[] = {v <= 0 ? 0.0 : v, v > 0 ? v : 0.1f * a[i], s, th, v * s, v * cdf,
                              0.5 * v * (1 + tu)};
          const double df[] = {v <= 0 ? 0.0 : 1.0, v > 0 ? 1.0 : 0.1f, s * (1 - s), 1 - th * th,
                               s + v * s * (1 - s), cdf + v * pdf,
                               0.5 * (1 + tu) + 0.5 * v * (1 - tu * tu) * c * (1 + 3 * 0.044715 * v * v)};
          CHECK(std::fabs(out[i] - f[kind]) <= 1e-6 * (1 + std::fabs(f[kind])));
          CHECK(std::fabs(d[i] - g[i] * df[kind]) <= 1e-6 * (1 + std::fabs(g[i])));
        }
      }
    }
  }
}
