// The convolution op layer: validate once, allocate, pick an implementation, run.
#include "cnncore/conv.hpp"
#include "device/backend.hpp"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cnncore/error.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/kernels/conv-direct.hpp"
#include "cpu/kernels/conv-fft.hpp"
#include "cpu/kernels/conv-im2col.hpp"
#include "cpu/kernels/conv-winograd.hpp"
#include "cpu/ref/conv-ref.hpp"
#include "ops/conv_geometry.hpp"
#include "ops/conv_measure.hpp"
#include "ops/checks.hpp"
#include "util/checked.hpp"
#include "util/parallel.hpp"

namespace cnncore {

using detail::ConvGeometry;
using detail::str;
using detail::check_tensor;
using detail::check_same_dtype;
using detail::with_dtype;

namespace {

using detail::ConvPass;

bool is_winograd(ConvAlgorithm a) {
  return a == ConvAlgorithm::winograd || a == ConvAlgorithm::winograd2 || a == ConvAlgorithm::winograd4 ||
         a == ConvAlgorithm::winograd6;
}

// The tile of a Winograd algorithm for `pass` (`weights`: see conv_winograd_tile).
int winograd_tile(ConvAlgorithm a, const ConvGeometry& g, ConvPass pass, const Tensor* weights) {
  switch (a) {
    case ConvAlgorithm::winograd2: return 2;
    case ConvAlgorithm::winograd4: return 4;
    case ConvAlgorithm::winograd6: return 6;
    default:
      return cpu::conv_winograd_tile(g, pass, weights ? weights->data() : nullptr,
                                     weights ? weights->numel() * static_cast<int64_t>(dtype_size(weights->dtype())) : 0);
  }
}

// The implementation list: the reference, im2col and fft serve everything;
// direct and winograd serve what their why_not accepts.
std::string why_not(ConvAlgorithm algo, const ConvGeometry& g) {
  if (is_winograd(algo)) return cpu::conv_winograd_why_not(g);
  switch (algo) {
    case ConvAlgorithm::direct: return cpu::conv_direct_why_not(g);
    default: return {};
  }
}

// The exact engines' choice (what auto picks with inexact algorithms off).
ConvAlgorithm choose_exact(const ConvGeometry& g) {
  if (get_isa() == Isa::ref) return ConvAlgorithm::reference;
  if (cpu::conv_direct_why_not(g).empty() && cpu::conv_direct_preferred(g)) return ConvAlgorithm::direct;
  return ConvAlgorithm::im2col;
}

// The measured choice's problem: everything that decides its time.
std::vector<int64_t> measure_key(const ConvGeometry& g, ConvPass pass, DType dtype) {
  std::vector<int64_t> k{g.nd, g.N, g.C_in, g.C_out, g.groups, static_cast<int64_t>(g.mode), g.flip,
                         static_cast<int64_t>(pass), static_cast<int64_t>(dtype_size(dtype)), get_num_threads(),
                         static_cast<int64_t>(get_isa())};
  for (int a = 0; a < 3; ++a)
    k.insert(k.end(), {g.in[a], g.k[a], g.stride[a], g.dilation[a], g.pad_before[a], g.pad_after[a]});
  k.push_back(0);  // 1: Winograd transforms the weights on every call (set by the caller)
  return k;
}

// `weights`: the forward's and data gradient's (null for the weight gradient),
// for Winograd's cost model. With `measure`, auto may answer that the
// candidates are to be timed (conv_measure.hpp): *measure is then set.
// `seen` receives the weights' fingerprint where the cost model read them;
// `key` is the problem's measure_key (with `measure`); `*transforming` is
// set when the measured problem transforms its weights every call.
// `*candidates` (with `measure`) receives which of measure_candidate's
// candidates are to be timed.
ConvAlgorithm choose(const char* op, ConvAlgorithm requested, const ConvGeometry& g, ConvPass pass,
                     const Tensor* weights, bool* measure = nullptr, cpu::WeightsFingerprint* seen = nullptr,
                     const std::vector<int64_t>* key = nullptr, bool* transforming = nullptr,
                     bool* candidates = nullptr) {
  if (requested == ConvAlgorithm::auto_) {
    if (get_isa() == Isa::ref) return ConvAlgorithm::reference;
    if (!get_exact_algorithms()) {
      // FFT first: it is preferred only for large kernels where its estimate beats direct (depthwise) and im2col.
      if (cpu::conv_fft_preferred(g)) return ConvAlgorithm::fft;
      if (cpu::conv_winograd_why_not(g).empty()) {
        const void* wd = weights ? weights->data() : nullptr;
        const int64_t wb = weights ? weights->numel() * static_cast<int64_t>(dtype_size(weights->dtype())) : 0;
        const cpu::WinogradVerdict v =
            cpu::conv_winograd_verdict(g, pass, wd, wb, measure && key && detail::measured_exact(*key), seen);
        // the other tile too, where the model cannot order the two
        // (deterministic algorithms keep the model's)
        bool tiles_transforming = false;
        const bool tiles = measure && v != cpu::WinogradVerdict::exact && !get_deterministic() &&
                           cpu::conv_winograd_tiles_close(g, pass, wd, wb, &tiles_transforming);
        if (v == cpu::WinogradVerdict::winograd) {
          if (!tiles) return ConvAlgorithm::winograd;
          *measure = true;
          *transforming = tiles_transforming;
          candidates[0] = false, candidates[1] = candidates[2] = true;
          return ConvAlgorithm::winograd;
        }
        if ((v == cpu::WinogradVerdict::measure || v == cpu::WinogradVerdict::measure_transforming) && measure) {
          *measure = true;
          if (v == cpu::WinogradVerdict::measure_transforming) *transforming = true;
          candidates[0] = candidates[1] = true, candidates[2] = tiles;
          return ConvAlgorithm::winograd;
        }
      }
    }
    return choose_exact(g);
  }
  const std::string why = why_not(requested, g);
  if (!why.empty())
    throw value_error(str(op, ": algorithm='", conv_algorithm_name(requested), "' cannot serve this problem: ", why));
  return requested;
}

int64_t workspace_bytes(ConvAlgorithm algo, const ConvGeometry& g, int64_t es, ConvPass pass, int tile) {
  const int nt = get_num_threads();
  if (is_winograd(algo)) return cpu::conv_winograd_workspace_bytes(g, tile, es, pass, nt);
  switch (algo) {
    case ConvAlgorithm::im2col: return cpu::conv_im2col_workspace_bytes(g, es, pass, nt);
    case ConvAlgorithm::direct: return cpu::conv_direct_workspace_bytes(g, es, pass, nt);
    case ConvAlgorithm::fft: return cpu::conv_fft_workspace_bytes(g, es, pass, nt);
    default: return 0;
  }
}

// The bytes of the result plus the algorithm's workspace.
int64_t call_bytes(const char* op, const ConvGeometry& g, ConvAlgorithm algo, ConvPass pass, DType dtype,
                   int64_t result_elems, int tile) {
  const int64_t es = static_cast<int64_t>(dtype_size(dtype));
  return detail::checked_add(detail::checked_mul(result_elems, es, op), workspace_bytes(algo, g, es, pass, tile), op);
}

// One call's algorithm. A trial of auto's measured choice (conv_measure.hpp)
// carries its problem's key and candidate, and is timed (run_timed).
struct Chosen {
  ConvAlgorithm algo;
  int tile = 0;  // Winograd's, else 0
  int candidate = -1;
  std::vector<int64_t> key;
  cpu::WeightsFingerprint seen;  // the weights' fingerprint, where auto's cost model computed it
  explicit Chosen(ConvAlgorithm a, int t = 0) : algo(a), tile(t) {}
};

// The measured choice's candidates: 0 the exact engine, 1 Winograd with
// the model's tile, 2 with the other one (2 and 4).
Chosen measure_candidate(const ConvGeometry& g, ConvPass pass, const Tensor* weights, int c) {
  if (c == 0) return Chosen(choose_exact(g));
  const int model = winograd_tile(ConvAlgorithm::winograd, g, pass, weights);
  return Chosen(ConvAlgorithm::winograd, c == 1 ? model : 6 - model);
}

// The algorithm for this call and its tile, after checking that the result
// plus its workspace fits the memory limit before anything is allocated.
// `auto` takes an inexact algorithm (Winograd, FFT) only where it fits: its
// workspace is larger than the exact engines', and a memory limit the exact
// choice meets must not refuse the call.
Chosen choose_within_budget(const char* op, const ConvParams& params, const ConvGeometry& g, ConvPass pass,
                            const Tensor* weights, DType dtype, int64_t result_elems) {
  const int64_t room = get_memory_limit() - memory_held();
  bool measure = false;
  cpu::WeightsFingerprint seen;
  std::vector<int64_t> key = measure_key(g, pass, dtype);
  bool transforming = false;
  bool candidates[detail::kMeasureCandidates] = {};
  Chosen c(choose(op, params.algorithm, g, pass, weights, &measure, &seen, &key, &transforming, candidates));
  if (measure) {
    // cached and transformed weights are two problems, and so is the
    // tiles' measurement without the exact engine
    key.back() = (transforming ? 1 : 0) + (candidates[0] ? 0 : 2);
    bool fits[detail::kMeasureCandidates], trial = false;
    for (int i = 0; i < detail::kMeasureCandidates; ++i) {
      const Chosen ci = measure_candidate(g, pass, weights, i);
      fits[i] = candidates[i] && call_bytes(op, g, ci.algo, pass, dtype, result_elems, ci.tile) <= room;
    }
    const int i = detail::measured_candidate(key, fits, &trial);
    c = measure_candidate(g, pass, weights, i);
    if (trial) {
      c.candidate = i;
      c.key = std::move(key);
    }
  } else if (is_winograd(c.algo)) {
    c.tile = winograd_tile(c.algo, g, pass, weights);
  }
  int64_t bytes = call_bytes(op, g, c.algo, pass, dtype, result_elems, c.tile);
  if (params.algorithm == ConvAlgorithm::auto_ && (is_winograd(c.algo) || c.algo == ConvAlgorithm::fft) &&
      bytes > room) {
    c = Chosen(choose_exact(g));
    bytes = call_bytes(op, g, c.algo, pass, dtype, result_elems, 0);
  }
  check_memory(op, bytes);
  c.seen = seen;
  return c;
}

// Runs `run`; a trial's seconds go to the measured choice. `transformed`,
// where not null, is set by the run when Winograd transformed the weights
// (not served from its cache): a trial of the cached-weights problem that
// did is not typical of its later calls (conv_measure.hpp).
template <typename F>
void run_timed(const Chosen& c, F&& run, const bool* transformed = nullptr) {
  if (c.candidate < 0) return run();
  const auto t0 = std::chrono::steady_clock::now();
  run();
  const bool cached_problem = c.key.back() % 2 == 0;
  detail::record_measurement(c.key, c.candidate,
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                             !(cached_problem && transformed && *transformed));
}

template <typename T>
void run_forward(ConvAlgorithm algo, const ConvGeometry& g, const T* src, const T* weights, const T* bias, T* dst,
                 int tile = 0, const cpu::WeightsFingerprint* seen = nullptr, bool* transformed = nullptr) {
  if (is_winograd(algo)) return cpu::conv_forward_winograd(g, tile, src, weights, bias, dst, seen, transformed);
  switch (algo) {
    case ConvAlgorithm::reference: return cpu::ref::conv_forward(g, src, weights, bias, dst);
    case ConvAlgorithm::direct: return cpu::conv_forward_direct(g, src, weights, bias, dst);
    case ConvAlgorithm::fft: return cpu::conv_forward_fft(g, src, weights, bias, dst);
    default: return cpu::conv_forward_im2col(g, src, weights, bias, dst);
  }
}

template <typename T>
void run_backward_data(ConvAlgorithm algo, const ConvGeometry& g, const T* diff_dst, const T* weights, T* diff_src,
                       int tile = 0, const cpu::WeightsFingerprint* seen = nullptr, bool* transformed = nullptr) {
  if (is_winograd(algo))
    return cpu::conv_backward_data_winograd(g, tile, diff_dst, weights, diff_src, seen, transformed);
  switch (algo) {
    case ConvAlgorithm::reference: return cpu::ref::conv_backward_data(g, diff_dst, weights, diff_src);
    case ConvAlgorithm::direct: return cpu::conv_backward_data_direct(g, diff_dst, weights, diff_src);
    case ConvAlgorithm::fft: return cpu::conv_backward_data_fft(g, diff_dst, weights, diff_src);
    default: return cpu::conv_backward_data_im2col(g, diff_dst, weights, diff_src);
  }
}

template <typename T>
void run_backward_weight(ConvAlgorithm algo, const ConvGeometry& g, const T* diff_dst, const T* src,
                         T* diff_weights, int tile = 0) {
  if (is_winograd(algo)) return cpu::conv_backward_weight_winograd(g, tile, diff_dst, src, diff_weights);
  switch (algo) {
    case ConvAlgorithm::reference: return cpu::ref::conv_backward_weight(g, diff_dst, src, diff_weights);
    case ConvAlgorithm::direct: return cpu::conv_backward_weight_direct(g, diff_dst, src, diff_weights);
    case ConvAlgorithm::fft: return cpu::conv_backward_weight_fft(g, diff_dst, src, diff_weights);
    default: return cpu::conv_backward_weight_im2col(g, diff_dst, src, diff_weights);
  }
}

// ---- taps that read only zero padding ------------------------------------
// With zero padding, a kernel tap whose every output reads padding (the
// outer taps of a 3x3 kernel on a 1x1 map: ResNet's last stage on 32x32
// images) adds w * 0. Those taps sit at the ends of each axis, so the
// problem is the same convolution with the kernel cropped to its live taps
// and the padding reduced to match (same output size). Forward crops when
// the dropped weights are finite (w * 0 is then exactly 0; NaN or Inf would
// have spread); backward-data always (its dropped products land on padding);
// backward-weight fills the dropped taps' gradient with sum(dy) * 0.

// The reference runs the full kernel (it is the oracle), and so does
// Winograd, whose cost does not fall with fewer taps.
bool uncropped(ConvAlgorithm algo) { return algo == ConvAlgorithm::reference || is_winograd(algo); }

struct LiveTaps {
  int64_t first[3] = {0, 0, 0}, last[3] = {0, 0, 0};  // weight indices, inclusive
  bool any_dead = false;
};

LiveTaps live_taps(const ConvGeometry& g) {
  LiveTaps lt;
  if (g.mode != PaddingMode::zeros || !g.has_padding()) return lt;
  for (int a = 0; a < 3; ++a) {
    int64_t first = -1, last = -1;
    for (int64_t t = 0; t < g.k[a]; ++t) {
      const int64_t tap = g.flip ? g.k[a] - 1 - t : t;
      const int64_t lo = tap * g.dilation[a] - g.pad_before[a];                   // o = 0
      const int64_t hi = (g.out[a] - 1) * g.stride[a] + lo;                       // o = out - 1
      if (hi >= 0 && lo < g.in[a]) {  // some output reads inside (positions rise with o)
        if (first < 0) first = t;
        last = t;
      }
    }
    if (first < 0) return LiveTaps{};  // every tap dead: nothing to gain, keep the plain path
    lt.first[a] = first;
    lt.last[a] = last;
    lt.any_dead = lt.any_dead || first > 0 || last < g.k[a] - 1;
  }
  return lt;
}

// The geometry of the cropped kernel, or false when the reduced padding
// would be negative (then the plain path runs).
bool cropped_geometry(const ConvGeometry& g, const LiveTaps& lt, ConvGeometry* out) {
  ConvGeometry c = g;
  for (int a = 0; a < 3; ++a) {
    const int64_t lead = lt.first[a], trail = g.k[a] - 1 - lt.last[a];  // dropped weight indices
    const int64_t drop_before = (g.flip ? trail : lead) * g.dilation[a];
    const int64_t drop_after = (g.flip ? lead : trail) * g.dilation[a];
    c.k[a] = lt.last[a] - lt.first[a] + 1;
    c.pad_before[a] = g.pad_before[a] - drop_before;
    c.pad_after[a] = g.pad_after[a] - drop_after;
    if (c.pad_before[a] < 0 || c.pad_after[a] < 0) return false;
  }
  *out = c;
  return true;
}

// For each tap of the full kernel, its index in the cropped one (-1: dropped).
std::vector<int64_t> tap_map(const ConvGeometry& g, const LiveTaps& lt) {
  std::vector<int64_t> m(static_cast<std::size_t>(g.k_size()));
  const int64_t k1 = lt.last[1] - lt.first[1] + 1, k2 = lt.last[2] - lt.first[2] + 1;
  for (int64_t t = 0; t < g.k_size(); ++t) {
    const int64_t t0 = t / (g.k[1] * g.k[2]), t1 = (t / g.k[2]) % g.k[1], t2 = t % g.k[2];
    const bool live = t0 >= lt.first[0] && t0 <= lt.last[0] && t1 >= lt.first[1] && t1 <= lt.last[1] &&
                      t2 >= lt.first[2] && t2 <= lt.last[2];
    m[static_cast<std::size_t>(t)] =
        live ? ((t0 - lt.first[0]) * k1 + (t1 - lt.first[1])) * k2 + (t2 - lt.first[2]) : int64_t{-1};
  }
  return m;
}

// The live taps of `w` (C_out, C_in_g, k...), or an undefined tensor when
// `need_finite` and a dropped weight is NaN or Inf.
template <typename T>
Tensor crop_weights(const ConvGeometry& g, const ConvGeometry& c, const std::vector<int64_t>& map, const T* w,
                    bool need_finite) {
  const int64_t rows = g.C_out * g.C_in_g, kk = g.k_size(), ck = c.k_size();
  Tensor out = Tensor::empty(c.weights_shape(), std::is_same_v<T, float> ? DType::f32 : DType::f64);
  T* d = out.data_as<T>();
  // one pass: copy the live taps and check that the weights are finite (all
  // of them: a non-finite live one gives the same result either way, and one
  // test of every weight sums in eight independent lanes, where summing a
  // row's dropped taps serially was most of a 512-channel layer on a 1x1 map)
  std::vector<std::pair<int64_t, int64_t>> live;  // (tap, cropped tap)
  for (int64_t t = 0; t < kk; ++t)
    if (map[static_cast<std::size_t>(t)] >= 0) live.emplace_back(t, map[static_cast<std::size_t>(t)]);
  T probe = 0;  // sums w * 0: 0 * inf and 0 * nan are nan, 0 * finite is 0
#pragma omp parallel num_threads(get_num_threads()) if (rows * kk > 65536) reduction(+ : probe)
  {
    // each thread its share of the rows: copy, then test them contiguously
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
    for (int64_t r = r0; r < r1; ++r) {
      const T* wr = w + r * kk;
      T* dr = d + r * ck;
      for (const auto& [tap, to] : live) dr[to] = wr[tap];
    }
    if (need_finite) {
      T lanes[8] = {};
      const T* wp = w + r0 * kk;
      const int64_t n = (r1 - r0) * kk, whole = n / 8 * 8;
      for (int64_t q = 0; q < whole; q += 8)
#pragma omp simd
        for (int l = 0; l < 8; ++l) lanes[l] += wp[q + l] * T(0);
      for (int64_t q = whole; q < n; ++q) lanes[0] += wp[q] * T(0);
      for (const T v : lanes) probe += v;
    }
  }
  return probe == T(0) ? out : Tensor();
}

// ---- the device branch: the CUDA backend's direct kernels (any padding mode,
// stride, dilation, groups, flip; 1-3 D); the CPU algorithms do not apply.
void check_device_algorithm(const char* op, ConvAlgorithm algo) {
  if (algo != ConvAlgorithm::auto_ && algo != ConvAlgorithm::reference)
    throw value_error(str(op, ": algorithm='", conv_algorithm_name(algo),
                          "' is a CPU algorithm; on CUDA use 'auto' or 'reference'"));
}

Tensor device_forward(const char* op, const ConvGeometry& g, const Tensor& src, const Tensor& weights,
                      const Tensor& bias, const ConvParams& params) {
  check_device_algorithm(op, params.algorithm);
  Tensor dst = device::allocate(op, g.dst_shape(), src.dtype(), src.device());
  if (dst.numel() == 0) return dst;
  device::Backend& be = device::backend_for(op, src.device());
  with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).conv_forward(g, src.data_as<T>(), weights.data_as<T>(),
                                 bias.defined() ? bias.data_as<T>() : nullptr, dst.data_as<T>());
  });
  return dst;
}

