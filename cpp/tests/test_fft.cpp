// The FFT kernels against the naive DFT (lengths 1..64, primes, large and
// Bluestein sizes, batched, 2-D/3-D, real input with pruning), and FFT
// convolution against the reference for every pass, rank, padding mode,
// stride, dilation, groups and flip.
#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <vector>

#include "cnncore/cnncore.hpp"
#include "cpu/kernels/conv-fft.hpp"
#include "cpu/kernels/fft.hpp"
#include "cpu/ref/dft-ref.hpp"
#include "harness.hpp"
#include "ops/conv_geometry.hpp"

using namespace cnncore;
using test::filled;
namespace fft = cnncore::cpu::fft;
using C = std::complex<double>;

namespace {

std::vector<C> random_complex(int64_t n, unsigned seed) {
  std::vector<double> re(static_cast<std::size_t>(n)), im(re.size());
  test::fill_reals(re.data(), n, seed);
  test::fill_reals(im.data(), n, seed + 1000);
  std::vector<C> v(re.size());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = {re[i], im[i]};
  return v;
}

double max_abs(const std::vector<C>& v) {
  double m = 0;
  for (const C& c : v) m = std::max(m, std::abs(c));
  return m;
}

// Largest |a - b| relative to the largest |b| (at least 1).
double rel_err(const std::vector<C>& a, const std::vector<C>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m / std::max(1.0, max_abs(b));
}

fft::cplx* as_cplx(std::vector<C>& v) { return reinterpret_cast<fft::cplx*>(v.data()); }

// One 1-D plan on `batch` interleaved sequences against dft() per sequence.
double plan_error(int64_t n, int64_t batch, bool inverse, unsigned seed) {
  std::vector<C> x = random_complex(n * batch, seed), y = x;
  const fft::Plan plan(n);
  std::vector<fft::cplx> scratch(static_cast<std::size_t>(plan.scratch_elems(batch)));
  plan.execute(as_cplx(y), batch, inverse, scratch.data());
  std::vector<C> want(x.size()), line(static_cast<std::size_t>(n)), res(line.size());
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = 0; j < n; ++j) line[j] = x[b + batch * j];
    cpu::ref::dft(line.data(), res.data(), n, inverse);
    for (int64_t j = 0; j < n; ++j) want[b + batch * j] = res[j];
  }
  return rel_err(y, want);
}

}  // namespace

TEST(fft_1d_lengths_1_to_64) {
  for (int64_t n = 1; n <= 64; ++n)
    for (bool inverse : {false, true}) {
      const double e = plan_error(n, 1, inverse, static_cast<unsigned>(n));
      if (!(e < 1e-13)) std::fprintf(stderr, "  n=%lld inverse=%d err=%g\n", (long long)n, inverse, e);
      CHECK(e < 1e-13);
    }
}

TEST(fft_1d_primes_and_large_sizes) {
  // 67..1009: Bluestein; 2310 = 2*3*5*7*11 and 4004 = 4*7*11*13: the generic
  // odd radices; 663 = 3*13*17: Bluestein over a composite; 4096, 1000: smooth.
  for (int64_t n : {67, 97, 101, 127, 211, 257, 1009, 663, 1000, 1024, 2310, 4004, 4096}) {
    const double e = plan_error(n, 1, n % 2 == 0, static_cast<unsigned>(n));
    if (!(e < 1e-12)) std::fprintf(stderr, "  n=%lld err=%g\n", (long long)n, e);
    CHECK(e < 1e-12);
  }
  CHECK(fft::Plan(1009).uses_bluestein());
  CHECK(!fft::Plan(2310).uses_bluestein());
}

TEST(fft_1d_batched_interleaved) {
  for (int64_t n : {1, 2, 6, 12, 17, 30, 49})
    for (int64_t batch : {2, 3, 5}) CHECK(plan_error(n, batch, batch == 3, 7) < 1e-13);
}

