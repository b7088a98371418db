#include "cpu/ref/dft-ref.hpp"

#include <cmath>
#include <vector>

namespace cnncore::cpu::ref {

void dft(const std::complex<double>* in, std::complex<double>* out, int64_t n, bool inverse) {
  // The n roots exp(-+2*pi*i*r/n), r < n, in long double; X[k] sums x[j] * root[j*k mod n].
  const long double two_pi = 6.283185307179586476925286766559005768L;
  const long double sign = inverse ? 1.0L : -1.0L;
  std::vector<long double> c(static_cast<std::size_t>(n)), s(c.size());
  for (int64_t r = 0; r < n; ++r) {
    const long double a = sign * two_pi * static_cast<long double>(r) / static_cast<long double>(n);
    c[static_cast<std::size_t>(r)] = std::cos(a);
    s[static_cast<std::size_t>(r)] = std::sin(a);
  }
  for (int64_t k = 0; k < n; ++k) {
    long double re = 0, im = 0;
    int64_t r = 0;  // j*k mod n
    for (int64_t j = 0; j < n; ++j) {
      const long double xr = in[j].real(), xi = in[j].imag();
      const long double cr = c[static_cast<std::size_t>(r)], sr = s[static_cast<std::size_t>(r)];
      re += xr * cr - xi * sr;
      im += xr * sr + xi * cr;
      r += k;
      if (r >= n) r -= n;
    }
    out[k] = {static_cast<double>(re), static_cast<double>(im)};
  }
}

void dft_nd(std::complex<double>* data, int64_t n0, int64_t n1, int64_t n2, bool inverse) {
  const int64_t n[3] = {n0, n1, n2};
  const int64_t stride[3] = {n1 * n2, n2, 1};
  for (int a = 0; a < 3; ++a) {
    if (n[a] == 1) continue;
    std::vector<std::complex<double>> line(static_cast<std::size_t>(n[a])), res(line.size());
    // Every line along axis a: fix the other two indices.
    const int b = a == 0 ? 1 : 0, c = a == 2 ? 1 : 2;
    for (int64_t ib = 0; ib < n[b]; ++ib)
      for (int64_t ic = 0; ic < n[c]; ++ic) {
        std::complex<double>* base = data + ib * stride[b] + ic * stride[c];
        for (int64_t j = 0; j < n[a]; ++j) line[static_cast<std::size_t>(j)] = base[j * stride[a]];
        dft(line.data(), res.data(), n[a], inverse);
        for (int64_t j = 0; j < n[a]; ++j) base[j * stride[a]] = res[static_cast<std::size_t>(j)];
      }
  }
}

}  // namespace cnncore::cpu::ref