Tensor device_backward_data(const char* op, const ConvGeometry& g, const Tensor& diff_dst, const Tensor& weights,
                            const Shape& src_shape, const ConvParams& params) {
  check_device_algorithm(op, params.algorithm);
  const Device dev = diff_dst.device();
  Tensor diff_src = device::allocate(op, src_shape, diff_dst.dtype(), dev);
  if (diff_src.numel() == 0) return diff_src;
  Shape padded_shape{g.N, g.C_in};
  for (int a = 0; a < 3; ++a)
    padded_shape.push_back(detail::checked_add(detail::checked_add(g.in[a], g.pad_before[a], op), g.pad_after[a], op));
  Tensor padded = device::allocate(op, padded_shape, diff_dst.dtype(), dev);
  device::Backend& be = device::backend_for(op, dev);
  with_dtype(diff_dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).conv_backward_data(g, diff_dst.data_as<T>(), weights.data_as<T>(), padded.data_as<T>(),
                                       diff_src.data_as<T>());
  });
  return diff_src;
}

Tensor device_backward_weight(const char* op, const ConvGeometry& g, const Tensor& diff_dst, const Tensor& src,
                              const Shape& weights_shape, const ConvParams& params) {
  check_device_algorithm(op, params.algorithm);
  Tensor diff_weights = device::allocate(op, weights_shape, src.dtype(), src.device());
  if (diff_weights.numel() == 0) return diff_weights;
  device::Backend& be = device::backend_for(op, src.device());
  with_dtype(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).conv_backward_weight(g, diff_dst.data_as<T>(), src.data_as<T>(), diff_weights.data_as<T>());
  });
  return diff_weights;
}

