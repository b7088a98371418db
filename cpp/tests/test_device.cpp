// The device backend from C++: the same ops on Device::cuda (a real GPU when
// one is present, else the host emulator of the backend) against the CPU, the
// caching allocator's reuse, and the refusals (mixed devices, ops without a
// device kernel, no device at all).
#include <string>

#include "cnncore/cnncore.hpp"
#include "cnncore/device.hpp"
#include "harness.hpp"

using namespace cnncore;
using test::filled;
using test::max_abs_diff;

namespace {

// Serves Device::cuda for the test's scope: the real device if there is one,
// else the emulator (switched back off at the end).
struct DeviceScope {
  bool emulated = false;
  DeviceScope() {
    if (!cuda_info().available) {
      cuda_use_emulator(true);
      emulated = true;
    }
  }
  ~DeviceScope() {
    if (emulated) cuda_use_emulator(false);
  }
};

Tensor up(const Tensor& t) { return to_device(t, Device::cuda); }
Tensor down(const Tensor& t) { return to_device(t, Device::cpu); }

}  // namespace

TEST(device_copies_round_trip_and_report_the_device) {
  DeviceScope scope;
  const Tensor a = filled<float>({3, 5, 7}, 1);
  const Tensor d = up(a);
  CHECK(d.device() == Device::cuda && d.shape() == a.shape() && d.dtype() == a.dtype());
  CHECK(max_abs_diff<float>(down(d), a) == 0);
  CHECK(to_device(d, Device::cuda).data() == d.data());  // already there: no copy
  const Tensor z = zeros_on({4, 4}, DType::f64, Device::cuda);
  CHECK(max_abs_diff<double>(down(z), Tensor::zeros({4, 4}, DType::f64)) == 0);
}

TEST(device_allocator_reuses_freed_blocks) {
  DeviceScope scope;
  cuda_empty_cache();
  { Tensor t = empty_on({1000}, DType::f32, Device::cuda); }
  const DeviceMemoryStats before = cuda_memory_stats();
  CHECK(before.allocated == 0 && before.reserved > 0);
  for (int i = 0; i < 5; ++i) {
    Tensor t = empty_on({999}, DType::f32, Device::cuda);  // the same size class
    CHECK(cuda_memory_stats().allocated > 0);
  }
  const DeviceMemoryStats after = cuda_memory_stats();
  CHECK(after.device_allocs == before.device_allocs);
  CHECK(after.cache_hits >= before.cache_hits + 5);
  CHECK(after.allocated == 0);
  cuda_empty_cache();
  CHECK(cuda_memory_stats().reserved == 0);
}

TEST(device_convolution_matches_the_cpu_exactly_with_small_integers) {
  DeviceScope scope;
  for (const char* mode : {"zeros", "reflect", "circular", "symmetric"}) {
    ConvParams p;
    p.stride = {2, 1};
    p.dilation = {1, 2};
    p.padding = {2, 1, 2, 2};
    p.padding_mode = parse_padding_mode(mode);
    p.groups = 2;
    p.flip = std::string(mode) == "circular";
    const Tensor x = filled<float>({2, 4, 9, 8}, 3, true), w = filled<float>({6, 2, 3, 3}, 4, true);
    const Tensor b = filled<float>({6}, 5, true);
    const Tensor y = conv2d_forward(x, w, b, p);
    const Tensor yd = conv2d_forward(up(x), up(w), up(b), p);
    CHECK(yd.device() == Device::cuda);
    CHECK(max_abs_diff<float>(down(yd), y) == 0);
    const Tensor gy = filled<float>(y.shape(), 6, true);
    CHECK(max_abs_diff<float>(down(conv2d_backward_data(up(gy), up(w), x.shape(), p)),
                              conv2d_backward_data(gy, w, x.shape(), p)) == 0);
    CHECK(max_abs_diff<float>(down(conv2d_backward_weight(up(gy), up(x), w.shape(), p)),
                              conv2d_backward_weight(gy, x, w.shape(), p)) == 0);
    CHECK(max_abs_diff<float>(down(conv2d_backward_bias(up(gy))), conv2d_backward_bias(gy)) == 0);
  }
}

TEST(device_pooling_and_batch_norm_match_the_cpu) {
  DeviceScope scope;
  PoolParams p;
  p.kind = PoolKind::max;
  p.kernel = {3, 3};
  p.stride = {2, 2};
  p.padding = {1, 1, 1, 1};
  const Tensor x = filled<double>({2, 3, 7, 6}, 7);
  const Tensor y = pool_forward(x, p);
  CHECK(max_abs_diff<double>(down(pool_forward(up(x), p)), y) == 0);
  const Tensor gy = filled<double>(y.shape(), 8);
  CHECK(max_abs_diff<double>(down(pool_backward(up(gy), up(x), p)), pool_backward(gy, x, p)) == 0);

  BatchNormParams bn;
  bn.training = true;
  Tensor rm = Tensor::zeros({3}, DType::f64), rv = filled<double>({3}, 9);
  Tensor rmd = up(rm), rvd = up(rv);
  const Tensor w = filled<double>({3}, 10), bias = filled<double>({3}, 11);
  const Tensor out = batch_norm_forward(x, rm, rv, w, bias, bn);
  const Tensor outd = batch_norm_forward(up(x), rmd, rvd, up(w), up(bias), bn);
  CHECK(max_abs_diff<double>(down(outd), out) < 1e-12);
  CHECK(max_abs_diff<double>(down(rmd), rm) < 1e-14 && max_abs_diff<double>(down(rvd), rv) < 1e-14);
}

TEST(device_refuses_mixed_devices_and_ops_without_a_kernel) {
  DeviceScope scope;
  const Tensor x = filled<float>({1, 2, 5, 5}, 1), w = filled<float>({3, 2, 3, 3}, 2);
  CHECK_THROWS(value_error, "weight is on cpu but x is on cuda", conv2d_forward(up(x), w, Tensor(), ConvParams{}));
  ConvParams fft;
  fft.algorithm = ConvAlgorithm::fft;
  CHECK_THROWS(value_error, "CPU algorithm", conv2d_forward(up(x), up(w), Tensor(), fft));
  CHECK_THROWS(value_error, "has no CUDA kernel",
               local_conv2d_forward(up(x), up(filled<float>({3, 3, 3, 2, 3, 3}, 3)), Tensor(), LocalConvParams{}));
  CHECK(cuda_supports("conv_forward", DType::f32) && !cuda_supports("local_conv2d_forward", DType::f32));
}

TEST(device_without_a_backend_says_why) {
  if (cuda_info().available) return;  // a real device serves Device::cuda here
  const bool was = cuda_use_emulator(false);
  CHECK_THROWS(value_error, "CUDA is not available", to_device(filled<float>({2}, 1), Device::cuda));
  CHECK(!cuda_info().why_unavailable.empty());
  cuda_use_emulator(was);
}
