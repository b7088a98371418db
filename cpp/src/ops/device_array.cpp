// The op layer of the device array primitives (cnncore/device.hpp): validate,
// plan the broadcast / view / reduction, allocate on the device, run.
#include <cmath>
#include <string>

#include "cnncore/device.hpp"
#include "device/backend.hpp"
#include "ops/checks.hpp"
#include "util/checked.hpp"

namespace cnncore {

using detail::str;
using device::Broadcast;
using device::kMaxDims;
using device::View;

namespace {

// A defined tensor on a device (the CPU has NumPy for these).
device::Backend& device_of(const char* op, const char* name, const Tensor& t) {
  if (!t.defined()) throw value_error(str(op, ": ", name, " is missing (an undefined tensor)"));
  if (t.device() == Device::cpu)
    throw value_error(str(op, ": ", name, " is a CPU tensor; this primitive serves device tensors (use NumPy)"));
  return device::backend_for(op, t.device());
}

void check_rank(const char* op, std::size_t rank) {
  if (rank > static_cast<std::size_t>(kMaxDims))
    throw value_error(str(op, ": at most ", kMaxDims, " dimensions on a device, got ", rank));
}

Shape row_major_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (std::size_t d = s.size(); d-- > 0;) {
    st[d] = acc;
    acc *= s[d];
  }
  return st;
}

// NumPy broadcasting of up to three shapes.
Broadcast plan_broadcast(const char* op, std::initializer_list<const Shape*> shapes, Shape* out) {
  std::size_t rank = 0;
  for (const Shape* s : shapes) rank = std::max(rank, s->size());
  check_rank(op, rank);
  Shape result(rank, 1);
  for (const Shape* s : shapes)
    for (std::size_t k = 0; k < s->size(); ++k) {
      const std::size_t d = rank - s->size() + k;
      const int64_t e = (*s)[k];
      if (e == result[d] || e == 1) continue;
      if (result[d] != 1)
        throw value_error(str(op, ": operands could not be broadcast together with shapes ", shape_str(**shapes.begin()),
                              " and ", shape_str(*s)));
      result[d] = e;
    }
  Broadcast b;
  b.rank = static_cast<int>(rank);
  for (std::size_t d = 0; d < rank; ++d) b.shape[d] = result[d];
  int operand = 0;
  for (const Shape* s : shapes) {
    const Shape st = row_major_strides(*s);
    for (std::size_t k = 0; k < s->size(); ++k) {
      const std::size_t d = rank - s->size() + k;
      b.strides[operand][d] = (*s)[k] == 1 ? 0 : st[k];
    }
    ++operand;
  }
  *out = result;
  return b;
}

template <typename F>
void typed(DType dtype, F&& f) {
  detail::with_dtype(dtype, std::forward<F>(f));
}

View make_view(const char* op, const Tensor& base, const Shape& shape, const std::vector<int64_t>& strides,
               int64_t offset) {
  check_rank(op, shape.size());
  if (strides.size() != shape.size())
    throw value_error(str(op, ": strides has ", strides.size(), " entries for a shape of ", shape.size()));
  View v;
  v.rank = static_cast<int>(shape.size());
  int64_t lo = offset, hi = offset;
  bool empty = false;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0) throw value_error(str(op, ": negative extent in shape ", shape_str(shape)));
    if (shape[d] == 0) empty = true;
    v.shape[d] = shape[d];
    v.strides[d] = strides[d];
    if (shape[d] > 0) {
      const int64_t span = detail::checked_mul(shape[d] - 1, strides[d], op);
      (span < 0 ? lo : hi) = detail::checked_add(span < 0 ? lo : hi, span, op);
    }
  }
  v.offset = offset;
  if (!empty && (lo < 0 || hi >= base.numel()))
    throw value_error(str(op, ": the view reaches elements [", lo, ", ", hi, "] of a tensor of ", base.numel()));
  return v;
}

}  // namespace

UnaryOp parse_unary_op(const std::string& n) {
  static const char* names[] = {"neg", "exp", "log", "sqrt", "abs", "sign", "square", "reciprocal", "tanh",
                                "sigmoid", "floor", "ceil", "isnan"};
  for (int i = 0; i < 13; ++i)
    if (n == names[i]) return static_cast<UnaryOp>(i);
  throw value_error(str("array_unary: unknown op '", n, "'"));
}