Tensor forward_nd(const char* op, int nd, const Tensor& src, const Tensor& weights, const Tensor& bias,
                  const ConvParams& params) {
  const Device dev = device::common_device(op, {{"x", &src}, {"weight", &weights}, {"bias", &bias}});
  detail::AllowDevice allow(dev);
  check_tensor(op, "x", src);
  check_tensor(op, "weight", weights);
  const ConvGeometry g = detail::make_conv_geometry(op, nd, src.shape(), weights.shape(), params);
  check_same_dtype(op, "weight", weights, "x", src.dtype());
  if (bias.defined()) {
    check_tensor(op, "bias", bias);
    detail::check_bias_shape(op, bias.shape(), g.C_out);
    check_same_dtype(op, "bias", bias, "x", src.dtype());
  }
  if (dev != Device::cpu) return device_forward(op, g, src, weights, bias, params);
  const Shape dst_shape = g.dst_shape();
  const Chosen chosen =
      choose_within_budget(op, params, g, ConvPass::forward, &weights, src.dtype(), shape_numel(dst_shape));
  const ConvAlgorithm algo = chosen.algo;
  const int tile = chosen.tile;
  Tensor dst = Tensor::empty(dst_shape, src.dtype());
  if (dst.numel() == 0) return dst;
  bool transformed = false;
  run_timed(chosen, [&] {
    with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* b = bias.defined() ? bias.data_as<T>() : nullptr;
      const LiveTaps lt = uncropped(algo) ? LiveTaps{} : live_taps(g);
      ConvGeometry c;
      if (lt.any_dead && cropped_geometry(g, lt, &c)) {
        const Tensor wc = crop_weights<T>(g, c, tap_map(g, lt), weights.data_as<T>(), true);
        if (wc.defined())
          return run_forward<T>(choose(op, params.algorithm, c, ConvPass::forward, nullptr), c, src.data_as<T>(),
                                wc.data_as<T>(), b, dst.data_as<T>());
      }
      run_forward<T>(algo, g, src.data_as<T>(), weights.data_as<T>(), b, dst.data_as<T>(), tile, &chosen.seen,
                     &transformed);
    });
  }, &transformed);
  return dst;
}

