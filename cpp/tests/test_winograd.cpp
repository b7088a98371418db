// Winograd convolution (algorithm winograd2 / winograd4 / winograd6) against
// the reference: forward, data and weight gradients over awkward sizes,
// every padding mode, flip, groups, thread counts and the block schedules
// (several blocks, a partial last one, runs across images, threads sharing
// one block); non-finite values; the cache of transformed weights; what it
// refuses; and auto under the exact-algorithms switch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <omp.h>

#include "cnncore/cnncore.hpp"
#include "cpu/kernels/conv-winograd.hpp"
#include "cpu/kernels/f32-elementwise.hpp"
#include "harness.hpp"
#include "ops/conv_geometry.hpp"
#include "ops/conv_measure.hpp"

using namespace cnncore;
using test::filled;
using test::max_abs_diff;

namespace {

double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i)
    m = std::max(m, std::fabs(t.dtype() == DType::f32 ? double(t.data_as<float>()[i]) : t.data_as<double>()[i]));
  return m;
}

// Largest difference relative to the reference's largest value.
template <typename T>
double rel_diff(const Tensor& a, const Tensor& ref) {
  return max_abs_diff<T>(a, ref) / std::max(1e-30, max_abs(ref));
}

// float32 error bounds per tile (unit-scale data, up to ~50 channels summed;
// the measured maxima are 5-10x smaller), float64 by the same factors.
template <typename T>
double bound(ConvAlgorithm a) {
  const double f32 = a == ConvAlgorithm::winograd2 ? 1e-5 : a == ConvAlgorithm::winograd4 ? 5e-5 : 2e-4;
  return std::is_same_v<T, float> ? f32 : f32 * 1e-9;
}

struct Case {
  Shape src;
  int64_t cout, groups;
  std::vector<int64_t> padding;
  PaddingMode mode;
  bool flip;
};

std::vector<Case> cases() {
  const PaddingMode modes[] = {PaddingMode::zeros, PaddingMode::reflect, PaddingMode::replicate,
                               PaddingMode::circular, PaddingMode::symmetric};
  std::vector<Case> v;
  int i = 0;
  for (int64_t cin : {1, 3, 17, 24})
    for (int64_t hw : {1, 2, 5, 7, 13, 53})  // (53: more than eight tiles a row at every tile: the strips)
      for (int64_t groups : {1, 3}) {
        if (cin % groups || (hw == 53 && (cin == 1 || cin == 24))) continue;
        Case c;
        c.src = {int64_t(1 + i % 3), cin, hw, hw + (i % 3)};
        c.cout = groups * (1 + (i * 7) % 11);
        c.groups = groups;
        c.mode = modes[i % 5];
        c.flip = i % 2 == 1;
        // pads up to 2 (reflect needs pad < size, symmetric pad <= size)
        const int64_t lim = c.mode == PaddingMode::reflect ? std::min<int64_t>(2, hw - 1)
                            : c.mode == PaddingMode::symmetric ? std::min<int64_t>(2, hw)
                                                               : 2;
        c.padding = {std::min<int64_t>(i % 3, lim), std::min<int64_t>((i + 1) % 3, lim),
                     std::min<int64_t>((i + 2) % 3, lim), std::min<int64_t>(i % 2 + 1, lim)};
        // zeros padding also beyond the kernel (the data gradient then starts inside grad_out)
        if (c.mode == PaddingMode::zeros && i % 4 == 0) c.padding = {3, 1, 0, 4};
        // the output must not be empty: valid only where the map holds the kernel
        if (hw + c.padding[0] + c.padding[1] < 3 || hw + (i % 3) + c.padding[2] + c.padding[3] < 3) {
          c.padding = {1, 1, 1, 1};
          c.mode = PaddingMode::zeros;
        }
        v.push_back(c);
        ++i;
      }
  return v;
}

template <typename T>
void winograd_equals_reference() {
  int n = 0;
  for (const Case& c : cases()) {
    ++n;
    ConvParams p;
    p.padding = c.padding;
    p.padding_mode = c.mode;
    p.flip = c.flip;
    p.groups = c.groups;
    const Shape ws{c.cout, c.src[1] / c.groups, 3, 3};
    Tensor x = filled<T>(c.src, 41 + n), w = filled<T>(ws, 42 + n), b = filled<T>({c.cout}, 43 + n);
    p.algorithm = ConvAlgorithm::reference;
    const Tensor y_ref = conv2d_forward(x, w, b, p);
    const Tensor g = filled<T>(y_ref.shape(), 44 + n);
    const Tensor dx_ref = conv2d_backward_data(g, w, c.src, p), dw_ref = conv2d_backward_weight(g, x, ws, p);
    for (ConvAlgorithm a : {ConvAlgorithm::winograd2, ConvAlgorithm::winograd4, ConvAlgorithm::winograd6})
      for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        p.algorithm = a;
        const double tol = bound<T>(a);
        CHECK(rel_diff<T>(conv2d_forward(x, w, b, p), y_ref) <= tol);
        CHECK(rel_diff<T>(conv2d_backward_data(g, w, c.src, p), dx_ref) <= tol);
        CHECK(rel_diff<T>(conv2d_backward_weight(g, x, ws, p), dw_ref) <= tol);
      }
  }
  set_num_threads(2);
  CHECK(n > 25);
}