BinaryOp parse_binary_op(const std::string& n) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq",
                                "ne",  "lt",  "le",  "gt",  "ge",  "fmax",    "fmin"};
  for (int i = 0; i < 15; ++i)
    if (n == names[i]) return static_cast<BinaryOp>(i);
  throw value_error(str("array_binary: unknown op '", n, "'"));
}

ReduceOp parse_reduce_op(const std::string& n) {
  static const char* names[] = {"sum", "max", "min", "prod", "argmax", "argmin", "any_nan"};
  for (int i = 0; i < 7; ++i)
    if (n == names[i]) return static_cast<ReduceOp>(i);
  throw value_error(str("array_reduce: unknown op '", n, "'"));
}

Tensor array_unary(const Tensor& src, UnaryOp op) {
  const char* name = "array_unary";
  device::Backend& be = device_of(name, "x", src);
  Tensor dst = device::allocate(name, src.shape(), src.dtype(), src.device());
  typed(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).unary(op, src.numel(), src.data_as<T>(), dst.data_as<T>());
  });
  return dst;
}

Tensor array_binary(const Tensor& a, const Tensor& b, BinaryOp op) {
  const char* name = "array_binary";
  device::Backend& be = device_of(name, "a", a);
  device_of(name, "b", b);
  device::common_device(name, {{"a", &a}, {"b", &b}});
  detail::check_same_dtype(name, "b", b, "a", a.dtype());
  Shape out;
  const Broadcast plan = plan_broadcast(name, {&a.shape(), &b.shape()}, &out);
  Tensor dst = device::allocate(name, out, a.dtype(), a.device());
  typed(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).binary(op, plan, a.data_as<T>(), b.data_as<T>(), dst.data_as<T>());
  });
  return dst;
}

Tensor array_binary_scalar(const Tensor& a, double s, BinaryOp op, bool scalar_first) {
  const char* name = "array_binary";
  device::Backend& be = device_of(name, "a", a);
  Tensor dst = device::allocate(name, a.shape(), a.dtype(), a.device());
  typed(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).binary_scalar(op, a.numel(), a.data_as<T>(), static_cast<T>(s), scalar_first, dst.data_as<T>());
  });
  return dst;
}

Tensor array_where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  const char* name = "array_where";
  device::Backend& be = device_of(name, "condition", cond);
  device_of(name, "x", a);
  device_of(name, "y", b);
  device::common_device(name, {{"condition", &cond}, {"x", &a}, {"y", &b}});
  detail::check_same_dtype(name, "y", b, "x", a.dtype());
  detail::check_same_dtype(name, "condition", cond, "x", a.dtype());
  Shape out;
  const Broadcast plan = plan_broadcast(name, {&cond.shape(), &a.shape(), &b.shape()}, &out);
  Tensor dst = device::allocate(name, out, a.dtype(), a.device());
  typed(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).where(plan, cond.data_as<T>(), a.data_as<T>(), b.data_as<T>(), dst.data_as<T>());
  });
  return dst;
}

Tensor array_clip(const Tensor& src, double lo, double hi) {
  const char* name = "array_clip";
  device::Backend& be = device_of(name, "x", src);
  Tensor dst = device::allocate(name, src.shape(), src.dtype(), src.device());
  typed(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).clip(src.numel(), src.data_as<T>(), static_cast<T>(lo), static_cast<T>(hi), !std::isnan(lo),
                         !std::isnan(hi), dst.data_as<T>());
  });
  return dst;
}

Tensor array_reduce(const Tensor& src, const std::vector<int64_t>& axes, ReduceOp op, bool keepdims) {
  const char* name = "array_reduce";
  device::Backend& be = device_of(name, "x", src);
  const Shape& s = src.shape();
  check_rank(name, s.size());
  std::vector<bool> reduced(s.size(), false);
  for (int64_t a : axes) {
    if (a < 0 || a >= static_cast<int64_t>(s.size()))
      throw value_error(str(name, ": axis ", a, " is out of range for a tensor of rank ", s.size()));
    if (reduced[static_cast<std::size_t>(a)]) throw value_error(str(name, ": axis ", a, " is repeated"));
    reduced[static_cast<std::size_t>(a)] = true;
  }
  const Shape st = row_major_strides(s);
  device::Reduction r;
  Shape out;
  int64_t count = 1;
  for (std::size_t d = 0; d < s.size(); ++d) {
    if (reduced[d]) {
      r.reduced.shape[r.reduced.rank] = s[d];
      r.reduced.strides[r.reduced.rank++] = st[d];
      count *= s[d];
      if (keepdims) out.push_back(1);
    } else {
      r.kept.shape[r.kept.rank] = s[d];
      r.kept.strides[r.kept.rank++] = st[d];
      out.push_back(s[d]);
    }
  }
  const bool extreme = op == ReduceOp::max || op == ReduceOp::min || op == ReduceOp::argmax || op == ReduceOp::argmin;
  if (extreme && count == 0)
    throw value_error(str(name, ": zero-size reduction of shape ", shape_str(s), " for ",
                          op == ReduceOp::max || op == ReduceOp::argmax ? "max" : "min", ", which has no identity"));
  Tensor dst = device::allocate(name, out, src.dtype(), src.device());
  typed(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).reduce(op, r, src.data_as<T>(), dst.data_as<T>());
  });
  return dst;
}

