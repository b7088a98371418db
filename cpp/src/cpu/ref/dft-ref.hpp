// Naive O(n^2) discrete Fourier transform: the oracle for the FFT kernels.
//   forward  X[k] = sum_j x[j] exp(-2*pi*i*j*k/n)
//   inverse  x[j] = sum_k X[k] exp(+2*pi*i*j*k/n)   (unnormalised, like fft::Plan)
// Sums in long double over a table of the n roots, indexed by j*k mod n.
#pragma once

#include <complex>
#include <cstdint>

namespace cnncore::cpu::ref {

// `out` must not alias `in`.
void dft(const std::complex<double>* in, std::complex<double>* out, int64_t n, bool inverse);

// The DFT along every axis of a row-major (n0, n1, n2) array, one axis after
// another through dft(); in place.
void dft_nd(std::complex<double>* data, int64_t n0, int64_t n1, int64_t n2, bool inverse);

}  // namespace cnncore::cpu::ref