// Larger problems, for the schedules: many blocks with a partial last one,
// blocks spanning images, threads owning whole blocks or sharing one, and
// transformed weights too large to be cached as L3-resident.
template <typename T>
void winograd_schedules_equal_reference() {
  struct Big {
    Shape src;
    int64_t cout;
  };
  const Big bigs[] = {
      {{3, 32, 30, 29}, 40},   // hundreds of tiles: several blocks, a partial last one
      {{37, 24, 3, 4}, 16},    // tiny maps: every block holds many images
      {{1, 96, 9, 9}, 200},    // few tiles, wide layer: threads share a block
      {{2, 8, 61, 3}, 8},      // one tile column
  };
  int n = 0;
  for (const Big& bg : bigs) {
    ++n;
    ConvParams p;
    p.padding = {1, 1, 1, 1};
    const Shape ws{bg.cout, bg.src[1], 3, 3};
    Tensor x = filled<T>(bg.src, 51 + n), w = filled<T>(ws, 52 + n), b = filled<T>({bg.cout}, 53 + n);
    p.algorithm = ConvAlgorithm::reference;
    const Tensor y_ref = conv2d_forward(x, w, b, p);
    const Tensor g = filled<T>(y_ref.shape(), 54 + n);
    const Tensor dx_ref = conv2d_backward_data(g, w, bg.src, p), dw_ref = conv2d_backward_weight(g, x, ws, p);
    for (ConvAlgorithm a : {ConvAlgorithm::winograd2, ConvAlgorithm::winograd4})
      for (int threads : {1, 2, 4}) {
        set_num_threads(threads);
        p.algorithm = a;
        // more channels summed than above: twice the bound
        const double tol = 2 * bound<T>(a);
        CHECK(rel_diff<T>(conv2d_forward(x, w, b, p), y_ref) <= tol);
        CHECK(rel_diff<T>(conv2d_backward_data(g, w, bg.src, p), dx_ref) <= tol);
        CHECK(rel_diff<T>(conv2d_backward_weight(g, x, ws, p), dw_ref) <= tol);
      }
  }
  set_num_threads(2);
}

}  // namespace

// The cost model's verdicts on the table's FMA peak, not this machine's
// measured one, for the tests that name the model's choices.
struct TablePeak {
  TablePeak() { cpu::set_winograd_model_table_peak(true); }
  ~TablePeak() { cpu::set_winograd_model_table_peak(false); }
};

TEST(conv2d_winograd_equals_reference_f32) { winograd_equals_reference<float>(); }
TEST(conv2d_winograd_equals_reference_f64) { winograd_equals_reference<double>(); }
TEST(conv2d_winograd_schedules_equal_reference_f32) { winograd_schedules_equal_reference<float>(); }
TEST(conv2d_winograd_schedules_equal_reference_f64) { winograd_schedules_equal_reference<double>(); }

// A NaN or infinity in the input or the weights would spread over whole
// tiles in the transforms; such calls run the exact engine instead, so the
// result has the definition's NaN pattern.
TEST(conv2d_winograd_non_finite_values_keep_the_definition) {
  ConvParams p;
  p.padding = {1, 1, 1, 1};
  const Shape xs{2, 5, 9, 10}, ws{6, 5, 3, 3};
  for (int which = 0; which < 4; ++which) {
    Tensor x = filled<float>(xs, 61), w = filled<float>(ws, 62);
    const float bad = which % 2 ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
    if (which < 2)
      x.data_as<float>()[1 * 5 * 90 + 2 * 90 + 4 * 10 + 7] = bad;
    else
      w.data_as<float>()[3 * 45 + 2 * 9 + 4] = bad;
    p.algorithm = ConvAlgorithm::reference;
    const Tensor y_ref = conv2d_forward(x, w, Tensor(), p);
    const Tensor g = filled<float>(y_ref.shape(), 63);
    const Tensor dx_ref = conv2d_backward_data(g, w, xs, p), dw_ref = conv2d_backward_weight(g, x, ws, p);
    for (ConvAlgorithm a : {ConvAlgorithm::winograd2, ConvAlgorithm::winograd4}) {
      p.algorithm = a;
      CHECK(max_abs_diff<float>(conv2d_forward(x, w, Tensor(), p), y_ref) < 1e-4);
      CHECK(max_abs_diff<float>(conv2d_backward_data(g, w, xs, p), dx_ref) < 1e-4);
      CHECK(max_abs_diff<float>(conv2d_backward_weight(g, x, ws, p), dw_ref) < 1e-4);
    }
  }
  // an infinite grad_out over a positive input: the definition's weight
  // gradient of that channel is +inf (the transforms, whose coefficients
  // have both signs, would make inf - inf = NaN)
  Tensor x = filled<float>(xs, 64, true, 1, 8), w = filled<float>(ws, 65);
  p.padding.clear();  // no zeros from padding: every product is +inf
  p.algorithm = ConvAlgorithm::reference;
  Tensor g = filled<float>(conv2d_forward(x, w, Tensor(), p).shape(), 66);
  g.data_as<float>()[100] = std::numeric_limits<float>::infinity();
  const Tensor dw_ref = conv2d_backward_weight(g, x, ws, p), dx_ref = conv2d_backward_data(g, w, xs, p);
  p.algorithm = ConvAlgorithm::winograd4;
  CHECK(max_abs_diff<float>(conv2d_backward_weight(g, x, ws, p), dw_ref) < 1e-4);
  CHECK(max_abs_diff<float>(conv2d_backward_data(g, w, xs, p), dx_ref) < 1e-4);
}

