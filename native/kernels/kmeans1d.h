// Exact (globally optimal) weighted 1-D k-means over sorted distinct values.
//
// Why exact: palettization LUTs are 1-D k-means problems, and the optimum is computable in O(k·n)
// (Grønlund et al. 2017, SMAWK row minima). coremltools uses the same DP (kmeans1d) for fp16 groups
// with >= 10,000 elements and scikit-learn's heuristic otherwise; we always use the exact optimum,
// which is never worse. Interval costs use kmeans1d's exact formula and operation order, and
// centroids its incremental weighted mean, so where coremltools uses kmeans1d we produce the same
// LUT and indices bit for bit (test/kernels/palettize.test.ts checks the coremltools 9.0 golden
// files: 1-8 bit per tensor, gs32, per-channel scale).
// Default algorithm (kLagrangian): a search over the penalty λ of the penalized DP
// (kmeans1d_penalized.h) until its optimum has exactly k clusters — a few O(n) passes whatever k
// is. Where no λ gives k clusters (ties on the convex hull of OPT(c)) it falls back to kPruned:
// divide-and-conquer row minima with a vectorized window scan (a Knuth–Yao descending sweep for the
// later layers of large-k DPs), rows pruned by a Lloyd upper bound, prefix/suffix halves joined at
// the best split. SMAWK and plain D&C are kept as alternatives, and an O(k·n²) scalar DP is the
// test oracle.
//
// Input histograms: fp16 weights become a histogram over the 65,536 bit patterns (no sort);
// fp32 weights are sorted and de-duplicated. ±0 are one value; NaN/Inf raise cmo::Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace cmo::kernels {

struct Kmeans1dResult {
  std::vector<double> centroids;     // k_eff = min(k, n) weighted means, ascending
  std::vector<uint32_t> assignment;  // cluster of each input value (same order as the input)
  double cost = 0;                   // Σ w·(x − centroid)², computed after the fact in double
  bool lagrangian = false;           // solved by the λ search (not its layered-DP fallback)
};

enum class Kmeans1dAlgorithm {
  kLagrangian,     // default: penalized DP, λ searched until the optimum has k clusters (a few
                   // O(n) passes); kPruned when no λ does
  kPruned,         // kDivideConquer rows, pruned by an upper bound from Lloyd on the
                   // histogram, prefix/suffix halves joined at the best split (2-3× fewer cells)
  kDivideConquer,  // monotone row minima by divide and conquer with Knuth's lower bound from
                   // the previous layer; O(k·n·log n) worst case but a branch-free, vectorized
                   // window scan — several times faster than SMAWK in practice (bench/kmeans1d.mjs)
  kSmawk,          // O(k·n): SMAWK on kmeans1d's implicit n×n matrix (same REDUCE/INTERPOLATE rules)
};

// Returns true when the caller wants the work abandoned (polled once per λ pass or DP layer).
using CancelCheck = std::function<bool()>;

// values: strictly ascending, weights: > 0 (nullptr = all 1). kLagrangian and kPruned use O(n)
// memory (kPruned: a (k−2)×n uint16/uint32 argmin table for backtracking only while it fits in
// 4 MB, otherwise two rolling rows and a recursion on the halves). kDivideConquer and kSmawk always
// keep the (k−1)×n table. Throws cmo::Error("EINVAL") on n == 0, k == 0, unsorted or non-finite
// input, or a table too big; cmo::Cancelled when `cancelled` returns true (checked between λ passes
// and DP layers).
Kmeans1dResult kmeans1d_sorted(const double* values, const double* weights, size_t n, size_t k,
                               Kmeans1dAlgorithm algo = Kmeans1dAlgorithm::kLagrangian,
                               const CancelCheck& cancelled = {});

// Scalar brute-force reference: the textbook DP, every admissible column scanned (O(k·n²); test oracle).
Kmeans1dResult kmeans1d_sorted_ref(const double* values, const double* weights, size_t n, size_t k);

// Any order, duplicates allowed: sorts, merges equal values (summing weights), clusters, and maps
// the assignment back to the input order.
Kmeans1dResult kmeans1d(const double* values, const double* weights, size_t n, size_t k, bool reference = false);

// A weighted set of distinct values in ascending order.
struct DistinctValues {
  std::vector<double> values;
  std::vector<double> counts;
};

// Maps an fp16 bit pattern to a key that sorts like the value (−0 and +0 share key 0x8000):
// 0x8000 ± magnitude bits. Branch-free: it runs once per weight, and weight signs are a coin toss
// for the branch predictor (a branch here cost ~13 % of a 4-bit gs16 run).
inline uint16_t fp16_order_key(uint16_t h) {
  const uint32_t negative = 0u - (static_cast<uint32_t>(h) >> 15);  // all ones when the sign bit is set
  const uint32_t magnitude = h & 0x7FFFu;
  return static_cast<uint16_t>(0x8000u + ((magnitude ^ negative) - negative));
}
inline uint16_t fp16_from_order_key(uint16_t key) {
  return key >= 0x8000u ? static_cast<uint16_t>(key - 0x8000u) : static_cast<uint16_t>(0x8000u | (0x8000u - key));
}

