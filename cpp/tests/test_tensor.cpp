#include <cstring>

#include "cnncore/cnncore.hpp"
#include "harness.hpp"

using namespace cnncore;

TEST(tensor_empty_shape_and_strides) {
  Tensor t = Tensor::empty({2, 3, 4, 5}, DType::f32);
  CHECK(t.numel() == 120);
  CHECK(t.nbytes() == 480);
  CHECK((t.strides() == Shape{60, 20, 5, 1}));
  CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
  CHECK(t.device() == Device::cpu);
}

TEST(tensor_zeros_and_empty_batch) {
  Tensor t = Tensor::zeros({3, 7}, DType::f64);
  bool all_zero = true;
  for (int i = 0; i < 21; ++i) all_zero = all_zero && t.data_as<double>()[i] == 0.0;
  CHECK(all_zero);
  Tensor e = Tensor::empty({0, 3, 4, 4}, DType::f32);
  CHECK(e.numel() == 0);
  CHECK(e.defined());
}

TEST(tensor_wrap_shares_memory) {
  auto buf = std::make_shared<std::vector<float>>(6, 1.5f);
  Tensor t = Tensor::wrap(buf->data(), {2, 3}, DType::f32, buf);
  t.data_as<float>()[4] = 9.0f;
  CHECK((*buf)[4] == 9.0f);
  CHECK(t.storage().get() == buf.get());
}

TEST(tensor_rejects_overflow_and_huge_allocations) {
  CHECK_THROWS(value_error, "overflows", Tensor::empty({int64_t{1} << 40, int64_t{1} << 40}, DType::f32));
  CHECK_THROWS(value_error, "negative", Tensor::empty({-1, 3}, DType::f32));
  const int64_t old = get_memory_limit();
  set_memory_limit(1024);
  CHECK_THROWS(value_error, "memory limit", Tensor::empty({1024}, DType::f32));
  set_memory_limit(old);
  CHECK_THROWS(value_error, "at least 1", set_memory_limit(0));
}

TEST(tensor_strides_of_an_empty_tensor_with_huge_extents) {
  // numel is 0, but 2**40 * 2**40 overflows: strides() must not (UBSan).
  Tensor t = Tensor::empty({0, int64_t{1} << 40, int64_t{1} << 40}, DType::f32);
  CHECK(t.numel() == 0);
  const Shape s = t.strides();
  CHECK(s.size() == 3 && s[2] == 1 && s[1] == (int64_t{1} << 40));
}

TEST(memory_scope_sums_a_calls_buffers) {
  const int64_t old = get_memory_limit();
  CHECK(memory_held() == 0);
  {
    MemoryScope scope;
    Tensor a = Tensor::empty({256}, DType::f32);  // 1 KiB
    CHECK(memory_held() == 1024);
    {
      MemoryScope inner;  // joins the outer account
      Tensor b = Tensor::empty({128}, DType::f64);
      CHECK(memory_held() == 2048);
    }
    CHECK(memory_held() == 1024);  // b freed
    set_memory_limit(3000);
    CHECK_THROWS(value_error, "on top of the 1024 bytes this call already holds", check_memory("op", 2000));
    CHECK_THROWS(value_error, "memory limit", Tensor::empty({500}, DType::f32));
    check_memory("op", 1976);  // exactly the limit
    set_memory_limit(old);
    Tensor keep = a;
    a = Tensor();
    CHECK(memory_held() == 1024);  // still referenced
  }
  CHECK(memory_held() == 0);  // no scope open
  // Without a scope each check stands alone, as before.
  set_memory_limit(1024);
  check_memory("op", 1024);
  CHECK_THROWS(value_error, "more than the memory limit of 1024", check_memory("op", 1025));
  set_memory_limit(old);
}

TEST(runtime_threads_and_isa) {
  const int old = get_num_threads();
  set_num_threads(1);
  CHECK(get_num_threads() == 1);
  set_num_threads(old);
  CHECK_THROWS(value_error, "at least 1", set_num_threads(0));
  CHECK(parse_isa("generic") == Isa::generic);
  CHECK_THROWS(value_error, "isa", parse_isa("sse9"));
  CHECK(static_cast<int>(get_isa()) <= static_cast<int>(best_supported_isa()));
}

// Freed buffers of 256 KiB or more come back for a request of a similar
// size, up to the limit; smaller ones, and everything with the limit at 0,
// go straight back to the allocator. A memory scope still charges only
// live tensors.
TEST(host_cache_reuses_freed_buffers) {
  const int64_t old = get_host_cache_limit();
  set_host_cache_limit(int64_t{16} << 20);
  empty_host_cache();
  const void* first = nullptr;
  {
    Tensor t = Tensor::empty({1 << 18}, DType::f32);  // 1 MiB
    first = t.data();
  }
  CHECK(host_cache_bytes() >= (int64_t{1} << 20));
  {
    MemoryScope scope;
    Tensor t = Tensor::empty({(1 << 18) - 100}, DType::f32);  // a little smaller: the same block
    CHECK(t.data() == first);
    CHECK(host_cache_bytes() == 0);
    CHECK(memory_held() == ((1 << 18) - 100) * 4);
  }
  {
    Tensor small = Tensor::empty({1000}, DType::f32);
  }
  CHECK(host_cache_bytes() >= (int64_t{1} << 20));  // the 1 MiB block again, not the small one
  {
    Tensor a = Tensor::empty({1 << 20}, DType::f32), b = Tensor::empty({1 << 20}, DType::f32);  // 4 MiB each
    (void)a;
    (void)b;
    set_host_cache_limit(int64_t{6} << 20);
  }
  CHECK(host_cache_bytes() <= (int64_t{6} << 20));
  set_host_cache_limit(0);
  CHECK(host_cache_bytes() == 0);
  {
    Tensor t = Tensor::empty({1 << 18}, DType::f32);
  }
  CHECK(host_cache_bytes() == 0);
  CHECK_THROWS(value_error, "bytes must be >= 0", set_host_cache_limit(-1));
  set_host_cache_limit(old);
}
