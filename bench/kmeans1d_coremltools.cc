// Same-run reference for issue 14's speed case (not a test, not part of the package): the per-group
// k-means work coremltools 9.0 does for fp16 per_grouped_channel palettization, re-implemented in
// C++ with the same algorithm, data structures, allocation pattern and operation order, so its
// time can be measured on this machine next to ours. Build (from the repo root):
//   g++ -O3 -std=c++17 -Wall -Wextra -pthread bench/kmeans1d_coremltools.cc -o /tmp/kmeans1d_coremltools
//   /tmp/kmeans1d_coremltools [--nbits 4] [--group-size 16] [--threads 2] [--dump OUT] [--json] FILE ROWS COLS
//   /tmp/kmeans1d_coremltools --self-test   (kmeans1d's published known answers, fp16 conversions)
// FILE holds one or more [ROWS, COLS] little-endian fp16 weights back to back (channel axis 0, the
// output axis of a linear weight). For each weight, in order, the groups of GROUP_SIZE rows are
// palettized on THREADS threads; printed: wall and CPU time, groups, distinct values per group,
// the SSE and an FNV-1a hash of every LUT (fp16 bits) and index (uint8); --dump writes, per
// weight, the LUTs [groups × 2^nbits] fp16 then the indices [ROWS × COLS] uint8.
//
// What it reproduces (coremltools 9.0, verified against the public source):
// - coremltools/optimize/coreml/_quantization_passes.py: channel axis to 0, np.split into groups
//   of group_size channels, each group flattened; groups go through multiprocessing.Pool
//   (num_kmeans_workers).starmap, whose default chunksize is ceil(groups / (4 · workers)). Here:
//   THREADS threads take chunks of that size; weights are processed one after another.
// - models/neural_network/quantization_utils.py::_get_kmeans_lookup_table_and_weight, for fp16
//   groups with >= 10,000 elements: np.unique(values, return_inverse=True, return_counts=True)
//   (an argsort, a run mask, inverse = cumsum(mask) − 1 scattered through the permutation, counts
//   = differences of run starts), then kmeans1d.cluster(unique, k = min(#unique, 2^nbits),
//   weights = counts); LUT = centroids zero-padded to 2^nbits and cast to fp16 (numpy rounds
//   float64 → float16 directly, to nearest even); indices = labels[inverse].
// - kmeans1d as vendored by coremltools (deps/kmeans1d/kmeans1d/_core.cpp, cluster_with_weights):
//   an index sort of the input (already sorted here, still done), prefix sums of w, w·x, w·x·x
//   built by push_back, full Matrix<double> D(k, n) and Matrix<unsigned long> T(k, n), per DP
//   layer one SMAWK over the implicit n × n matrix C(i, j) = D[k−1][min(i, j−1)] + cost(j, i)
//   (j − 1 wraps for j = 0, so column 0 reads D[k−1][i]) called through a std::function, row and
//   column lists as std::vector allocated in every recursion, an unordered_map from column to
//   position in INTERPOLATE, the row minima returned by value and re-evaluated to fill D and T;
//   backtracking with the incremental weighted mean c += (x − c)·w_i / W(t..i), labels stored
//   as double and mapped back through the inverse sort permutation.
// Left out (so this is a LOWER bound on coremltools' time): the Python interpreter, numpy's call
// overheads, ctypes marshalling ((c_double * n)(*array) builds n Python floats per call, list()
// of the results), multiprocessing's process start-up and pickling of every group both ways, the
// MIL graph pass itself and writing the model. Groups with < 10,000 elements (coremltools uses
// scikit-learn's KMeans there) and non-fp16 weights are not re-implemented: refused.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <numeric>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

// kmeans1d's index type (`typedef unsigned long ulong`): 8 bytes on LP64, which sets the size of T
// and of every row / column list.
using Idx = unsigned long;

/* ---------------- fp16 <-> double (exact / round to nearest even, as numpy) ---------------- */

double half_to_double(uint16_t h) {
  const int exp = (h >> 10) & 0x1F;
  const int mant = h & 0x3FF;
  double v;
  if (exp == 0) v = std::ldexp(static_cast<double>(mant), -24);  // zero or subnormal
  else if (exp == 31) v = mant ? std::nan("") : HUGE_VAL;
  else v = std::ldexp(static_cast<double>(mant | 0x400), exp - 25);
  return (h & 0x8000) ? -v : v;
}

