#include "kmeans1d.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>

#include "../util/error.h"
#include "../util/fp16.h"

// Bit-for-bit agreement with kmeans1d (and between machines) needs a*b+c evaluated as two roundings.
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace cmo::kernels {

namespace {

// Prefix sums exactly as kmeans1d's WeightedCostCalculator builds them (same operation order), so
// interval costs are bit-identical to coremltools' for the same input.
struct CostTable {
  std::vector<double> cumw, cumsum, cumsum2;

  CostTable(const double* x, const double* w, size_t n) : cumw(n + 1), cumsum(n + 1), cumsum2(n + 1) {
    cumw[0] = cumsum[0] = cumsum2[0] = 0.0;
    for (size_t i = 0; i < n; ++i) {
      double wi = w ? w[i] : 1.0;
      cumw[i + 1] = wi + cumw[i];
      cumsum[i + 1] = wi * x[i] + cumsum[i];
      cumsum2[i + 1] = wi * x[i] * x[i] + cumsum2[i];
    }
  }
  double weight(size_t i, size_t j) const { return i <= j ? cumw[j + 1] - cumw[i] : 0.0; }
  // Sum of squared deviations of values i..j (inclusive) from their weighted mean.
  double cost(size_t i, size_t j) const {
    if (j < i) return 0.0;
    double w = cumw[j + 1] - cumw[i];
    double s1 = cumsum[j + 1] - cumsum[i];
    double mu = s1 / w;
    double r = cumsum2[j + 1] - cumsum2[i];
    r += w * (mu * mu);
    r -= (2 * mu) * s1;
    return r;
  }
};

// Matrix entry C(i, j) of DP layer m: best cost of values 0..i when the last cluster starts at j.
// kmeans1d's "min trick" (column j−1 clamped to i, j = 0 reading column i) keeps the implicit n×n
// matrix totally monotone for j > i; we keep the same matrix so SMAWK makes the same choices.
struct Layer {
  const CostTable* ct;
  const double* prev;
  double operator()(size_t i, size_t j) const {
    size_t col = (j == 0 || i < j - 1) ? i : j - 1;
    return prev[col] + ct->cost(j, i);
  }
};

// SMAWK row minima of the n×n implicit matrix, same REDUCE / INTERPOLATE rules as kmeans1d (ties keep
// the leftmost surviving column). Rows of recursion level L are base + t·stride (base = 2^L − 1).
class Smawk {
 public:
  explicit Smawk(size_t n) : n_(n), pos_(n), result_(n) {
    size_t total = 0;
    for (size_t count = n; count > 0; count /= 2) total += count + 1;
    stack_.resize(total + 1);
    cache_.resize(total + 1);
  }

  const std::vector<uint32_t>& run(const Layer& f) {
    solve(f, 0, 1, n_, nullptr, n_, 0);
    return result_;
  }

 private:
  void solve(const Layer& f, size_t base, size_t stride, size_t count, const uint32_t* cols, size_t ncols,
             size_t arena) {
    if (count == 0) return;
    uint32_t* st = stack_.data() + arena;
    double* val = cache_.data() + arena;  // val[p] = f(row of stack slot p, st[p])
    size_t sz = 0;
    for (size_t c = 0; c < ncols; ++c) {
      uint32_t col = cols ? cols[c] : static_cast<uint32_t>(c);
      while (sz > 0) {
        size_t row = base + (sz - 1) * stride;
        if (f(row, col) >= val[sz - 1]) break;
        --sz;
      }
      if (sz < count) {
        val[sz] = f(base + sz * stride, col);  // cached: slot sz is always compared at its own row
        st[sz++] = col;
      }
    }
    solve(f, base + stride, stride * 2, count / 2, st, sz, arena + count + 1);
    for (size_t p = 0; p < sz; ++p) pos_[st[p]] = static_cast<uint32_t>(p);
    size_t start = 0;
    for (size_t r = 0; r < count; r += 2) {
      size_t row = base + r * stride;
      size_t stop = sz - 1;
      if (r < count - 1) stop = pos_[result_[base + (r + 1) * stride]];
      uint32_t argmin = st[start];
      double best = f(row, argmin);
      for (size_t c = start + 1; c <= stop; ++c) {
        double v = f(row, st[c]);
        if (v < best) {
          argmin = st[c];
          best = v;
        }
      }
      result_[row] = argmin;
      start = stop;
    }
  }

  size_t n_;
  std::vector<uint32_t> pos_, result_, stack_;
  std::vector<double> cache_;
};

void check_input(const double* values, const double* weights, size_t n, size_t k) {
  if (n == 0) throw Error("EINVAL", "kmeans1d: no values to cluster");
  if (k == 0) throw Error("EINVAL", "kmeans1d: k must be at least 1");
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) throw Error("EINVAL", "kmeans1d: value " + std::to_string(i) + " is NaN or infinite");
    if (i > 0 && !(values[i] > values[i - 1]))
      throw Error("EINVAL", "kmeans1d_sorted: values must be strictly ascending (index " + std::to_string(i) + ")");
    if (weights && !(weights[i] > 0 && std::isfinite(weights[i])))
      throw Error("EINVAL", "kmeans1d: weight " + std::to_string(i) + " must be positive and finite");
  }
}