Tensor backward_data_nd(const char* op, int nd, const Tensor& diff_dst, const Tensor& weights,
                        const Shape& src_shape, const ConvParams& params) {
  const Device dev = device::common_device(op, {{"grad_out", &diff_dst}, {"weight", &weights}});
  detail::AllowDevice allow(dev);
  check_tensor(op, "grad_out", diff_dst);
  check_tensor(op, "weight", weights);
  const ConvGeometry g = detail::make_conv_geometry(op, nd, src_shape, weights.shape(), params);
  detail::check_grad_out_shape(op, diff_dst.shape(), g.dst_shape());
  check_same_dtype(op, "weight", weights, "grad_out", diff_dst.dtype());
  if (dev != Device::cpu) return device_backward_data(op, g, diff_dst, weights, src_shape, params);
  const Chosen chosen = choose_within_budget(op, params, g, ConvPass::backward_data, &weights, diff_dst.dtype(),
                                             shape_numel(src_shape));
  const ConvAlgorithm algo = chosen.algo;
  const int tile = chosen.tile;
  // (every engine writes every element)
  Tensor diff_src = Tensor::empty(src_shape, diff_dst.dtype());
  if (diff_src.numel() == 0) return diff_src;
  bool transformed = false;
  run_timed(chosen, [&] {
    with_dtype(diff_dst.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const LiveTaps lt = uncropped(algo) ? LiveTaps{} : live_taps(g);
      ConvGeometry c;
      if (lt.any_dead && cropped_geometry(g, lt, &c)) {
        const Tensor wc = crop_weights<T>(g, c, tap_map(g, lt), weights.data_as<T>(), false);
        return run_backward_data<T>(choose(op, params.algorithm, c, ConvPass::backward_data, nullptr), c,
                                    diff_dst.data_as<T>(), wc.data_as<T>(), diff_src.data_as<T>());
      }
      run_backward_data<T>(algo, g, diff_dst.data_as<T>(), weights.data_as<T>(), diff_src.data_as<T>(), tile,
                           &chosen.seen, &transformed);
    });
  }, &transformed);
  return diff_src;
}

