#include "cpu/kernels/fft.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

namespace cnncore::cpu::fft {

namespace {

constexpr double kPi = 3.14159265358979323846264338327950288;

inline cplx add(cplx a, cplx b) { return {a.re + b.re, a.im + b.im}; }
inline cplx sub(cplx a, cplx b) { return {a.re - b.re, a.im - b.im}; }
inline cplx scale(cplx a, double s) { return {a.re * s, a.im * s}; }
inline cplx mul(cplx a, cplx b) { return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
inline cplx mul_conj(cplx a, cplx b) { return {a.re * b.re + a.im * b.im, a.im * b.re - a.re * b.im}; }  // a * conj(b)
inline cplx conj(cplx a) { return {a.re, -a.im}; }

// Twiddle multiply: by w (forward) or conj(w) (inverse).
template <bool Inv>
inline cplx twiddle(cplx a, cplx w) {
  return Inv ? mul_conj(a, w) : mul(a, w);
}
// Multiply by -i (forward) or +i (inverse): the root exp(-+ i*pi/2).
template <bool Inv>
inline cplx rot(cplx a) {
  return Inv ? cplx{-a.im, a.re} : cplx{a.im, -a.re};
}

// exp(-2*pi*i*num/den) with the argument reduced exactly first.
cplx root(int64_t num, int64_t den) {
  const int64_t r = num % den;
  const double a = -2.0 * kPi * static_cast<double>(r) / static_cast<double>(den);
  return {std::cos(a), std::sin(a)};
}

bool is_smooth(int64_t n, std::initializer_list<int> primes) {
  for (int p : primes)
    while (n % p == 0) n /= p;
  return n == 1;
}

// One Stockham stage of radix r on sub-problems of length len = r*m with
// stride s: reads x[q + s*(p + j*m)], writes
// y[q + s*(r*p + k)] = w_len^(p*k) * sum_j x[q + s*(p + j*m)] * w_r^(j*k).
template <bool Inv>
void stage(int r, int64_t m, int64_t s, const cplx* tw, const cplx* x, cplx* y) {
  switch (r) {
    case 2:
      for (int64_t p = 0; p < m; ++p) {
        const cplx w1 = tw[p];
        const cplx* x0 = x + s * p;
        const cplx* x1 = x + s * (p + m);
        cplx* y0 = y + s * 2 * p;
        cplx* y1 = y0 + s;
        for (int64_t q = 0; q < s; ++q) {
          const cplx a0 = x0[q], a1 = x1[q];
          y0[q] = add(a0, a1);
          y1[q] = twiddle<Inv>(sub(a0, a1), w1);
        }
      }
      return;
    case 3: {
      const double h = std::sqrt(3.0) / 2;
      for (int64_t p = 0; p < m; ++p) {
        const cplx w1 = tw[2 * p], w2 = tw[2 * p + 1];
        const cplx* x0 = x + s * p;
        const cplx* x1 = x + s * (p + m);
        const cplx* x2 = x + s * (p + 2 * m);
        cplx* y0 = y + s * 3 * p;
        for (int64_t q = 0; q < s; ++q) {
          const cplx a0 = x0[q], a1 = x1[q], a2 = x2[q];
          const cplx t1 = add(a1, a2);
          const cplx t2 = sub(a0, scale(t1, 0.5));
          const cplx d = rot<Inv>(scale(sub(a1, a2), h));
          y0[q] = add(a0, t1);
          y0[q + s] = twiddle<Inv>(add(t2, d), w1);
          y0[q + 2 * s] = twiddle<Inv>(sub(t2, d), w2);
        }
      }
      return;
    }
    case 4:
      for (int64_t p = 0; p < m; ++p) {
        const cplx w1 = tw[3 * p], w2 = tw[3 * p + 1], w3 = tw[3 * p + 2];
        const cplx* x0 = x + s * p;
        const cplx* x1 = x + s * (p + m);
        const cplx* x2 = x + s * (p + 2 * m);
        const cplx* x3 = x + s * (p + 3 * m);
        cplx* y0 = y + s * 4 * p;
        for (int64_t q = 0; q < s; ++q) {
          const cplx a0 = x0[q], a1 = x1[q], a2 = x2[q], a3 = x3[q];
          const cplx b0 = add(a0, a2), b1 = sub(a0, a2), b2 = add(a1, a3), b3 = rot<Inv>(sub(a1, a3));
          y0[q] = add(b0, b2);
          y0[q + s] = twiddle<Inv>(add(b1, b3), w1);
          y0[q + 2 * s] = twiddle<Inv>(sub(b0, b2), w2);
          y0[q + 3 * s] = twiddle<Inv>(sub(b1, b3), w3);
        }
      }
      return;
    case 5: {
      const double c1 = std::cos(2 * kPi / 5), c2 = std::cos(4 * kPi / 5);
      const double s1 = std::sin(2 * kPi / 5), s2 = std::sin(4 * kPi / 5);
      for (int64_t p = 0; p < m; ++p) {
        const cplx* w = tw + 4 * p;
        const cplx* x0 = x + s * p;
        cplx* y0 = y + s * 5 * p;
        for (int64_t q = 0; q < s; ++q) {
          const cplx a0 = x0[q], a1 = x0[q + s * m], a2 = x0[q + 2 * s * m], a3 = x0[q + 3 * s * m],
                     a4 = x0[q + 4 * s * m];
          const cplx t1 = add(a1, a4), t2 = add(a2, a3), t3 = sub(a1, a4), t4 = sub(a2, a3);
          const cplx u1 = add(a0, add(scale(t1, c1), scale(t2, c2)));
          const cplx u2 = add(a0, add(scale(t1, c2), scale(t2, c1)));
          const cplx v1 = rot<Inv>(add(scale(t3, s1), scale(t4, s2)));
          const cplx v2 = rot<Inv>(sub(scale(t3, s2), scale(t4, s1)));
          y0[q] = add(a0, add(t1, t2));
          y0[q + s] = twiddle<Inv>(add(u1, v1), w[0]);
          y0[q + 2 * s] = twiddle<Inv>(add(u2, v2), w[1]);
          y0[q + 3 * s] = twiddle<Inv>(sub(u2, v2), w[2]);
          y0[q + 4 * s] = twiddle<Inv>(sub(u1, v1), w[3]);
        }
      }
      return;
    }
    default: {  // small odd primes (7, 11, 13): the r-point DFT directly
      assert(r <= 13);
      cplx wr[13], a[13];
      for (int j = 0; j < r; ++j) wr[j] = Inv ? conj(root(j, r)) : root(j, r);
      for (int64_t p = 0; p < m; ++p) {
        const cplx* w = tw + (r - 1) * p;
        for (int64_t q = 0; q < s; ++q) {
          for (int j = 0; j < r; ++j) a[j] = x[q + s * (p + j * m)];
          for (int k = 0; k < r; ++k) {
            cplx acc = a[0];
            for (int j = 1; j < r; ++j) acc = add(acc, mul(a[j], wr[(j * k) % r]));
            y[q + s * (r * p + k)] = k == 0 ? acc : twiddle<Inv>(acc, w[k - 1]);
          }
        }
      }
      return;
    }
  }
}

}  // namespace

int64_t next_fast_length(int64_t n, bool even) {
  // Over every 3^b * 5^c <= 2n, the least multiple by a power of two that
  // reaches n: O(log^2 n) steps however sparse the smooth numbers get.
  using u128 = unsigned __int128;
  const u128 target = static_cast<u128>(std::max<int64_t>(n, 1));
  u128 best = ~u128{0};
  for (u128 p5 = 1; p5 < 2 * target; p5 *= 5)
    for (u128 p35 = p5; p35 < 2 * target; p35 *= 3) {
      u128 m = p35;
      while (m < target || (even && m % 2 != 0)) m *= 2;
      best = std::min(best, m);
    }
  return best > static_cast<u128>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(best);
}

// Bluestein: X[k] = c[k] * sum_j (x[j] c[j]) conj(c[k-j]) with c[k] = exp(-i*pi*k^2/n),
// a linear convolution done as a circular one of length m >= 2n-1.
struct Plan::Bluestein {
  int64_t m;
  Plan inner;
  std::vector<cplx> chirp;  // c[k], k < n
  std::vector<cplx> bhat;   // FFT_m of conj(c[|k|]) placed circularly, divided by m

