#include "kmeans1d.h"

#include "fp16_histogram_simd.h"
#include "kmeans1d_cost.h"
#include "kmeans1d_penalized.h"
#include "kmeans1d_streams.h"
#include "lut_modes.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
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

// Polled once per DP layer (a layer of a 65,536-value, 256-cluster DP is milliseconds), so that
// long single-group DPs stop promptly too.
void poll(const CancelCheck& cancelled) {
  if (cancelled && cancelled()) throw Cancelled();
}

void check_input(const double* values, const double* weights, size_t n, size_t k) {
  if (n == 0) throw Error("EINVAL", "kmeans1d: no values to cluster");
  if (k == 0) throw Error("EINVAL", "kmeans1d: k must be at least 1");
  // Valid input (every group of a tensor) passes one branch-free count of good comparisons: strictly
  // ascending (NaN compares false) between finite ends means every value is finite. The loop below
  // only runs to name the first bad element.
  const double inf = std::numeric_limits<double>::infinity();
  size_t good = (values[0] > -inf) + (values[n - 1] < inf);
  for (size_t i = 1; i < n; ++i) good += values[i] > values[i - 1];
  if (weights)
    for (size_t i = 0; i < n; ++i) good += (weights[i] > 0) + (weights[i] < inf);
  if (good == n + 1 + (weights ? 2 * n : 0)) return;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) throw Error("EINVAL", "kmeans1d: value " + std::to_string(i) + " is NaN or infinite");
    if (i > 0 && !(values[i] > values[i - 1]))
      throw Error("EINVAL", "kmeans1d_sorted: values must be strictly ascending (index " + std::to_string(i) + ")");
    if (weights && !(weights[i] > 0 && std::isfinite(weights[i])))
      throw Error("EINVAL", "kmeans1d: weight " + std::to_string(i) + " must be positive and finite");
  }
}

// Walks the argmin table back from the last value, computing centroids the way kmeans1d does.
// Each centroid is a running weighted mean — a chain of dependent divisions per cluster — so the
// clusters advance in lockstep (independent chains overlap; same operations per cluster: same bits).
// The centroid of values [f, e) as an fp16 LUT entry: kmeans1d's running mean rounded to fp16,
// without the running mean's division per value where it cannot matter. The mean from the prefix
// sums and the running mean differ by less than `delta` (rounding bounds of both, ×2: the prefix sums
// err by at most n·eps·Σ|w·x| each, the running mean by eps·(3·range + |mean|) per value, counts
// are integers so the weight sums are exact); when m − delta and m + delta round to the same fp16
// value, so does the running mean. Otherwise (a mean within delta of a rounding boundary, or of ±0)
// the running mean itself is computed.
double fp16_centroid(const double* x, const CostTable& ct, size_t n, size_t f, size_t e) {
  constexpr double eps = std::numeric_limits<double>::epsilon();
  const double w = ct.cumw[e] - ct.cumw[f];
  const double m = (ct.cumsum[e] - ct.cumsum[f]) / w;
  const double xmax = std::max(std::fabs(x[0]), std::fabs(x[n - 1]));
  const double range = x[e - 1] - x[f];
  const double length = static_cast<double>(e - f), values = static_cast<double>(n);
  const double delta = 8 * eps * (values * ct.cumw[n] * xmax / w + length * (range + std::fabs(m)) + std::fabs(m)) +
                       std::numeric_limits<double>::denorm_min();
  const uint16_t lo = double_to_half(m - delta), hi = double_to_half(m + delta);
  if (lo == hi) return static_cast<double>(half_to_float(lo));
  double mean = 0;
  for (size_t i = f; i < e; ++i) mean += (x[i] - mean) * ct.weight(i, i) / ct.weight(f, i);
  return static_cast<double>(half_to_float(double_to_half(mean)));
}

// fp16: centroids are the fp16 LUT entries (kmeans1d's running means rounded to fp16, exactly, via
// fp16_centroid) and the cost is the DP's Σ of interval costs; exact: kmeans1d's running means and
// the cost summed value by value.
template <class Argmin>
void backtrack(const double* x, const CostTable& ct, size_t n, size_t k, const Argmin& argmin_at, Kmeans1dResult& r,
               bool fp16 = false) {
  r.centroids.assign(k, 0.0);
  std::vector<size_t> first(k, 0), end(k, 0);  // cluster m covers [first[m], end[m])
  size_t t = n;
  size_t m = k;
  size_t last = n - 1;
  while (m > 0 && t > 0) {
    --m;
    size_t start = m == 0 ? 0 : argmin_at(m, last);
    if (start > t) start = t;  // empty cluster (degenerate ties only): keep the bound
    first[m] = start;
    end[m] = t;
    t = start;
    if (start == 0) break;
    last = start - 1;
  }
  // Filled front to back by appending (no zero-fill of n entries first); the clusters tile [0, n).
  r.assignment.clear();
  r.assignment.reserve(n);
  for (size_t c = 0; c < k; ++c)
    r.assignment.insert(r.assignment.end(), end[c] - first[c], static_cast<uint32_t>(c));
  if (fp16) {
    double cost = 0;
    for (size_t c = 0; c < k; ++c) {
      if (end[c] <= first[c]) continue;
      r.centroids[c] = fp16_centroid(x, ct, n, first[c], end[c]);
      cost += ct.cost(first[c], end[c] - 1);
    }
    r.cost = cost;
    return;
  }
  std::vector<size_t> active;  // clusters with values left, longest first
  for (size_t c = 0; c < k; ++c)
    if (end[c] > first[c]) active.push_back(c);
  std::sort(active.begin(), active.end(), [&](size_t a, size_t b) { return end[a] - first[a] > end[b] - first[b]; });
  for (size_t step = 0; !active.empty(); ++step) {
    while (!active.empty() && end[active.back()] - first[active.back()] <= step) active.pop_back();
    for (size_t c : active) {
      const size_t i = first[c] + step;
      r.centroids[c] += (x[i] - r.centroids[c]) * ct.weight(i, i) / ct.weight(first[c], i);
    }
  }
  // Final cost from the chosen segmentation (independent of the DP's rounding): per cluster four
  // partial sums in value order (one running sum over every value was a chain of dependent adds,
  // 3 % of a 4-bit gs16 palettization), clusters added in order.
  double cost = 0;
  for (size_t c = 0; c < k; ++c) {
    const double mu = r.centroids[c];
    double part[4] = {0, 0, 0, 0};
    size_t i = first[c];
    for (; i + 4 <= end[c]; i += 4)
      for (size_t t = 0; t < 4; ++t) {
        const double d = x[i + t] - mu;
        part[t] += ct.weight(i + t, i + t) * d * d;
      }
    for (; i < end[c]; ++i) {
      const double d = x[i] - mu;
      part[0] += ct.weight(i, i) * d * d;
    }
    cost += (part[0] + part[1]) + (part[2] + part[3]);
  }
  r.cost = cost;
}