Tensor backward_weight_nd(const char* op, int nd, const Tensor& diff_dst, const Tensor& src,
                          const Shape& weights_shape, const ConvParams& params) {
  const Device dev = device::common_device(op, {{"grad_out", &diff_dst}, {"x", &src}});
  detail::AllowDevice allow(dev);
  check_tensor(op, "grad_out", diff_dst);
  check_tensor(op, "x", src);
  const ConvGeometry g = detail::make_conv_geometry(op, nd, src.shape(), weights_shape, params);
  detail::check_grad_out_shape(op, diff_dst.shape(), g.dst_shape());
  check_same_dtype(op, "grad_out", diff_dst, "x", src.dtype());
  if (dev != Device::cpu) return device_backward_weight(op, g, diff_dst, src, weights_shape, params);
  const Chosen chosen = choose_within_budget(op, params, g, ConvPass::backward_weight, nullptr, src.dtype(),
                                             shape_numel(weights_shape));
  const ConvAlgorithm algo = chosen.algo;
  const int tile = chosen.tile;
  const LiveTaps lt = uncropped(algo) ? LiveTaps{} : live_taps(g);
  ConvGeometry c;
  const bool crop = lt.any_dead && cropped_geometry(g, lt, &c);
  // (every engine, and the cropped route, writes every element)
  Tensor diff_weights = Tensor::empty(weights_shape, src.dtype());
  run_timed(chosen, [&] {
    with_dtype(src.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if (crop) {
        Tensor dwc = Tensor::empty(c.weights_shape(), src.dtype());
        run_backward_weight<T>(choose(op, params.algorithm, c, ConvPass::backward_weight, nullptr), c,
                               diff_dst.data_as<T>(), src.data_as<T>(), dwc.data_as<T>());
        // a dropped tap's gradient is the sum over its channel's dy of dy * 0
        const int64_t P = g.out_size(), kk = g.k_size(), ck = c.k_size();
        const T* dy = diff_dst.data_as<T>();
        T* dw = diff_weights.data_as<T>();
        const T* from = dwc.data_as<T>();
        const std::vector<int64_t> map = tap_map(g, lt);
        std::vector<std::pair<int64_t, int64_t>> live;  // (tap, cropped tap)
        for (int64_t t = 0; t < kk; ++t)
          if (map[static_cast<std::size_t>(t)] >= 0) live.emplace_back(t, map[static_cast<std::size_t>(t)]);
        // per output channel: its whole block of dw set to the dead value (one
        // contiguous fill), then the live taps copied over it
  #pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (g.C_out * g.C_in_g * kk > 262144)
        for (int64_t o = 0; o < g.C_out; ++o) {
          T dead = T(0);
          for (int64_t n = 0; n < g.N && dead == T(0); ++n)
            for (int64_t q = 0; q < P; ++q) dead += dy[(n * g.C_out + o) * P + q] * T(0);
          std::fill(dw + o * g.C_in_g * kk, dw + (o + 1) * g.C_in_g * kk, dead);
          for (int64_t r = o * g.C_in_g; r < (o + 1) * g.C_in_g; ++r)
            for (const auto& [t, ct] : live) dw[r * kk + t] = from[r * ck + ct];
        }
        return;
      }
      run_backward_weight<T>(algo, g, diff_dst.data_as<T>(), src.data_as<T>(), diff_weights.data_as<T>(), tile);
    });
  });
  return diff_weights;
}

}  // namespace

