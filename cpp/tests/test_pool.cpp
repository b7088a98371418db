// Pooling: the direct path against the reference over many configurations
// (bit for bit with small-integer fills where the arithmetic is exact), the
// adjoint identity of the linear kinds, gradients from indices, the
// output-size rule and the validation messages.
#include <cmath>
#include <limits>
#include <vector>

#include "cnncore/cnncore.hpp"
#include "harness.hpp"

using namespace cnncore;
using test::dot;
using test::filled;

namespace {

// Largest difference, relative to 1 + |reference|; NaN where NaNs disagree.
template <typename T>
double max_rel_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return 1e300;
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data_as<T>()[i], y = b.data_as<T>()[i];
    if (std::isnan(x) != std::isnan(y)) return 1e300;
    if (x == y) continue;  // also equal infinities
    m = std::max(m, std::fabs(x - y) / (1 + std::fabs(y)));
  }
  return m;
}

struct Config {
  Shape src;
  PoolParams p;
};

// Kinds x ranks x kernels/strides/paddings/dilations/ceil modes, with
// channels 1, 3, 17, batch 0, and odd sizes.
std::vector<Config> configs() {
  std::vector<Config> v;
  int i = 0;
  const double norms[] = {1.0, 2.0, 3.5, std::numeric_limits<double>::infinity()};
  for (int nd = 1; nd <= 3; ++nd)
    for (PoolKind kind : {PoolKind::max, PoolKind::avg, PoolKind::lp, PoolKind::weighted_avg})
      for (int64_t k = 1; k <= 3; ++k)
        for (int64_t s = 1; s <= 3; ++s) {
          if (nd == 3 && s == 2) continue;
          Config c;
          const int64_t C = i % 3 == 0 ? 1 : i % 3 == 1 ? 3 : 17;
          c.src = {int64_t(i % 5 == 4 ? 0 : 1 + i % 2), nd == 3 && C == 17 ? 2 : C};
          for (int a = 0; a < nd; ++a) c.src.push_back((nd == 3 ? 4 : 6) + (i + 3 * a) % 4);
          c.p.kind = kind;
          for (int a = 0; a < nd; ++a) {
            const int64_t ka = a == nd - 1 ? k : 1 + (k + a) % 3;
            const int64_t da = kind == PoolKind::max && (i + a) % 3 == 0 ? 2 : 1;
            const int64_t span = da * (ka - 1) + 1;
            c.p.kernel.push_back(ka);
            c.p.dilation.push_back(da);
            c.p.stride.push_back(a == 0 ? s : 1 + (s + a) % 2);
            c.p.padding.push_back((i + a) % (span / 2 + 1));
            c.p.padding.push_back((i + 2 * a + 1) % (span / 2 + 1));
          }
          c.p.ceil_mode = i % 2 == 1;
          c.p.count_include_pad = i % 4 < 2;
          if (kind == PoolKind::avg && i % 7 == 3) c.p.divisor_override = 3;
          c.p.norm_type = norms[i % 4];
          if (kind == PoolKind::weighted_avg && i % 3 == 1) c.p.sigma = {0.7};
          v.push_back(c);
          ++i;
        }
  // Adaptive max/avg: shrinking, equal and growing outputs.
  for (int nd = 1; nd <= 3; ++nd)
    for (PoolKind kind : {PoolKind::max, PoolKind::avg})
      for (int64_t o : {1, 2, 3, 5, 8}) {
        Config c;
        c.src = {int64_t(i % 4 == 3 ? 0 : 2), i % 2 ? 3 : 17};
        for (int a = 0; a < nd; ++a) c.src.push_back(nd == 3 ? 3 + a : 5 + 2 * a);
        c.p.kind = kind;
        for (int a = 0; a < nd; ++a) c.p.output_size.push_back(a == 0 ? o : 1 + (o + a) % 4);
        v.push_back(c);
        ++i;
      }
  return v;
}

// Exact in float32 with small integers: max (values and indices) and avg
// forward (same sums, same divisor), Lp with p = 1 or inf, and the max
// gradients (sums of integers).
bool exact_forward(const PoolParams& p) {
  return p.kind == PoolKind::max || p.kind == PoolKind::avg ||
         (p.kind == PoolKind::lp && (p.norm_type == 1 || std::isinf(p.norm_type)));
}
bool exact_backward(const PoolParams& p) {
  return p.kind == PoolKind::max || (p.kind == PoolKind::lp && (p.norm_type == 1 || std::isinf(p.norm_type)));
}