// float64 → float16 in one rounding (numpy's npy_double_to_half), not via float32.
uint16_t double_to_half(double x) {
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(x);
  if (std::isnan(a)) return static_cast<uint16_t>(sign | 0x7E00);
  if (a >= 65520.0) return static_cast<uint16_t>(sign | 0x7C00);  // rounds past 65504: Inf
  if (a < std::ldexp(1.0, -14)) {
    // Subnormal (or the smallest normal after rounding): units of 2^-24; the scaling is exact and
    // nearbyint rounds half to even in the default mode.
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(std::ldexp(a, 24))));
  }
  int e2 = 0;
  std::frexp(a, &e2);  // a = f · 2^e2, f in [0.5, 1): a in [2^(e2−1), 2^e2)
  const int e = e2 - 1;
  const uint32_t m = static_cast<uint32_t>(std::nearbyint(std::ldexp(a, 10 - e)));  // [1024, 2048]
  // m == 2048 carries into the exponent by the addition, as it should.
  return static_cast<uint16_t>(sign | ((static_cast<uint32_t>(e + 15) << 10) + (m - 1024)));
}

/* ---------------- kmeans1d, weighted, as coremltools vendors it ---------------- */

// Row-major k × n table over one flat std::vector (value-initialised, as vector::resize does).
template <typename T>
class Table {
 public:
  Table(Idx rows, Idx cols) : rows_(rows), cols_(cols) { cells_.resize(rows * cols); }
  T get(Idx r, Idx c) const { return cells_[r * cols_ + c]; }
  void set(Idx r, Idx c, T v) { cells_[r * cols_ + c] = v; }

 private:
  std::vector<T> cells_;
  Idx rows_;
  Idx cols_;
};

// Interval cost from weighted prefix sums; the weights are permuted by the sort order first.
class WeightedIntervalCost {
 public:
  WeightedIntervalCost(const std::vector<double>& sorted, Idx n, const std::vector<Idx>& order, const double* weights) {
    std::vector<double> w_sorted(n);
    for (Idx i = 0; i < n; ++i) w_sorted[i] = weights[order[i]];
    cum_w_.push_back(0.0);
    cum_wx_.push_back(0.0);
    cum_wxx_.push_back(0.0);
    for (Idx i = 0; i < n; ++i) {
      const double x = sorted[i];
      const double w = w_sorted[i];
      cum_w_.push_back(w + cum_w_[i]);
      cum_wx_.push_back(w * x + cum_wx_[i]);
      cum_wxx_.push_back(w * x * x + cum_wxx_[i]);
    }
  }
  double weight(Idx i, Idx j) const { return i <= j ? cum_w_[j + 1] - cum_w_[i] : 0.0; }
  // Σ w·(x − μ)² over sorted values i..j, in kmeans1d's operation order.
  double cost(Idx i, Idx j) const {
    if (j < i) return 0.0;
    const double w = weight(i, j);
    const double mu = (cum_wx_[j + 1] - cum_wx_[i]) / w;
    double r = cum_wxx_[j + 1] - cum_wxx_[i];
    r += w * (mu * mu);
    r -= (2 * mu) * (cum_wx_[j + 1] - cum_wx_[i]);
    return r;
  }

 private:
  std::vector<double> cum_w_, cum_wx_, cum_wxx_;
};

using Lookup = std::function<double(Idx, Idx)>;

// SMAWK row minima of a totally monotone matrix given by `f` (rows × cols index lists). Ties keep
// the leftmost surviving column. Every level allocates its own lists and position map.
void smawk_level(const std::vector<Idx>& rows, const std::vector<Idx>& cols, const Lookup& f, std::vector<Idx>* argmin) {
  if (rows.empty()) return;
  // REDUCE: keep at most |rows| columns that can still hold a row minimum (a stack).
  std::vector<Idx> kept;
  for (Idx col : cols) {
    while (!kept.empty()) {
      const Idx row = rows[kept.size() - 1];
      if (f(row, col) >= f(row, kept.back())) break;
      kept.pop_back();
    }
    if (kept.size() < rows.size()) kept.push_back(col);
  }
  // Odd rows first, recursively.
  std::vector<Idx> odd;
  for (Idx r = 1; r < rows.size(); r += 2) odd.push_back(rows[r]);
  smawk_level(odd, kept, f, argmin);
  std::unordered_map<Idx, Idx> position;
  for (Idx p = 0; p < kept.size(); ++p) position[kept[p]] = p;
  // INTERPOLATE: each even row searches between its odd neighbours' minima.
  Idx from = 0;
  for (Idx r = 0; r < rows.size(); r += 2) {
    const Idx row = rows[r];
    Idx to = kept.size() - 1;
    if (r < rows.size() - 1) to = position[(*argmin)[rows[r + 1]]];
    Idx best_col = kept[from];
    double best = f(row, best_col);
    for (Idx c = from + 1; c <= to; ++c) {
      const double v = f(row, kept[c]);
      if (c == from || v < best) {
        best_col = kept[c];
        best = v;
      }
    }
    (*argmin)[row] = best_col;
    from = to;
  }
}