TEST(fft_strided_rows_and_columns) {
  // Sequences with gaps between them (dist > n, stride > count), counts that
  // are not multiples of the block, smooth and Bluestein lengths; the gaps
  // must stay untouched.
  for (int64_t n : {1, 6, 16, 17, 45, 288})
    for (bool rows : {true, false})
      for (int64_t count : {1, 5, 37}) {
        const int64_t stride = rows ? 1 : count + 2, dist = rows ? n + 3 : 1;
        const int64_t size = (count - 1) * dist + (n - 1) * stride + 1 + 4;
        std::vector<C> data = random_complex(size, unsigned(n * 100 + count)), orig = data;
        const fft::Plan plan(n);
        std::vector<fft::cplx> scratch(static_cast<std::size_t>(fft::strided_scratch_elems(n)));
        plan.execute_strided(as_cplx(data), count, stride, dist, rows, scratch.data());
        std::vector<bool> touched(data.size(), false);
        double err = 0;
        std::vector<C> line(static_cast<std::size_t>(n)), want(line.size());
        for (int64_t b = 0; b < count; ++b) {
          for (int64_t j = 0; j < n; ++j) line[j] = orig[b * dist + j * stride];
          cpu::ref::dft(line.data(), want.data(), n, rows);
          for (int64_t j = 0; j < n; ++j) {
            err = std::max(err, std::abs(data[b * dist + j * stride] - want[j]) / std::max(1.0, max_abs(want)));
            touched[static_cast<std::size_t>(b * dist + j * stride)] = true;
          }
        }
        CHECK(err < 1e-13);
        for (std::size_t i = 0; i < data.size(); ++i)
          if (!touched[i]) CHECK(data[i] == orig[i]);
      }
}

TEST(fft_next_fast_length_is_smallest_smooth) {
  auto smooth = [](int64_t m) {
    for (int p : {2, 3, 5})
      while (m % p == 0) m /= p;
    return m == 1;
  };
  for (int64_t n = 1; n <= 600; ++n) {
    const int64_t m = fft::next_fast_length(n), e = fft::next_fast_length(n, true);
    CHECK(m >= n && smooth(m));
    for (int64_t k = n; k < m; ++k) CHECK(!smooth(k));
    CHECK(e >= n && smooth(e) && e % 2 == 0);
    for (int64_t k = n; k < e; ++k) CHECK(!(smooth(k) && k % 2 == 0));
  }
  CHECK(fft::next_fast_length(286, true) == 288);
  CHECK(fft::is_stockham_length(2 * 3 * 5 * 7 * 11 * 13) && !fft::is_stockham_length(17));
}

TEST(fft_nd_complex_matches_dft) {
  const int64_t shapes[][3] = {{1, 1, 7}, {1, 8, 9}, {3, 5, 7}, {4, 1, 6}, {2, 3, 1}, {5, 17, 4}, {1, 1, 1}};
  unsigned seed = 1;
  for (const auto& s : shapes)
    for (bool inverse : {false, true}) {
      const int64_t n = s[0] * s[1] * s[2];
      std::vector<C> x = random_complex(n, seed++), want = x;
      const fft::PlanNd plan(s[0], s[1], s[2]);
      std::vector<fft::cplx> scratch(static_cast<std::size_t>(plan.scratch_elems()));
      plan.execute(as_cplx(x), inverse, scratch.data());
      cpu::ref::dft_nd(want.data(), s[0], s[1], s[2], inverse);
      CHECK(rel_err(x, want) < 1e-13);
    }
}

TEST(fft_real_nd_half_spectrum_and_round_trip) {
  const int64_t shapes[][3] = {{1, 1, 8}, {1, 1, 9}, {1, 6, 10}, {3, 4, 5}, {2, 5, 2}, {1, 1, 1}, {4, 3, 1}, {2, 7, 34}};
  unsigned seed = 50;
  for (const auto& s : shapes) {
    const fft::RealPlanNd plan(s[0], s[1], s[2]);
    const int64_t R = plan.real_elems(), S = plan.spec_elems(), h = plan.half();
    std::vector<double> x(static_cast<std::size_t>(R));
    test::fill_reals(x.data(), R, seed++);
    std::vector<C> full(x.begin(), x.end());
    cpu::ref::dft_nd(full.data(), s[0], s[1], s[2], false);
    std::vector<fft::cplx> spec(static_cast<std::size_t>(S)), scratch(static_cast<std::size_t>(plan.scratch_elems()));
    plan.forward(x.data(), spec.data(), scratch.data());
    double err = 0;
    for (int64_t r = 0; r < s[0] * s[1]; ++r)
      for (int64_t k = 0; k < h; ++k) {
        const fft::cplx v = spec[static_cast<std::size_t>(r * h + k)];
        err = std::max(err, std::abs(C(v.re, v.im) - full[static_cast<std::size_t>(r * s[2] + k)]));
      }
    CHECK(err < 1e-12);
    std::vector<double> back(x.size(), 0.0);
    plan.inverse(spec.data(), back.data(), scratch.data());
    double rt = 0;
    for (std::size_t i = 0; i < x.size(); ++i) rt = std::max(rt, std::fabs(back[i] / double(R) - x[i]));
    CHECK(rt < 1e-13);
  }
}

