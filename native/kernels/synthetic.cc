#include "synthetic.h"

#include <cmath>

#include "../util/fp16.h"
#include "../util/thread_pool.h"

namespace cmo::kernels {

namespace {

constexpr uint64_t kStreamChunk = 1u << 16;

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256** — fast, good statistical quality, trivially seeded per chunk.
struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    for (auto& v : s) v = splitmix64(seed);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0,1)
};

double base_std(const SyntheticParams& p) {
  switch (p.kind) {
    case SyntheticKind::Weight:
      return 1.0 / std::sqrt(static_cast<double>(p.fan_in == 0 ? 1 : p.fan_in));
    case SyntheticKind::Bias:
      return 0.02;
    case SyntheticKind::Norm:
      return 0.1;
  }
  return 1.0;
}

// Generates elements of one stream chunk [chunk_first, chunk_first + n) into sink(i, value).
template <class Sink>
void fill_chunk(const SyntheticParams& p, uint64_t chunk, uint64_t skip, uint64_t n, Sink sink) {
  Rng rng(p.seed * 0x100000001B3ull ^ (chunk + 1) * 0xD6E8FEB86659FD93ull);
  const double std = base_std(p);
  const double center = p.kind == SyntheticKind::Norm ? 1.0 : 0.0;
  uint64_t produced = 0;
  uint64_t index = 0;
  while (produced < n) {
    // Box–Muller gives two normals per draw; both are used so the stream is position-stable.
    double u1 = rng.uniform();
    double u2 = rng.uniform();
    double u3 = rng.uniform();
    double r = std::sqrt(-2.0 * std::log(1.0 - u1));
    double z[2] = {r * std::cos(6.283185307179586 * u2), r * std::sin(6.283185307179586 * u2)};
    for (double zi : z) {
      if (index++ < skip) continue;
      if (produced >= n) break;
      double scale = u3 < p.outlier_fraction ? 8.0 : 1.0;
      sink(produced++, center + std * scale * zi);
    }
  }
}

template <class Sink>
void generate(const SyntheticParams& params, uint64_t first, uint64_t count, Sink sink) {
  if (count == 0) return;
  uint64_t first_chunk = first / kStreamChunk;
  uint64_t last_chunk = (first + count - 1) / kStreamChunk;
  parallel_for(static_cast<size_t>(last_chunk - first_chunk + 1), [&](size_t k) {
    uint64_t chunk = first_chunk + k;
    uint64_t chunk_begin = chunk * kStreamChunk;
    uint64_t begin = chunk_begin > first ? chunk_begin : first;
    uint64_t end = std::min(chunk_begin + kStreamChunk, first + count);
    fill_chunk(params, chunk, begin - chunk_begin, end - begin,
               [&](uint64_t i, double v) { sink(begin - first + i, v); });
  });
}

}  // namespace

void synthetic_fp16(const SyntheticParams& params, uint64_t first, uint64_t count, uint16_t* out) {
  generate(params, first, count, [out](uint64_t i, double v) { out[i] = float_to_half(static_cast<float>(v)); });
}

void synthetic_f32(const SyntheticParams& params, uint64_t first, uint64_t count, float* out) {
  generate(params, first, count, [out](uint64_t i, double v) { out[i] = static_cast<float>(v); });
}

}  // namespace cmo::kernels