template <typename T>
void direct_equals_reference(bool ints) {
  int n = 0;
  for (Config c : configs()) {
    ++n;
    Tensor x = filled<T>(c.src, 100 + n, ints);
    const bool with_indices = c.p.kind == PoolKind::max;
    c.p.algorithm = PoolAlgorithm::reference;
    const Shape out = pool_output_shape(c.src, c.p);
    std::vector<int64_t> idx_ref(static_cast<std::size_t>(shape_numel(out)) + 1, -7);
    Tensor y_ref = pool_forward(x, c.p, with_indices ? idx_ref.data() : nullptr);
    CHECK(y_ref.shape() == out);
    Tensor g = filled<T>(out, 200 + n, ints);
    Tensor dx_ref = pool_backward(g, x, c.p);
    c.p.algorithm = PoolAlgorithm::direct;
    const double tol = std::is_same<T, float>::value ? 2e-5 : 1e-12;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      std::vector<int64_t> idx(idx_ref.size(), -7);
      Tensor y = pool_forward(x, c.p, with_indices ? idx.data() : nullptr);
      const double ef = max_rel_diff<T>(y, y_ref), eb = max_rel_diff<T>(pool_backward(g, x, c.p), dx_ref);
      CHECK(ef <= (ints && exact_forward(c.p) ? 0.0 : tol));
      CHECK(eb <= (ints && exact_backward(c.p) ? 0.0 : tol));
      CHECK(idx == idx_ref);
      if (ef > tol || eb > tol || idx != idx_ref)
        std::fprintf(stderr, "    config %d: kind %s src %s\n", n, pool_kind_name(c.p.kind), shape_str(c.src).c_str());
    }
    set_num_threads(1);
  }
  CHECK(n > 80);
}

}  // namespace

TEST(pool_direct_equals_reference_f32_exact) { direct_equals_reference<float>(true); }
TEST(pool_direct_equals_reference_f64) { direct_equals_reference<double>(false); }

// The 2x2 / stride-2 kernels (pool-2x2-body.hpp) against the reference, bit
// for bit on real-valued fills: max (with NaN and infinities in the input) and
// avg (plain and with a divisor override), odd and even sizes, ceil mode that
// keeps the floor size, 2-D and 3-D with a depth kernel of 1, channels 1, 3,
// 17, batch 0-2, 1 and 2 threads. Gradients too, where they go that way (avg).
template <typename T>
void pool2x2_equals_reference() {
  int checked = 0;
  for (int nd = 2; nd <= 3; ++nd)
    for (PoolKind kind : {PoolKind::max, PoolKind::avg})
      for (int64_t h = 2; h <= 7; ++h)
        for (int64_t w : {2, 3, 5, 16, 33}) {
          const int i = checked;
          Config c;
          c.src = {int64_t(i % 7 == 6 ? 0 : 1 + i % 2), i % 3 == 0 ? 1 : i % 3 == 1 ? 3 : 17};
          if (nd == 3) c.src.push_back(2);
          c.src.push_back(h);
          c.src.push_back(w);
          c.p.kind = kind;
          c.p.kernel = nd == 3 ? std::vector<int64_t>{1, 2, 2} : std::vector<int64_t>{2, 2};
          c.p.stride = nd == 3 ? std::vector<int64_t>{1, 2, 2} : std::vector<int64_t>{2, 2};
          c.p.ceil_mode = h % 2 == 0 && w % 2 == 0 && i % 2 == 1;
          if (kind == PoolKind::avg && i % 3 == 2) c.p.divisor_override = 3;
          Tensor x = filled<T>(c.src, 300 + i, false);
          if (kind == PoolKind::max && x.numel() > 8) {
            x.data_as<T>()[1] = std::numeric_limits<T>::quiet_NaN();
            x.data_as<T>()[x.numel() - 2] = std::numeric_limits<T>::infinity();
            x.data_as<T>()[x.numel() / 2] = -std::numeric_limits<T>::infinity();
          }
          c.p.algorithm = PoolAlgorithm::reference;
          Tensor y_ref = pool_forward(x, c.p);
          Tensor g = filled<T>(y_ref.shape(), 400 + i, false);
          Tensor dx_ref = pool_backward(g, x, c.p);
          c.p.algorithm = PoolAlgorithm::direct;
          for (int threads : {1, 2}) {
            set_num_threads(threads);
            CHECK(max_rel_diff<T>(pool_forward(x, c.p), y_ref) == 0.0);
            CHECK(max_rel_diff<T>(pool_backward(g, x, c.p), dx_ref) == 0.0);
          }
          set_num_threads(1);
          ++checked;
        }
  CHECK(checked == 120);
}

