#include "lut_modes.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "../util/error.h"
#include "../util/fp16.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace cmo::kernels {

namespace {

// One fp16 operation as numpy does it: compute in float32 (exact enough: 24 >= 2·11 + 2 bits, so
// the single rounding to fp16 is correct) and round to nearest even.
inline float h(float x) { return half_to_float(float_to_half(x)); }

// Comparable key of a value with ±0 merged (for sorting/uniqueness), NaN/Inf rejected.
inline float canon(float v) { return v == 0.0f ? 0.0f : v; }

void check_finite(const GroupData& g) {
  for (size_t i = 0; i < g.count; ++i) {
    float v = g.value(i);
    if (!std::isfinite(v))
      throw Error("EINVAL", std::string("palettize: weight contains ") + (std::isnan(v) ? "NaN" : "Inf") +
                                " at group element " + std::to_string(i));
  }
}

}  // namespace

float GroupData::value(size_t i) const { return f16 ? half_to_float(f16[i]) : f32[i]; }

uint16_t double_to_half(double d) {
  // Round to odd into float (truncate, then set the sticky bit if inexact); float keeps 13 more
  // bits than half, so the final round-to-nearest-even to half is then correct.
  float f = static_cast<float>(d);
  if (std::isfinite(d) && std::isfinite(f) && static_cast<double>(f) != d) {
    if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    bits |= 1u;
    std::memcpy(&f, &bits, 4);
  }
  return float_to_half(f);
}

void uniform_group(const GroupData& g, int nbits, float* lut, uint8_t* indices) {
  if (g.V != 1) throw Error("EINVAL", "palettize: mode 'uniform' does not support cluster_dim > 1");
  if (g.count == 0) throw Error("EINVAL", "palettize: empty group");
  check_finite(g);
  const int levels = (1 << nbits) - 1;
  float lo = g.value(0), hi = g.value(0);
  for (size_t i = 1; i < g.count; ++i) {
    float v = g.value(i);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const bool f16 = g.is_f16();
  auto op = [f16](float x) { return f16 ? h(x) : x; };  // round to the weight dtype
  float range = op(hi - lo);
  // The LUT step is range / levels in double, not rounded to the weight dtype: this reproduces the
  // LUTs of coremltools' pal_n4_uniform_pertensor_ios18 bit for bit (a rounded step does not).
  double scale = static_cast<double>(range) / levels;
  for (size_t i = 0; i < g.count; ++i) {
    if (range == 0.0f) {  // numpy gives 0/0 = NaN -> uint8 (platform-dependent); we use index 0
      indices[i] = 0;
      continue;
    }
    float q = op(op(op(g.value(i) - lo) / range) * static_cast<float>(levels));
    float r = std::nearbyint(q);  // round half to even (default rounding mode), like np.round
    indices[i] = static_cast<uint8_t>(std::min(std::max(r, 0.0f), static_cast<float>(levels)));
  }
  // np.arange(2^n) * scale + lo runs in float64 (int64 array with a float scalar), then one cast.
  for (int k = 0; k <= levels; ++k) {
    double v = static_cast<double>(k) * scale + static_cast<double>(lo);
    lut[k] = f16 ? half_to_float(double_to_half(v)) : static_cast<float>(v);
  }
}

int unique_nbits_for(size_t count) {
  static const int allowed[] = {1, 2, 3, 4, 6, 8};
  for (int nb : allowed)
    if (count <= (size_t{1} << nb)) return nb;
  return 0;
}

namespace {

// Vector ranks in lexicographic value order (±0 equal); returns the number of distinct vectors
// and fills rank[v] and, for each distinct vector, a representative vector index.
size_t rank_vectors(const GroupData& g, std::vector<uint32_t>& rank, std::vector<uint32_t>& rep) {
  check_finite(g);
  const size_t V = static_cast<size_t>(g.V);
  const size_t nv = g.count / V;
  std::vector<float> vals(g.count);
  for (size_t i = 0; i < g.count; ++i) vals[i] = canon(g.value(i));
  std::vector<uint32_t> order(nv);
  std::iota(order.begin(), order.end(), 0u);
  auto less = [&](uint32_t a, uint32_t b) {
    for (size_t d = 0; d < V; ++d) {
      float x = vals[a * V + d], y = vals[b * V + d];
      if (x != y) return x < y;
    }
    return false;
  };
  std::stable_sort(order.begin(), order.end(), less);
  rank.assign(nv, 0);
  rep.clear();
  for (size_t p = 0; p < nv; ++p) {
    if (p == 0 || less(order[p - 1], order[p])) rep.push_back(order[p]);
    rank[order[p]] = static_cast<uint32_t>(rep.size() - 1);
  }
  return rep.size();
}

}  // namespace

size_t unique_count(const GroupData& g) {
  std::vector<uint32_t> rank, rep;
  return rank_vectors(g, rank, rep);
}

void unique_group(const GroupData& g, int nbits, float* lut, uint8_t* indices) {
  std::vector<uint32_t> rank, rep;
  size_t n = rank_vectors(g, rank, rep);
  const size_t V = static_cast<size_t>(g.V);
  const size_t entries = size_t{1} << nbits;
  if (n > entries)
    throw Error("EINVAL", "palettize: unique mode needs " + std::to_string(n) + " entries but nbits " +
                              std::to_string(nbits) + " gives " + std::to_string(entries));
  std::fill(lut, lut + entries * V, 0.0f);
  for (size_t r = 0; r < n; ++r) {
    for (size_t d = 0; d < V; ++d) {
      // A zero is written +0 unless every element of that class is −0 (np.unique keeps a member).
      float v = g.value(rep[r] * V + d);
      lut[r * V + d] = v == 0.0f ? 0.0f : v;
    }
  }
  if (V == 1) {  // −0 only: keep the sign like np.unique
    bool pos_zero = false, neg_zero = false;
    for (size_t i = 0; i < g.count; ++i) {
      float v = g.value(i);
      if (v == 0.0f) (std::signbit(v) ? neg_zero : pos_zero) = true;
    }
    if (neg_zero && !pos_zero)
      for (size_t r = 0; r < n; ++r)
        if (lut[r] == 0.0f) lut[r] = -0.0f;
  }
  for (size_t v = 0; v < rank.size(); ++v) indices[v] = static_cast<uint8_t>(rank[v]);
}

}  // namespace cmo::kernels
