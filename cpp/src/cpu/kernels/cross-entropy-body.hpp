// Fused cross-entropy bodies (see cross-entropy-fused.hpp) over a range of
// positions [p0, p1) of an (N, C, inner) view, serial. Included inside an
// anonymous namespace by each kernel level's source file
// (f32-elementwise-level.inc, compiled once per level; T = float) and by cross-entropy-fused.cpp
// (T = double), after exp-tanh-body.hpp. Only builtins: nothing here may
// leak out of a file compiled with wider ISA flags.

// The per-position path serves the (N, C) case (no spatial dims): the C
// classes of position p are the contiguous row src + p * C, so the class
// loops are unit-stride and vectorise. With spatial dims (inner > 1) the
// blocked path further down runs instead.

// log sum_c exp(x_c) computed as m + log sum exp(x_c - m).
template <typename T>
T ce_log_sum_exp(int64_t C, const T* x) {
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
template <typename T>
double ce_forward_range(int64_t C, int64_t p0, int64_t p1, const T* src, const T* weights,
                        const int64_t* target, int64_t ignore_index, double smoothing, T* loss) {
  const T keep = static_cast<T>(1.0 - smoothing), spread = static_cast<T>(smoothing / double(C));
  double sum = 0;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t tp = target[p];
    T l = 0;
    if (tp != ignore_index) {
      const T* x = src + p * C;
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
template <typename T>
void ce_backward_range(int64_t C, int64_t p0, int64_t p1, const T* diff_dst, int64_t dstride,
                       double factor, const T* src, const T* weights, T wsum, const int64_t* target,
                       int64_t ignore_index, double smoothing, T* diff_src) {
  const T keep = static_cast<T>(1.0 - smoothing), spread = static_cast<T>(smoothing / double(C));
  for (int64_t p = p0; p < p1; ++p) {
    const T* x = src + p * C;
    T* dx = diff_src + p * C;
    const int64_t tp = target[p];
    if (tp == ignore_index) {
      for (int64_t c = 0; c < C; ++c) dx[c] = 0;
      continue;
    }
    const T s = static_cast<T>(static_cast<double>(diff_dst[p * dstride]) * factor);
    const T wt = keep * (weights ? weights[tp] : T(1));
    const T A = wt + spread * wsum;
    const T lse = ce_log_sum_exp(C, x);
    if (weights) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dx[c] = s * (exp_body(x[c] - lse) * A - spread * weights[c]);
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dx[c] = s * (exp_body(x[c] - lse) * A - spread);
    }
    // the target's own term; recomputed from scratch so that it rounds like the others
    dx[tp] = s * (exp_body(x[tp] - lse) * A - (spread * (weights ? weights[tp] : T(1)) + wt));
  }
}

// Positions with spatial dims (inner > 1): blocks of w <= kCeBlock neighbouring
// positions of one sample, whose classes lie `inner` apart. The loops run over
// the classes outside and over the block's positions inside (unit stride,
// vectorised), as softmax-body.hpp's column blocks do.
constexpr int64_t kCeBlock = 64;

// lse[j] = log sum_c exp(x[c * inner + j]), as m + log sum exp(x - m).
template <typename T>
void ce_block_log_sum_exp(int64_t C, int64_t inner, int64_t w, const T* x, T* lse) {
  T m[kCeBlock], s[kCeBlock];
  for (int64_t j = 0; j < w; ++j) {
    m[j] = neg_inf_body<T>();
    s[j] = 0;
  }
  for (int64_t c = 0; c < C; ++c) {
    const T* xr = x + c * inner;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];  // NaN is skipped here, and poisons the sum
  }
  for (int64_t c = 0; c < C; ++c) {
    const T* xr = x + c * inner;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) s[j] += exp_body(xr[j] - m[j]);
  }
  for (int64_t j = 0; j < w; ++j) lse[j] = m[j] + log_body(s[j]);
}

// One block of ce_forward_range_blocked: x, target (and loss when not null) point at
// its first position; adds the losses to sum in position order.
template <typename T>
void ce_forward_block(int64_t C, int64_t inner, int64_t w, const T* x, const T* weights, const int64_t* target,
                      int64_t ignore_index, T keep, T spread, bool smooth, T* loss, double& sum) {
  T lse[kCeBlock], sm[kCeBlock];
  ce_block_log_sum_exp(C, inner, w, x, lse);
  if (smooth) {
    T acc[kCeBlock];
    for (int64_t j = 0; j < w; ++j) acc[j] = 0;
    for (int64_t c = 0; c < C; ++c) {
      const T* xr = x + c * inner;
      const T wc = weights ? weights[c] : T(1);
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) acc[j] += wc * (lse[j] - xr[j]);
    }
    for (int64_t j = 0; j < w; ++j) sm[j] = spread * acc[j];
  }
  for (int64_t j = 0; j < w; ++j) {
    const int64_t tp = target[j];
    T l = 0;
    if (tp != ignore_index) {
      l = keep * (weights ? weights[tp] : T(1)) * (lse[j] - x[tp * inner + j]);
      if (smooth) l += sm[j];
    }
    if (loss) loss[j] = l;
    sum += static_cast<double>(l);
  }
}