TEST(pool_2x2_stride_2_equals_reference_f32) { pool2x2_equals_reference<float>(); }
TEST(pool_2x2_stride_2_equals_reference_f64) { pool2x2_equals_reference<double>(); }

// The 3x3 / stride-2 max kernel (pool-3x3s2-body.hpp) against the reference:
// values and positions, bit for bit, on small-integer fills (many ties: the
// first maximum in row-major tap order must win) and with NaN, +inf and -inf
// planted, one plane of only -inf (its windows take their first tap inside);
// every padding of 0 or 1 a side, ceil mode, maps of 1 to 7 rows and 1 to
// 70 columns (past the kernel's 64-output chunks), channels 1, 3, 17,
// batch 0-2, 1 and 2 threads, and the backward from the positions.
template <typename T>
void pool3x3s2_equals_reference() {
  int checked = 0;
  for (int64_t h = 1; h <= 7; ++h)
    for (int64_t w : {1, 2, 5, 16, 33, 70})
      for (int pad = 0; pad < 4; ++pad) {
        const int i = checked;
        Config c;
        c.src = {int64_t(i % 11 == 10 ? 0 : 1 + i % 2), i % 3 == 0 ? 1 : i % 3 == 1 ? 3 : 17, h, w};
        c.p.kind = PoolKind::max;
        c.p.kernel = {3, 3};
        c.p.stride = {2, 2};
        c.p.padding = {pad & 1, (pad >> 1) & 1, (pad >> 1) & 1, pad & 1};
        c.p.ceil_mode = i % 3 == 2;
        Shape out;
        try {
          out = pool_output_shape(c.src, c.p);
        } catch (const value_error&) {
          continue;  // a map too small for a 3-wide window without padding
        }
        Tensor x = filled<T>(c.src, 500 + i, true);
        T* xd = x.data_as<T>();
        if (x.numel() > 8) {
          xd[1] = std::numeric_limits<T>::quiet_NaN();
          xd[x.numel() - 2] = std::numeric_limits<T>::infinity();
          xd[x.numel() / 2] = -std::numeric_limits<T>::infinity();
        }
        if (c.src[1] > 1 && c.src[0] > 0)  // channel 1 of image 0: only -inf
          std::fill(xd + h * w, xd + 2 * h * w, -std::numeric_limits<T>::infinity());
        c.p.algorithm = PoolAlgorithm::reference;
        std::vector<int64_t> idx_ref(static_cast<std::size_t>(shape_numel(out)) + 1, -7);
        Tensor y_ref = pool_forward(x, c.p, idx_ref.data());
        c.p.algorithm = PoolAlgorithm::direct;
        for (int threads : {1, 2}) {
          set_num_threads(threads);
          std::vector<int64_t> idx(idx_ref.size(), -7);
          Tensor y = pool_forward(x, c.p, idx.data());
          bool same = true;
          for (int64_t k = 0; k < y.numel(); ++k) {
            const T a = y.data_as<T>()[k], b = y_ref.data_as<T>()[k];
            same = same && (a == b || (a != a && b != b));
          }
          CHECK(same);
          CHECK(idx == idx_ref);
          if (!same || idx != idx_ref)
            std::fprintf(stderr, "    3x3/2 case %d: src %s pad %d\n", i, shape_str(c.src).c_str(), pad);
          Tensor none = pool_forward(x, c.p);  // values alone take the same path
          bool same2 = true;
          for (int64_t k = 0; k < y.numel(); ++k) {
            const T a = none.data_as<T>()[k], b = y_ref.data_as<T>()[k];
            same2 = same2 && (a == b || (a != a && b != b));
          }
          CHECK(same2);
        }
        set_num_threads(1);
        ++checked;
      }
  CHECK(checked > 120);
}

TEST(pool_3x3_stride_2_max_equals_reference_f32) { pool3x3s2_equals_reference<float>(); }
TEST(pool_3x3_stride_2_max_equals_reference_f64) { pool3x3s2_equals_reference<double>(); }