Tensor array_gather(const Tensor& src, const Shape& shape, const std::vector<int64_t>& strides, int64_t offset) {
  const char* name = "array_gather";
  device::Backend& be = device_of(name, "x", src);
  const View v = make_view(name, src, shape, strides, offset);
  Tensor dst = device::allocate(name, shape, src.dtype(), src.device());
  typed(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).gather(v, src.data_as<T>(), dst.data_as<T>());
  });
  return dst;
}

void array_scatter(Tensor& dst, const Shape& shape, const std::vector<int64_t>& strides, int64_t offset,
                   const Tensor& src) {
  const char* name = "array_scatter";
  device::Backend& be = device_of(name, "dst", dst);
  device_of(name, "value", src);
  device::common_device(name, {{"dst", &dst}, {"value", &src}});
  detail::check_same_dtype(name, "value", src, "dst", dst.dtype());
  const View v = make_view(name, dst, shape, strides, offset);
  Shape out;
  const Broadcast b = plan_broadcast(name, {&shape, &src.shape()}, &out);
  if (out != shape)
    throw value_error(str(name, ": a value of shape ", shape_str(src.shape()), " cannot fill a view of shape ",
                          shape_str(shape)));
  Broadcast only_src;
  only_src.rank = b.rank;
  for (int d = 0; d < b.rank; ++d) {
    only_src.shape[d] = b.shape[d];
    only_src.strides[0][d] = b.strides[1][d];
  }
  typed(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).scatter(v, only_src, src.data_as<T>(), dst.data_as<T>());
  });
}

Tensor array_cast(const Tensor& src, DType dtype) {
  const char* name = "array_cast";
  device::Backend& be = device_of(name, "x", src);
  Tensor dst = device::allocate(name, src.shape(), dtype, src.device());
  typed(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (dtype == DType::f32)
      be.kernels(T{}).cast(src.numel(), src.data_as<T>(), dst.data_as<float>());
    else
      be.kernels(T{}).cast(src.numel(), src.data_as<T>(), dst.data_as<double>());
  });
  return dst;
}

void array_fill(Tensor& dst, double value) {
  const char* name = "array_fill";
  device::Backend& be = device_of(name, "x", dst);
  typed(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).fill(dst.numel(), static_cast<T>(value), dst.data_as<T>());
  });
}

Tensor array_matmul(const Tensor& a, const Tensor& b) {
  const char* name = "array_matmul";
  device::Backend& be = device_of(name, "a", a);
  device_of(name, "b", b);
  device::common_device(name, {{"a", &a}, {"b", &b}});
  detail::check_same_dtype(name, "b", b, "a", a.dtype());
  const Shape &sa = a.shape(), &sb = b.shape();
  if (sa.size() < 2 || sb.size() != sa.size() || !std::equal(sa.begin(), sa.end() - 2, sb.begin()) ||
      sa.back() != sb[sb.size() - 2])
    throw value_error(str(name, ": expected (B..., M, K) @ (B..., K, N) with equal leading dimensions, got ",
                          shape_str(sa), " @ ", shape_str(sb)));
  const int64_t M = sa[sa.size() - 2], K = sa.back(), N = sb.back();
  int64_t batch = 1;
  Shape out(sa.begin(), sa.end() - 2);
  for (int64_t d : out) batch = detail::checked_mul(batch, d, name);
  out.push_back(M);
  out.push_back(N);
  Tensor dst = device::allocate(name, out, a.dtype(), a.device());
  typed(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    be.kernels(T{}).matmul(batch, M, N, K, a.data_as<T>(), b.data_as<T>(), dst.data_as<T>());
  });
  return dst;
}

}  // namespace cnncore