Tensor conv_forward(const Tensor& src, const Tensor& weights, const Tensor& bias, const ConvParams& params,
                    const char* op, int spatial_dims) {
  return forward_nd(op, detail::resolve_spatial_rank(op, spatial_dims, src.shape()), src, weights, bias, params);
}

Tensor conv_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                          const ConvParams& params, const char* op, int spatial_dims) {
  return backward_data_nd(op, detail::resolve_spatial_rank(op, spatial_dims, src_shape), diff_dst, weights, src_shape, params);
}

Tensor conv_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                            const ConvParams& params, const char* op, int spatial_dims) {
  return backward_weight_nd(op, detail::resolve_spatial_rank(op, spatial_dims, src.shape()), diff_dst, src, weights_shape,
                            params);
}

Gradients conv_backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weights, GradMask mask,
                        const ConvParams& params, const char* op, int spatial_dims) {
  const Device dev = device::common_device(op, {{"x", &src}, {"weight", &weights}, {"grad_out", &diff_dst}});
  detail::AllowDevice allow(dev);
  detail::check_pair(op, "x", src, "weight", weights);
  check_tensor(op, "grad_out", diff_dst);
  check_same_dtype(op, "grad_out", diff_dst, "x", src.dtype());
  const int nd = detail::resolve_spatial_rank(op, spatial_dims, src.shape());
  const ConvGeometry g = detail::make_conv_geometry(op, nd, src.shape(), weights.shape(), params);
  detail::check_grad_out_shape(op, diff_dst.shape(), g.dst_shape());
  Gradients grads;
  if (mask.diff_src) grads.diff_src = backward_data_nd(op, nd, diff_dst, weights, src.shape(), params);
  if (mask.diff_weights) grads.diff_weights = backward_weight_nd(op, nd, diff_dst, src, weights.shape(), params);
  if (mask.diff_bias) grads.diff_bias = conv_backward_bias(diff_dst, op);
  return grads;
}

