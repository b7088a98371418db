// Fast Fourier transforms in double precision, any length, 1 to 3 axes.
//
// Conventions (those of numpy.fft, without its normalisation):
//   forward  X[k] = sum_j x[j] exp(-2*pi*i*j*k/n)
//   inverse  x[j] = sum_k X[k] exp(+2*pi*i*j*k/n)      (no 1/n: callers scale)
//
// Lengths whose prime factors are all <= 13 run as a mixed-radix Stockham
// autosort FFT (radix 4, 2, 3, 5 butterflies, a generic one for 7, 11, 13);
// other lengths use Bluestein's chirp-z algorithm over a 2-3-5-smooth length
// >= 2n-1. Plans are built once (twiddle tables) and are read-only afterwards,
// so one plan may run on many threads; every buffer an execution needs is
// passed in by the caller (no allocation, no exceptions while executing).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace cnncore::cpu::fft {

struct cplx {
  double re, im;
};

// Smallest m >= n (n >= 1) whose only prime factors are 2, 3 and 5; with
// `even`, also a multiple of 2 (for the real-input transform of a last axis).
int64_t next_fast_length(int64_t n, bool even = false);

// Whether length n runs as a Stockham FFT (all prime factors <= 13) rather
// than through Bluestein.
bool is_stockham_length(int64_t n);

// Scratch sizes, computable without building a plan (for workspace budgets).
int64_t plan_scratch_elems(int64_t n, int64_t batch);
int64_t strided_scratch_elems(int64_t n);
int64_t real_nd_scratch_elems(int64_t n0, int64_t n1, int64_t n2);
// Bytes of twiddle and chirp tables a Plan of length n holds (an upper bound).
int64_t plan_table_bytes(int64_t n);

// A 1-D complex transform of length n, applied to `batch` interleaved
// sequences at once: element j of sequence b lives at data[b + batch * j].
// (batch = 1 is one contiguous sequence; batch = row length transforms every
// column of a row-major 2-D array.)
class Plan {
 public:
  explicit Plan(int64_t n);  // n >= 1
  int64_t size() const { return n_; }
  bool uses_bluestein() const { return bluestein_ != nullptr; }
  // Complex elements of scratch `execute` needs for `batch` sequences.
  int64_t scratch_elems(int64_t batch) const { return plan_scratch_elems(n_, batch); }
  // In place; `scratch` must hold scratch_elems(batch) and not alias `data`.
  void execute(cplx* data, int64_t batch, bool inverse, cplx* scratch) const;
  // In place on `count` sequences with element j of sequence b at
  // data[b*dist + j*stride] (rows: stride 1, dist = row length; columns:
  // stride = row length, dist 1). Works through blocks of a few sequences
  // gathered into scratch, so every stage runs in cache with a vectorisable
  // inner loop. `scratch` holds strided_scratch_elems(size()).
  void execute_strided(cplx* data, int64_t count, int64_t stride, int64_t dist, bool inverse,
                       cplx* scratch) const;

 private:
  struct Bluestein;
  int64_t n_;
  std::vector<int> radices_;            // product = n_ (Stockham path)
  std::vector<int64_t> stage_offset_;   // into twiddles_, one per stage
  std::vector<cplx> twiddles_;          // stage: w_len^(p*k), p < len/r, 1 <= k < r
  std::shared_ptr<const Bluestein> bluestein_;
  void stockham(cplx* data, int64_t batch, bool inverse, cplx* scratch) const;
  friend class RealPlanNd;
};

// Complex transform over every axis of a row-major (n0, n1, n2) array
// (use n0 = 1 and/or n1 = 1 for fewer axes).
class PlanNd {
 public:
  PlanNd(int64_t n0, int64_t n1, int64_t n2);
  int64_t elems() const { return n_[0] * n_[1] * n_[2]; }
  int64_t scratch_elems() const;
  void execute(cplx* data, bool inverse, cplx* scratch) const;

 private:
  int64_t n_[3];
  Plan p_[3];
};

// Real-input transform over every axis of a row-major real (n0, n1, n2)
// array. Its spectrum keeps the non-redundant half of the last axis:
// (n0, n1, n2/2 + 1) complex values (Hermitian symmetry gives the rest).
// An even n2 runs as a complex transform of length n2/2 (the usual packing
// of even and odd samples); an odd n2 as a full complex row.
class RealPlanNd {
 public:
  RealPlanNd(int64_t n0, int64_t n1, int64_t n2);
  int64_t real_elems() const { return n_[0] * n_[1] * n_[2]; }
  int64_t half() const { return n_[2] / 2 + 1; }
  int64_t spec_elems() const { return n_[0] * n_[1] * half(); }
  int64_t scratch_elems() const { return real_nd_scratch_elems(n_[0], n_[1], n_[2]); }
  // spec = FFT(real). `real` is left unchanged. Rows (i0, i1) outside the
  // corner i0 < used0, i1 < used1 must be zero; they are not read (pruned).
  void forward(const double* real, cplx* spec, cplx* scratch, int64_t used0 = -1, int64_t used1 = -1) const;
  // real = unnormalised inverse FFT of the Hermitian spectrum `spec`
  // (n0*n1*n2 times the signal); `spec` is destroyed. Only the rows in the
  // corner i0 < need0, i1 < need1 are computed; other rows are not written.
  void inverse(cplx* spec, double* real, cplx* scratch, int64_t need0 = -1, int64_t need1 = -1) const;

 private:
  int64_t n_[3];
  Plan p0_, p1_, row_;          // row_: length n2/2 (even n2) or n2 (odd n2)
  std::vector<cplx> row_tw_;    // exp(-2*pi*i*k/n2), k < n2/2 (even n2 only)
};

}  // namespace cnncore::cpu::fft
