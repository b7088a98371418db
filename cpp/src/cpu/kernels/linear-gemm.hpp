// The linear layer on the blocked GEMM (cpu::gemm) with x viewed as a
// (rows, in) matrix:
//   forward          y (rows, out)  = bias + x W^T
//   backward data    dx (rows, in)  = dy W
//   backward weight  dW (out, in)   = dy^T x
//   backward bias    db (out)       = column sums of dy
#pragma once

#include <cstdint>

namespace cnncore::cpu {

struct LinearDims {
  int64_t rows = 0, in = 0, out = 0;
};

// Bytes cpu::gemm allocates for its packed panels for an M x N x K product
// (all of op(A) and up to 3072 columns of op(B), 256 steps of K at a time).
int64_t gemm_workspace_bytes(int64_t M, int64_t N, int64_t K, int64_t elem_size);

template <typename T>
void linear_forward(const LinearDims& d, const T* src, const T* weights, const T* bias, T* dst);
template <typename T>
void linear_backward_data(const LinearDims& d, const T* diff_dst, const T* weights, T* diff_src);
template <typename T>
void linear_backward_weight(const LinearDims& d, const T* diff_dst, const T* src, T* diff_weights);
template <typename T>
void linear_backward_bias(const LinearDims& d, const T* diff_dst, T* diff_bias);

}  // namespace cnncore::cpu