  Bluestein(int64_t n, int64_t m_) : m(m_), inner(m_), chirp(static_cast<std::size_t>(n)),
                                     bhat(static_cast<std::size_t>(m_), cplx{0, 0}) {
    for (int64_t k = 0; k < n; ++k) {
      // k^2 mod 2n keeps the angle small: exp(-i*pi*k^2/n) = root(k^2 mod 2n, 2n)
      const int64_t k2 = static_cast<int64_t>((static_cast<unsigned __int128>(k) * k) % (2 * n));
      chirp[static_cast<std::size_t>(k)] = root(k2, 2 * n);
    }
    const double inv_m = 1.0 / static_cast<double>(m);
    for (int64_t k = 0; k < n; ++k) {
      const cplx b = scale(conj(chirp[static_cast<std::size_t>(k)]), inv_m);
      bhat[static_cast<std::size_t>(k)] = b;
      if (k) bhat[static_cast<std::size_t>(m - k)] = b;
    }
    std::vector<cplx> scratch(static_cast<std::size_t>(inner.scratch_elems(1)));
    inner.execute(bhat.data(), 1, false, scratch.data());
  }
};

Plan::Plan(int64_t n) : n_(n) {
  assert(n >= 1);
  int64_t rest = n;
  while (rest % 4 == 0) radices_.push_back(4), rest /= 4;
  if (rest % 2 == 0) radices_.push_back(2), rest /= 2;
  for (int p : {3, 5, 7, 11, 13})
    while (rest % p == 0) radices_.push_back(p), rest /= p;
  if (rest != 1) {
    assert(!is_stockham_length(n));
    radices_.clear();
    bluestein_ = std::make_shared<const Bluestein>(n, next_fast_length(2 * n - 1));
    return;
  }
  int64_t len = n;
  for (int r : radices_) {
    const int64_t m = len / r;
    stage_offset_.push_back(static_cast<int64_t>(twiddles_.size()));
    for (int64_t p = 0; p < m; ++p)
      for (int k = 1; k < r; ++k) twiddles_.push_back(root(p * k, len));
    len = m;
  }
}

bool is_stockham_length(int64_t n) { return n >= 1 && is_smooth(n, {2, 3, 5, 7, 11, 13}); }

int64_t plan_scratch_elems(int64_t n, int64_t batch) {
  return is_stockham_length(n) ? n * batch : 2 * next_fast_length(2 * n - 1);
}

namespace {
// Sequences the strided executor transforms together: enough for a
// vectorisable inner loop, few enough that a block and its ping-pong copy
// stay in L2.
int64_t block_of(int64_t n) { return std::clamp<int64_t>(8192 / std::max<int64_t>(n, 1), 1, 16); }
}  // namespace

int64_t strided_scratch_elems(int64_t n) {
  return is_stockham_length(n) ? 2 * n * block_of(n) : n + plan_scratch_elems(n, 1);
}

int64_t plan_table_bytes(int64_t n) {
  // Stockham twiddles: sum over stages of (len/r)*(r-1) < 2n; Bluestein: chirp
  // n, bhat m and the inner plan.
  if (is_stockham_length(n)) return 2 * n * static_cast<int64_t>(sizeof(cplx));
  const int64_t m = next_fast_length(2 * n - 1);
  return (n + m) * static_cast<int64_t>(sizeof(cplx)) + plan_table_bytes(m);
}

void Plan::stockham(cplx* data, int64_t batch, bool inverse, cplx* scratch) const {
  cplx* x = data;
  cplx* y = scratch;
  int64_t s = batch, len = n_;
  for (std::size_t i = 0; i < radices_.size(); ++i) {
    const int r = radices_[i];
    const int64_t m = len / r;
    const cplx* tw = twiddles_.data() + stage_offset_[i];
    if (inverse)
      stage<true>(r, m, s, tw, x, y);
    else
      stage<false>(r, m, s, tw, x, y);
    std::swap(x, y);
    s *= r;
    len = m;
  }
  if (x != data) std::memcpy(data, x, sizeof(cplx) * static_cast<std::size_t>(n_ * batch));
}

void Plan::execute(cplx* data, int64_t batch, bool inverse, cplx* scratch) const {
  if (n_ == 1) return;
  if (!bluestein_) return stockham(data, batch, inverse, scratch);
  // Inverse by conjugation: IDFT(x) = conj(DFT(conj(x))).
  const Bluestein& B = *bluestein_;
  cplx* a = scratch;
  cplx* inner_scratch = scratch + B.m;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = 0; j < n_; ++j) {
      const cplx v = data[b + batch * j];
      a[j] = mul(inverse ? conj(v) : v, B.chirp[static_cast<std::size_t>(j)]);
    }
    std::fill(a + n_, a + B.m, cplx{0, 0});
    B.inner.execute(a, 1, false, inner_scratch);
    for (int64_t k = 0; k < B.m; ++k) a[k] = mul(a[k], B.bhat[static_cast<std::size_t>(k)]);
    B.inner.execute(a, 1, true, inner_scratch);
    for (int64_t k = 0; k < n_; ++k) {
      const cplx v = mul(a[k], B.chirp[static_cast<std::size_t>(k)]);
      data[b + batch * k] = inverse ? conj(v) : v;
    }
  }
}