// kmeans1d_sorted (kLagrangian) on the output of Fp16Histogram::distinct, which is valid by
// construction (strictly ascending finite values, counts >= 1): skips the O(n) input check (3 % of
// a 4-bit gs16 pass). Throws cmo::Error("EINVAL") on no values or k == 0.
Kmeans1dResult kmeans1d_fp16_distinct(const DistinctValues& d, size_t k, const CancelCheck& cancelled = {});

// Many kmeans1d_fp16_distinct problems with their λ searches' passes interleaved
// (kmeans1d_streams.h): the same results, one by one, with fewer stalls per pass where the CPU
// has vector duels (x86 AVX2 / AVX-512; elsewhere the problems are solved one at a time).
// Pull model, so that only a few problems' data live at once: next(slot) returns the next problem
// (nullptr when there are none left); its data must stay valid and unchanged until done(slot, r)
// hands back its result for the same slot, after which the slot is reused. slot < kKmeans1dStreamSlots.
// Results come back in completion order, not submission order. Errors as kmeans1d_fp16_distinct.
constexpr size_t kKmeans1dStreamSlots = 4;
using Kmeans1dNext = std::function<const DistinctValues*(size_t slot)>;
using Kmeans1dDone = std::function<void(size_t slot, Kmeans1dResult& result)>;
// fp16_centroids: the centroids come back rounded to fp16 (as doubles) — exactly the rounding of
// kmeans1d's running means, certified from the prefix sums without a division per value — and the
// cost is the DP's Σ of interval costs. What an fp16 LUT needs, for less work.
void kmeans1d_fp16_distinct_stream(size_t k, const Kmeans1dNext& next, const Kmeans1dDone& done,
                                   const CancelCheck& cancelled = {}, bool fp16_centroids = false);

// Order keys of n fp16 values (branch-free; vectorizes). Returns nonzero when one is NaN or Inf.
uint32_t fp16_order_keys(const uint16_t* data, size_t n, uint16_t* keys);

// Histogram of fp16 bit patterns, with reusable storage (65,536 uint32 counters) so that many
// small groups cost O(group size + touched key range) each, not a fresh 256 KB clear.
// add() works in L1-sized blocks: order keys (vectorized) while tracking the key range, then one
// counter increment per key — no per-weight record of which counters were touched (a bitmap of
// used keys cost ~8 instructions per weight). distinct() and clear() walk the touched key range,
// eight counters per test, so a sparse range costs ~1 instruction per key of the range.
class Fp16Histogram {
 public:
  // vector_collect: distinct() compacts the counters with AVX-512 where the CPU has it (false: the
  // portable loop, which the tests compare it with).
  explicit Fp16Histogram(bool vector_collect = true);
  // Counts `n` values read at data[i*stride]. Throws cmo::Error("EINVAL") naming NaN/Inf.
  // keys_out (optional, n entries) receives each value's order key, for a caller that maps every
  // value again afterwards (palettization's indices) without recomputing the keys.
  void add(const uint16_t* data, size_t n, size_t stride = 1, uint16_t* keys_out = nullptr);
  void add_one(uint16_t h);
  // Distinct values (by order key) ascending with their counts; `keys` receives the order keys.
  void distinct(DistinctValues& out, std::vector<uint16_t>* keys) const;
  // distinct() then clear(), cheaper: each counter is zeroed as it is read, not the key range after.
  void take_distinct(DistinctValues& out, std::vector<uint16_t>* keys);
  uint32_t count_of_key(uint16_t key) const { return counts_[key]; }
  void clear();  // resets only the touched counters
  size_t distinct_count() const;

 private:
  // zero: the counters to reset as they are read (take_distinct), or nullptr.
  void collect(DistinctValues& out, std::vector<uint16_t>* keys, uint32_t* zero) const;
  std::vector<uint32_t> counts_;  // indexed by order key, 16 spare zero counters at the end
  uint32_t lo_ = 65536, hi_ = 0;  // touched key range (empty when lo_ > hi_)
  bool vector_collect_;
};

// Sorted distinct values of a float array with counts; ±0 merged; NaN/Inf → cmo::Error("EINVAL").
// `inverse` (optional) receives, per input element, the index of its distinct value.
void distinct_f32(const float* data, size_t n, DistinctValues& out, std::vector<uint32_t>* inverse);

}  // namespace cmo::kernels