TEST(fft_real_nd_pruned_rows) {
  // Data only in the corner (2, 3) of a (4, 6, 10) plane: the pruned forward
  // must equal the full one; the pruned inverse must match in its corner.
  const fft::RealPlanNd plan(4, 6, 10);
  std::vector<double> x(static_cast<std::size_t>(plan.real_elems()), 0.0);
  for (int64_t i0 = 0; i0 < 2; ++i0)
    for (int64_t i1 = 0; i1 < 3; ++i1) test::fill_reals(x.data() + (i0 * 6 + i1) * 10, 10, unsigned(i0 * 6 + i1));
  std::vector<fft::cplx> a(static_cast<std::size_t>(plan.spec_elems())), b = a,
      scratch(static_cast<std::size_t>(plan.scratch_elems()));
  plan.forward(x.data(), a.data(), scratch.data());
  std::fill(b.begin(), b.end(), fft::cplx{1e300, 1e300});
  plan.forward(x.data(), b.data(), scratch.data(), 2, 3);
  double e = 0;
  for (std::size_t i = 0; i < a.size(); ++i) e = std::max({e, std::fabs(a[i].re - b[i].re), std::fabs(a[i].im - b[i].im)});
  CHECK(e == 0.0);
  std::vector<double> full(x.size()), part(x.size(), -7.0);
  plan.inverse(a.data(), full.data(), scratch.data());
  plan.inverse(b.data(), part.data(), scratch.data(), 3, 2);
  double d = 0;
  for (int64_t i0 = 0; i0 < 3; ++i0)
    for (int64_t i1 = 0; i1 < 2; ++i1)
      for (int64_t k = 0; k < 10; ++k) {
        const std::size_t i = static_cast<std::size_t>((i0 * 6 + i1) * 10 + k);
        d = std::max(d, std::fabs(full[i] - part[i]));
      }
  CHECK(d == 0.0);
  CHECK(part[static_cast<std::size_t>((3 * 6 + 5) * 10)] == -7.0);  // outside the corner: untouched
}

// ---------------------------------------------------------------- FFT convolution

namespace {

template <typename T>
double max_rel_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return 1e300;
  double m = 0, scale = 1;
  for (int64_t i = 0; i < b.numel(); ++i) scale = std::max(scale, std::fabs(double(b.data_as<T>()[i])));
  for (int64_t i = 0; i < a.numel(); ++i)
    m = std::max(m, std::fabs(double(a.data_as<T>()[i]) - double(b.data_as<T>()[i])));
  return m / scale;
}

struct FftCase {
  Shape src, weights;
  ConvParams p;
};

// Every padding mode and preset, stride, dilation, groups, flip, ranks 1-3, batch 0.
std::vector<FftCase> fft_cases() {
  std::vector<FftCase> v;
  const PaddingMode modes[] = {PaddingMode::zeros, PaddingMode::reflect, PaddingMode::replicate,
                               PaddingMode::circular, PaddingMode::symmetric};
  int i = 0;
  for (int64_t groups : {1, 3})
    for (int64_t k : {1, 3, 4})
      for (int64_t s : {1, 2, 3})
        for (int64_t d : {1, 2}) {
          FftCase c;
          const int64_t cin = groups * (1 + i % 2), cout = groups * (1 + (i / 2) % 2);
          c.src = {int64_t(i % 3), cin, 9 + i % 4, 8 + i % 5};
          c.weights = {cout, cin / groups, k, k + (i % 2)};
          c.p.stride = {s, 1 + i % 2};
          c.p.dilation = {d, 1 + (i / 3) % 2};
          c.p.groups = groups;
          c.p.flip = i % 2 == 1;
          c.p.padding_mode = modes[i % 5];
          c.p.padding = {i % 3, (i + 1) % 3, (i + 2) % 3, i % 2};
          if (i % 4 == 0) {
            c.p.padding.clear();
            c.p.padding_preset = i % 8 == 0 ? PaddingPreset::same : PaddingPreset::full;
            if (c.p.padding_mode == PaddingMode::reflect) c.p.padding_mode = PaddingMode::replicate;
          }
          if (c.p.padding_preset == PaddingPreset::full && c.p.padding_mode == PaddingMode::symmetric)
            c.p.padding_mode = PaddingMode::circular;  // symmetric pads are limited to the input size
          v.push_back(c);
          ++i;
        }
  // 1-D and 3-D through the same geometry.
  FftCase one;
  one.src = {2, 2, 19};
  one.weights = {3, 2, 6};
  one.p.stride = {2};
  one.p.dilation = {3};
  one.p.padding = {4, 1};
  one.p.padding_mode = PaddingMode::symmetric;
  v.push_back(one);
  FftCase three;
  three.src = {1, 2, 5, 6, 7};
  three.weights = {2, 1, 2, 3, 3};
  three.p.groups = 2;
  three.p.flip = true;
  three.p.padding_preset = PaddingPreset::same;
  three.p.padding_mode = PaddingMode::reflect;
  three.p.stride = {1, 2, 1};
  v.push_back(three);
  // Padding much larger than the kernel: outputs that read only zeros.
  FftCase wide;
  wide.src = {1, 1, 4, 4};
  wide.weights = {1, 1, 2, 2};
  wide.p.padding = {5, 6, 7, 3};
  wide.p.stride = {2, 3};
  v.push_back(wide);
  return v;
}