void Plan::execute_strided(cplx* data, int64_t count, int64_t stride, int64_t dist, bool inverse,
                           cplx* scratch) const {
  if (n_ == 1 || count == 0) return;
  if (bluestein_) {  // one line at a time through a contiguous copy
    cplx* line = scratch;
    for (int64_t b = 0; b < count; ++b) {
      cplx* d = data + b * dist;
      for (int64_t j = 0; j < n_; ++j) line[j] = d[j * stride];
      execute(line, 1, inverse, scratch + n_);
      for (int64_t j = 0; j < n_; ++j) d[j * stride] = line[j];
    }
    return;
  }
  const int64_t B = block_of(n_);
  cplx* buf = scratch;  // buf[j*nb + b]: the block, interleaved
  cplx* tmp = scratch + n_ * B;
  for (int64_t b0 = 0; b0 < count; b0 += B) {
    const int64_t nb = std::min(B, count - b0);
    cplx* d = data + b0 * dist;
    if (dist == 1) {
      for (int64_t j = 0; j < n_; ++j) std::copy(d + j * stride, d + j * stride + nb, buf + j * nb);
    } else {
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t j = 0; j < n_; ++j) buf[j * nb + b] = d[b * dist + j * stride];
    }
    stockham(buf, nb, inverse, tmp);
    if (dist == 1) {
      for (int64_t j = 0; j < n_; ++j) std::copy(buf + j * nb, buf + (j + 1) * nb, d + j * stride);
    } else {
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t j = 0; j < n_; ++j) d[b * dist + j * stride] = buf[j * nb + b];
    }
  }
}