// Weights that are not kept (training's, here every call's with the cache
// off) are transformed by the runner a few row slivers at a time as its
// products need them, where one block of tiles covers each group: several
// sliver groups, pieces of a sliver, groups of the layer, both tiles,
// forward and data gradient (whose weights are read transposed), every
// thread count (the threads sharing the block), both element types; an
// infinite weight makes the call fall back to the exact engine, as when the
// whole transform was packed first (over a positive input the definition
// gives +inf where a tap of it reads the image, NaN where it reads padding;
// the transforms, whose coefficients have both signs, would give NaN
// throughout), also from the first group, whose failure the threads must
// not part on at their barriers.
template <typename T>
void winograd_fused_weight_transform_equals_reference() {
  const int64_t limit = get_winograd_cache_limit();
  set_winograd_cache_limit(0);
  struct Fused {
    Shape src;
    int64_t cout, groups;
    PaddingMode mode;
    bool flip;
    int64_t inf_at;  // the infinite weight's index; < 0: from the end
  };
  const Fused cases[] = {
      {{1, 128, 4, 5}, 400, 1, PaddingMode::zeros, false, -5},   // tens of slivers, two pieces each
      // groups (the first one's weight infinite), another padding mode (the data gradient onto the
      // padded input's: 3x3 tiles), true convolution
      {{1, 64, 4, 4}, 96, 2, PaddingMode::reflect, true, 5},
      {{3, 40, 3, 3}, 72, 1, PaddingMode::zeros, false, 1000},  // tiles of several images in the one block
  };
  int n = 0;
  for (const Fused& c : cases) {
    ++n;
    ConvParams p;
    p.padding = {1, 1, 1, 1};
    p.padding_mode = c.mode;
    p.groups = c.groups;
    p.flip = c.flip;
    const Shape ws{c.cout, c.src[1] / c.groups, 3, 3};
    for (bool inf : {false, true}) {
      Tensor x = inf ? filled<T>(c.src, 81 + n, true, 1, 8) : filled<T>(c.src, 81 + n);
      Tensor w = filled<T>(ws, 82 + n);
      if (inf) w.data_as<T>()[c.inf_at < 0 ? w.numel() + c.inf_at : c.inf_at] = std::numeric_limits<T>::infinity();
      p.algorithm = ConvAlgorithm::reference;
      const Tensor y_ref = conv2d_forward(x, w, Tensor(), p);
      const Tensor g = filled<T>(y_ref.shape(), 83 + n);
      const Tensor dx_ref = conv2d_backward_data(g, w, c.src, p);
      for (ConvAlgorithm a : {ConvAlgorithm::winograd2, ConvAlgorithm::winograd4})
        for (int threads : {1, 2, 3}) {
          set_num_threads(threads);
          p.algorithm = a;
          const int64_t before = cpu::winograd_fused_calls();
          const Tensor y = conv2d_forward(x, w, Tensor(), p), dx = conv2d_backward_data(g, w, c.src, p);
          CHECK(cpu::winograd_fused_calls() == before + 2);  // both calls took the fused route
          if (inf) {  // the definition's NaN and infinity pattern, the other values close
            CHECK(max_abs_diff<T>(y, y_ref) < 1e-3);
            CHECK(max_abs_diff<T>(dx, dx_ref) < 1e-3);
          } else {
            CHECK(rel_diff<T>(y, y_ref) <= 2 * bound<T>(a));
            CHECK(rel_diff<T>(dx, dx_ref) <= 2 * bound<T>(a));
          }
        }
    }
  }
  CHECK(winograd_cache_bytes() == 0);
  set_winograd_cache_limit(limit);
  set_num_threads(2);
}

TEST(conv2d_winograd_fused_weight_transform_equals_reference_f32) { winograd_fused_weight_transform_equals_reference<float>(); }
TEST(conv2d_winograd_fused_weight_transform_equals_reference_f64) { winograd_fused_weight_transform_equals_reference<double>(); }

// Weights seen unchanged twice are kept transformed; changing them in place
// (same buffer) must never serve the old transform.
TEST(conv2d_winograd_cache_never_serves_stale_weights) {
  set_winograd_cache_limit(int64_t{64} << 20);
  ConvParams p;
  p.padding = {1, 1, 1, 1};
  const Shape xs{1, 16, 12, 12}, ws{16, 16, 3, 3};
  Tensor x = filled<float>(xs, 71), w = filled<float>(ws, 72);
  p.algorithm = ConvAlgorithm::winograd4;
  const int64_t before = winograd_cache_bytes();
  conv2d_forward(x, w, Tensor(), p);
  CHECK(winograd_cache_bytes() == before);  // seen once: not kept
  conv2d_forward(x, w, Tensor(), p);
  CHECK(winograd_cache_bytes() > before);  // seen twice unchanged: kept
  // a changed version replaces the kept one: dropped at once, kept again
  // once seen twice
  const int64_t kept = winograd_cache_bytes();
  w.data_as<float>()[7] += 0.25f;
  conv2d_forward(x, w, Tensor(), p);
  CHECK(winograd_cache_bytes() == before);
  conv2d_forward(x, w, Tensor(), p);
  CHECK(winograd_cache_bytes() == kept);
  for (int64_t at : {int64_t{0}, w.numel() / 2, w.numel() - 1}) {
    w.data_as<float>()[at] += 0.5f;  // one weight changed in place
    ConvParams r = p;
    r.algorithm = ConvAlgorithm::reference;
    CHECK(rel_diff<float>(conv2d_forward(x, w, Tensor(), p), conv2d_forward(x, w, Tensor(), r)) < 5e-5);
  }
  // every value negated in place: sums of the bits would not see it
  for (int rep = 0; rep < 2; ++rep) conv2d_forward(x, w, Tensor(), p);
  for (int64_t i = 0; i < w.numel(); ++i) w.data_as<float>()[i] = -w.data_as<float>()[i];
  {
    ConvParams r = p;
    r.algorithm = ConvAlgorithm::reference;
    CHECK(rel_diff<float>(conv2d_forward(x, w, Tensor(), p), conv2d_forward(x, w, Tensor(), r)) < 5e-5);
  }
  set_winograd_cache_limit(0);
  CHECK(winograd_cache_bytes() == 0);
  CHECK(rel_diff<float>(conv2d_forward(x, w, Tensor(), p),
                        [&] {
                          ConvParams r = p;
                          r.algorithm = ConvAlgorithm::reference;
                          return conv2d_forward(x, w, Tensor(), r);
                        }()) < 5e-5);
  CHECK_THROWS(value_error, "set_winograd_cache_limit", set_winograd_cache_limit(-1));
  set_winograd_cache_limit(int64_t{128} << 20);
}