template <typename T>
void fft_equals_reference(double tol) {
  int n = 0;
  for (FftCase c : fft_cases()) {
    ++n;
    Tensor x = filled<T>(c.src, 11 + n), w = filled<T>(c.weights, 12 + n), b = filled<T>({c.weights[0]}, 13 + n);
    c.p.algorithm = ConvAlgorithm::reference;
    Tensor y_ref = conv_forward(x, w, b, c.p);
    Tensor g = filled<T>(y_ref.shape(), 14 + n);
    Tensor dx_ref = conv_backward_data(g, w, x.shape(), c.p);
    Tensor dw_ref = conv_backward_weight(g, x, w.shape(), c.p);
    c.p.algorithm = ConvAlgorithm::fft;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      const double e1 = max_rel_diff<T>(conv_forward(x, w, b, c.p), y_ref);
      const double e2 = max_rel_diff<T>(conv_backward_data(g, w, x.shape(), c.p), dx_ref);
      const double e3 = max_rel_diff<T>(conv_backward_weight(g, x, w.shape(), c.p), dw_ref);
      if (!(e1 <= tol && e2 <= tol && e3 <= tol))
        std::fprintf(stderr, "  case %d threads %d: %g %g %g\n", n, threads, e1, e2, e3);
      CHECK(e1 <= tol);
      CHECK(e2 <= tol);
      CHECK(e3 <= tol);
    }
  }
  set_num_threads(1);
  CHECK(n > 30);
}

}  // namespace

TEST(conv_fft_equals_reference_f64) { fft_equals_reference<double>(1e-12); }
TEST(conv_fft_equals_reference_f32) { fft_equals_reference<float>(2e-6); }

TEST(conv_fft_adjoint_identities) {
  for (FftCase c : fft_cases()) {
    if (c.src[0] == 0) continue;
    c.p.algorithm = ConvAlgorithm::fft;
    Tensor x = filled<double>(c.src, 1), w = filled<double>(c.weights, 2);
    Tensor y = conv_forward(x, w, Tensor(), c.p);
    Tensor g = filled<double>(y.shape(), 3);
    auto dot = [](const Tensor& a, const Tensor& b) {
      double s = 0;
      for (int64_t i = 0; i < a.numel(); ++i) s += a.data_as<double>()[i] * b.data_as<double>()[i];
      return s;
    };
    const double lhs = dot(y, g);
    CHECK_NEAR(lhs, dot(x, conv_backward_data(g, w, x.shape(), c.p)), 1e-11 * (1 + std::fabs(lhs)));
    CHECK_NEAR(lhs, dot(w, conv_backward_weight(g, x, w.shape(), c.p)), 1e-11 * (1 + std::fabs(lhs)));
  }
}

