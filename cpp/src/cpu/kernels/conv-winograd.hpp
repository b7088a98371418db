// Winograd convolution F(m, 3), m = 2, 4 or 6 (Lavin & Gray, 2016): 2-D
// 3x3 kernels at stride 1 and dilation 1, any groups, padding mode and flip.
//
// The output is cut into m x m tiles; each reads an (m + 2)^2 input tile d.
// Per tile, Y = AT [sum_c (G g_kc GT) . (BT d_c B)] A: the element-wise
// products summed over input channels are (m + 2)^2 GEMMs, C_out x C_in
// times C_in x tiles, run on the GEMM micro-kernels over blocks of tiles
// small enough that the transformed blocks stay in cache. The transforms
// run vectorised across the tiles of a block (winograd-body.hpp); the
// transformed weights are packed for the micro-kernel once per call, or
// kept across calls while the weights do not change (weight_cache below).
//
// The data gradient is the Winograd convolution of grad_out with the
// flipped, transposed kernel (padding 2 - pad); with a padding mode other
// than zeros, of the gradient of the padded input, folded back onto the
// input by the mode's index map. The weight gradient sums, per element xi,
// the products of the transformed grad_out tiles (A e AT) with the
// transformed input tiles over all tiles (one GEMM per xi and block), then
// maps each sum back by GT . G.
//
// Inexact: the transforms round, more so for larger tiles (docs/conv2d.md
// has the measured errors). Inputs or weights that are not finite, whose
// transforms would spread NaN over whole tiles, run the im2col engine.
#pragma once

#include <cstdint>
#include <string>

#include "ops/conv_geometry.hpp"

namespace cnncore::cpu {

// The cost model plans with the measured one-thread FMA peak of the current
// kernel level (measured once per process), or, under deterministic
// algorithms or while this is on (tests whose verdicts must not depend on
// the machine), with a fixed table's.
void set_winograd_model_table_peak(bool on);

// How many calls so far transformed their weights as the products used them
// instead of packing them whole first (weights not kept, one block a group;
// tests).
int64_t winograd_fused_calls();

// Empty when Winograd serves `g`, otherwise why not (for the error message).
std::string conv_winograd_why_not(const detail::ConvGeometry& g);
// The tile size m that algorithm="winograd" uses for `pass`: the one the
// cost model finds fastest among those auto may use (2 and 4; 6 only on
// request). `weights` (`weight_bytes` of them: the forward's and data
// gradient's; null for the weight gradient) tells the model whether the
// call will find them transformed already (weights seen unchanged on
// consecutive calls: inference) or must transform them.
int conv_winograd_tile(const detail::ConvGeometry& g, detail::ConvPass pass, const void* weights,
                       int64_t weight_bytes);
// Whether the model's estimates of the two tiles auto may use lie within
// kTileBand of each other, too close for it to order them: auto then also
// times the other tile (ops/conv.cpp). On a Zen 3, ResNet's 256 -> 256 @14
// at batch 1 runs its weight gradient by F(2, 3) in 2.1 ms and by F(4, 3),
// the model's choice, in 2.6 (the model's memory bandwidths are a Zen 5's).
// `*transforming` is set when the call must transform the weights.
bool conv_winograd_tiles_close(const detail::ConvGeometry& g, detail::ConvPass pass, const void* weights,
                               int64_t weight_bytes, bool* transforming);
// What algorithm="auto" should do for `pass` by the cost model: take the
// exact engine, take Winograd, or, where the estimates are too close for
// the model to order them, time the candidates on the calls themselves
// (ops/conv.cpp): with the weights cached (measure) or transformed every
// call (measure_transforming: training's weights, the weight gradient),
// two different problems. Where only cached weights make Winograd pay, it
// follows the weights' fingerprint from call to call.
// `measured_exact`: the measurement of this problem has found the exact
// engine faster (the weights then need not be read). `seen`, where not
// null, receives the weights' fingerprint when the verdict computed it, for
// the call's transform to use instead of reading the weights once more
// (ResNet's 512 -> 512 weights are 9.4 MB).
enum class WinogradVerdict { exact, winograd, measure, measure_transforming };
struct WeightsFingerprint {
  bool known = false;
  uint64_t value = 0;
};
WinogradVerdict conv_winograd_verdict(const detail::ConvGeometry& g, detail::ConvPass pass, const void* weights,
                                      int64_t weight_bytes, bool measured_exact = false,
                                      WeightsFingerprint* seen = nullptr);
int64_t conv_winograd_workspace_bytes(const detail::ConvGeometry& g, int m, int64_t elem_size,
                                      detail::ConvPass pass, int threads);

// `seen`: the weights' fingerprint from this call's verdict, or null.
// `transformed`, where not null, is set to whether the call transformed the
// weights (false: served from the cache of transformed weights).
template <typename T>
void conv_forward_winograd(const detail::ConvGeometry& g, int m, const T* src, const T* weights, const T* bias,
                           T* dst, const WeightsFingerprint* seen = nullptr, bool* transformed = nullptr);
// diff_weights is overwritten.
template <typename T>
void conv_backward_weight_winograd(const detail::ConvGeometry& g, int m, const T* diff_dst, const T* src,
                                   T* diff_weights);
// diff_src is overwritten.
template <typename T>
void conv_backward_data_winograd(const detail::ConvGeometry& g, int m, const T* diff_dst, const T* weights,
                                 T* diff_src, const WeightsFingerprint* seen = nullptr, bool* transformed = nullptr);

}  // namespace cnncore::cpu