// <pool(x), g> = <x, pool_backward(g)> for the linear kinds.
TEST(pool_adjoint_identity_avg_weighted) {
  int checked = 0;
  for (Config c : configs()) {
    if (c.src[0] == 0 || (c.p.kind != PoolKind::avg && c.p.kind != PoolKind::weighted_avg)) continue;
    for (PoolAlgorithm algo : {PoolAlgorithm::reference, PoolAlgorithm::direct}) {
      c.p.algorithm = algo;
      Tensor x = filled<double>(c.src, 1, false);
      Tensor y = pool_forward(x, c.p);
      Tensor g = filled<double>(y.shape(), 2, false);
      const double lhs = dot<double>(y, g), rhs = dot<double>(x, pool_backward(g, x, c.p));
      CHECK_NEAR(lhs, rhs, 1e-12 * (1 + std::fabs(lhs)));
      ++checked;
    }
  }
  CHECK(checked > 40);
}

TEST(pool_backward_from_indices_equals_recomputed) {
  for (Config c : configs()) {
    if (c.p.kind != PoolKind::max) continue;
    Tensor x = filled<double>(c.src, 3, false);  // no ties
    const Shape out = pool_output_shape(c.src, c.p);
    std::vector<int64_t> idx(static_cast<std::size_t>(shape_numel(out)));
    Tensor y = pool_forward(x, c.p, idx.data());
    Tensor g = filled<double>(out, 4, true);
    CHECK(max_rel_diff<double>(max_pool_backward_indices(g, idx.data(), g.shape(), c.src, c.p), pool_backward(g, x, c.p)) == 0.0);
  }
}

TEST(pool_output_size_rule) {
  // Brute force over window starts o*s in padded coordinates.
  for (int64_t in = 1; in <= 9; ++in)
    for (int64_t k = 1; k <= 4; ++k)
      for (int64_t s = 1; s <= 3; ++s)
        for (int64_t d = 1; d <= 2; ++d) {
          const int64_t span = d * (k - 1) + 1;
          for (int64_t pb = 0; pb <= span / 2; ++pb)
            for (int64_t pa = 0; pa <= span / 2; ++pa) {
              if (span > in + pb + pa) {
                CHECK_THROWS(value_error, "larger than the padded input", pool_output_size(in, k, s, d, pb, pa, false));
                continue;
              }
              // Floor: the window inside the padded input. Ceil: the window may
              // stick out by less than a stride but must start before in + pb.
              const int64_t padded = in + pb + pa;
              int64_t floor_n = 0, ceil_n = 0;
              for (int64_t o = 0; o * s <= padded; ++o) {
                floor_n += o * s + span <= padded;
                ceil_n += o * s + span < padded + s && o * s < in + pb;
              }
              CHECK(pool_output_size(in, k, s, d, pb, pa, false) == floor_n);
              CHECK(pool_output_size(in, k, s, d, pb, pa, true) == ceil_n);
            }
        }
}

TEST(pool_global_is_adaptive_one) {
  Tensor x = filled<double>({2, 3, 5, 7}, 9, true);
  PoolParams p;
  p.output_size = {1, 1};
  for (PoolKind kind : {PoolKind::max, PoolKind::avg}) {
    p.kind = kind;
    Tensor y = pool_forward(x, p);
    CHECK((y.shape() == Shape{2, 3, 1, 1}));
    for (int64_t pl = 0; pl < 6; ++pl) {
      double s = 0, m = -1e300;
      for (int64_t i = 0; i < 35; ++i) {
        s += x.data_as<double>()[pl * 35 + i];
        m = std::max(m, x.data_as<double>()[pl * 35 + i]);
      }
      CHECK_NEAR(y.data_as<double>()[pl], kind == PoolKind::max ? m : s / 35, 1e-12);
    }
  }
}

TEST(pool_lp_zero_window_has_zero_gradient) {
  Tensor x = Tensor::zeros({1, 1, 4, 4}, DType::f64);
  x.data_as<double>()[15] = 2.0;  // only the last 2x2 window is non-zero
  PoolParams p;
  p.kind = PoolKind::lp;
  p.kernel = {2, 2};
  for (PoolAlgorithm algo : {PoolAlgorithm::reference, PoolAlgorithm::direct}) {
    p.algorithm = algo;
    Tensor y = pool_forward(x, p);
    CHECK(y.data_as<double>()[0] == 0.0 && y.data_as<double>()[3] == 2.0);
    Tensor g = filled<double>(y.shape(), 5, false);
    Tensor dx = pool_backward(g, x, p);
    for (int64_t i = 0; i < 15; ++i) CHECK(dx.data_as<double>()[i] == 0.0);
    CHECK_NEAR(dx.data_as<double>()[15], g.data_as<double>()[3], 1e-15);
  }
}

