// Seeded random test data shared by the native tests.
#pragma once
#include <random>
#include <vector>

namespace cmo::test {

// n values ~ N(0, scale²) from a fixed seed (same values on every platform's libstdc++ run).
inline std::vector<float> randn(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace cmo::test