template <class Index>
Kmeans1dResult solve_smawk(const double* x, const double* w, size_t n, size_t k, const CancelCheck& cancelled) {
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
    poll(cancelled);
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


// Row-minima by divide and conquer over the textbook DP restricted to non-empty clusters:
// D[m][i] = min_{m <= j <= i} D[m−1][j−1] + cost(j, i). Argmins are monotone in i (and bounded
// below by the previous layer's argmin, Knuth), so each row scans a contiguous window of columns;
// the window scan is branch-free and vectorizes. Leftmost minimum on ties, like the reference.
struct DcLayer {
  const double* __restrict cw;
  const double* __restrict cs;
  const double* __restrict cs2;
  const double* __restrict prev;  // D[m−1][·]
  double* __restrict vals;        // scratch
};

// Fills vals[0 .. b−a] with C(i, j) for j in [a, b] and returns the leftmost argmin.
// On x86-64 Linux GCC builds an AVX-512 / AVX2 / baseline clone and picks one at load time (ifunc);
// lanes run the same IEEE operations in the same order, so every clone gives identical bits.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && defined(__GLIBC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
size_t scan_window(const DcLayer& L, size_t i, size_t a, size_t b, double* best_out) {
  const double wi = L.cw[i + 1], si = L.cs[i + 1], s2i = L.cs2[i + 1];
  const size_t len = b - a + 1;
  const double* __restrict cw = L.cw + a;
  const double* __restrict cs = L.cs + a;
  const double* __restrict cs2 = L.cs2 + a;
  const double* __restrict pv = L.prev + a - 1;
  double* __restrict v = L.vals;
  for (size_t t = 0; t < len; ++t) {  // same operations, same order as CostTable::cost
    double w = wi - cw[t];
    double s1 = si - cs[t];
    double mu = s1 / w;
    double r = s2i - cs2[t];
    r += w * (mu * mu);
    r -= (2 * mu) * s1;
    v[t] = pv[t] + r;
  }
  size_t arg = 0;
  double best = v[0];
  for (size_t t = 1; t < len; ++t) {  // selects, not branches: which column wins is data-dependent
    bool lt = v[t] < best;
    best = lt ? v[t] : best;
    arg = lt ? t : arg;
  }
  *best_out = best;
  return a + arg;
}

// Most windows (D&C rows deep in the recursion, sweep rows) are a few columns: scanned inline
// (no ifunc call, no second argmin pass, no branch on the comparison; ~20 % faster overall). Same operations in the same order as scan_window (fp contraction is off): same bits.
constexpr size_t kTinyWindow = 16;

inline size_t scan_tiny(const DcLayer& L, size_t i, size_t a, size_t b, double* best_out) {
  const double wi = L.cw[i + 1], si = L.cs[i + 1], s2i = L.cs2[i + 1];
  size_t arg = a;
  double best = 0;
  for (size_t t = a; t <= b; ++t) {
    double w = wi - L.cw[t];
    double s1 = si - L.cs[t];
    double mu = s1 / w;
    double r = s2i - L.cs2[t];
    r += w * (mu * mu);
    r -= (2 * mu) * s1;
    double v = L.prev[t - 1] + r;
    bool lt = t == a || v < best;
    best = lt ? v : best;
    arg = lt ? t : arg;
  }
  *best_out = best;
  return arg;
}

template <class Index>
void dc_rows(const DcLayer& L, const Index* lower, size_t lower_hi, size_t lo, size_t hi, size_t optlo, size_t opthi,
             double* cur, Index* arg) {
  while (lo <= hi) {
    size_t mid = lo + (hi - lo) / 2;
    size_t a = optlo, b = std::min(opthi, mid);
    if (lower && mid <= lower_hi) a = std::max(a, static_cast<size_t>(lower[mid]));
    if (a > b) a = b;  // rounding can make the bounds cross; fall back to one column
    double best;
    size_t j = b - a < kTinyWindow ? scan_tiny(L, mid, a, b, &best) : scan_window(L, mid, a, b, &best);
    cur[mid] = best;
    arg[mid] = static_cast<Index>(j);
    if (mid > lo) dc_rows(L, lower, lower_hi, lo, mid - 1, optlo, j, cur, arg);
    lo = mid + 1;
    optlo = j;
  }
}

// Rows lo..hi of one layer by a descending sweep with Knuth–Yao bounds
// opt[m−1][i] <= opt[m][i] <= opt[m][i+1]: row i scans only [lower[i], arg[i+1]], about
// i/m² columns, so for the later layers of a large-k DP (8-bit LUTs: k = 256) this costs a few
// cells per row where divide and conquer pays ~log n. Rows above lower_hi (no previous-layer
// bound) fall back to divide and conquer. The same monotonicity divide and conquer relies on.
template <class Index>
void sweep_rows(const DcLayer& L, const Index* lower, size_t lower_hi, size_t lo, size_t hi, size_t optlo,
                size_t opthi, double* cur, Index* arg) {
  size_t top = hi;
  if (hi > lower_hi) {
    size_t from = std::max(lo, lower_hi + 1);
    dc_rows<Index>(L, lower, lower_hi, from, hi, optlo, opthi, cur, arg);
    if (from == lo) return;
    top = from - 1;
  }
  size_t b_next = hi > top ? static_cast<size_t>(arg[top + 1]) : opthi;
  for (size_t i = top + 1; i-- > lo;) {
    size_t a = std::max(optlo, static_cast<size_t>(lower[i]));
    size_t b = std::min(std::min(b_next, opthi), i);
    if (a > b) a = b;  // rounding can make the bounds cross; fall back to one column
    double best;
    size_t j = b - a < kTinyWindow ? scan_tiny(L, i, a, b, &best) : scan_window(L, i, a, b, &best);
    cur[i] = best;
    arg[i] = static_cast<Index>(j);
    b_next = j;
  }
}

// Divide and conquer pays ~log n cells per row, the sweep ~rows/m² (m = layer): sweep once m² is
// large against the row count.
inline bool sweep_pays(size_t m, size_t rows) { return m * m * 8 >= rows; }

template <class Index>
Kmeans1dResult solve_dc(const double* x, const double* w, size_t n, size_t k, const CancelCheck& cancelled) {
  // Per-thread buffers reused across calls: thousands of small groups must not each pay for
  // fresh (page-faulted, zeroed) allocations.
  thread_local CostTable ct;
  thread_local std::vector<Index> table;
  thread_local std::vector<double> prev, cur, vals;
  ct.build(x, w, n);
  Kmeans1dResult r;
  if (table.size() < (k - 1) * n) table.resize((k - 1) * n);
  if (prev.size() < n) {
    prev.resize(n);
    cur.resize(n);
    vals.resize(n);
  }
  for (size_t i = 0; i < n; ++i) prev[i] = ct.cost(0, i);
  for (size_t m = 1; m < k; ++m) {
    poll(cancelled);
    DcLayer L{ct.cumw.data(), ct.cumsum.data(), ct.cumsum2.data(), prev.data(), vals.data()};
    Index* row = table.data() + (m - 1) * n;
    const Index* lower = m >= 2 ? table.data() + (m - 2) * n : nullptr;
    // Rows that can still lead to a full solution: i in [m, n − k + m].
    dc_rows<Index>(L, lower, n - k + m - 1, m, n - k + m, m, n - k + m, cur.data(), row);
    std::swap(prev, cur);
  }
  backtrack(x, ct, n, k, [&](size_t m, size_t i) { return static_cast<size_t>(table[(m - 1) * n + i]); }, r);
  return r;
}


// ---------------------------------------------------------------------------------------------
// Pruned meet-in-the-middle DP (default). Exact; typically 2-3× fewer cells than the plain DP:
//  * an upper bound UB on the optimum comes from Lloyd iterations on the sorted histogram (any
//    k-segmentation's cost is >= OPT). A prefix row with D[m][i] > UB cannot lie on the optimal
//    path, and D[m][i] is nondecreasing in i, so layer m only needs rows up to P_m (the last row
//    <= UB) and its candidates j only up to P_{m−1} + 1. Rows computed with capped candidates are
//    exact whenever their value is <= UB (a better uncapped candidate would itself exceed UB).
//  * few rows survive in the first layers, so the prefix is solved for ceil(k/2) clusters and the
//    suffix (the same DP on the reversed, negated data) for the rest; the split minimizing
//    F[s−1] + B[n−1−s] joins them.

// std::upper_bound(x, x + n, v) found by galloping out from `hint` (the previous iteration's
// boundary): Lloyd moves boundaries a few values per iteration, so this is a handful of probes
// where a bisection of all n values was ~14 cache-missing ones. Same answer.
inline size_t upper_bound_near(const double* x, size_t n, double v, size_t hint) {
  if (hint > n) hint = n;
  size_t lo, hi;  // the answer is in [lo, hi]
  if (hint < n && !(v < x[hint])) {  // x[hint] <= v: the answer is above hint
    size_t step = 1;
    lo = hint + 1;
    hi = lo;
    while (hi < n && !(v < x[hi])) {
      lo = hi + 1;
      hi = lo + step;
      step *= 2;
      if (hi > n) hi = n;
    }
  } else {  // v < x[hint] (or hint == n): the answer is at or below hint
    size_t step = 1;
    hi = hint;
    lo = hi;
    while (lo > 0 && v < x[lo - 1]) {
      hi = lo - 1;
      lo = hi > step ? hi - step : 0;
      step *= 2;
    }
  }
  return static_cast<size_t>(std::upper_bound(x + lo, x + hi, v) - x);
}

// Lloyd iterations on the histogram from segment starts (start[0] = 0, start[k] = n, strictly
// increasing): returns the cost of the segmentation reached, an upper bound on OPT(k). Prefix sums
// make an iteration O(k log n).
double lloyd_refine(const double* x, const CostTable& ct, size_t n, size_t k, std::vector<size_t>& start,
                    int max_iterations = 50) {
  auto fix = [&] {  // strictly increasing, room for every cluster
    for (size_t c = 1; c < k; ++c) start[c] = std::max(start[c], start[c - 1] + 1);
    for (size_t c = k - 1; c >= 1; --c) start[c] = std::min(start[c], start[c + 1] - 1);
  };
  fix();
  std::vector<double> mu(k);
  for (int it = 0; it < max_iterations; ++it) {
    for (size_t c = 0; c < k; ++c) {
      size_t a = start[c], b = start[c + 1] - 1;
      mu[c] = (ct.cumsum[b + 1] - ct.cumsum[a]) / (ct.cumw[b + 1] - ct.cumw[a]);
    }
    bool changed = false;
    for (size_t c = 1; c < k; ++c) {
      double mid = 0.5 * (mu[c - 1] + mu[c]);
      size_t s = upper_bound_near(x, n, mid, start[c]);
      if (s != start[c]) {
        start[c] = s;
        changed = true;
      }
    }
    fix();
    if (!changed) break;
  }
  double cost = 0;
  for (size_t c = 0; c < k; ++c) cost += ct.cost(start[c], start[c + 1] - 1);
  return cost;
}

// Any valid k-segmentation's cost: Lloyd from a start near the optimum, so that the bound is tight
// (it prunes more rows). High-resolution quantization theory puts optimal cells at equal shares of
// ∫ p^(1/3) dx; with counts c_j over gaps Δ_j that is c_j^(1/3)·Δ_j^(2/3). (Equal-weight quantiles
// start far off on heavy tails, and Lloyd then stalls 5-30 % above the optimum.) stride > 1 reads
// the density at every stride-th value only (a cube root per value costs a third of a penalized
// pass); Lloyd then moves the starts to the same kind of fixed point.
// Cube root to ~0.2 % (a bit-level first guess and one Newton step): only the density
// that places Lloyd's starting segments comes from it, and any segmentation bounds OPT, so its error
// costs at most a looser bound. libm's cbrt cost ~60 instructions a value, a fifth of a penalized pass.
inline double approx_cbrt(double y) {
  if (!(y >= std::numeric_limits<double>::min()) || !std::isfinite(y)) return std::cbrt(y);  // 0, subnormal, Inf, NaN
  uint64_t bits;
  std::memcpy(&bits, &y, sizeof bits);
  bits = bits / 3 + 0x2A9F7893782DA1CEull;  // exponent / 3 with the bias kept (Kahan's constant)
  double r;
  std::memcpy(&r, &bits, sizeof r);
  return r - (r * r * r - y) / (3 * r * r);
}

double lloyd_upper_bound(const double* x, const CostTable& ct, size_t n, size_t k, size_t stride = 1,
                         int max_iterations = 50) {
  std::vector<size_t> start(k + 1);
  start[0] = 0;
  start[k] = n;
  const size_t samples = (n + stride - 1) / stride;
  std::vector<double> g(samples + 1, 0.0);  // g[t]: share of ∫ p^(1/3) below value t·stride
  for (size_t t = 0; t < samples; ++t) {
    const size_t j = t * stride;
    double lo = j > 0 ? x[j - 1] : x[j], hi = j + 1 < n ? x[j + 1] : x[j];
    double gap = n > 1 ? 0.5 * (hi - lo) : 1.0;
    g[t + 1] = g[t] + approx_cbrt(ct.weight(j, j) * gap * gap);
  }
  for (size_t c = 1; c < k; ++c) {
    double target = g[samples] * static_cast<double>(c) / static_cast<double>(k);
    size_t t = static_cast<size_t>(std::lower_bound(g.begin() + 1, g.end(), target) - g.begin());
    start[c] = std::min(n, t * stride);
  }
  return lloyd_refine(x, ct, n, k, start, max_iterations);
}

template <class Index>
struct HalfDp {
  CostTable ct;
  std::vector<Index> table;  // argmin rows: layers 1..L−1 (n entries each), or two rolling rows
  std::vector<double> prev, cur, vals;
  std::vector<double> xs, ws;  // reversed data for the suffix half
  size_t last_valid = 0;       // P of the final layer
};

// Argmin tables above this size are not kept: the DP keeps two rolling argmin rows (Knuth's lower
// bound needs the previous layer's) and recovers the segmentation by recursion on the two halves
// (Hirschberg), so memory stays O(n) whatever k is. 4-bit LUTs (k = 16, n <= 65,536: 2 MB) never
// recurse; 8-bit LUTs over tens of thousands of distinct values do, for ~1.5× the DP time.
constexpr size_t kArgminTableBudget = size_t{4} << 20;

// Layers 0..L−1 of the prefix DP on (x, w), rows pruned by `ub`. k_total sets the row caps.
// rolling: keep only the last two argmin rows (no backtracking table).
template <class Index>
void forward_pruned(const double* x, const double* w, size_t n, size_t L, size_t k_total, double ub,
                    HalfDp<Index>& h, bool rolling, const CancelCheck& cancelled) {
  h.ct.build(x, w, n);
  const size_t rows = L > 1 ? (rolling ? std::min<size_t>(2, L - 1) : L - 1) : 0;
  if (h.table.size() < rows * n) h.table.resize(rows * n);
  if (h.prev.size() < n) {
    h.prev.resize(n);
    h.cur.resize(n);
    h.vals.resize(n);
  }
  auto argmin_row = [&](size_t m) { return h.table.data() + (rolling ? (m - 1) % 2 : m - 1) * n; };
  size_t cap0 = n - k_total;
  size_t P = 0;
  for (size_t i = 0; i <= cap0; ++i) {
    h.prev[i] = h.ct.cost(0, i);
    if (h.prev[i] <= ub) P = i;
    else break;  // nondecreasing: the rest exceed UB too
  }
  for (size_t m = 1; m < L; ++m) {
    poll(cancelled);
    const size_t cap = n - k_total + m;
    const size_t colmax = std::min(P + 1, cap);
    DcLayer Ly{h.ct.cumw.data(), h.ct.cumsum.data(), h.ct.cumsum2.data(), h.prev.data(), h.vals.data()};
    Index* row = argmin_row(m);
    const Index* lower = m >= 2 ? argmin_row(m - 1) : nullptr;
    // Gallop over the row range: stop once a row exceeds UB (later rows only grow).
    size_t lo = m, hi = std::min(cap, std::max(lo, P + P / 4 + 16));
    size_t newP = m;
    for (;;) {
      size_t optlo = lo == m ? m : static_cast<size_t>(row[lo - 1]);
      if (lower && sweep_pays(m, P)) sweep_rows<Index>(Ly, lower, P, lo, hi, optlo, colmax, h.cur.data(), row);
      else dc_rows<Index>(Ly, lower, P, lo, hi, optlo, colmax, h.cur.data(), row);
      bool over = false;
      for (size_t i = lo; i <= hi; ++i) {
        if (h.cur[i] <= ub) newP = i;
        else {
          over = true;
          break;
        }
      }
      if (over || hi == cap) break;
      lo = hi + 1;
      hi = std::min(cap, hi + (hi - m + 1) / 2 + 16);
    }
    P = newP;
    std::swap(h.prev, h.cur);
  }
  h.last_valid = P;
}

// Segment starts of the prefix half ending at row e (layer L−1).
template <class Index>
void half_starts(const HalfDp<Index>& h, size_t n, size_t L, size_t e, std::vector<size_t>& starts) {
  starts.assign(L, 0);
  for (size_t m = L - 1; m >= 1; --m) {
    starts[m] = static_cast<size_t>(h.table[(m - 1) * n + e]);
    e = starts[m] - 1;
  }
}

// Pruning bound with room for rounding: costs come from differences of prefix sums (errors scale
// with Σw·x², not with the cost) and the suffix half sums in the other direction. A larger bound
// only prunes less.
double with_margin(double cost, const double* x, const double* w, size_t n) {
  double s2 = 0;
  for (size_t i = 0; i < n; ++i) s2 += (w ? w[i] : 1.0) * x[i] * x[i];
  return cost * (1 + 1e-6) + 1e-9 * s2 + 1e-300;
}

// Starts of the k segments of an optimal clustering of x[0..n) (starts[0] = 0), any optimal
// segmentation when several tie. Returns false when `ub` is below the optimum (the caller retries
// with no bound). Prefix (ceil(k/2) clusters) and suffix (the rest, as the same DP on the reversed,
// negated data) are solved up to their last layer and joined at the split s minimizing
// F[s−1] + B[n−1−s]; with a table the halves backtrack, otherwise each half recurses with its
// exact optimum (known from the join) as its bound.
template <class Index>
bool pruned_starts(const double* x, const double* w, size_t n, size_t k, double ub, std::vector<size_t>& starts,
                   const CancelCheck& cancelled) {
  starts.clear();
  if (k >= n) {  // one value per cluster
    for (size_t i = 0; i < n; ++i) starts.push_back(i);
    return true;
  }
  if (k == 1) {
    starts.push_back(0);
    return true;
  }
  thread_local HalfDp<Index> fwd, bwd;
  const size_t L1 = (k + 1) / 2, L2 = k - L1;
  const bool rolling = (L1 + L2 - 2) * n * sizeof(Index) > kArgminTableBudget;
  forward_pruned<Index>(x, w, n, L1, k, ub, fwd, rolling, cancelled);
  bwd.xs.resize(n);
  bwd.ws.resize(n);
  for (size_t i = 0; i < n; ++i) {
    bwd.xs[i] = -x[n - 1 - i];
    bwd.ws[i] = w ? w[n - 1 - i] : 1.0;
  }
  forward_pruned<Index>(bwd.xs.data(), bwd.ws.data(), n, L2, k, ub, bwd, rolling, cancelled);
  // Split s: prefix [0, s−1] (L1 clusters), suffix [s, n−1] (L2 clusters).
  size_t s_lo = std::max(L1, n - 1 - bwd.last_valid), s_hi = std::min(n - L2, fwd.last_valid + 1);
  size_t best_s = s_lo;
  double best = std::numeric_limits<double>::infinity();
  for (size_t s = s_lo; s <= s_hi; ++s) {
    double v = fwd.prev[s - 1] + bwd.prev[n - 1 - s];
    if (v < best) {
      best = v;
      best_s = s;
    }
  }
  if (!(best <= ub)) return false;
  if (!rolling) {
    std::vector<size_t> b;
    half_starts(fwd, n, L1, best_s - 1, starts);
    half_starts(bwd, n, L2, n - 1 - best_s, b);
    // Suffix cluster c' covers reversed [b[c'], b[c'+1]−1] = original [n−b[c'+1], n−1−b[c']].
    for (size_t c = L2; c-- > 0;) starts.push_back(n - (c + 1 < L2 ? b[c + 1] : n - best_s));
    // Per-thread tables are kept for the next group unless big (released so pool threads do not
    // hold them).
    if ((fwd.table.capacity() + bwd.table.capacity()) * sizeof(Index) > kArgminTableBudget) {
      std::vector<Index>().swap(fwd.table);
      std::vector<Index>().swap(bwd.table);
    }
    return true;
  }
  const double left_cost = fwd.prev[best_s - 1], right_cost = bwd.prev[n - 1 - best_s];
  const double* wr = w ? w + best_s : nullptr;
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<size_t> right;
  if (!pruned_starts<Index>(x, w, best_s, L1, with_margin(left_cost, x, w, best_s), starts, cancelled))
    pruned_starts<Index>(x, w, best_s, L1, inf, starts, cancelled);
  if (!pruned_starts<Index>(x + best_s, wr, n - best_s, L2, with_margin(right_cost, x + best_s, wr, n - best_s), right,
                            cancelled))
    pruned_starts<Index>(x + best_s, wr, n - best_s, L2, inf, right, cancelled);
  for (size_t r : right) starts.push_back(best_s + r);
  return true;
}

template <class Index>
Kmeans1dResult solve_pruned(const double* x, const double* w, size_t n, size_t k, const CancelCheck& cancelled) {
  thread_local CostTable ct;
  ct.build(x, w, n);
  const double ub = with_margin(lloyd_upper_bound(x, ct, n, k), x, w, n);
  std::vector<size_t> starts;
  if (!pruned_starts<Index>(x, w, n, k, ub, starts, cancelled))  // defensive: never seen
    pruned_starts<Index>(x, w, n, k, std::numeric_limits<double>::infinity(), starts, cancelled);
  Kmeans1dResult r;
  backtrack(x, ct, n, k, [&](size_t m, size_t) { return starts[m]; }, r);
  return r;
}


// ---------------------------------------------------------------------------------------------
// Lagrangian search (default). OPT(c) is convex in c, so the penalized optimum for penalty λ has
// c(λ) clusters with c nonincreasing in λ, and every solve yields an exact point (c, OPT(c)) of the
// lower convex hull. λ starts at an estimate of the marginal OPT(k−1) − OPT(k).
// One count off, the optimal (k ± 1)-segmentation turned into a k-segmentation and polished by
// Lloyd bounds OPT(k) closely, and λ is set just past the marginal that bound implies; further off,
// λ moves by the power law. Once k is bracketed, λ is the chord slope of the bracket, which either
// lands strictly inside it or shows k lies on a hull edge (no λ gives k: fallback).

// First λ: the marginal OPT(k−1) − OPT(k) ≈ 2·OPT(k)/k of the high-resolution power law
// OPT(c) ∝ c^−2, with OPT(k) bounded by Lloyd (from the density of every value: 1,024 samples
// gave a bound 0-26 % above OPT and a first pass on k 43 % of the time, all values ~70 %). Closer than the
// Panter–Dite integral alone on heavy-tailed weights (1.8 passes per group over the synthetic
// SDXL UNet at gs16, instead of ~2.2).
// With >= 256 values per cluster (4-bit LUTs of large groups) the density is read at every 4th
// value (the cube roots were ~40 instructions per value, a quarter of a penalized pass) and λ is
// taken 5 % under 2·UB/k, since UB sits above OPT: on the 4-bit gs16 benchmark shapes the same or
// fewer passes than every value at 1.0 (2048²: 1.41 → 1.35 passes per group; 10240×1280 1.46 →
// 1.47). Fewer values per cluster (6- and 8-bit LUTs) keep every value: a sparse density there
// costs passes (8-bit gs16 1280²: 5.1 → 6.0).
double initial_lambda(const double* x, const CostTable& ct, size_t n, size_t k) {
  if (n >= 256 * k) return 0.95 * 2 * lloyd_upper_bound(x, ct, n, k, 4, 20) / static_cast<double>(k);
  return 2 * lloyd_upper_bound(x, ct, n, k, 1, 20) / static_cast<double>(k);
}

// An upper bound on OPT(k) from an optimal segmentation with k ± 1 clusters (starts, without the
// final n): merge the adjacent pair that is cheapest to merge, or split the costliest cluster at its
// mean, then Lloyd. Optimal segmentations for neighbouring counts interleave, so this usually lands
// on the k-optimum.
double neighbour_upper_bound(const double* x, const CostTable& ct, size_t n, size_t k, const std::vector<size_t>& starts) {
  std::vector<size_t> start(starts);
  start.push_back(n);
  auto cluster_cost = [&](size_t p) { return ct.cost(start[p], start[p + 1] - 1); };
  if (starts.size() == k + 1) {
    size_t best_p = 0;
    double best = std::numeric_limits<double>::infinity();
    for (size_t p = 0; p + 1 < starts.size(); ++p) {
      double growth = ct.cost(start[p], start[p + 2] - 1) - cluster_cost(p) - cluster_cost(p + 1);
      if (growth < best) best = growth, best_p = p;
    }
    start.erase(start.begin() + static_cast<std::ptrdiff_t>(best_p) + 1);
  } else {
    size_t worst_p = 0;
    double worst = -1;
    for (size_t p = 0; p < starts.size(); ++p)
      if (start[p + 1] - start[p] >= 2 && cluster_cost(p) > worst) worst = cluster_cost(p), worst_p = p;
    const size_t a = start[worst_p], b = start[worst_p + 1] - 1;
    const double mean = (ct.cumsum[b + 1] - ct.cumsum[a]) / (ct.cumw[b + 1] - ct.cumw[a]);
    size_t t = static_cast<size_t>(std::upper_bound(x + a, x + b + 1, mean) - x);
    t = std::min(std::max(t, a + 1), b);
    start.insert(start.begin() + static_cast<std::ptrdiff_t>(worst_p) + 1, t);
  }
  return lloyd_refine(x, ct, n, k, start);
}

constexpr int kLagrangianRounds = 12;
// λ is set this far (relative) past a marginal estimated from an upper bound: an exact bound would
// otherwise tie k with its neighbour.
constexpr double kMarginalNudge = 1e-3;

// The λ search of one problem, between passes: a problem's search can wait while other problems'
// passes run (kmeans1d_batch), and one-by-one solving runs the same steps.
class LambdaSearch {
 public:
  enum class Next { kPass, kFound, kNoLambda };

  void begin(const double* x, const CostTable& ct, size_t n, size_t k) {
    x_ = x;
    ct_ = &ct;
    n_ = n;
    k_ = k;
    lambda_ = initial_lambda(x, ct, n, k);
    round_ = 0;
    lo_c_ = hi_c_ = 0;
    lo_cost_ = hi_cost_ = 0;
    chord_ = false;
  }
  // kPass: run a pass at lambda(); kNoLambda: no λ is left to try (the layered DP must answer).
  Next next() const {
    return round_ < kLagrangianRounds && std::isfinite(lambda_) && lambda_ > 0 ? Next::kPass : Next::kNoLambda;
  }
  double lambda() const { return lambda_; }

  // The pass at lambda() found `seg`: kFound (it has k clusters), or what to do next.
  Next after_pass(const PenalizedSegmentation& seg) {
    ++round_;
    const size_t c = seg.clusters, k = k_;
    if (c == k) return Next::kFound;
    if (chord_ && (c == lo_c_ || c == hi_c_)) return Next::kNoLambda;  // k lies on a hull edge
    if (c < k && (lo_c_ == 0 || c > lo_c_)) lo_c_ = c, lo_cost_ = seg.cost;
    if (c > k && (hi_c_ == 0 || c < hi_c_)) hi_c_ = c, hi_cost_ = seg.cost;
    if (lo_c_ != 0 && hi_c_ != 0) {
      lambda_ = (lo_cost_ - hi_cost_) / static_cast<double>(hi_c_ - lo_c_);
      chord_ = true;
    } else if (c == k + 1 || c + 1 == k) {
      // The marginal between c and k, from an upper bound on OPT(k): λ must pass OPT(k) − OPT(k+1)
      // (c = k + 1) or stay under OPT(k−1) − OPT(k) (c = k − 1).
      const double ub = neighbour_upper_bound(x_, *ct_, n_, k, seg.starts);
      double next = c > k ? (ub - seg.cost) * (1 + kMarginalNudge) : (seg.cost - ub) * (1 - kMarginalNudge);
      // A loose bound puts λ past the far edge of k's window (k − 1 → k + 2 or more): keep it inside
      // the power law's estimate of that edge from the exact OPT(c) (OPT ∝ c^−2). 1.61 → 1.50
      // passes per group on 1280² gs16, a little fewer on others.
      const double cc = static_cast<double>(c), kk = static_cast<double>(k);
      if (c < k) {
        const double est_lo = seg.cost * ((cc / kk) * (cc / kk) - (cc / (kk + 1)) * (cc / (kk + 1)));
        if (next < est_lo) next = est_lo;
      } else {
        const double est_hi = seg.cost * ((cc / (kk - 1)) * (cc / (kk - 1)) - (cc / kk) * (cc / kk));
        if (next > est_hi) next = est_hi;
      }
      if (c > k ? next > lambda_ : next < lambda_) lambda_ = next;
      else lambda_ *= c > k ? 1.2 : 1 / 1.2;  // the bound is too loose to help: step past
    } else {
      // Power law OPT(c) ∝ c^−2: the marginal scales as c^−3. Clamped so a poor estimate still moves.
      double ratio = static_cast<double>(c) / static_cast<double>(k);
      lambda_ *= std::min(8.0, std::max(0.125, ratio * ratio * ratio));
    }
    return next();
  }

 private:
  const double* x_ = nullptr;
  const CostTable* ct_ = nullptr;
  size_t n_ = 0, k_ = 0;
  double lambda_ = 0;
  int round_ = 0;
  size_t lo_c_ = 0, hi_c_ = 0;  // bracket: fewest clusters above k, most below k (0 = none yet)
  double lo_cost_ = 0, hi_cost_ = 0;
  bool chord_ = false;
};

Kmeans1dResult segmentation_result(const double* x, const CostTable& ct, size_t n, size_t k, const PenalizedSegmentation& seg,
                                   bool fp16 = false) {
  Kmeans1dResult r;
  backtrack(x, ct, n, k, [&](size_t m, size_t) { return seg.starts[m]; }, r, fp16);
  r.lagrangian = true;
  return r;
}

Kmeans1dResult solve_no_lambda(const double* x, const double* w, size_t n, size_t k, const CancelCheck& cancelled) {
  if (n <= 65536) return solve_pruned<uint16_t>(x, w, n, k, cancelled);
  return solve_pruned<uint32_t>(x, w, n, k, cancelled);
}

Kmeans1dResult solve_lagrangian(const double* x, const double* w, size_t n, size_t k, const CancelCheck& cancelled) {
  // Per-thread buffers, bound once: in a shared library each thread_local access is a call.
  struct Scratch {
    CostTable ct;
    PenalizedDp dp;
    PenalizedSegmentation seg;
  };
  thread_local Scratch tls;
  Scratch& scratch = tls;
  CostTable& ct = scratch.ct;
  PenalizedSegmentation& seg = scratch.seg;
  ct.build(x, w, n);
  LambdaSearch search;
  search.begin(x, ct, n, k);
  while (search.next() == LambdaSearch::Next::kPass) {
    poll(cancelled);
    scratch.dp.solve(ct, n, search.lambda(), seg);
    const LambdaSearch::Next next = search.after_pass(seg);
    if (next == LambdaSearch::Next::kFound) return segmentation_result(x, ct, n, k, seg);
    if (next == LambdaSearch::Next::kNoLambda) break;
  }
  return solve_no_lambda(x, w, n, k, cancelled);
}

}  // namespace

