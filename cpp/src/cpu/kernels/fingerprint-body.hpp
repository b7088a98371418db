// The fingerprint of a run of bytes: how the Winograd weight cache tells
// whether weights changed since their transform was kept (conv-winograd.cpp
// splits the weights into chunks, one call per chunk, and folds the chunks'
// values in order). Included inside an anonymous namespace by
// f32-elementwise-level.inc (once per kernel level) and conv-winograd.cpp.
//
// The bytes are read as 256-byte blocks of 64 32-bit words (the machine's byte order);
// lane i of 64 folds in word i of every block, in order, by
//
//   h = (h ^ word) * 0x85ebca6b;  h ^= h >> 15
//
// (32-bit arithmetic), then the lanes, the 8-byte words past the last whole
// block and the last bytes are folded, in that order, into one 64-bit value
// by fingerprint_step below. Both steps are bijections of the running state
// for each input, and fingerprint_step is one of its input for each state:
// a change confined to one lane (one changed float32, or several 256 bytes
// apart that do not cancel in that lane's 32 bits) always changes the
// result; changes spread over several lanes change it but for a chance of
// about 2^-64. The lanes are eight vectors of eight, which every level's
// flags vectorise (SSE2 halves at generic, one ymm each from AVX2 up); the
// value is the same at every level (tests/test_winograd.cpp holds a plain
// reference of the definition).
#include <cstdint>
#include <cstring>

constexpr int64_t kFingerprintBlock = 256;

inline uint64_t fingerprint_step(uint64_t h, uint64_t w) {
  h = (h ^ w) * 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 29);
}

inline uint64_t fingerprint_body(const void* data, int64_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  const int64_t blocks = bytes > 0 ? bytes / kFingerprintBlock : 0;
  uint32_t lanes[64];
  for (int i = 0; i < 64; ++i) lanes[i] = 0x9e3779b9u * static_cast<uint32_t>(i) + 0x7f4a7c15u;
#if defined(__GNUC__)
  // (loads through an unaligned, may_alias type: at -O3, GCC called memcpy
  // for each 32-byte copy into a vector)
  typedef uint32_t U8 __attribute__((vector_size(32)));
  typedef uint32_t U8Load __attribute__((vector_size(32), aligned(1), may_alias));
  U8 acc[8];
  for (int v = 0; v < 8; ++v)
    for (int i = 0; i < 8; ++i) acc[v][i] = lanes[8 * v + i];
  for (int64_t b = 0; b < blocks; ++b) {
    const U8Load* q = reinterpret_cast<const U8Load*>(p + b * kFingerprintBlock);
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) {
      const U8 h = (acc[v] ^ q[v]) * 0x85ebca6bu;
      acc[v] = h ^ (h >> 15);
    }
  }
  for (int v = 0; v < 8; ++v)
    for (int i = 0; i < 8; ++i) lanes[8 * v + i] = acc[v][i];
#else
  for (int64_t b = 0; b < blocks; ++b) {
    uint32_t w[64];
    std::memcpy(w, p + b * kFingerprintBlock, sizeof w);
    for (int i = 0; i < 64; ++i) {
      const uint32_t h = (lanes[i] ^ w[i]) * 0x85ebca6bu;
      lanes[i] = h ^ (h >> 15);
    }
  }
#endif
  uint64_t h = fingerprint_step(0x452821e638d01377ull, static_cast<uint64_t>(bytes));
  for (int i = 0; i < 64; ++i) h = fingerprint_step(h, lanes[i]);
  int64_t r = blocks * kFingerprintBlock;
  for (; r + 8 <= bytes; r += 8) {
    uint64_t w;
    std::memcpy(&w, p + r, sizeof w);
    h = fingerprint_step(h, w);
  }
  for (; r < bytes; ++r) h = fingerprint_step(h, p[r]);
  return h;
}
