// The float32 elementwise kernels of each kernel level: exp, activations,
// softmax tasks, cross-entropy ranges, 2x2 and 3x3/2 pooling, few-row matrix-vector products, Winograd
// transforms, batch normalisation's rows and the weight fingerprint. CMake compiles one source,
// f32-elementwise-level.inc, once per level (generic, avx2_fma, avx512): the same
// bodies (activation-body.hpp, softmax-body.hpp, cross-entropy-body.hpp on top
// of exp-tanh-body.hpp) with its own flags; f32-elementwise-levels.inc lists
// them; the callers (activation-parallel.cpp, softmax-blocked.cpp,
// cross-entropy-fused.cpp) split the work between threads and call the
// current level's entry serially per piece. Double stays on the baseline
// bodies (its exp / tanh are libm calls).
#pragma once

#include <cstdint>

#include "cnncore/runtime.hpp"

namespace cnncore::cpu {

struct F32ElementwiseKernels {
  const char* name;  // e.g. "f32_elementwise__avx2"
  Isa isa;           // the kernel level they need
  // y[i] = exp(x[i]) (exp-tanh-body.hpp's exp_poly_f32).
  void (*exp)(int64_t n, const float* x, float* y);
  // kind: the value of cnncore::Activation; slope: leaky_relu's negative slope.
  void (*activation_forward)(int kind, float slope, int64_t n, const float* x, float* y);
  void (*activation_backward)(int kind, float slope, int64_t n, const float* diff_dst, const float* x,
                              float* diff_src);
  // One task of softmax-blocked.cpp: a row (inner == 1) or a block of w <= 64 columns.
  void (*softmax_forward)(int64_t L, int64_t inner, int64_t w, bool log, const float* x, float* y);
  void (*softmax_backward)(int64_t L, int64_t inner, int64_t w, bool log, const float* diff_dst, const float* x,
                           float* diff_src);
  // Positions [p0, p1) of cross-entropy-fused.cpp; forward returns the sum of their losses.
  double (*cross_entropy_forward)(int64_t C, int64_t inner, int64_t p0, int64_t p1, const float* src,
                                  const float* weights, const int64_t* target, int64_t ignore_index,
                                  double smoothing, float* loss);
  void (*cross_entropy_backward)(int64_t C, int64_t inner, int64_t p0, int64_t p1, const float* diff_dst,
                                 int64_t dstride, double factor, const float* src, const float* weights, float wsum,
                                 const int64_t* target, int64_t ignore_index, double smoothing, float* diff_src);
  // 2x2 windows at stride 2, no padding, over `planes` planes of hi x wi (pool-2x2-body.hpp):
  // max (NaN sticking) or the sum divided by `divisor`; the average's input gradient.
  void (*pool2x2_forward)(bool max, int64_t planes, int64_t hi, int64_t wi, float divisor, const float* x,
                          float* y);
  void (*pool2x2_avg_backward)(int64_t planes, int64_t hi, int64_t wi, float divisor, const float* dy,
                               float* dx);
  // 3x3 windows at stride 2, padding at most 1 a side (pool-3x3s2-body.hpp): the max and,
  // when indices is not null, each maximum's position in its plane.
  void (*pool3x3s2_max)(int64_t planes, int64_t hi, int64_t wi, int64_t ho, int64_t wo, int64_t ph, int64_t pw,
                        const float* x, float* y, int64_t* indices);
  // A fully connected layer's few rows (gemv-rows-body.hpp): y[r*ldy + o] = [y +] x[r] . w[o], o0 <= o < o1.
  void (*gemv_rows)(int64_t rows, int64_t in, const float* x, const float* w, int64_t o0, int64_t o1, float* y,
                    int64_t ldy, bool accumulate);
  // Winograd F(m, 3) transforms of n tiles (a multiple of 16), one per lane, L lanes a row (winograd-body.hpp).
  bool (*winograd_input)(int m, int64_t n, int64_t L, const float* d, float* v, int64_t vs);
  void (*winograd_output)(int m, int64_t n, int64_t L, const float* mm, int64_t ms, float* y);
  bool (*winograd_weights)(int m, int64_t n, int64_t L, const float* g, float* u, int64_t us);
  void (*winograd_grad_out)(int m, int64_t n, int64_t L, const float* e, float* sv, int64_t ss);
  void (*winograd_grad_weights)(int m, const float* du, int64_t ds, float* g);
  // One tile row's tiles between a strip and the lanes (winograd-body.hpp).
  void (*winograd_gather)(int m, const float* s, int64_t ws, int64_t count, float* d, int64_t L);
  void (*winograd_scatter)(int m, const float* y, int64_t L, int64_t count, float* o, int64_t ws);
  // Tiles of small maps, each lane from its own offsets (winograd-body.hpp); whether all are finite.
  bool (*winograd_gather_indexed)(int a, int64_t n, int64_t L, const int32_t* ro, const int32_t* co,
                                  const float* base, float* d);
  // Batch normalisation's rows (batch-norm-body.hpp): sums in double, the output and the input gradient.
  double (*bn_row_sum)(int64_t n, const float* x);
  double (*bn_row_sq_dev)(int64_t n, const float* x, double m);
  void (*bn_row_grad_sums)(int64_t n, const float* dy, const float* x, double m, double* out);
  void (*bn_row_scale_shift)(int64_t n, const float* x, float scale, float shift, float* y);
  void (*bn_row_grad)(int64_t n, const float* dy, const float* x, float a, float mdy, float m, float k, float* dx);
  // The fingerprint of `bytes` bytes (any type's; fingerprint-body.hpp): the same value at every level.
  uint64_t (*fingerprint)(const void* data, int64_t bytes);
};

// Every level built into this library, lowest first (generic is always there).
const F32ElementwiseKernels* f32_elementwise_kernels(int* count);
// The widest level not above get_isa() (generic for "ref").
const F32ElementwiseKernels& f32_elementwise_kernels_for_current_isa();
// The same, for rows of `row_length` contiguous elements (softmax rows, the classes of
// (N, C) cross-entropy): rows shorter than 16 would leave AVX-512's 16-float vectors
// unused (the loops then run in their scalar remainder), so they get at most AVX2.
const F32ElementwiseKernels& f32_elementwise_kernels_for_rows(int64_t row_length);

}  // namespace cnncore::cpu
