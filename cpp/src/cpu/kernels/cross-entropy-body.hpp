// Fused cross-entropy bodies (see cross-entropy-fused.hpp) over a range of
// positions [p0, p1) of an (N, C, inner) view, serial. Included inside an
// anonymous namespace by each kernel level's source file
// (activation-kernels-<isa>.cpp; T = float) and by cross-entropy-fused.cpp
// (T = double), after softmax-exp-body.hpp. Only builtins: nothing here may
// leak out of a file compiled with wider ISA flags.

// The classes of one position: x[c * stride], stride = 1 when Contig (the
// (N, C) case, unit-stride loops the compiler vectorises) else `inner`.
template <typename T, bool Contig>
struct CeClasses {
  const T* x;
  int64_t stride;
  T operator[](int64_t c) const { return x[c * (Contig ? 1 : stride)]; }
};

// log sum_c exp(x_c) computed as m + log sum exp(x_c - m).
template <typename T, bool Contig>
T ce_log_sum_exp(int64_t C, CeClasses<T, Contig> x) {
  T m = neg_inf_body<T>();
#pragma omp simd reduction(max : m)
  for (int64_t c = 0; c < C; ++c) m = x[c] > m ? x[c] : m;  // NaN is skipped here, and poisons the sum
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < C; ++c) s += exp_body(x[c] - m);
  return m + log_body(s);
}

// With a_c = (1 - eps) w_t [c == t] + eps / C * w_c:
//   l = sum_c a_c (lse - x_c) = (1 - eps) w_t (lse - x_t) + eps / C * sum_c w_c (lse - x_c).
// Writes l_p to loss[p] (when not null); returns the sum over [p0, p1), in double, in order.
template <typename T, bool Contig>
double ce_forward_range(int64_t C, int64_t inner, int64_t p0, int64_t p1, const T* src, const T* weights,
                        const int64_t* target, int64_t ignore_index, double smoothing, T* loss) {
  const T keep = static_cast<T>(1.0 - smoothing), spread = static_cast<T>(smoothing / double(C));
  double sum = 0;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t tp = target[p];
    T l = 0;
    if (tp != ignore_index) {
      const CeClasses<T, Contig> x{src + (p / inner) * C * inner + p % inner, inner};
      const T lse = ce_log_sum_exp(C, x);
      l = keep * (weights ? weights[tp] : T(1)) * (lse - x[tp]);
      if (smoothing > 0) {
        T s = 0;
        if (weights) {
#pragma omp simd reduction(+ : s)
          for (int64_t c = 0; c < C; ++c) s += weights[c] * (lse - x[c]);
        } else {
#pragma omp simd reduction(+ : s)
          for (int64_t c = 0; c < C; ++c) s += lse - x[c];
        }
        l += spread * s;
      }
    }
    if (loss) loss[p] = l;
    sum += static_cast<double>(l);
  }
  return sum;
}

// dl/dx_c = softmax_c * sum_k a_k - a_c, scaled by s_p = diff_dst[p * dstride] * factor;
// wsum = sum_c w_c (C without weights).
template <typename T, bool Contig>
void ce_backward_range(int64_t C, int64_t inner, int64_t p0, int64_t p1, const T* diff_dst, int64_t dstride,
                       double factor, const T* src, const T* weights, T wsum, const int64_t* target,
                       int64_t ignore_index, double smoothing, T* diff_src) {
  const int64_t cs = Contig ? 1 : inner;
  const T keep = static_cast<T>(1.0 - smoothing), spread = static_cast<T>(smoothing / double(C));
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t off = (p / inner) * C * inner + p % inner;
    const CeClasses<T, Contig> x{src + off, inner};
    T* dx = diff_src + off;
    const int64_t tp = target[p];
    if (tp == ignore_index) {
      for (int64_t c = 0; c < C; ++c) dx[c * cs] = 0;
      continue;
    }
    const T s = static_cast<T>(static_cast<double>(diff_dst[p * dstride]) * factor);
    const T wt = keep * (weights ? weights[tp] : T(1));
    const T A = wt + spread * wsum;
    const T lse = ce_log_sum_exp(C, x);
    if (weights) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dx[c * cs] = s * (exp_body(x[c] - lse) * A - spread * weights[c]);
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dx[c * cs] = s * (exp_body(x[c] - lse) * A - spread);
    }
    // the target's own term; recomputed from scratch so that it rounds like the others
    dx[tp * cs] = s * (exp_body(x[tp] - lse) * A - (spread * (weights ? weights[tp] : T(1)) + wt));
  }
}

template <typename T>
double ce_forward_range_any(int64_t C, int64_t inner, int64_t p0, int64_t p1, const T* src, const T* weights,
                            const int64_t* target, int64_t ignore_index, double smoothing, T* loss) {
  return inner == 1
             ? ce_forward_range<T, true>(C, inner, p0, p1, src, weights, target, ignore_index, smoothing, loss)
             : ce_forward_range<T, false>(C, inner, p0, p1, src, weights, target, ignore_index, smoothing, loss);
}

template <typename T>
void ce_backward_range_any(int64_t C, int64_t inner, int64_t p0, int64_t p1, const T* diff_dst, int64_t dstride,
                           double factor, const T* src, const T* weights, T wsum, const int64_t* target,
                           int64_t ignore_index, double smoothing, T* diff_src) {
  if (inner == 1)
    ce_backward_range<T, true>(C, inner, p0, p1, diff_dst, dstride, factor, src, weights, wsum, target,
                               ignore_index, smoothing, diff_src);
  else
    ce_backward_range<T, false>(C, inner, p0, p1, diff_dst, dstride, factor, src, weights, wsum, target,
                                ignore_index, smoothing, diff_src);
}
