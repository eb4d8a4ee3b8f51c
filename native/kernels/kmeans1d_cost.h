// Interval costs of weighted 1-D k-means from prefix sums, shared by the layered DPs
// (kmeans1d.cc) and the penalized DP (kmeans1d_penalized.cc) so both compute identical bits.
#pragma once
#include <cstddef>
#include <vector>

// Bit-for-bit agreement with kmeans1d (and between machines) needs a*b+c evaluated as two roundings.
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace cmo::kernels {

// Prefix sums exactly as kmeans1d's WeightedCostCalculator builds them (same operation order), so
// interval costs are bit-identical to coremltools' for the same input.
struct CostTable {
  std::vector<double> cumw, cumsum, cumsum2;

  CostTable() = default;
  CostTable(const double* x, const double* w, size_t n) { build(x, w, n); }
  void build(const double* x, const double* w, size_t n) {
    cumw.resize(n + 1);
    cumsum.resize(n + 1);
    cumsum2.resize(n + 1);
    // Running sums in locals: through the arrays, each add waited for the previous store (the three
    // vectors may alias as far as the compiler knows). Same operations in the same order.
    double* __restrict pw = cumw.data();
    double* __restrict ps = cumsum.data();
    double* __restrict ps2 = cumsum2.data();
    double sw = 0.0, s1 = 0.0, s2 = 0.0;
    pw[0] = ps[0] = ps2[0] = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double wi = w ? w[i] : 1.0;
      sw = wi + sw;
      s1 = wi * x[i] + s1;
      s2 = wi * x[i] * x[i] + s2;
      pw[i + 1] = sw;
      ps[i + 1] = s1;
      ps2[i + 1] = s2;
    }
  }
  double weight(size_t i, size_t j) const { return i <= j ? cumw[j + 1] - cumw[i] : 0.0; }
  // Sum of squared deviations of values i..j (inclusive) from their weighted mean.
  double cost(size_t i, size_t j) const { return cost(cumw.data(), cumsum.data(), cumsum2.data(), i, j); }
  // The same on raw prefix-sum arrays (hot loops keep the pointers themselves).
  static double cost(const double* cw, const double* cs, const double* cs2, size_t i, size_t j) {
    if (j < i) return 0.0;
    double w = cw[j + 1] - cw[i];
    double s1 = cs[j + 1] - cs[i];
    double mu = s1 / w;
    double r = cs2[j + 1] - cs2[i];
    r += w * (mu * mu);
    r -= (2 * mu) * s1;
    return r;
  }
};

}  // namespace cmo::kernels
