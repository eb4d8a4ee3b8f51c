// random_uniform, random_normal, random_bernoulli, random_categorical. Deterministic for a given
// seed >= 0 (the same values on every run), fresh per run for seed = -1 (the default), as the MIL
// definitions ask. The generator is ours, not Core ML's: element k of an op draws
// splitmix64(key + k) (a counter-based stream, so the result does not depend on thread count), the
// top 53 bits as a double in [0, 1); normals by Box-Muller on pairs. Only the distributions match
// Core ML, never the bit stream.
#include <cmath>
#include <random>

#include "common.h"

namespace cmo::exec {
namespace {

uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct Stream {
  uint64_t key;
  double uniform(uint64_t k) const { return static_cast<double>(splitmix64(key + k) >> 11) * (1.0 / 9007199254740992.0); }
};

Stream stream(OpContext& c) {
  int64_t seed = static_cast<int64_t>(c.num("seed", -1));
  if (seed >= 0) return {splitmix64(static_cast<uint64_t>(seed)) * 0x2545f4914f6cdd1dULL};
  std::random_device rd;
  return {(static_cast<uint64_t>(rd()) << 32) ^ rd()};
}

Shape out_shape(OpContext& c) {
  std::vector<int64_t> s = c.ints("shape");
  for (int64_t d : s)
    if (d < 0) c.fail("shape entries must be >= 0");
  return Shape(s.begin(), s.end());
}

void k_random_uniform(OpContext& c) {
  Stream st = stream(c);
  const double lo = c.num("low", 0.0), hi = c.num("high", 1.0);
  Tensor y = Tensor::f32(out_shape(c));
  for (int64_t k = 0; k < y.size(); ++k) y.fdata()[k] = static_cast<float>(lo + (hi - lo) * st.uniform(static_cast<uint64_t>(k)));
  c.set(0, std::move(y));
}

void k_random_normal(OpContext& c) {
  Stream st = stream(c);
  const double mean = c.num("mean", 0.0), sd = c.num("stddev", 1.0);
  Tensor y = Tensor::f32(out_shape(c));
  const double two_pi = 6.283185307179586476925;
  for (int64_t k = 0; k < y.size(); ++k) {
    uint64_t pair = static_cast<uint64_t>(k / 2) * 2;
    double u1 = 1.0 - st.uniform(pair), u2 = st.uniform(pair + 1);  // u1 in (0, 1]
    double r = std::sqrt(-2.0 * std::log(u1));
    double z = k % 2 == 0 ? r * std::cos(two_pi * u2) : r * std::sin(two_pi * u2);
    y.fdata()[k] = static_cast<float>(mean + sd * z);
  }
  c.set(0, std::move(y));
}

void k_random_bernoulli(OpContext& c) {
  Stream st = stream(c);
  const double p = c.num("prob", 0.5);
  Tensor y = Tensor::f32(out_shape(c));
  for (int64_t k = 0; k < y.size(); ++k) y.fdata()[k] = st.uniform(static_cast<uint64_t>(k)) < p ? 1.f : 0.f;
  c.set(0, std::move(y));
}

// x [..., K]: one distribution per row (logits, or probabilities with mode = "probs"); `size`
// samples per row with replacement, returned as (float) class indices [..., size].
void k_random_categorical(OpContext& c) {
  Stream st = stream(c);
  Tensor x = as_f32(c.in("x"));
  if (x.rank() < 1 || x.shape.back() < 1) c.fail("x must have a non-empty last axis");
  std::string mode = c.str("mode", "logits");
  if (mode != "logits" && mode != "probs") c.fail("mode must be logits or probs, got '" + mode + "'");
  const int64_t size = static_cast<int64_t>(c.num("size", 1));
  if (size < 1) c.fail("size must be >= 1");
  const int64_t K = x.shape.back(), rows = x.size() / K;
  Shape os = x.shape;
  os.back() = size;
  Tensor y = Tensor::f32(os);
  std::vector<double> cdf(static_cast<size_t>(K));
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = x.fdata() + r * K;
    double mx = -INFINITY, acc = 0;
    if (mode == "logits")
      for (int64_t k = 0; k < K; ++k) mx = std::max(mx, static_cast<double>(p[k]));
    for (int64_t k = 0; k < K; ++k) {
      double w = mode == "logits" ? std::exp(p[k] - mx) : std::max(0.0, static_cast<double>(p[k]));
      cdf[k] = acc += w;
    }
    if (!(acc > 0)) c.fail("row " + std::to_string(r) + " has no probability mass");
    for (int64_t s = 0; s < size; ++s) {
      double u = st.uniform(static_cast<uint64_t>(r * size + s)) * acc;
      int64_t k = static_cast<int64_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
      y.fdata()[r * size + s] = static_cast<float>(std::min(k, K - 1));
    }
  }
  c.set(0, std::move(y));
}

}  // namespace

void register_random_ops() {
  register_kernel("random_uniform", k_random_uniform);
  register_kernel("random_normal", k_random_normal);
  register_kernel("random_bernoulli", k_random_bernoulli);
  register_kernel("random_categorical", k_random_categorical);
}

}  // namespace cmo::exec