TEST(conv_fft_nonfinite_inputs_keep_direct_semantics) {
  // A NaN in x spreads through a transform; the FFT path must still give the
  // direct result: NaN only where the window covers it.
  Tensor x = filled<double>({1, 1, 12, 12}, 5), w = filled<double>({1, 1, 3, 3}, 6);
  x.data_as<double>()[5 * 12 + 5] = std::numeric_limits<double>::quiet_NaN();
  ConvParams p;
  p.algorithm = ConvAlgorithm::fft;
  Tensor y = conv2d_forward(x, w, Tensor(), p);
  p.algorithm = ConvAlgorithm::reference;
  Tensor r = conv2d_forward(x, w, Tensor(), p);
  int nans = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double a = y.data_as<double>()[i], b = r.data_as<double>()[i];
    CHECK(std::isnan(a) == std::isnan(b));
    if (std::isnan(a)) ++nans;
    else CHECK(a == b);
  }
  CHECK(nans == 9);
}

TEST(conv_fft_serves_everything_and_reports_workspace) {
  using detail::ConvPass;
  ConvParams p;
  p.padding_mode = PaddingMode::symmetric;
  p.padding = {1, 2, 0, 3};
  p.stride = {2, 3};
  p.dilation = {2, 1};
  p.groups = 2;
  p.flip = true;
  const detail::ConvGeometry g = detail::make_conv_geometry("conv2d", 2, {3, 4, 20, 21}, {6, 2, 4, 5}, p);
  for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight}) {
    const int64_t one = cpu::conv_fft_workspace_bytes(g, 4, pass, 1), two = cpu::conv_fft_workspace_bytes(g, 4, pass, 2);
    CHECK(one > 0 && two > one);
  }
  // The op layer checks that workspace against the memory limit.
  const int64_t old = get_memory_limit();
  set_memory_limit(4096);
  p.algorithm = ConvAlgorithm::fft;
  CHECK_THROWS(value_error, "memory limit",
               conv2d_forward(filled<float>({3, 4, 20, 21}, 1), filled<float>({6, 2, 4, 5}, 2), Tensor(), p));
  set_memory_limit(old);
}

TEST(conv_fft_preferred_for_large_kernels_only) {
  ConvParams p;
  p.padding_preset = PaddingPreset::full;
  auto prefers = [&](const Shape& x, const Shape& w, int64_t stride) {
    ConvParams q = p;
    q.stride = {stride, stride};
    return cpu::conv_fft_preferred(detail::make_conv_geometry("conv2d", 2, x, w, q));
  };
  CHECK(prefers({1, 1, 256, 256}, {1, 1, 31, 31}, 1));
  CHECK(prefers({2, 8, 64, 64}, {8, 8, 15, 15}, 1));
  CHECK(!prefers({1, 1, 256, 256}, {1, 1, 3, 3}, 1));
  CHECK(!prefers({8, 64, 32, 32}, {64, 64, 5, 5}, 1));
  CHECK(!prefers({1, 1, 256, 256}, {1, 1, 31, 31}, 16));
  CHECK(!prefers({0, 1, 256, 256}, {1, 1, 31, 31}, 1));
}

TEST(conv_fft_absurd_planes_are_refused_cleanly) {
  // Circular padding with a huge stride: 2 outputs per axis, but the stride-1
  // planes would need ~2^22 points per axis (2^66 in all). The budget must
  // saturate so the memory check refuses it, not overflow into a small number.
  const int64_t big = int64_t{1} << 21;
  ConvParams p;
  p.padding_mode = PaddingMode::circular;
  p.padding = {big, big, big, big, big, big};
  p.stride = {2 * big, 2 * big, 2 * big};
  p.algorithm = ConvAlgorithm::fft;
  const detail::ConvGeometry g = detail::make_conv_geometry("conv3d", 3, {1, 1, 2, 2, 2}, {1, 1, 1, 1, 1}, p);
  CHECK(g.out[0] == 2 && g.out[2] == 2);
  CHECK(cpu::conv_fft_workspace_bytes(g, 4, detail::ConvPass::forward, 1) >= INT64_MAX / 4);
  CHECK(!cpu::conv_fft_preferred(g));
  CHECK_THROWS(value_error, "memory limit",
               conv_forward(filled<float>({1, 1, 2, 2, 2}, 1), filled<float>({1, 1, 1, 1, 1}, 2), Tensor(), p));
  // Smooth lengths are found directly even where they are sparse.
  const int64_t n = (int64_t{1} << 50) + 1, m = fft::next_fast_length(n, true);
  int64_t r = m;
  for (int q : {2, 3, 5})
    while (r % q == 0) r /= q;
  CHECK(m >= n && r == 1 && m % 2 == 0 && m < n + n / 8);
}