// The fingerprint's definition (fingerprint-body.hpp), one word at a time.
uint64_t fingerprint_definition(const unsigned char* p, int64_t bytes) {
  auto step = [](uint64_t h, uint64_t w) {
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
  };
  uint32_t lane[64];
  for (uint32_t i = 0; i < 64; ++i) lane[i] = 0x9e3779b9u * i + 0x7f4a7c15u;
  const int64_t blocks = bytes / 256;
  for (int64_t k = 0; k < blocks * 64; ++k) {
    uint32_t w;
    std::memcpy(&w, p + 4 * k, 4);
    uint32_t& h = lane[k % 64];
    h = (h ^ w) * 0x85ebca6bu;
    h ^= h >> 15;
  }
  uint64_t h = step(0x452821e638d01377ull, static_cast<uint64_t>(bytes));
  for (uint32_t v : lane) h = step(h, v);
  int64_t r = blocks * 256;
  for (; r + 8 <= bytes; r += 8) {
    uint64_t w;
    std::memcpy(&w, p + r, 8);
    h = step(h, w);
  }
  for (; r < bytes; ++r) h = step(h, p[r]);
  return h;
}

// Every kernel level's fingerprint is the definition's value over awkward
// lengths at an unaligned address (blocks, tail words, tail bytes), and one
// changed byte anywhere, in a block, a tail word or the last bytes, changes it.
TEST(winograd_fingerprint_levels_equal_the_definition) {
  std::vector<unsigned char> buf(70001 + 3);
  uint32_t state = 12345;
  for (unsigned char& c : buf) c = static_cast<unsigned char>((state = state * 1103515245u + 12345u) >> 24);
  const unsigned char* p = buf.data() + 3;
  int count = 0;
  const cpu::F32ElementwiseKernels* levels = cpu::f32_elementwise_kernels(&count);
  for (int l = 0; l < count; ++l) {
    const cpu::F32ElementwiseKernels& k = levels[l];
    if (k.isa > best_supported_isa()) continue;
    for (int64_t n : {0, 1, 7, 8, 255, 256, 257, 263, 512, 1000, 4109, 70001}) {
      const uint64_t want = fingerprint_definition(p, n);
      CHECK(k.fingerprint(p, n) == want);
      for (int64_t at : {int64_t{0}, n / 2, n - 9, n - 1}) {
        if (at < 0 || at >= n) continue;
        unsigned char* c = buf.data() + 3 + at;
        *c ^= 0x10;
        CHECK(k.fingerprint(p, n) != want);
        *c ^= 0x10;
      }
    }
  }
}

// Weights of several fingerprint chunks (256 KiB each, 1.3 MB here), read
// by one thread or two: one value changed in place in any chunk is seen.
TEST(conv2d_winograd_cache_sees_changes_in_every_chunk) {
  set_winograd_cache_limit(int64_t{64} << 20);
  ConvParams p, r;
  p.padding = r.padding = {1, 1, 1, 1};
  p.algorithm = ConvAlgorithm::winograd2;
  r.algorithm = ConvAlgorithm::reference;
  const Shape xs{1, 192, 6, 6}, ws{192, 192, 3, 3};
  Tensor x = filled<float>(xs, 73), w = filled<float>(ws, 74);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int64_t at : {int64_t{5}, w.numel() / 3, w.numel() - 2}) {
      for (int rep = 0; rep < 3; ++rep) conv2d_forward(x, w, Tensor(), p);  // kept from the second call
      w.data_as<float>()[at] += 0.5f;
      CHECK(rel_diff<float>(conv2d_forward(x, w, Tensor(), p), conv2d_forward(x, w, Tensor(), r)) < 5e-5);
    }
  }
  set_num_threads(2);
  set_winograd_cache_limit(int64_t{128} << 20);
}

// A call reports whether it transformed the weights or took them from the
// cache (auto's measurement sets apart the trials that transformed them).
TEST(conv2d_winograd_reports_a_transform_served_from_the_cache) {
  set_winograd_cache_limit(int64_t{64} << 20);
  ConvParams p;
  p.padding = {1, 1, 1, 1};
  const Shape xs{1, 8, 6, 6}, ws{8, 8, 3, 3};
  const Tensor x = filled<float>(xs, 75), w = filled<float>(ws, 76);
  const detail::ConvGeometry g = detail::make_conv_geometry("conv2d", 2, xs, ws, p);
  Tensor y = Tensor::empty(g.dst_shape(), DType::f32);
  bool transformed[3] = {false, false, false};
  for (bool& t : transformed)
    cpu::conv_forward_winograd<float>(g, 4, x.data_as<float>(), w.data_as<float>(), nullptr, y.data_as<float>(),
                                      nullptr, &t);
  CHECK(transformed[0] && transformed[1] && !transformed[2]);  // kept by the second call, served to the third
  set_winograd_cache_limit(int64_t{128} << 20);
}