// ---------------------------------------------------------------- N-d complex

PlanNd::PlanNd(int64_t n0, int64_t n1, int64_t n2) : n_{n0, n1, n2}, p_{Plan(n0), Plan(n1), Plan(n2)} {}

int64_t PlanNd::scratch_elems() const {
  int64_t m = 0;
  for (int a = 0; a < 3; ++a)
    if (n_[a] > 1) m = std::max(m, strided_scratch_elems(n_[a]));
  return m;
}

void PlanNd::execute(cplx* data, bool inverse, cplx* scratch) const {
  const int64_t n0 = n_[0], n1 = n_[1], n2 = n_[2];
  p_[2].execute_strided(data, n0 * n1, 1, n2, inverse, scratch);
  for (int64_t i = 0; i < n0; ++i) p_[1].execute_strided(data + i * n1 * n2, n2, n2, 1, inverse, scratch);
  p_[0].execute_strided(data, n1 * n2, n1 * n2, 1, inverse, scratch);
}

// ---------------------------------------------------------------- N-d real
//
// An even row of n2 reals runs as a complex FFT of hn = n2/2 points on
// z[k] = x[2k] + i x[2k+1]; with Z = FFT(z) and w = exp(-2*pi*i/n2),
//   X[k] = Fe + w^k Fo,  Fe = (Z[k] + conj Z[hn-k]) / 2,  Fo = -i (Z[k] - conj Z[hn-k]) / 2,
// and back, Z[k] = (X[k] + conj X[hn-k]) + i (X[k] - conj X[hn-k]) conj(w^k) is
// 2 * FFT(z), so the unnormalised inverse of length hn gives n2 * x, as the
// full-length inverse would. Rows go through the FFT in blocks (see
// execute_strided); the other axes through execute_strided.