// grad_bias[c] = sum over images and positions of grad_out[:, c, ...].
Tensor conv_backward_bias(const Tensor& diff_dst, const char* op) {
  detail::AllowDevice allow(diff_dst.defined() ? diff_dst.device() : Device::cpu);
  check_tensor(op, "grad_out", diff_dst);
  const Shape& s = diff_dst.shape();
  if (s.size() < 3)
    throw value_error(str(op, ": grad_out must have at least 3 dimensions (N, C_out, spatial...), got shape ",
                          shape_str(s)));
  const int64_t N = s[0], C = s[1];
  const int64_t inner = C == 0 || N == 0 ? 0 : diff_dst.numel() / (N * C);
  if (diff_dst.device() != Device::cpu) {
    Tensor db = zeros_on({C}, diff_dst.dtype(), diff_dst.device());
    device::Backend& be = device::backend_for(op, diff_dst.device());
    with_dtype(diff_dst.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if (N * inner > 0) be.kernels(T{}).channel_sum(N, C, inner, diff_dst.data_as<T>(), db.data_as<T>());
    });
    return db;
  }
  Tensor db = Tensor::zeros({C}, diff_dst.dtype());
  with_dtype(diff_dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* dy = diff_dst.data_as<T>();
    T* out = db.data_as<T>();
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (detail::parallel_pays(N * C * inner))
    for (int64_t c = 0; c < C; ++c) {
      T sum = 0;
      for (int64_t n = 0; n < N; ++n) {
        const T* row = dy + (n * C + c) * inner;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < inner; ++i) sum += row[i];
      }
      out[c] = sum;
    }
  });
  return db;
}

Tensor conv2d_forward(const Tensor& src, const Tensor& weights, const Tensor& bias, const ConvParams& params) {
  return forward_nd("conv2d", 2, src, weights, bias, params);
}

Tensor conv2d_backward_data(const Tensor& diff_dst, const Tensor& weights, const Shape& src_shape,
                            const ConvParams& params) {
  return backward_data_nd("conv2d", 2, diff_dst, weights, src_shape, params);
}

Tensor conv2d_backward_weight(const Tensor& diff_dst, const Tensor& src, const Shape& weights_shape,
                              const ConvParams& params) {
  return backward_weight_nd("conv2d", 2, diff_dst, src, weights_shape, params);
}

Tensor conv2d_backward_bias(const Tensor& diff_dst) {
  if (diff_dst.defined() && diff_dst.dim() != 4)
    throw value_error(str("conv2d: grad_out must have 4 dimensions (N, C_out, H_out, W_out), got shape ",
                          shape_str(diff_dst.shape())));
  return conv_backward_bias(diff_dst, "conv2d");
}

}  // namespace cnncore