TEST(conv2d_winograd_refuses_what_it_cannot_serve) {
  Tensor x = filled<float>({1, 2, 9, 9}, 81);
  ConvParams p;
  p.algorithm = ConvAlgorithm::winograd;
  CHECK_THROWS(value_error, "3x3 kernels only", conv2d_forward(x, filled<float>({2, 2, 5, 5}, 82), Tensor(), p));
  p.stride = {2, 2};
  CHECK_THROWS(value_error, "stride 1 only", conv2d_forward(x, filled<float>({2, 2, 3, 3}, 83), Tensor(), p));
  p.stride.clear();
  p.dilation = {1, 2};
  CHECK_THROWS(value_error, "dilation 1 only", conv2d_forward(x, filled<float>({2, 2, 3, 3}, 84), Tensor(), p));
  p.dilation.clear();
  CHECK_THROWS(value_error, "2-D convolutions only",
               conv_forward(filled<float>({1, 2, 9}, 85), filled<float>({2, 2, 3}, 86), Tensor(), p));
  CHECK_THROWS(value_error, "algorithm='winograd'",
               conv_forward(filled<float>({1, 2, 9}, 85), filled<float>({2, 2, 3}, 86), Tensor(), p));
}

// auto takes Winograd on a layer its cost model favours, unless exact
// algorithms are asked for: then the result is the definition's exactly
// (small-integer data sum exactly in float32).
TEST(conv2d_auto_winograd_and_the_exact_switch) {
  const TablePeak table;
  if (get_isa() == Isa::ref) return;  // auto runs the reference there
  ConvParams p;
  p.padding = {1, 1, 1, 1};
  const Shape xs{4, 64, 28, 28}, ws{64, 64, 3, 3};
  Tensor x = filled<float>(xs, 91, true, -3, 3), w = filled<float>(ws, 92, true, -3, 3);
  p.algorithm = ConvAlgorithm::reference;
  const Tensor y_ref = conv2d_forward(x, w, Tensor(), p);
  p.algorithm = ConvAlgorithm::auto_;
  const bool was = get_exact_algorithms();
  set_exact_algorithms(false);
  const double inexact = max_abs_diff<float>(conv2d_forward(x, w, Tensor(), p), y_ref);
  CHECK(inexact > 0);                             // Winograd's rounding: auto took it
  CHECK(inexact <= 5e-5 * max_abs(y_ref));
  set_exact_algorithms(true);
  CHECK(max_abs_diff<float>(conv2d_forward(x, w, Tensor(), p), y_ref) == 0);
  set_exact_algorithms(was);
}

// Under a memory limit that the exact engine meets and Winograd does not,
// auto serves the call with the exact engine instead of refusing it (it
// refused once its weights were cached: the cost model then prefers Winograd).
TEST(conv2d_auto_winograd_keeps_within_the_memory_limit) {
  const TablePeak table;
  if (get_isa() == Isa::ref) return;
  ConvParams p;
  p.padding = {1, 1, 1, 1};
  const Shape xs{4, 64, 28, 28}, ws{64, 64, 3, 3};
  Tensor x = filled<float>(xs, 93, true, -3, 3), w = filled<float>(ws, 94, true, -3, 3);
  const bool was = get_exact_algorithms();
  const int64_t limit = get_memory_limit();
  set_exact_algorithms(true);
  const Tensor y_exact = conv2d_forward(x, w, Tensor(), p);
  const Tensor dx_exact = conv2d_backward_data(y_exact, w, xs, p);
  set_exact_algorithms(false);
  for (int i = 0; i < 3; ++i) conv2d_forward(x, w, Tensor(), p);  // the weights are seen unchanged
  CHECK(max_abs_diff<float>(conv2d_forward(x, w, Tensor(), p), y_exact) > 0);  // auto took Winograd
  set_memory_limit(int64_t{5} << 19);  // 2.5 MiB: direct needs ~1.8 MB, Winograd ~3.8 MB
  p.algorithm = ConvAlgorithm::winograd4;
  CHECK_THROWS(value_error, "memory limit", conv2d_forward(x, w, Tensor(), p));
  p.algorithm = ConvAlgorithm::auto_;
  CHECK(max_abs_diff<float>(conv2d_forward(x, w, Tensor(), p), y_exact) == 0);
  CHECK(max_abs_diff<float>(conv2d_backward_data(y_exact, w, xs, p), dx_exact) == 0);
  set_memory_limit(limit);
  set_exact_algorithms(was);
}