namespace {

Kmeans1dResult solve_sorted(const double* values, const double* weights, size_t n, size_t k, Kmeans1dAlgorithm algo,
                            const CancelCheck& cancelled) {
  k = std::min(k, n);
  double table_bytes = static_cast<double>(k) * static_cast<double>(n) * (n <= 65536 ? 2.0 : 4.0);
  if (algo != Kmeans1dAlgorithm::kPruned && algo != Kmeans1dAlgorithm::kLagrangian && table_bytes > 2.0 * 1024 * 1024 * 1024)
    throw Error("EINVAL", "kmeans1d: k·n too large (" + std::to_string(k) + " clusters × " + std::to_string(n) +
                              " distinct values needs a " + std::to_string(static_cast<long long>(table_bytes / 1048576)) +
                              " MiB table)");
  if (k == n) {  // every value is its own cluster: centroid = value exactly (as kmeans1d computes it)
    Kmeans1dResult r;
    r.centroids.assign(values, values + n);
    r.assignment.resize(n);
    std::iota(r.assignment.begin(), r.assignment.end(), 0u);
    return r;
  }
  if (algo == Kmeans1dAlgorithm::kSmawk) {
    if (n <= 65536) return solve_smawk<uint16_t>(values, weights, n, k, cancelled);
    return solve_smawk<uint32_t>(values, weights, n, k, cancelled);
  }
  if (algo == Kmeans1dAlgorithm::kLagrangian && k >= 2) return solve_lagrangian(values, weights, n, k, cancelled);
  if ((algo == Kmeans1dAlgorithm::kPruned || algo == Kmeans1dAlgorithm::kLagrangian) && k >= 2) {
    if (n <= 65536) return solve_pruned<uint16_t>(values, weights, n, k, cancelled);
    return solve_pruned<uint32_t>(values, weights, n, k, cancelled);
  }
  if (n <= 65536) return solve_dc<uint16_t>(values, weights, n, k, cancelled);
  return solve_dc<uint32_t>(values, weights, n, k, cancelled);
}

}  // namespace