std::vector<Idx> smawk(Idx num_rows, Idx num_cols, const Lookup& f) {
  std::vector<Idx> argmin;
  argmin.resize(num_rows);
  std::vector<Idx> rows(num_rows);
  std::iota(rows.begin(), rows.end(), 0);
  std::vector<Idx> cols(num_cols);
  std::iota(cols.begin(), cols.end(), 0);
  smawk_level(rows, cols, f, &argmin);
  return argmin;
}

// kmeans1d.cluster(values, k, weights=...) on n values: labels per input value, k centroids.
void cluster_with_weights(const double* values, const double* weights, Idx n, Idx k, Idx* labels, double* centroids) {
  std::vector<Idx> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&values](Idx a, Idx b) { return values[a] < values[b]; });
  std::vector<Idx> rank(n);
  std::vector<double> sorted(n);
  for (Idx i = 0; i < n; ++i) {
    sorted[i] = values[order[i]];
    rank[order[i]] = i;
  }

  WeightedIntervalCost cost(sorted, n, order, weights);
  Table<double> D(k, n);
  Table<Idx> T(k, n);
  for (Idx i = 0; i < n; ++i) {
    D.set(0, i, cost.cost(0, i));
    T.set(0, i, 0);
  }
  for (Idx m = 1; m < k; ++m) {
    // The lambda converts to a std::function once per layer; every matrix entry is a call through it.
    auto entry = [&D, &m, &cost](Idx i, Idx j) -> double {
      const Idx col = i < j - 1 ? i : j - 1;  // j = 0: j − 1 wraps, col = i
      return D.get(m - 1, col) + cost.cost(j, i);
    };
    std::vector<Idx> row_min = smawk(n, n, entry);
    for (Idx i = 0; i < row_min.size(); ++i) {
      const Idx j = row_min[i];
      D.set(m, i, entry(i, j));
      T.set(m, i, j);
    }
  }

  std::vector<double> sorted_labels(n);  // doubles, as in kmeans1d
  Idx end = n;
  Idx m = k - 1;
  Idx last = n - 1;
  do {
    const Idx stop = end;
    end = T.get(m, last);
    double c = 0.0;
    for (Idx i = end; i < stop; ++i) {
      sorted_labels[i] = static_cast<double>(m);
      c += (sorted[i] - c) * cost.weight(i, i) / cost.weight(end, i);
    }
    centroids[m] = c;
    m -= 1;
    last = end - 1;
  } while (end > 0);
  for (Idx i = 0; i < n; ++i) labels[i] = static_cast<Idx>(sorted_labels[rank[i]]);
}

/* ---------------- coremltools' per-group wrapper ---------------- */