// The measured choice's bookkeeping: candidates take their trials in turns
// (skipping those that do not fit), the fastest trial of each counts, and
// the winner stays; the exact engine's win is reported as such; atypical
// trials are run again, a bounded number of times.
TEST(conv_measured_choice_takes_turns_and_keeps_the_fastest) {
  const TablePeak table;
  detail::clear_measurements();
  const std::vector<int64_t> a{1, 2, 3}, b{4, 5, 6};
  const bool both[3] = {true, true, false}, exact_only[3] = {true, false, false};
  bool trial = false;
  constexpr int T = detail::kMeasureTrials;
  static_assert(T >= 2, "the sequences below need two trials or more");
  // exact 3.0, 1.5, 3.0...; winograd 2.0, 2.5, 2.5...: exact's best 1.5 wins
  for (int i = 0; i < 2 * T; ++i) {
    const int c = detail::measured_candidate(a, both, &trial);
    CHECK(trial && c == i % 2);
    CHECK(!detail::measured_exact(a));
    detail::record_measurement(a, c, c == 0 ? (i == 2 ? 1.5 : 3.0) : (i == 1 ? 2.0 : 2.5));
  }
  for (int i = 0; i < 3; ++i) {
    CHECK(detail::measured_candidate(a, both, &trial) == 0);
    CHECK(!trial);
  }
  CHECK(detail::measured_exact(a));
  // Winograd does not fit: only the exact engine's trials run, and it is
  // then chosen without Winograd's being known (so not "measured exact")
  for (int i = 0; i < T; ++i) {
    CHECK(detail::measured_candidate(b, exact_only, &trial) == 0 && trial);
    detail::record_measurement(b, 0, 1.0);
  }
  CHECK(detail::measured_candidate(b, exact_only, &trial) == 0 && !trial);
  CHECK(!detail::measured_exact(b));
  // once it fits, Winograd owes its trials; faster, it wins
  for (int i = 0; i < T; ++i) {
    CHECK(detail::measured_candidate(b, both, &trial) == 1 && trial);
    detail::record_measurement(b, 1, 0.5);
  }
  CHECK(detail::measured_candidate(b, both, &trial) == 1 && !trial);
  CHECK(!detail::measured_exact(b));
  // three candidates (the other tile too): turns 0, 1, 2; the second tile wins
  const std::vector<int64_t> c3{7, 8, 9};
  const bool all[3] = {true, true, true};
  const double base3[3] = {2.0, 1.8, 1.2};  // each candidate's first trial; later ones 0.1 slower
  for (int i = 0; i < 3 * T; ++i) {
    const int c = detail::measured_candidate(c3, all, &trial);
    CHECK(trial && c == i % 3);
    detail::record_measurement(c3, c, base3[c] + (i >= 3 ? 0.1 : 0.0));
  }
  CHECK(detail::measured_candidate(c3, all, &trial) == 2 && !trial);
  CHECK(!detail::measured_exact(c3));
  // the tiles alone (the exact engine takes no part): the first tile wins,
  // and the exact engine, never timed, is not reported as the winner
  const std::vector<int64_t> t2{10, 11};
  const bool tiles[3] = {false, true, true};
  for (int i = 0; i < 2 * T; ++i) {  // tile 1: 1.0, 1.1...; tile 2: 1.4, 1.2...
    const int c = detail::measured_candidate(t2, tiles, &trial);
    CHECK(trial && c == 1 + i % 2);
    detail::record_measurement(t2, c, c == 1 ? (i < 2 ? 1.0 : 1.1) : (i < 2 ? 1.4 : 1.2));
  }
  CHECK(detail::measured_candidate(t2, tiles, &trial) == 1 && !trial);
  CHECK(!detail::measured_exact(t2));
  // Winograd's first T trials packed their weights (not typical: several
  // layers of one problem): it runs again until one is typical, and that
  // one's time (0.9, not the packing calls' 3.0) beats the exact engine
  const std::vector<int64_t> p3{12, 13};
  for (int i = 0; i <= 2 * T; ++i) {  // turns 0, 1, 0, 1, ..., then Winograd's extra call
    const int c = detail::measured_candidate(p3, both, &trial);
    CHECK(trial && c == (i < 2 * T ? i % 2 : 1));
    const bool typical = c == 0 || i == 2 * T;
    detail::record_measurement(p3, c, c == 0 ? 1.0 + 0.1 * i : typical ? 0.9 : 3.0, typical);
  }
  CHECK(detail::measured_candidate(p3, both, &trial) == 1 && !trial);
  CHECK(!detail::measured_exact(p3));
  // one atypical trial and the others typical: done after T, as before
  const std::vector<int64_t> p5{16, 17};
  for (int i = 0; i < 2 * T; ++i) {
    const int c = detail::measured_candidate(p5, both, &trial);
    CHECK(trial && c == i % 2);
    detail::record_measurement(p5, c, c == 0 ? 1.0 : i == 1 ? 3.0 : 1.2, !(c == 1 && i == 1));
  }
  CHECK(detail::measured_candidate(p5, both, &trial) == 0 && !trial);
  CHECK(detail::measured_exact(p5));
  // never typical (its weights are never kept): kMeasureRetries extra
  // calls at most, then timed by those
  const std::vector<int64_t> p4{14, 15};
  int winograd_calls = 0;
  for (int i = 0; i < 40; ++i) {
    const int c = detail::measured_candidate(p4, both, &trial);
    if (!trial) break;
    winograd_calls += c == 1;
    detail::record_measurement(p4, c, c == 1 ? 0.5 : 1.0, c == 0);
  }
  CHECK(winograd_calls == detail::kMeasureTrials + detail::kMeasureRetries);
  CHECK(detail::measured_candidate(p4, both, &trial) == 1 && !trial);
  CHECK(detail::measured_problems() == 7);
  for (int64_t k = 0; k < int64_t(detail::kMaxMeasured) + 10; ++k) detail::measured_candidate({k}, both, &trial);
  CHECK(detail::measured_problems() == detail::kMaxMeasured);
  detail::clear_measurements();
}