Kmeans1dResult kmeans1d_sorted(const double* values, const double* weights, size_t n, size_t k,
                               Kmeans1dAlgorithm algo, const CancelCheck& cancelled) {
  check_input(values, weights, n, k);
  return solve_sorted(values, weights, n, k, algo, cancelled);
}

Kmeans1dResult kmeans1d_fp16_distinct(const DistinctValues& d, size_t k, const CancelCheck& cancelled) {
  if (d.values.empty()) throw Error("EINVAL", "kmeans1d: no values to cluster");
  if (k == 0) throw Error("EINVAL", "kmeans1d: k must be at least 1");
  return solve_sorted(d.values.data(), d.counts.data(), d.values.size(), k, Kmeans1dAlgorithm::kLagrangian, cancelled);
}

void kmeans1d_fp16_distinct_stream(size_t k, const Kmeans1dNext& next, const Kmeans1dDone& done,
                                   const CancelCheck& cancelled, bool fp16_centroids) {
  // fp16_centroids: results of the other paths (no λ search, one at a time) get their exact
  // centroids rounded too (rounding the λ search's fp16 centroids again changes nothing).
  auto deliver = [&](size_t slot, Kmeans1dResult& r) {
    if (fp16_centroids)
      for (double& c : r.centroids) c = static_cast<double>(half_to_float(double_to_half(c)));
    done(slot, r);
  };
  if (k == 0) throw Error("EINVAL", "kmeans1d: k must be at least 1");
  auto checked = [](const DistinctValues* d) {
    if (d && d->values.empty()) throw Error("EINVAL", "kmeans1d: no values to cluster");
    return d;
  };
  if (!penalized_streams_preferred()) {  // one pass at a time is faster where duels are scalar
    for (size_t slot = 0;; slot = 0) {
      const DistinctValues* d = checked(next(slot));
      if (!d) return;
      Kmeans1dResult r = kmeans1d_fp16_distinct(*d, k, cancelled);
      deliver(slot, r);
    }
  }
  struct Slot {
    const DistinctValues* d = nullptr;
    size_t k = 0;
    CostTable ct;
    LambdaSearch search;
    std::vector<double> best;
    std::vector<uint32_t> last, cand, from;
  };
  // Per-thread: buffers are reused across calls (a palettized tensor makes many calls per thread).
  thread_local Slot tls_slots[kKmeans1dStreamSlots];
  Slot* slots = tls_slots;
  PenalizedStream streams[kKmeans1dStreamSlots];  // the active passes, contiguous; slot_of maps them back
  size_t slot_of[kKmeans1dStreamSlots];
  size_t free_slots[kKmeans1dStreamSlots], free_count = 0;
  for (size_t i = kKmeans1dStreamSlots; i-- > 0;) free_slots[free_count++] = i;
  size_t active = 0;
  bool exhausted = false;
  PenalizedSegmentation seg;

  // Takes problems into slot `id` until one needs a pass (true) or there are none left (false).
  auto admit = [&](size_t id) {
    Slot& s = slots[id];
    for (;;) {
      s.d = checked(next(id));
      if (!s.d) return false;
      const double* x = s.d->values.data();
      const double* w = s.d->counts.data();
      const size_t n = s.d->values.size();
      s.k = std::min(k, n);
      if (s.k < 2 || s.k == n) {  // no λ search: as kmeans1d_fp16_distinct answers these
        Kmeans1dResult r = solve_sorted(x, w, n, k, Kmeans1dAlgorithm::kLagrangian, cancelled);
        deliver(id, r);
        continue;
      }
      s.ct.build(x, w, n);
      s.search.begin(x, s.ct, n, s.k);
      if (s.search.next() != LambdaSearch::Next::kPass) {
        Kmeans1dResult r = solve_no_lambda(x, w, n, s.k, cancelled);
        deliver(id, r);
        continue;
      }
      if (s.best.size() < n + 1) {
        s.best.resize(n + 1);
        s.last.resize(n + 1);
        s.cand.resize(n + 1);
        s.from.resize(n + 1);
      }
      PenalizedStream& st = streams[active];
      st.best = s.best.data();
      st.last = s.last.data();
      st.cand = s.cand.data();
      st.from = s.from.data();
      st.start(s.ct, n, s.search.lambda());
      slot_of[active] = id;
      return true;
    }
  };

  for (;;) {
    while (!exhausted && active < kKmeans1dStreamSlots) {
      const size_t id = free_slots[--free_count];
      if (admit(id)) {
        ++active;
      } else {
        free_slots[free_count++] = id;
        exhausted = true;
      }
    }
    if (active == 0) return;
    size_t steps = streams[0].remaining();
    for (size_t q = 1; q < active; ++q) steps = std::min(steps, streams[q].remaining());
    advance_penalized_streams(streams, active, steps);
    for (size_t q = active; q-- > 0;) {
      if (streams[q].remaining() != 0) continue;
      poll(cancelled);
      const size_t id = slot_of[q];
      Slot& s = slots[id];
      const double* x = s.d->values.data();
      const size_t n = s.d->values.size();
      penalized_segmentation(s.ct, n, streams[q].last, seg);
      const LambdaSearch::Next step = s.search.after_pass(seg);
      if (step == LambdaSearch::Next::kPass) {
        streams[q].start(s.ct, n, s.search.lambda());
        continue;
      }
      Kmeans1dResult r = step == LambdaSearch::Next::kFound ? segmentation_result(x, s.ct, n, s.k, seg, fp16_centroids)
                                                            : solve_no_lambda(x, s.d->counts.data(), n, s.k, cancelled);
      deliver(id, r);
      streams[q] = streams[active - 1];
      slot_of[q] = slot_of[active - 1];
      --active;
      free_slots[free_count++] = id;
    }
  }
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
    for (size_t i = m; i < n; ++i) {  // plain scan of every admissible column: leftmost minimum
      size_t arg = m;
      double best = f(i, m);
      for (size_t j = m + 1; j <= i; ++j) {
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

uint32_t fp16_order_keys(const uint16_t* __restrict data, size_t n, uint16_t* __restrict keys) {
  uint16_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = data[i];
    bad |= static_cast<uint16_t>((h & 0x7C00u) == 0x7C00u);
    keys[i] = fp16_order_key(h);
  }
  return bad;
}

namespace {

[[noreturn]] void throw_non_finite(uint16_t h) {
  char b[8];
  std::snprintf(b, sizeof b, "%04X", h);
  throw Error("EINVAL", std::string("palettize: weight contains ") + ((h & 0x3FFu) ? "NaN" : "Inf") + " (fp16 bits 0x" +
                            b + "); k-means needs finite values");
}

// Keys per block of add(): 8 KB of keys stays in L1 between the two passes.
constexpr size_t kKeyBlock = 4096;

}  // namespace

Fp16Histogram::Fp16Histogram(bool vector_collect)
    : counts_(65536 + 16, 0), vector_collect_(vector_collect && fp16_histogram_simd::avx512_supported()) {}

void Fp16Histogram::add_one(uint16_t h) {
  if ((h & 0x7C00u) == 0x7C00u) throw_non_finite(h);
  const uint16_t key = fp16_order_key(h);
  ++counts_[key];
  lo_ = std::min<uint32_t>(lo_, key);
  hi_ = std::max<uint32_t>(hi_, key);
}

void Fp16Histogram::add(const uint16_t* data, size_t n, size_t stride, uint16_t* keys_out) {
  uint16_t block_keys[kKeyBlock];
  uint16_t block[kKeyBlock];
  uint32_t* counts = counts_.data();
  for (size_t at = 0; at < n; at += kKeyBlock) {
    const size_t m = std::min(kKeyBlock, n - at);
    uint16_t* keys = keys_out ? keys_out + at : block_keys;
    const uint16_t* src = data + at * stride;
    if (stride != 1) {
      for (size_t i = 0; i < m; ++i) block[i] = src[i * stride];
      src = block;
    }
    if (fp16_order_keys(src, m, keys)) {
      for (size_t i = 0; i < m; ++i)
        if ((src[i] & 0x7C00u) == 0x7C00u) {
          clear();  // earlier blocks' counters (all inside the range): the histogram is left empty
          throw_non_finite(src[i]);
        }
    }
    // min/max on the keys with the top bit flipped, as int16: baseline x86-64 (SSE2) has signed
    // 16-bit min/max but not unsigned ones, so this vectorizes where the unsigned form did not
    // (a quarter of the histogram pass).
    int16_t lo_s = 0x7FFF, hi_s = -0x8000;
    for (size_t i = 0; i < m; ++i) {
      const int16_t k = static_cast<int16_t>(keys[i] ^ 0x8000u);
      lo_s = k < lo_s ? k : lo_s;
      hi_s = k > hi_s ? k : hi_s;
    }
    for (size_t i = 0; i < m; ++i) ++counts[keys[i]];
    if (m > 0) {
      const uint16_t lo = static_cast<uint16_t>(static_cast<uint16_t>(lo_s) ^ 0x8000u);
      const uint16_t hi = static_cast<uint16_t>(static_cast<uint16_t>(hi_s) ^ 0x8000u);
      lo_ = std::min<uint32_t>(lo_, lo);
      hi_ = std::max<uint32_t>(hi_, hi);
    }
  }
}

void Fp16Histogram::distinct(DistinctValues& out, std::vector<uint16_t>* keys) const { collect(out, keys, nullptr); }

void Fp16Histogram::take_distinct(DistinctValues& out, std::vector<uint16_t>* keys) {
  collect(out, keys, counts_.data());
  lo_ = 65536;
  hi_ = 0;
}

void Fp16Histogram::collect(DistinctValues& out, std::vector<uint16_t>* keys, uint32_t* zero) const {
  if (lo_ > hi_) {
    out.values.clear();
    out.counts.clear();
    if (keys) keys->clear();
    return;
  }
  if (vector_collect_) {
    // AVX-512: 16 counters per test, compressed to (key, count) pairs, then expanded to values.
    thread_local std::vector<uint32_t> found_keys, found_counts;
    const size_t first = lo_ & ~size_t{15}, last = hi_;
    found_keys.resize(last - first + 16);
    found_counts.resize(last - first + 16);
    const size_t m = fp16_histogram_simd::compact_nonzero_avx512(counts_.data(), first, last, found_keys.data(),
                                                                 found_counts.data(), zero);
    out.values.resize(m);
    out.counts.resize(m);
    if (keys) keys->resize(m);
    fp16_histogram_simd::expand_avx512(found_keys.data(), found_counts.data(), m, out.values.data(), out.counts.data(),
                                       keys ? keys->data() : nullptr);
    return;
  }
  thread_local std::vector<uint16_t> found;
  // Branch-free compaction of the non-zero counters, skipping all-zero runs of 8 (counts_ has 8
  // spare zero counters past the last key, so the last run may overhang).
  const uint32_t* c = counts_.data();
  const size_t first = lo_ & ~size_t{7}, last = hi_;
  found.resize(last - first + 8);
  uint16_t* f = found.data();
  size_t m = 0;
  for (size_t key = first; key <= last; key += 8) {
    const uint32_t* p = c + key;
    if ((p[0] | p[1] | p[2] | p[3] | p[4] | p[5] | p[6] | p[7]) == 0) continue;
    for (size_t t = 0; t < 8; ++t) {
      f[m] = static_cast<uint16_t>(key + t);
      m += p[t] != 0;
    }
  }
  // Resized, not cleared first: a reused (per-thread) output is then not zero-filled before being
  // overwritten (that fill was a third of this function).
  out.values.resize(m);
  out.counts.resize(m);
  double* values = out.values.data();
  double* counts = out.counts.data();
  const float* half = half_to_float_table();
  if (zero) {  // zero each counter as it is read (in cache): no sweep of the key range afterwards
    for (size_t i = 0; i < m; ++i) {
      values[i] = static_cast<double>(half[fp16_from_order_key(f[i])]);
      counts[i] = static_cast<double>(c[f[i]]);
      zero[f[i]] = 0;
    }
  } else {
    for (size_t i = 0; i < m; ++i) {
      values[i] = static_cast<double>(half[fp16_from_order_key(f[i])]);
      counts[i] = static_cast<double>(c[f[i]]);
    }
  }
  if (keys) keys->assign(f, f + m);
}

size_t Fp16Histogram::distinct_count() const {
  size_t n = 0;
  for (size_t key = lo_; key <= hi_; ++key) n += counts_[key] != 0;
  return n;
}

void Fp16Histogram::clear() {
  if (lo_ <= hi_) std::memset(counts_.data() + lo_, 0, (hi_ - lo_ + 1) * sizeof(uint32_t));
  lo_ = 65536;
  hi_ = 0;
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