// Walks the argmin table back from the last value, computing centroids the way kmeans1d does.
template <class Argmin>
void backtrack(const double* x, const CostTable& ct, size_t n, size_t k, const Argmin& argmin_at, Kmeans1dResult& r) {
  r.centroids.assign(k, 0.0);
  r.assignment.assign(n, 0);
  size_t t = n;
  size_t m = k;
  size_t last = n - 1;
  while (m > 0 && t > 0) {
    --m;
    size_t t_end = t;
    size_t start = m == 0 ? 0 : argmin_at(m, last);
    if (start > t_end) start = t_end;  // empty cluster (degenerate ties only): keep the bound
    double centroid = 0.0;
    for (size_t i = start; i < t_end; ++i) {
      r.assignment[i] = static_cast<uint32_t>(m);
      centroid += (x[i] - centroid) * ct.weight(i, i) / ct.weight(start, i);
    }
    r.centroids[m] = centroid;
    t = start;
    if (start == 0) break;
    last = start - 1;
  }
  // Final cost from the chosen segmentation (cheap; independent of the DP's rounding).
  double cost = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = x[i] - r.centroids[r.assignment[i]];
    cost += ct.weight(i, i) * d * d;
  }
  r.cost = cost;
}

template <class Index>
Kmeans1dResult solve_smawk(const double* x, const double* w, size_t n, size_t k) {
  CostTable ct(x, w, n);
  Kmeans1dResult r;
  if (k == n) {  // every value is its own cluster: centroid = value exactly (as kmeans1d computes it)
    r.centroids.assign(x, x + n);
    r.assignment.resize(n);
    std::iota(r.assignment.begin(), r.assignment.end(), 0u);
    r.cost = 0;
    return r;
  }
  std::vector<Index> table((k - 1) * n);  // rows 1..k−1 (row 0's argmin is always 0)
  std::vector<double> prev(n), cur(n);
  for (size_t i = 0; i < n; ++i) prev[i] = ct.cost(0, i);
  Smawk smawk(n);
  for (size_t m = 1; m < k; ++m) {
    Layer f{&ct, prev.data()};
    const std::vector<uint32_t>& arg = smawk.run(f);
    Index* row = table.data() + (m - 1) * n;
    for (size_t i = 0; i < n; ++i) {
      row[i] = static_cast<Index>(arg[i]);
      cur[i] = f(i, arg[i]);
    }
    std::swap(prev, cur);
  }
  backtrack(x, ct, n, k, [&](size_t m, size_t i) { return static_cast<size_t>(table[(m - 1) * n + i]); }, r);
  return r;
}

}  // namespace

Kmeans1dResult kmeans1d_sorted(const double* values, const double* weights, size_t n, size_t k) {
  check_input(values, weights, n, k);
  k = std::min(k, n);
  double table_bytes = static_cast<double>(k) * static_cast<double>(n) * (n <= 65536 ? 2.0 : 4.0);
  if (table_bytes > 2.0 * 1024 * 1024 * 1024)
    throw Error("EINVAL", "kmeans1d: k·n too large (" + std::to_string(k) + " clusters × " + std::to_string(n) +
                              " distinct values needs a " + std::to_string(static_cast<long long>(table_bytes / 1048576)) +
                              " MiB table)");
  if (n <= 65536) return solve_smawk<uint16_t>(values, weights, n, k);
  return solve_smawk<uint32_t>(values, weights, n, k);
}

Kmeans1dResult kmeans1d_sorted_ref(const double* values, const double* weights, size_t n, size_t k) {
  check_input(values, weights, n, k);
  k = std::min(k, n);
  CostTable ct(values, weights, n);
  Kmeans1dResult r;
  if (k == n) {
    r.centroids.assign(values, values + n);
    r.assignment.resize(n);
    std::iota(r.assignment.begin(), r.assignment.end(), 0u);
    return r;
  }
  std::vector<uint32_t> table((k - 1) * n);
  std::vector<double> prev(n), cur(n);
  for (size_t i = 0; i < n; ++i) prev[i] = ct.cost(0, i);
  for (size_t m = 1; m < k; ++m) {
    Layer f{&ct, prev.data()};
    for (size_t i = 0; i < n; ++i) {  // plain scan of every column: leftmost minimum
      size_t arg = 0;
      double best = f(i, 0);
      for (size_t j = 1; j < n; ++j) {
        double v = f(i, j);
        if (v < best) {
          best = v;
          arg = j;
        }
      }
      table[(m - 1) * n + i] = static_cast<uint32_t>(arg);
      cur[i] = best;
    }
    std::swap(prev, cur);
  }
  backtrack(values, ct, n, k, [&](size_t m, size_t i) { return static_cast<size_t>(table[(m - 1) * n + i]); }, r);
  return r;
}