// End to end, on a layer whose estimates lie close at every SIMD level
// (256 -> 256 @7 at batch 1, one thread: Winograd's estimate 0.76-0.89 of
// the exact engine's, generic to AVX-512): with the weights unchanged,
// auto settles within a few calls on one candidate, whose result it then
// gives bit for bit; every result is the exact engine's or Winograd's.
TEST(conv2d_auto_measures_close_candidates_then_stays) {
  const TablePeak table;
  if (get_isa() == Isa::ref) return;
  const int threads = get_num_threads();
  set_num_threads(1);
  const bool was = get_exact_algorithms();
  set_exact_algorithms(false);
  detail::clear_measurements();
  ConvParams p;
  p.padding = {1, 1, 1, 1};
  const Shape xs{1, 256, 5, 5}, ws{256, 256, 3, 3};  // close at every level, on the table's peak
  Tensor x = filled<float>(xs, 101), w = filled<float>(ws, 102);
  p.algorithm = ConvAlgorithm::direct;
  const Tensor y_exact = conv2d_forward(x, w, Tensor(), p);
  p.algorithm = ConvAlgorithm::winograd2;
  const Tensor y_w2 = conv2d_forward(x, w, Tensor(), p);
  p.algorithm = ConvAlgorithm::winograd4;
  const Tensor y_w4 = conv2d_forward(x, w, Tensor(), p);
  CHECK(max_abs_diff<float>(y_exact, y_w2) > 0 && max_abs_diff<float>(y_exact, y_w4) > 0);
  // (either tile may take part: the model's, and the other where their estimates lie close)
  const auto one_of = [&](const Tensor& y) {
    return max_abs_diff<float>(y, y_exact) == 0 || max_abs_diff<float>(y, y_w2) == 0 ||
           max_abs_diff<float>(y, y_w4) == 0;
  };
  p.algorithm = ConvAlgorithm::auto_;
  // settled after two calls (the weights seen unchanged) and at most three candidates' trials
  constexpr int settled = 2 + 3 * detail::kMeasureTrials;
  std::vector<Tensor> ys;
  for (int i = 0; i < settled + 4; ++i) ys.push_back(conv2d_forward(x, w, Tensor(), p));
  CHECK(detail::measured_problems() >= 1);  // the layer was measured (its first call, before the
                                            // weights are known unchanged, may be another problem)
  for (const Tensor& y : ys) CHECK(one_of(y));
  for (int i = settled + 1; i < settled + 4; ++i) CHECK(max_abs_diff<float>(ys[i], ys[settled]) == 0);
  // with weights changed before every call (training) the forward takes the
  // model's choice, the exact engine here, and nothing is measured; the data
  // gradient is measured (another problem): each call gives the exact
  // engine's or a Winograd tile's result for the weights it saw, and once
  // the trials are done (at most three candidates, kMeasureTrials each)
  // always the same one
  detail::clear_measurements();
  int last = -1;
  const Tensor gy = filled<float>(xs, 103);
  constexpr int trials = 3 * detail::kMeasureTrials;
  for (int i = 0; i < trials + 4; ++i) {
    w.data_as<float>()[0] += 1.0f;
    ConvParams q = p;
    q.algorithm = ConvAlgorithm::direct;
    const std::size_t before = detail::measured_problems();
    CHECK(max_abs_diff<float>(conv2d_forward(x, w, Tensor(), p), conv2d_forward(x, w, Tensor(), q)) == 0);
    CHECK(detail::measured_problems() == before);
    const Tensor dx = conv2d_backward_data(gy, w, xs, p);
    int which = max_abs_diff<float>(dx, conv2d_backward_data(gy, w, xs, q)) == 0 ? 0 : -1;
    for (const auto [a, id] : {std::pair{ConvAlgorithm::winograd2, 2}, std::pair{ConvAlgorithm::winograd4, 4}}) {
      q.algorithm = a;
      if (which < 0 && max_abs_diff<float>(dx, conv2d_backward_data(gy, w, xs, q)) == 0) which = id;
    }
    CHECK(which >= 0);
    if (i > trials) CHECK(which == last);
    if (i >= trials) last = which;
  }
  CHECK(detail::measured_problems() == 1);  // the data gradient was measured
  set_exact_algorithms(was);
  set_num_threads(threads);
}

// Where the model finds Winograd faster even transforming the weights every
// call, the tile still depends on whether they change (F(4,3)'s transform
// is the larger): the verdict watches the weights there too, so weights
// seen unchanged count as cached when the tiles are compared. (It did not:
// inference at 128 -> 128 @28, batch 1, two threads, took F(2,3) at 1.05 ms
// where F(4,3) runs in 0.74 ms.)
TEST(conv_winograd_clear_verdict_watches_the_weights) {
  const TablePeak table;
  if (get_isa() == Isa::ref) return;
  ConvParams p;
  p.padding = {1, 1, 1, 1};
  bool found = false;
  for (const int64_t n : {8, 32, 128}) {
    // (136 channels: a shape no other test trains, whose weights the watch could
    // already know as changing at this address)
    const Shape xs{n, 136, 28, 28}, ws{136, 136, 3, 3};
    const detail::ConvGeometry g = detail::make_conv_geometry("conv2d", 2, xs, ws, p);
    Tensor w = filled<float>(ws, 104);
    const int64_t bytes = w.numel() * 4;
    cpu::WeightsFingerprint seen;
    if (cpu::conv_winograd_verdict(g, detail::ConvPass::forward, w.data(), bytes, false, &seen) !=
        cpu::WinogradVerdict::winograd)
      continue;  // not clear at this kernel level: a larger batch
    found = true;
    CHECK(seen.known);  // the weights were read (and the call reuses their fingerprint)
    bool transforming = true;
    CHECK(cpu::conv_winograd_verdict(g, detail::ConvPass::forward, w.data(), bytes) == cpu::WinogradVerdict::winograd);
    cpu::conv_winograd_tiles_close(g, detail::ConvPass::forward, w.data(), bytes, &transforming);
    CHECK(!transforming);  // seen unchanged twice: cached
    w.data_as<float>()[0] += 1.0f;
    CHECK(cpu::conv_winograd_verdict(g, detail::ConvPass::forward, w.data(), bytes) == cpu::WinogradVerdict::winograd);
    cpu::conv_winograd_tiles_close(g, detail::ConvPass::forward, w.data(), bytes, &transforming);
    CHECK(transforming);  // changed: transformed on this call
    break;
  }
  CHECK(found);
}