RealPlanNd::RealPlanNd(int64_t n0, int64_t n1, int64_t n2)
    : n_{n0, n1, n2}, p0_(n0), p1_(n1), row_(n2 % 2 == 0 ? n2 / 2 : n2) {
  if (n2 % 2 == 0)
    for (int64_t k = 0; k < n2 / 2; ++k) row_tw_.push_back(root(k, n2));
}

namespace {
// Rows transformed together: the strided executor's block, for the packed length.
int64_t row_block(int64_t n2) { return n2 % 2 == 0 && is_stockham_length(n2 / 2) ? block_of(n2 / 2) : 1; }
}  // namespace

int64_t real_nd_scratch_elems(int64_t n0, int64_t n1, int64_t n2) {
  int64_t row;
  if (n2 % 2 == 0)
    row = is_stockham_length(n2 / 2) ? 2 * (n2 / 2) * row_block(n2) : plan_scratch_elems(n2 / 2, 1);
  else
    row = n2 + plan_scratch_elems(n2, 1);
  return std::max({row, n1 > 1 ? strided_scratch_elems(n1) : 0, n0 > 1 ? strided_scratch_elems(n0) : 0});
}

void RealPlanNd::forward(const double* real, cplx* spec, cplx* scratch, int64_t used0, int64_t used1) const {
  const int64_t n0 = n_[0], n1 = n_[1], n2 = n_[2], h = half();
  const int64_t u0 = used0 < 0 ? n0 : std::min(used0, n0), u1 = used1 < 0 ? n1 : std::min(used1, n1);
  const int64_t hn = n2 / 2, B = row_block(n2);
  for (int64_t i0 = 0; i0 < n0; ++i0) {
    // rows outside the corner are zero, and so are their spectra
    const int64_t first_zero = i0 < u0 ? u1 : 0;
    std::fill(spec + (i0 * n1 + first_zero) * h, spec + (i0 + 1) * n1 * h, cplx{0, 0});
    for (int64_t r0 = i0 * n1; r0 < i0 * n1 + first_zero; r0 += B) {
      const int64_t nb = std::min(B, i0 * n1 + first_zero - r0);
      if (n2 % 2 == 0) {
        // the block's packed rows, interleaved: buf[k*nb + b] = z_b[k]
        cplx* buf = scratch;
        if (B > 1) {
          for (int64_t b = 0; b < nb; ++b) {
            const double* x = real + (r0 + b) * n2;
            for (int64_t k = 0; k < hn; ++k) buf[k * nb + b] = {x[2 * k], x[2 * k + 1]};
          }
          row_.stockham(buf, nb, false, scratch + hn * B);
        } else {  // Bluestein length: one row, in place in its spectrum row
          buf = spec + r0 * h;
          const double* x = real + r0 * n2;
          for (int64_t k = 0; k < hn; ++k) buf[k] = {x[2 * k], x[2 * k + 1]};
          row_.execute(buf, 1, false, scratch);
        }
        for (int64_t b = 0; b < nb; ++b) {
          cplx* X = spec + (r0 + b) * h;
          const cplx z0 = buf[b];
          // pairs (k, hn-k) read from buf before X (which may be buf itself) is written
          for (int64_t k = 1; 2 * k <= hn; ++k) {
            const int64_t j = hn - k;
            const cplx A = buf[k * nb + b], Bj = buf[j * nb + b];
            const cplx fe = scale(add(A, conj(Bj)), 0.5);
            const cplx fo = rot<false>(scale(sub(A, conj(Bj)), 0.5));
            X[k] = add(fe, mul(fo, row_tw_[static_cast<std::size_t>(k)]));
            X[j] = add(conj(fe), mul(conj(fo), row_tw_[static_cast<std::size_t>(j)]));
          }
          X[0] = {z0.re + z0.im, 0.0};
          X[hn] = {z0.re - z0.im, 0.0};
        }
      } else {
        const double* x = real + r0 * n2;
        cplx* z = scratch;
        for (int64_t k = 0; k < n2; ++k) z[k] = {x[k], 0.0};
        row_.execute(z, 1, false, scratch + n2);
        std::copy(z, z + h, spec + r0 * h);
      }
    }
  }
  if (n1 > 1)
    for (int64_t i = 0; i < u0; ++i) p1_.execute_strided(spec + i * n1 * h, h, h, 1, false, scratch);
  if (n0 > 1) p0_.execute_strided(spec, n1 * h, n1 * h, 1, false, scratch);
}