struct GroupTiming {
  double unique_s = 0;   // np.unique
  double cluster_s = 0;  // kmeans1d.cluster
  double other_s = 0;    // LUT cast, labels[inverse]
};

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// One group (count fp16 values) → lut [2^nbits] fp16 bits and one uint8 index per value. Returns
// the number of distinct values.
size_t palettize_group(const uint16_t* w, size_t count, int nbits, uint16_t* lut, uint8_t* indices, GroupTiming& t) {
  double t0 = thread_cpu_seconds();
  // np.unique(values, return_inverse=True, return_counts=True) on the fp16 array: argsort, then the
  // run mask over the sorted copy (fp16 compares by value: −0 == +0).
  std::vector<float> ar(count);
  for (size_t i = 0; i < count; ++i) ar[i] = static_cast<float>(half_to_double(w[i]));
  std::vector<int64_t> perm(count);
  std::iota(perm.begin(), perm.end(), 0);
  std::sort(perm.begin(), perm.end(), [&ar](int64_t a, int64_t b) { return ar[a] < ar[b]; });
  std::vector<float> aux(count);
  for (size_t i = 0; i < count; ++i) aux[i] = ar[perm[i]];
  std::vector<uint8_t> mask(count);
  mask[0] = 1;
  for (size_t i = 1; i < count; ++i) mask[i] = aux[i] != aux[i - 1];
  std::vector<float> uniq;
  for (size_t i = 0; i < count; ++i)
    if (mask[i]) uniq.push_back(aux[i]);
  std::vector<int64_t> imask(count);
  int64_t run = 0;
  for (size_t i = 0; i < count; ++i) imask[i] = (run += mask[i]) - 1;
  std::vector<int64_t> inverse(count);
  for (size_t i = 0; i < count; ++i) inverse[perm[i]] = imask[i];
  std::vector<int64_t> starts;
  for (size_t i = 0; i < count; ++i)
    if (mask[i]) starts.push_back(static_cast<int64_t>(i));
  starts.push_back(static_cast<int64_t>(count));
  std::vector<int64_t> counts(starts.size() - 1);
  for (size_t i = 0; i + 1 < starts.size(); ++i) counts[i] = starts[i + 1] - starts[i];
  double t1 = thread_cpu_seconds();
  t.unique_s += t1 - t0;

  // kmeans1d.cluster(unique, k, weights=counts): ctypes copies both into double arrays.
  const size_t n = uniq.size();
  const size_t lut_len = size_t{1} << nbits;
  const size_t k = std::min(n, lut_len);
  std::vector<double> c_values(uniq.begin(), uniq.end());
  std::vector<double> c_weights(counts.begin(), counts.end());
  std::vector<Idx> labels(n);
  std::vector<double> centroids(k);
  cluster_with_weights(c_values.data(), c_weights.data(), n, k, labels.data(), centroids.data());
  double t2 = thread_cpu_seconds();
  t.cluster_s += t2 - t1;

  // lut = zeros(2^nbits); lut[:k] = centroids; cast to fp16.  indices = labels[inverse] as uint8.
  std::vector<double> lut64(lut_len, 0.0);
  std::copy(centroids.begin(), centroids.end(), lut64.begin());
  for (size_t i = 0; i < lut_len; ++i) lut[i] = double_to_half(lut64[i]);
  for (size_t i = 0; i < count; ++i) indices[i] = static_cast<uint8_t>(labels[static_cast<size_t>(inverse[i])]);
  t.other_s += thread_cpu_seconds() - t2;
  return n;
}

/* ---------------- known answers ---------------- */

// Cases from kmeans1d's own test suite (public): unsorted input, k = 4, unit and fractional
// weights. Returns the number of failures (printed).
int self_test() {
  struct Case {
    std::vector<double> x, w;
    std::vector<Idx> labels;
    std::vector<double> centroids;
  };
  const std::vector<double> x = {4.0, 4.1, 4.2, -50, 200.2, 200.4, 200.9, 80, 100, 102};
  const std::vector<Case> cases = {
      {x, std::vector<double>(10, 1.0), {1, 1, 1, 0, 3, 3, 3, 2, 2, 2}, {-50.0, 4.1, 94.0, 200.5}},
      {x, {1, 1, 1, 0.125, 4, 1, 1, 3, 2, 2}, {0, 0, 0, 0, 3, 3, 3, 1, 2, 2}, {1.936, 80.0, 101.0, 200.35}},
  };
  int failures = 0;
  for (size_t c = 0; c < cases.size(); ++c) {
    const Case& t = cases[c];
    std::vector<Idx> labels(t.x.size());
    std::vector<double> centroids(t.centroids.size());
    cluster_with_weights(t.x.data(), t.w.data(), t.x.size(), centroids.size(), labels.data(), centroids.data());
    bool ok = labels == t.labels;
    for (size_t i = 0; i < centroids.size(); ++i) ok = ok && std::fabs(centroids[i] - t.centroids[i]) <= 1e-9 * (1 + std::fabs(t.centroids[i]));
    std::printf("self-test case %zu: %s\n", c, ok ? "ok" : "FAILED");
    failures += !ok;
  }
  // fp16 conversions: exact widening of every finite half, and round-to-nearest-even narrowing.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if (((h >> 10) & 0x1F) == 0x1F) continue;
    if (double_to_half(half_to_double(static_cast<uint16_t>(h))) != h) {
      std::printf("self-test fp16 round trip FAILED at 0x%04x\n", h);
      return failures + 1;
    }
  }
  const double tie = 1.0 + std::ldexp(1.0, -11);  // halfway between 1 and the next half: to even (1)
  const bool fp16_ok = double_to_half(tie) == 0x3C00 && double_to_half(std::nextafter(tie, 2.0)) == 0x3C01 &&
                       double_to_half(65519.99) == 0x7BFF && double_to_half(65520.0) == 0x7C00 &&
                       double_to_half(std::ldexp(1.0, -25)) == 0x0000 && double_to_half(std::ldexp(3.0, -26)) == 0x0001;
  std::printf("self-test fp16 conversions: %s\n", fp16_ok ? "ok" : "FAILED");
  return failures + !fp16_ok;
}