// One block of ce_backward_range_blocked: x, diff_src and target point at its first
// position, diff_dst at its first position's value (stride dstride). The softmax is
// exp(x - m) / sum, with exp(x - m) kept in diff_src in between (one exp per element).
template <typename T>
void ce_backward_block(int64_t C, int64_t inner, int64_t w, const T* diff_dst, int64_t dstride, double factor,
                       const T* x, const T* weights, T wsum, const int64_t* target, int64_t ignore_index, T keep,
                       T spread, T* dx) {
  T m[kCeBlock], s[kCeBlock], sc[kCeBlock], A[kCeBlock], et[kCeBlock];
  for (int64_t j = 0; j < w; ++j) {
    m[j] = neg_inf_body<T>();
    s[j] = 0;
  }
  for (int64_t c = 0; c < C; ++c) {
    const T* xr = x + c * inner;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];  // NaN is skipped here, and poisons the sum
  }
  for (int64_t c = 0; c < C; ++c) {
    const T* xr = x + c * inner;
    T* dr = dx + c * inner;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) {
      dr[j] = exp_body(xr[j] - m[j]);
      s[j] += dr[j];
    }
  }
  bool any_ignored = false;
  for (int64_t j = 0; j < w; ++j) {
    const int64_t tp = target[j];
    if (tp == ignore_index) {
      any_ignored = true;
      sc[j] = 0;
      A[j] = 0;
      et[j] = 0;
    } else {
      sc[j] = static_cast<T>(static_cast<double>(diff_dst[j * dstride]) * factor);
      // softmax_c * sum_k a_k = exp(x_c - m) * (sum_k a_k / sum)
      A[j] = (keep * (weights ? weights[tp] : T(1)) + spread * wsum) / s[j];
      et[j] = dx[tp * inner + j];
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    T* dr = dx + c * inner;
    const T sw = weights ? spread * weights[c] : spread;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) dr[j] = sc[j] * (dr[j] * A[j] - sw);
  }
  for (int64_t j = 0; j < w; ++j) {
    const int64_t tp = target[j];
    if (tp == ignore_index) continue;
    const T wt = weights ? weights[tp] : T(1);
    // the target's own term, from its kept exp so that it rounds like the others
    dx[tp * inner + j] = sc[j] * (et[j] * A[j] - (spread * wt + keep * wt));
  }
  if (any_ignored)  // exactly 0 there, whatever the logits (0 * NaN above is NaN)
    for (int64_t j = 0; j < w; ++j)
      if (target[j] == ignore_index)
        for (int64_t c = 0; c < C; ++c) dx[c * inner + j] = 0;
}

// Splits [p0, p1) into blocks of neighbouring positions of one sample.
template <typename T>
double ce_forward_range_blocked(int64_t C, int64_t inner, int64_t p0, int64_t p1, const T* src, const T* weights,
                                const int64_t* target, int64_t ignore_index, double smoothing, T* loss) {
  const T keep = static_cast<T>(1.0 - smoothing), spread = static_cast<T>(smoothing / double(C));
  double sum = 0;
  for (int64_t p = p0; p < p1;) {
    const int64_t n = p / inner, i = p % inner;
    int64_t w = inner - i < p1 - p ? inner - i : p1 - p;
    if (w > kCeBlock) w = kCeBlock;
    ce_forward_block(C, inner, w, src + n * C * inner + i, weights, target + p, ignore_index, keep, spread,
                     smoothing > 0, loss ? loss + p : nullptr, sum);
    p += w;
  }
  return sum;
}

template <typename T>
void ce_backward_range_blocked(int64_t C, int64_t inner, int64_t p0, int64_t p1, const T* diff_dst, int64_t dstride,
                               double factor, const T* src, const T* weights, T wsum, const int64_t* target,
                               int64_t ignore_index, double smoothing, T* diff_src) {
  const T keep = static_cast<T>(1.0 - smoothing), spread = static_cast<T>(smoothing / double(C));
  for (int64_t p = p0; p < p1;) {
    const int64_t n = p / inner, i = p % inner;
    int64_t w = inner - i < p1 - p ? inner - i : p1 - p;
    if (w > kCeBlock) w = kCeBlock;
    const int64_t off = n * C * inner + i;
    ce_backward_block(C, inner, w, diff_dst + p * dstride, dstride, factor, src + off, weights, wsum, target + p,
                      ignore_index, keep, spread, diff_src + off);
    p += w;
  }
}

template <typename T>
double ce_forward_range_any(int64_t C, int64_t inner, int64_t p0, int64_t p1, const T* src, const T* weights,
                            const int64_t* target, int64_t ignore_index, double smoothing, T* loss) {
  return inner == 1
             ? ce_forward_range<T>(C, p0, p1, src, weights, target, ignore_index, smoothing, loss)
             : ce_forward_range_blocked<T>(C, inner, p0, p1, src, weights, target, ignore_index, smoothing, loss);
}

template <typename T>
void ce_backward_range_any(int64_t C, int64_t inner, int64_t p0, int64_t p1, const T* diff_dst, int64_t dstride,
                           double factor, const T* src, const T* weights, T wsum, const int64_t* target,
                           int64_t ignore_index, double smoothing, T* diff_src) {
  if (inner == 1)
    ce_backward_range<T>(C, p0, p1, diff_dst, dstride, factor, src, weights, wsum, target,
                         ignore_index, smoothing, diff_src);
  else
    ce_backward_range_blocked<T>(C, inner, p0, p1, diff_dst, dstride, factor, src, weights, wsum, target,
                                 ignore_index, smoothing, diff_src);
}