Kmeans1dResult kmeans1d(const double* values, const double* weights, size_t n, size_t k, bool reference) {
  if (n == 0) throw Error("EINVAL", "kmeans1d: no values to cluster");
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) throw Error("EINVAL", "kmeans1d: value " + std::to_string(i) + " is NaN or infinite");
    if (weights && !(weights[i] > 0 && std::isfinite(weights[i])))
      throw Error("EINVAL", "kmeans1d: weight " + std::to_string(i) + " must be positive and finite");
  }
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return values[a] < values[b]; });
  std::vector<double> xs, ws;
  std::vector<uint32_t> inverse(n);
  for (size_t p = 0; p < n; ++p) {
    uint32_t i = order[p];
    double w = weights ? weights[i] : 1.0;
    if (xs.empty() || values[i] != xs.back()) {
      xs.push_back(values[i] == 0 ? 0.0 : values[i]);
      ws.push_back(w);
    } else {
      ws.back() += w;
    }
    inverse[i] = static_cast<uint32_t>(xs.size() - 1);
  }
  Kmeans1dResult d = reference ? kmeans1d_sorted_ref(xs.data(), ws.data(), xs.size(), k)
                               : kmeans1d_sorted(xs.data(), ws.data(), xs.size(), k);
  Kmeans1dResult r;
  r.centroids = std::move(d.centroids);
  r.cost = d.cost;
  r.assignment.resize(n);
  for (size_t i = 0; i < n; ++i) r.assignment[i] = d.assignment[inverse[i]];
  return r;
}

// ---------------------------------------------------------------------------------------------
// Histograms

Fp16Histogram::Fp16Histogram() : counts_(65536, 0), used_(1024, 0) {}

void Fp16Histogram::add_one(uint16_t h) {
  if ((h & 0x7C00u) == 0x7C00u)
    throw Error("EINVAL", std::string("palettize: weight contains ") + ((h & 0x3FFu) ? "NaN" : "Inf") +
                              " (fp16 bits 0x" + [&] {
                                char b[8];
                                std::snprintf(b, sizeof b, "%04X", h);
                                return std::string(b);
                              }() + "); k-means needs finite values");
  uint16_t key = fp16_order_key(h);
  if (counts_[key]++ == 0) used_[key >> 6] |= uint64_t{1} << (key & 63);
}

void Fp16Histogram::add(const uint16_t* data, size_t n, size_t stride) {
  for (size_t i = 0; i < n; ++i) add_one(data[i * stride]);
}

void Fp16Histogram::distinct(DistinctValues& out, std::vector<uint16_t>* keys) const {
  out.values.clear();
  out.counts.clear();
  if (keys) keys->clear();
  for (size_t wi = 0; wi < used_.size(); ++wi) {
    uint64_t bits = used_[wi];
    while (bits) {
      int b = __builtin_ctzll(bits);
      bits &= bits - 1;
      uint16_t key = static_cast<uint16_t>(wi * 64 + b);
      out.values.push_back(static_cast<double>(half_to_float(fp16_from_order_key(key))));
      out.counts.push_back(static_cast<double>(counts_[key]));
      if (keys) keys->push_back(key);
    }
  }
}

size_t Fp16Histogram::distinct_count() const {
  size_t c = 0;
  for (uint64_t b : used_) c += static_cast<size_t>(__builtin_popcountll(b));
  return c;
}

void Fp16Histogram::clear() {
  for (size_t wi = 0; wi < used_.size(); ++wi) {
    uint64_t bits = used_[wi];
    while (bits) {
      int b = __builtin_ctzll(bits);
      bits &= bits - 1;
      counts_[wi * 64 + b] = 0;
    }
    used_[wi] = 0;
  }
}

void distinct_f32(const float* data, size_t n, DistinctValues& out, std::vector<uint32_t>* inverse) {
  out.values.clear();
  out.counts.clear();
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(data[i]))
      throw Error("EINVAL", "palettize: weight element " + std::to_string(i) + " is " +
                                (std::isnan(data[i]) ? "NaN" : "Inf") + "; k-means needs finite values");
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return data[a] < data[b]; });
  if (inverse) inverse->resize(n);
  for (size_t p = 0; p < n; ++p) {
    uint32_t i = order[p];
    double v = data[i] == 0.0f ? 0.0 : static_cast<double>(data[i]);
    if (out.values.empty() || v != out.values.back()) {
      out.values.push_back(v);
      out.counts.push_back(1.0);
    } else {
      out.counts.back() += 1.0;
    }
    if (inverse) (*inverse)[i] = static_cast<uint32_t>(out.values.size() - 1);
  }
}

}  // namespace cmo::kernels