/* ---------------- driver ---------------- */

double process_cpu_seconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr, "kmeans1d_coremltools: %s\nusage: kmeans1d_coremltools [--nbits 4] [--group-size 16] [--threads 2] [--dump OUT] [--json] FILE ROWS COLS | --self-test\n", msg);
  std::exit(2);
}

long parse_int(const char* s, const char* what) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (!end || *end != '\0' || v <= 0) usage((std::string(what) + " must be a positive integer, got \"" + s + "\"").c_str());
  return v;
}

struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void mix(const void* p, size_t bytes) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < bytes; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
};

}  // namespace

int main(int argc, char** argv) {
  int nbits = 4, threads = 2;
  long group_size = 16;
  const char* dump_path = nullptr;
  bool json = false;
  std::vector<const char*> pos;
  for (int a = 1; a < argc; ++a) {
    std::string s = argv[a];
    auto value = [&]() -> const char* {
      if (a + 1 >= argc) usage((s + " needs a value").c_str());
      return argv[++a];
    };
    if (s == "--nbits") nbits = static_cast<int>(parse_int(value(), "--nbits"));
    else if (s == "--group-size") group_size = parse_int(value(), "--group-size");
    else if (s == "--threads") threads = static_cast<int>(parse_int(value(), "--threads"));
    else if (s == "--dump") dump_path = value();
    else if (s == "--json") json = true;
    else if (s == "--self-test") return self_test() ? 1 : 0;
    else if (s.size() > 1 && s[0] == '-') usage(("unknown option " + s).c_str());
    else pos.push_back(argv[a]);
  }
  if (pos.size() != 3) usage("expected FILE ROWS COLS");
  if (nbits != 1 && nbits != 2 && nbits != 3 && nbits != 4 && nbits != 6 && nbits != 8) usage("--nbits must be 1, 2, 3, 4, 6 or 8");
  const size_t rows = static_cast<size_t>(parse_int(pos[1], "ROWS"));
  const size_t cols = static_cast<size_t>(parse_int(pos[2], "COLS"));
  const size_t gs = static_cast<size_t>(group_size);
  if (rows % gs != 0) usage("ROWS must be a multiple of --group-size (coremltools skips the weight otherwise)");
  const size_t group_elems = gs * cols;
  if (group_elems < 10000)
    usage("groups have fewer than 10,000 elements: coremltools uses scikit-learn's KMeans there, which this program does not re-implement");

  FILE* in = std::fopen(pos[0], "rb");
  if (!in) usage((std::string("cannot open ") + pos[0]).c_str());
  std::fseek(in, 0, SEEK_END);
  const long file_bytes = std::ftell(in);
  std::fseek(in, 0, SEEK_SET);
  const size_t layer_bytes = rows * cols * 2;
  if (file_bytes <= 0 || static_cast<size_t>(file_bytes) % layer_bytes != 0)
    usage((std::string(pos[0]) + ": size " + std::to_string(file_bytes) + " is not a multiple of ROWS × COLS × 2 bytes").c_str());
  const size_t layers = static_cast<size_t>(file_bytes) / layer_bytes;
  FILE* dump = nullptr;
  if (dump_path && !(dump = std::fopen(dump_path, "wb"))) usage((std::string("cannot write ") + dump_path).c_str());

  const size_t groups = rows / gs;
  const size_t lut_len = size_t{1} << nbits;
  // multiprocessing.Pool.starmap's default chunksize.
  const size_t chunk = (groups + 4 * static_cast<size_t>(threads) - 1) / (4 * static_cast<size_t>(threads));
  std::vector<uint16_t> weight(rows * cols);
  std::vector<uint16_t> lut(groups * lut_len);
  std::vector<uint8_t> indices(rows * cols);
  std::vector<size_t> distinct(groups);
  Fnv hash;
  double wall = 0, cpu = 0, sse = 0, signal = 0;
  GroupTiming split;
  size_t n_min = SIZE_MAX, n_max = 0, n_sum = 0;

  for (size_t layer = 0; layer < layers; ++layer) {
    if (std::fread(weight.data(), 2, weight.size(), in) != weight.size()) usage("short read");
    for (size_t i = 0; i < weight.size(); ++i)
      if ((weight[i] & 0x7C00) == 0x7C00)
        usage(("weight " + std::to_string(layer) + " element " + std::to_string(i) + " is Inf or NaN (not handled)").c_str());
    std::atomic<size_t> next{0};
    std::vector<GroupTiming> timing(static_cast<size_t>(threads));
    auto worker = [&](size_t tid) {
      for (;;) {
        const size_t first = next.fetch_add(chunk);
        if (first >= groups) return;
        for (size_t g = first; g < std::min(groups, first + chunk); ++g)
          distinct[g] = palettize_group(weight.data() + g * group_elems, group_elems, nbits, lut.data() + g * lut_len,
                                        indices.data() + g * group_elems, timing[tid]);
      }
    };
    const double c0 = process_cpu_seconds();
    const auto w0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker, static_cast<size_t>(t));
    for (auto& th : pool) th.join();
    wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    cpu += process_cpu_seconds() - c0;
    for (const auto& t : timing) {
      split.unique_s += t.unique_s;
      split.cluster_s += t.cluster_s;
      split.other_s += t.other_s;
    }
    // Outside the timing: checks, SSE, hash, dump.
    for (size_t g = 0; g < groups; ++g) {
      n_min = std::min(n_min, distinct[g]);
      n_max = std::max(n_max, distinct[g]);
      n_sum += distinct[g];
      for (size_t i = 0; i < group_elems; ++i) {
        const double x = half_to_double(weight[g * group_elems + i]);
        const double d = x - half_to_double(lut[g * lut_len + indices[g * group_elems + i]]);
        sse += d * d;
        signal += x * x;
      }
    }
    hash.mix(lut.data(), lut.size() * 2);
    hash.mix(indices.data(), indices.size());
    if (dump && (std::fwrite(lut.data(), 2, lut.size(), dump) != lut.size() ||
                 std::fwrite(indices.data(), 1, indices.size(), dump) != indices.size()))
      usage("short write to the dump file");
  }
  std::fclose(in);
  if (dump && std::fclose(dump) != 0) usage("cannot close the dump file");

  const double n_mean = static_cast<double>(n_sum) / static_cast<double>(groups * layers);
  if (json) {
    std::printf(
        "{\"layers\":%zu,\"rows\":%zu,\"cols\":%zu,\"nbits\":%d,\"group_size\":%zu,\"threads\":%d,\"groups\":%zu,"
        "\"distinct_min\":%zu,\"distinct_mean\":%.1f,\"distinct_max\":%zu,\"wall_s\":%.6f,\"cpu_s\":%.6f,"
        "\"unique_cpu_s\":%.6f,\"kmeans1d_cpu_s\":%.6f,\"other_cpu_s\":%.6f,\"sse\":%.17g,\"signal\":%.17g,\"hash\":\"%016llx\"}\n",
        layers, rows, cols, nbits, gs, threads, groups * layers, n_min, n_mean, n_max, wall, cpu, split.unique_s,
        split.cluster_s, split.other_s, sse, signal, static_cast<unsigned long long>(hash.h));
  } else {
    std::printf("coremltools 9.0 k-means, C++ re-implementation (no Python / numpy / multiprocessing overhead: a lower bound)\n");
    std::printf("%zu × [%zu, %zu] fp16, %d-bit gs%zu, %d threads: %zu groups, %.1f distinct values per group (%zu–%zu)\n", layers,
                rows, cols, nbits, gs, threads, groups * layers, n_mean, n_min, n_max);
    std::printf("wall %.3f s, cpu %.3f s (np.unique %.3f, kmeans1d %.3f, LUT + indices %.3f)\n", wall, cpu, split.unique_s,
                split.cluster_s, split.other_s);
    std::printf("sse %.9g  sse/signal %.6e  hash %016llx\n", sse, sse / signal, static_cast<unsigned long long>(hash.h));
  }
  return 0;
}