TEST(pool_validation_messages) {
  const Tensor x = Tensor::zeros({1, 2, 5, 5}, DType::f32);
  PoolParams p;
  CHECK_THROWS(value_error, "max_pool2d: kernel_size must have 2 values", pool_forward(x, p, nullptr, "max_pool2d", 2));
  p.kernel = {0, 2};
  CHECK_THROWS(value_error, "kernel_size must be positive, got 0 on axis H", pool_output_shape({1, 2, 5, 5}, p));
  p.kernel = {3, 3};
  p.stride = {1, -1};
  CHECK_THROWS(value_error, "stride must be positive, got -1 on axis W", pool_output_shape({1, 2, 5, 5}, p));
  p.stride = {};
  p.padding = {2, 2, 0, 0};
  CHECK_THROWS(value_error, "padding must be at most half the kernel size", pool_output_shape({1, 2, 5, 5}, p));
  p.padding = {0, 0, -1, 0};
  CHECK_THROWS(value_error, "padding must be non-negative", pool_output_shape({1, 2, 5, 5}, p));
  p.padding = {};
  CHECK_THROWS(value_error, "larger than the padded input on axis W", pool_output_shape({1, 2, 5, 2}, p));
  CHECK_THROWS(value_error, "x must have 4 dimensions", pool_forward(Tensor::zeros({2, 5, 5}, DType::f32), p, nullptr,
                                                                     "max_pool2d", 2));
  p.kind = PoolKind::avg;
  p.dilation = {2, 2};
  CHECK_THROWS(value_error, "dilation is only supported for max pooling", pool_output_shape({1, 2, 9, 9}, p));
  p.dilation = {};
  p.divisor_override = -2;
  CHECK_THROWS(value_error, "divisor_override must be a positive integer", pool_output_shape({1, 2, 5, 5}, p));
  p = PoolParams{};
  p.kind = PoolKind::lp;
  p.kernel = {2, 2};
  p.norm_type = 0.5;
  CHECK_THROWS(value_error, "norm_type must be >= 1", pool_output_shape({1, 2, 5, 5}, p));
  p.norm_type = std::nan("");
  CHECK_THROWS(value_error, "norm_type must be >= 1", pool_output_shape({1, 2, 5, 5}, p));
  p.kind = PoolKind::weighted_avg;
  p.sigma = {0.0};
  CHECK_THROWS(value_error, "sigma must be positive", pool_output_shape({1, 2, 5, 5}, p));
  p = PoolParams{};
  p.output_size = {2, 0};
  CHECK_THROWS(value_error, "output_size must be positive, got 0", pool_output_shape({1, 2, 5, 5}, p));
  p.output_size = {2, 2};
  p.kernel = {2, 2};
  CHECK_THROWS(value_error, "adaptive pooling (output_size) takes no kernel_size", pool_output_shape({1, 2, 5, 5}, p));
  p.kernel = {};
  p.kind = PoolKind::lp;
  CHECK_THROWS(value_error, "only supported for max and avg", pool_output_shape({1, 2, 5, 5}, p));
  // Backward: grad_out shape and dtype, indices range.
  p = PoolParams{};
  p.kernel = {2, 2};
  CHECK_THROWS(value_error, "grad_out must have the forward output's shape [1, 2, 2, 2]",
               pool_backward(Tensor::zeros({1, 2, 3, 2}, DType::f32), x, p));
  CHECK_THROWS(type_error, "grad_out has dtype float64 but x has float32",
               pool_backward(Tensor::zeros({1, 2, 2, 2}, DType::f64), x, p));
  std::vector<int64_t> bad(8, 0);
  bad[5] = 25;
  CHECK_THROWS(value_error, "indices must lie in [-1, 25)",
               max_pool_backward_indices(Tensor::zeros({1, 2, 2, 2}, DType::f32), bad.data(), {1, 2, 2, 2}, {1, 2, 5, 5}, p));
  p.kind = PoolKind::avg;
  std::vector<int64_t> idx(8);
  CHECK_THROWS(value_error, "indices are only produced by max pooling", pool_forward(x, p, idx.data()));
}