// ResNet's 256 -> 256 @14 layer at batch 1 with weights seen unchanged (so
// counted as cached), for the model's verdicts on the table's peak, one
// thread and an emptied 128 MiB weight cache; all restored after.
struct CachedLayer {
  TablePeak table;
  int threads = get_num_threads();
  int64_t limit = get_winograd_cache_limit();
  ConvParams p;
  detail::ConvGeometry g;
  Tensor w;
  explicit CachedLayer(unsigned seed) {
    set_num_threads(1);
    set_winograd_cache_limit(0);  // empty it
    set_winograd_cache_limit(int64_t{128} << 20);
    p.padding = {1, 1, 1, 1};
    const Shape xs{1, 256, 14, 14}, ws{256, 256, 3, 3};
    g = detail::make_conv_geometry("conv2d", 2, xs, ws, p);
    w = filled<float>(ws, seed);
    for (int i = 0; i < 3; ++i) verdict();  // seen unchanged
  }
  ~CachedLayer() {
    set_winograd_cache_limit(0);
    set_winograd_cache_limit(limit);
    set_num_threads(threads);
  }
  cpu::WinogradVerdict verdict() const {
    return cpu::conv_winograd_verdict(g, detail::ConvPass::forward, w.data(), w.numel() * 4);
  }
};

// Cached transformed weights come from the last-level cache only while they
// fit it together with the other layers' cached transforms, which a network
// reads between this layer's calls: ResNet's 256 -> 256 @14 at batch 1 is a
// clear Winograd win by F(4,3) with its transform alone in the cache, but
// with 38 MB of another layer's transform held the model must no longer call
// it clear (measured on an Intel Xeon: three such layers in turn ran 2.3 ms
// a call by F(4,3), 1.75 by F(2,3), 2.0 by the exact engine).
TEST(conv_winograd_model_counts_the_other_cached_transforms) {
  // (at AVX2's and the baseline's rates the model finds Winograd clear even from memory)
  if (get_isa() < Isa::avx512) return;
  const CachedLayer layer(121);
  const bool clear_alone = layer.verdict() == cpu::WinogradVerdict::winograd;
  // another layer's transform, kept by its second call: 512 -> 512 @7, F(4,3), 37.7 MB
  const Shape xs2{1, 512, 7, 7}, ws2{512, 512, 3, 3};
  const detail::ConvGeometry g2 = detail::make_conv_geometry("conv2d", 2, xs2, ws2, layer.p);
  const Tensor x2 = filled<float>(xs2, 122), w2 = filled<float>(ws2, 123);
  Tensor y2 = Tensor::empty(g2.dst_shape(), DType::f32);
  for (int i = 0; i < 2; ++i)
    cpu::conv_forward_winograd<float>(g2, 4, x2.data_as<float>(), w2.data_as<float>(), nullptr, y2.data_as<float>(),
                                      nullptr, nullptr);
  CHECK(winograd_cache_bytes() >= int64_t{36} << 20);
  const cpu::WinogradVerdict shared = layer.verdict();
  CHECK(clear_alone);
  CHECK(shared == cpu::WinogradVerdict::measure);  // no longer clear, and close enough to time on the calls
}

// A clear win with cached weights needs room for the transform in the cache:
// where it would not fit, the calls would evict and re-pack transforms (VGG-16
// at batch 1 with its 512 -> 512 @14 layers called clear: 174 -> 213 ms), so
// the model no longer calls it clear and auto measures instead.
TEST(conv_winograd_clear_verdict_needs_room_in_the_cache) {
  if (get_isa() < Isa::avx512) return;  // (the shape is a clear win at AVX-512's rate)
  const CachedLayer layer(131);
  CHECK(layer.verdict() == cpu::WinogradVerdict::winograd);
  set_winograd_cache_limit(int64_t{4} << 20);  // below its 9.4 MB F(4,3) transform
  CHECK(layer.verdict() == cpu::WinogradVerdict::measure);
}

// No images: every pass gives its empty or zero result. Called from inside
// another parallel region, OpenMP gives the inner one fewer threads than
// asked: the weight gradient's per-thread sums must follow the team it got.
TEST(conv2d_winograd_empty_batch_and_nested_regions) {
  ConvParams p;
  p.padding = {1, 1, 1, 1};
  p.algorithm = ConvAlgorithm::winograd4;
  const Shape xs{0, 4, 6, 6}, ws{5, 4, 3, 3};
  Tensor x = filled<float>(xs, 95), w = filled<float>(ws, 96);
  CHECK(conv2d_forward(x, w, Tensor(), p).numel() == 0);
  const Tensor g = Tensor::empty({0, 5, 6, 6}, DType::f32);
  CHECK(conv2d_backward_data(g, w, xs, p).numel() == 0);
  const Tensor dw = conv2d_backward_weight(g, x, ws, p);
  CHECK(dw.numel() == w.numel() && max_abs(dw) == 0);

  const Shape ys{16, 16, 24, 24}, vs{16, 16, 3, 3};  // five blocks: threads take whole ones
  Tensor y = filled<float>(ys, 97), v = filled<float>(vs, 98);
  ConvParams r = p;
  r.algorithm = ConvAlgorithm::reference;
  const Tensor gy = filled<float>(ys, 99);
  const Tensor dv_ref = conv2d_backward_weight(gy, y, vs, r);
  set_num_threads(2);
  Tensor dv[2];
#pragma omp parallel num_threads(2)
  { dv[omp_get_thread_num()] = conv2d_backward_weight(gy, y, vs, p); }
  CHECK(rel_diff<float>(dv[0], dv_ref) < 5e-5);
  CHECK(rel_diff<float>(dv[1], dv_ref) < 5e-5);
}