void RealPlanNd::inverse(cplx* spec, double* real, cplx* scratch, int64_t need0, int64_t need1) const {
  const int64_t n0 = n_[0], n1 = n_[1], n2 = n_[2], h = half();
  const int64_t u0 = need0 < 0 ? n0 : std::min(need0, n0), u1 = need1 < 0 ? n1 : std::min(need1, n1);
  if (n0 > 1) p0_.execute_strided(spec, n1 * h, n1 * h, 1, true, scratch);
  if (n1 > 1)
    for (int64_t i = 0; i < u0; ++i) p1_.execute_strided(spec + i * n1 * h, h, h, 1, true, scratch);
  const int64_t hn = n2 / 2, B = row_block(n2);
  for (int64_t i0 = 0; i0 < u0; ++i0)
    for (int64_t r0 = i0 * n1; r0 < i0 * n1 + u1; r0 += B) {
      const int64_t nb = std::min(B, i0 * n1 + u1 - r0);
      if (n2 % 2 == 0) {
        cplx* buf = B > 1 ? scratch : spec + r0 * h;  // Bluestein length: in place, one row
        for (int64_t b = 0; b < nb; ++b) {
          const cplx* X = spec + (r0 + b) * h;
          for (int64_t k = 0; 2 * k <= hn; ++k) {
            const int64_t j = hn - k;
            const cplx A = X[k], Bj = X[j];
            const cplx zk = add(add(A, conj(Bj)), rot<true>(mul_conj(sub(A, conj(Bj)), row_tw_[static_cast<std::size_t>(k)])));
            if (j < hn)
              buf[j * nb + b] =
                  add(add(Bj, conj(A)), rot<true>(mul_conj(sub(Bj, conj(A)), row_tw_[static_cast<std::size_t>(j)])));
            buf[k * nb + b] = zk;
          }
        }
        if (B > 1)
          row_.stockham(buf, nb, true, scratch + hn * B);
        else
          row_.execute(buf, 1, true, scratch);
        for (int64_t b = 0; b < nb; ++b) {
          double* x = real + (r0 + b) * n2;
          for (int64_t k = 0; k < hn; ++k) {
            x[2 * k] = buf[k * nb + b].re;
            x[2 * k + 1] = buf[k * nb + b].im;
          }
        }
      } else {
        const cplx* X = spec + r0 * h;
        cplx* z = scratch;
        z[0] = X[0];
        for (int64_t k = 1; k < h; ++k) {
          z[k] = X[k];
          z[n2 - k] = conj(X[k]);
        }
        row_.execute(z, 1, true, scratch + n2);
        double* x = real + r0 * n2;
        for (int64_t k = 0; k < n2; ++k) x[k] = z[k].re;
      }
    }
}

}  // namespace cnncore::cpu::fft
