// Exact 1-D k-means: the Lagrangian search (default), the pruned, divide-and-conquer and SMAWK
// DPs vs an independent O(k·n²) brute-force DP written here, plus the scalar reference in the
// library, known answers and adversarial inputs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/kmeans1d.h"
#include "kernels/kmeans1d_penalized.h"
#include "kernels/kmeans1d_streams.h"
#include "kernels/lut_modes.h"
#include "util/error.h"
#include "util/fp16.h"

using namespace cmo::kernels;

namespace {

// Independent oracle: textbook DP over sorted values, cost from per-segment two-pass sums in long
// double (no prefix sums), O(k·n²) cells × O(n) cost = O(k·n³) — only for tiny inputs.
struct Oracle {
  double cost;
  std::vector<size_t> starts;  // segment starts, ascending
};

long double seg_cost(const std::vector<double>& x, const std::vector<double>& w, size_t a, size_t b) {
  long double sw = 0, s = 0;
  for (size_t i = a; i <= b; ++i) {
    sw += w[i];
    s += static_cast<long double>(w[i]) * x[i];
  }
  long double mu = s / sw, c = 0;
  for (size_t i = a; i <= b; ++i) c += w[i] * (x[i] - mu) * (x[i] - mu);
  return c;
}

Oracle oracle(const std::vector<double>& x, const std::vector<double>& w, size_t k) {
  const size_t n = x.size();
  k = std::min(k, n);
  const long double inf = std::numeric_limits<long double>::infinity();
  std::vector<std::vector<long double>> D(k + 1, std::vector<long double>(n + 1, inf));
  std::vector<std::vector<size_t>> T(k + 1, std::vector<size_t>(n + 1, 0));
  std::vector<std::vector<long double>> cost(n, std::vector<long double>(n, 0));
  for (size_t a = 0; a < n; ++a)
    for (size_t b = a; b < n; ++b) cost[a][b] = seg_cost(x, w, a, b);
  D[0][0] = 0;
  for (size_t m = 1; m <= k; ++m)
    for (size_t i = 1; i <= n; ++i)      // first i values
      for (size_t j = m; j <= i; ++j) {  // last cluster = values j-1 .. i-1
        if (D[m - 1][j - 1] == inf) continue;
        long double v = D[m - 1][j - 1] + cost[j - 1][i - 1];
        if (v < D[m][i]) {
          D[m][i] = v;
          T[m][i] = j - 1;
        }
      }
  Oracle o;
  o.cost = static_cast<double>(D[k][n]);
  size_t i = n;
  for (size_t m = k; m >= 1; --m) {
    o.starts.push_back(T[m][i]);
    i = T[m][i];
  }
  std::reverse(o.starts.begin(), o.starts.end());
  return o;
}

std::vector<size_t> starts_of(const Kmeans1dResult& r) {
  std::vector<size_t> s;
  for (size_t i = 0; i < r.assignment.size(); ++i)
    if (i == 0 || r.assignment[i] != r.assignment[i - 1]) s.push_back(i);
  return s;
}

std::vector<double> random_sorted_distinct(std::mt19937_64& rng, size_t n, int kind) {
  std::vector<double> v;
  while (v.size() < n) {
    double x;
    switch (kind) {
      case 0: x = std::normal_distribution<double>(0, 1)(rng); break;
      case 1: x = static_cast<double>(std::uniform_int_distribution<int>(-50, 50 + 2 * static_cast<int>(n))(rng)); break;
      default: x = std::exp(std::normal_distribution<double>(0, 4)(rng)) * (rng() & 1 ? 1 : -1); break;
    }
    v.push_back(x);
    if (v.size() == n) {
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
    }
  }
  return v;
}

}  // namespace

TEST(known_answer_two_clusters) {  // coreml-format.md §8.6
  std::vector<double> x = {1, 2, 3, 10, 11, 12};
  Kmeans1dResult r = kmeans1d_sorted(x.data(), nullptr, x.size(), 2);
  CHECK_EQ(r.centroids.size(), size_t{2});
  CHECK_EQ(r.centroids[0], 2.0);
  CHECK_EQ(r.centroids[1], 11.0);
  std::vector<uint32_t> want = {0, 0, 0, 1, 1, 1};
  CHECK(r.assignment == want);
  CHECK_NEAR(r.cost, 4.0, 1e-12);
}

TEST(fast_paths_equal_bruteforce_and_oracle_on_random_inputs) {
  std::mt19937_64 rng(12345);
  int cases = 0, mismatch_ref = 0, mismatch_oracle = 0, cost_bad = 0;
  for (int trial = 0; trial < 300; ++trial) {
    size_t n = 1 + rng() % 20;
    int kind = static_cast<int>(rng() % 3);
    std::vector<double> x = random_sorted_distinct(rng, n, kind);
    std::vector<double> w(n, 1.0);
    bool weighted = trial % 2 == 1;
    if (weighted)
      for (double& wi : w) wi = static_cast<double>(1 + rng() % 1000);
    for (size_t k = 1; k <= n; ++k) {
      ++cases;
      Kmeans1dResult fast = kmeans1d_sorted(x.data(), weighted ? w.data() : nullptr, n, k);
      Kmeans1dResult pruned = kmeans1d_sorted(x.data(), weighted ? w.data() : nullptr, n, k, Kmeans1dAlgorithm::kPruned);
      Kmeans1dResult smawk = kmeans1d_sorted(x.data(), weighted ? w.data() : nullptr, n, k, Kmeans1dAlgorithm::kSmawk);
      Kmeans1dResult dc = kmeans1d_sorted(x.data(), weighted ? w.data() : nullptr, n, k, Kmeans1dAlgorithm::kDivideConquer);
      Kmeans1dResult ref = kmeans1d_sorted_ref(x.data(), weighted ? w.data() : nullptr, n, k);
      // Integer data has exact ties (several optimal segmentations). D&C's Knuth bound may then
      // pick another optimum than the reference's leftmost one; that is fine only if the cost
      // is the same. Real-valued data (next test, golden files) must match exactly.
      bool tie = std::fabs(fast.cost - ref.cost) <= 1e-12 * (1 + std::fabs(ref.cost)) && kind == 1;
      if ((fast.assignment != ref.assignment || fast.centroids != ref.centroids) && !tie) {
        ++mismatch_ref;
        std::printf("default mismatch trial %d n %zu k %zu costs %.17g %.17g\n", trial, n, k, fast.cost, ref.cost);
      }
      bool pruned_tie = std::fabs(pruned.cost - ref.cost) <= 1e-12 * (1 + std::fabs(ref.cost)) && kind == 1;
      if ((pruned.assignment != ref.assignment || pruned.centroids != ref.centroids) && !pruned_tie) {
        ++mismatch_ref;
        std::printf("pruned mismatch trial %d n %zu k %zu costs %.17g %.17g\n", trial, n, k, pruned.cost, ref.cost);
      }
      bool dc_tie = std::fabs(dc.cost - ref.cost) <= 1e-12 * (1 + std::fabs(ref.cost)) && kind == 1;
      if ((dc.assignment != ref.assignment || dc.centroids != ref.centroids) && !dc_tie) {
        ++mismatch_ref;
        std::printf("dc mismatch trial %d n %zu k %zu\n", trial, n, k);
      }
      if (smawk.assignment != ref.assignment || smawk.centroids != ref.centroids) {
        ++mismatch_ref;
        std::printf("smawk mismatch trial %d n %zu k %zu costs %.17g %.17g\n", trial, n, k, smawk.cost, ref.cost);
      }
      Oracle o = oracle(x, w, k);
      if (starts_of(fast) != o.starts) {
        // Only acceptable if it is an exact tie (integer data can have several optima).
        if (std::fabs(fast.cost - o.cost) > 1e-9 * (1 + std::fabs(o.cost))) ++mismatch_oracle;
      }
      if (std::fabs(fast.cost - o.cost) > 1e-9 * (1 + std::fabs(o.cost))) ++cost_bad;
      // Centroids are the weighted means of their segments, ascending.
      for (size_t c = 1; c < fast.centroids.size(); ++c)
        if (!(fast.centroids[c] > fast.centroids[c - 1])) ++cost_bad;
    }
  }
  CHECK(cases > 2500);
  CHECK_EQ(mismatch_ref, 0);
  CHECK_EQ(mismatch_oracle, 0);
  CHECK_EQ(cost_bad, 0);
}

TEST(fast_paths_equal_reference_on_larger_inputs) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 12; ++trial) {
    size_t n = 200 + rng() % 400;
    std::vector<double> x = random_sorted_distinct(rng, n, trial % 3);
    std::vector<double> w(n);
    for (double& wi : w) wi = static_cast<double>(1 + rng() % 100000);
    for (size_t k : {2, 3, 7, 16, 64, 128}) {  // 64, 128: later layers use the Knuth–Yao sweep
      Kmeans1dResult fast = kmeans1d_sorted(x.data(), w.data(), n, k);
      Kmeans1dResult pruned = kmeans1d_sorted(x.data(), w.data(), n, k, Kmeans1dAlgorithm::kPruned);
      Kmeans1dResult smawk = kmeans1d_sorted(x.data(), w.data(), n, k, Kmeans1dAlgorithm::kSmawk);
      Kmeans1dResult dc = kmeans1d_sorted(x.data(), w.data(), n, k, Kmeans1dAlgorithm::kDivideConquer);
      Kmeans1dResult ref = kmeans1d_sorted_ref(x.data(), w.data(), n, k);
      CHECK(dc.assignment == ref.assignment);
      CHECK(dc.centroids == ref.centroids);
      CHECK(fast.assignment == ref.assignment);
      CHECK(fast.centroids == ref.centroids);
      CHECK(pruned.assignment == ref.assignment);
      CHECK(pruned.centroids == ref.centroids);
      CHECK(smawk.assignment == ref.assignment);
      CHECK(smawk.centroids == ref.centroids);
    }
  }
}

// 8-bit LUTs over many distinct values exceed the 4 MB argmin-table budget: the pruned solver then
// keeps two rolling argmin rows and recurses on the halves (Hirschberg). Same segmentation as the
// table-keeping divide and conquer (itself checked against brute force above); real-valued data has
// no ties.
TEST(large_k_recursion_matches_table_dp) {
  std::mt19937_64 rng(99);
  struct Case { size_t n, k; int kind; };
  for (Case c : {Case{9000, 256, 0}, Case{12000, 200, 2}, Case{70000, 64, 0}, Case{20000, 255, 2}}) {
    std::vector<double> x = random_sorted_distinct(rng, c.n, c.kind);
    std::vector<double> w(c.n);
    for (double& wi : w) wi = static_cast<double>(1 + rng() % 5000);
    Kmeans1dResult fast = kmeans1d_sorted(x.data(), w.data(), c.n, c.k, Kmeans1dAlgorithm::kPruned);
    Kmeans1dResult dc = kmeans1d_sorted(x.data(), w.data(), c.n, c.k, Kmeans1dAlgorithm::kDivideConquer);
    Kmeans1dResult lagrangian = kmeans1d_sorted(x.data(), w.data(), c.n, c.k);
    CHECK(fast.assignment == dc.assignment);
    CHECK(fast.centroids == dc.centroids);
    CHECK_EQ(fast.centroids.size(), c.k);
    CHECK_NEAR(fast.cost, dc.cost, 1e-12 * dc.cost);
    CHECK(lagrangian.assignment == dc.assignment);
    CHECK(lagrangian.centroids == dc.centroids);
  }
}

// The penalized pass (deque + galloping, division-free duels) against the textbook O(n²)
// penalized DP in long double, with segment costs from two-pass sums: same optimum value, and the
// segmentation it returns really costs what it reports.
TEST(penalized_pass_matches_quadratic_reference) {
  std::mt19937_64 rng(31);
  int cases = 0;
  for (int trial = 0; trial < 120; ++trial) {
    const size_t n = 1 + rng() % 300;
    std::vector<double> x = random_sorted_distinct(rng, n, trial % 3);
    std::vector<double> w(x.size());
    for (double& wi : w) wi = static_cast<double>(1 + rng() % 50);
    const size_t m = x.size();
    CostTable ct(x.data(), w.data(), m);
    long double total_cost = 0;
    for (size_t c = 1; c < 8 && c <= m; ++c) total_cost += seg_cost(x, w, 0, m - 1) / (c * c);
    for (double scale : {1e-4, 1e-2, 0.1, 1.0}) {
      const double lambda = static_cast<double>(total_cost) * scale;
      std::vector<long double> best(m + 1, 0);
      for (size_t i = 1; i <= m; ++i) {
        best[i] = std::numeric_limits<long double>::infinity();
        for (size_t j = 0; j < i; ++j) best[i] = std::min(best[i], best[j] + seg_cost(x, w, j, i - 1) + lambda);
      }
      PenalizedDp dp;
      PenalizedSegmentation seg;
      dp.solve(ct, m, lambda, seg);
      ++cases;
      CHECK_EQ(seg.starts.size(), seg.clusters);
      CHECK_EQ(seg.starts.empty() ? size_t{1} : seg.starts[0], size_t{0});
      long double mine = 0;
      for (size_t c = 0; c < seg.clusters; ++c) {
        const size_t end = c + 1 < seg.clusters ? seg.starts[c + 1] : m;
        CHECK(end > seg.starts[c]);
        mine += seg_cost(x, w, seg.starts[c], end - 1);
      }
      const long double penalized = mine + lambda * static_cast<long double>(seg.clusters);
      const long double scale_ref = 1 + std::fabs(static_cast<double>(best[m]));
      CHECK(std::fabs(static_cast<double>(penalized - best[m])) <= 1e-9 * static_cast<double>(scale_ref));
      CHECK(std::fabs(static_cast<double>(mine) - seg.cost) <= 1e-9 * (1 + static_cast<double>(mine)));
    }
  }
  CHECK(cases >= 480);
}

// Distinct values of a 16-row fp16 weight group of the given fan-in (Gaussian, as palettization
// sees them) plus the extreme fp16 values: ±65504, ± the smallest subnormal, the largest subnormal,
// ±0 (merged) and the smallest normal.
DistinctValues fp16_group_with_edges(std::mt19937_64& rng, size_t fan_in) {
  std::normal_distribution<double> nd(0, 1 / std::sqrt(static_cast<double>(fan_in)));
  std::vector<uint16_t> h(16 * fan_in);
  for (uint16_t& v : h) v = double_to_half(nd(rng));
  for (uint16_t edge : {0x7BFF, 0xFBFF, 0x0001, 0x8001, 0x03FF, 0x0000, 0x8000, 0x0400}) h.push_back(edge);
  Fp16Histogram hist;
  hist.add(h.data(), h.size());
  DistinctValues d;
  hist.distinct(d, nullptr);
  return d;
}

// The vector duel probes (AVX2: 4 rows per compare, AVX-512: 8) read the scalar gallop's answer
// from an outcome mask: every pass must give the scalar probes' segmentation and cost bit for bit
// (the scalar pass is itself checked against the quadratic reference above). Inputs: real-valued,
// integer (exact ties), heavy-tailed, all weight on few values, n < 8 (the vector probe needs 8
// rows left), fp16 groups with edge values (±65504, subnormals, ±0 merged), over a range of λ.
TEST(penalized_vector_probes_match_scalar) {
  std::mt19937_64 rng(77);
  std::vector<std::pair<std::vector<double>, std::vector<double>>> inputs;
  for (int trial = 0; trial < 60; ++trial) {
    const size_t n = trial < 12 ? 1 + static_cast<size_t>(trial) : 1 + rng() % 3000;
    std::vector<double> x = random_sorted_distinct(rng, n, trial % 3);
    std::vector<double> w(x.size());
    for (double& wi : w) wi = trial % 4 == 3 ? 1.0 : static_cast<double>(1 + rng() % 200);
    if (trial % 5 == 4)  // nearly all weight on a handful of values
      for (size_t i = 0; i < w.size(); i += 1 + w.size() / 4) w[i] = 1e6;
    inputs.emplace_back(std::move(x), std::move(w));
  }
  for (size_t fan_in : {64, 1280}) {  // fp16 groups, plus the extreme fp16 values
    DistinctValues d = fp16_group_with_edges(rng, fan_in);
    inputs.emplace_back(d.values, d.counts);
  }
  int compared = 0;
  for (const auto& [x, w] : inputs) {
    const size_t n = x.size();
    CostTable ct(x.data(), w.data(), n);
    const double total = ct.cost(0, n - 1);
    for (double scale : {0.0, 1e-7, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0}) {
      const double lambda = total * scale;
      PenalizedDp scalar;
      scalar.set_probe(PenalizedDp::Probe::kScalar);
      PenalizedSegmentation want;
      scalar.solve(ct, n, lambda, want);
      for (PenalizedDp::Probe p : {PenalizedDp::Probe::kAvx2, PenalizedDp::Probe::kAvx512, PenalizedDp::Probe::kWidest}) {
        if (!PenalizedDp::supported(p)) continue;
        PenalizedDp dp;
        dp.set_probe(p);
        PenalizedSegmentation got;
        dp.solve(ct, n, lambda, got);
        ++compared;
        CHECK_EQ(got.clusters, want.clusters);
        CHECK(got.starts == want.starts);
        CHECK_EQ(got.cost, want.cost);
      }
    }
  }
  std::printf("  vector probes compared on %d passes (avx2 %d, avx512 %d)\n", compared,
              PenalizedDp::supported(PenalizedDp::Probe::kAvx2), PenalizedDp::supported(PenalizedDp::Probe::kAvx512));
  CHECK(compared >= 62 * 9);  // at least the widest probe on every input and λ
}

// Interleaved passes (kmeans1d_streams.h) take the common case without branches and the rest
// through the single pass's code: every stream must end with the single scalar pass's best/last
// arrays, bit for bit, for every mask kind and any number of streams advanced together (5 and 6
// exercise the chunks of 4), with streams of different lengths stopping at different rounds.
TEST(penalized_streams_match_single_pass) {
  std::mt19937_64 rng(91);
  struct Problem {
    std::vector<double> x, w;
    CostTable ct;
    double lambda;
  };
  std::vector<Problem> problems;
  for (int trial = 0; trial < 40; ++trial) {
    Problem p;
    const size_t n = trial < 10 ? 1 + static_cast<size_t>(trial) : 1 + rng() % 4000;
    p.x = random_sorted_distinct(rng, n, trial % 3);
    p.w.resize(p.x.size());
    for (double& wi : p.w) wi = trial % 4 == 3 ? 1.0 : static_cast<double>(1 + rng() % 200);
    problems.push_back(std::move(p));
  }
  for (size_t fan_in : {64, 1280, 2048}) {  // fp16 weight groups with the extreme fp16 values
    DistinctValues d = fp16_group_with_edges(rng, fan_in);
    Problem p;
    p.x = d.values;
    p.w = d.counts;
    problems.push_back(std::move(p));
  }
  const double scales[] = {0.0, 1e-6, 1e-4, 1e-3, 1e-2, 0.1, 1.0};
  for (size_t t = 0; t < problems.size(); ++t) {
    Problem& p = problems[t];
    p.ct.build(p.x.data(), p.w.data(), p.x.size());
    p.lambda = p.ct.cost(0, p.x.size() - 1) * scales[t % 7];
  }
  int compared = 0;
  for (StreamIsa isa : {StreamIsa::kScalar, StreamIsa::kAvx2, StreamIsa::kAvx512, StreamIsa::kWidest}) {
    if (!penalized_stream_isa_supported(isa)) continue;
    for (size_t count : {1, 2, 3, 4, 5, 6}) {
      for (size_t first = 0; first + count <= problems.size(); first += count) {
        std::vector<std::vector<double>> best(count);
        std::vector<std::vector<uint32_t>> last(count), cand(count), from(count);
        std::vector<PenalizedStream> st(count);
        for (size_t q = 0; q < count; ++q) {
          const size_t n = problems[first + q].x.size();
          best[q].assign(n + 1, -1.0);
          last[q].assign(n + 1, 0);
          cand[q].assign(n + 1, 0);
          from[q].assign(n + 1, 0);
          st[q].best = best[q].data();
          st[q].last = last[q].data();
          st[q].cand = cand[q].data();
          st[q].from = from[q].data();
          st[q].start(problems[first + q].ct, n, problems[first + q].lambda);
        }
        // Advance all together while they last, then the rest alone (the batch driver's pattern).
        size_t steps = st[0].remaining();
        for (const PenalizedStream& s : st) steps = std::min(steps, s.remaining());
        advance_penalized_streams(st.data(), count, steps, isa);
        for (PenalizedStream& s : st) advance_penalized_streams(&s, 1, s.remaining(), isa);
        for (size_t q = 0; q < count; ++q) {
          const Problem& p = problems[first + q];
          const size_t n = p.x.size();
          PenalizedDp scalar;
          scalar.set_probe(PenalizedDp::Probe::kScalar);
          PenalizedSegmentation want, got;
          scalar.solve(p.ct, n, p.lambda, want);
          penalized_segmentation(p.ct, n, last[q].data(), got);
          CHECK_EQ(got.clusters, want.clusters);
          CHECK(got.starts == want.starts);
          CHECK_EQ(got.cost, want.cost);
          ++compared;
        }
      }
    }
  }
  std::printf("  interleaved passes compared: %d (avx2 %d, avx512 %d)\n", compared,
              penalized_stream_isa_supported(StreamIsa::kAvx2), penalized_stream_isa_supported(StreamIsa::kAvx512));
  CHECK(compared >= 40 * 6);  // the scalar masks on every problem at every stream count
}

// The batch entry (palettization's): problems pulled through slots, passes interleaved, results
// handed back in completion order. Each result must equal kmeans1d_fp16_distinct on the same
// problem, bit for bit; every problem is answered once, in the slot it was given, while its data
// is still there; trivial problems (n <= k, one value) and bad ones behave as the single entry.
TEST(kmeans1d_stream_matches_one_by_one) {
  std::mt19937_64 rng(404);
  std::vector<DistinctValues> problems;
  for (size_t fan_in : {16, 320, 1280, 2048, 5120}) {
    std::normal_distribution<double> nd(0, 1 / std::sqrt(static_cast<double>(fan_in)));
    for (int g = 0; g < 3; ++g) {
      std::vector<uint16_t> h(16 * fan_in);
      for (uint16_t& v : h) v = double_to_half(nd(rng) * (g == 2 ? 50.0 : 1.0));
      Fp16Histogram hist;
      hist.add(h.data(), h.size());
      DistinctValues d;
      hist.distinct(d, nullptr);
      problems.push_back(std::move(d));
    }
  }
  DistinctValues few;  // n <= k: no search
  few.values = {-0.5, 0.25, 1.0};
  few.counts = {2, 1, 7};
  problems.insert(problems.begin() + 4, few);
  DistinctValues one;
  one.values = {0.75};
  one.counts = {3};
  problems.push_back(one);
  // Means exactly on fp16 rounding midpoints (1 + 2^-11 between 1 and 1 + 2^-10; 2^-25 between 0 and
  // the smallest subnormal; −2^-25 at −0): the fp16-centroid mode must fall back to the running mean.
  DistinctValues ties;
  ties.values = {-std::ldexp(1.0, -24), 0.0, std::ldexp(1.0, -24), 1.0, 1.0 + std::ldexp(1.0, -10), 40.0, 40.03125};
  ties.counts = {1, 1, 1, 5, 5, 2, 2};
  problems.push_back(ties);
  for (size_t k : {2, 3, 16, 64}) {
    std::vector<Kmeans1dResult> want;
    for (const DistinctValues& d : problems) want.push_back(kmeans1d_fp16_distinct(d, k));
    size_t next_problem = 0;
    std::vector<int> in_slot(kKmeans1dStreamSlots, -1), answered(problems.size(), 0);
    std::vector<DistinctValues> slot_data(kKmeans1dStreamSlots);
    int mismatches = 0;
    kmeans1d_fp16_distinct_stream(
        k,
        [&](size_t slot) -> const DistinctValues* {
          CHECK(slot < kKmeans1dStreamSlots);
          CHECK_EQ(in_slot[slot], -1);  // a slot is handed out again only after its answer
          if (next_problem == problems.size()) return nullptr;
          in_slot[slot] = static_cast<int>(next_problem);
          slot_data[slot] = problems[next_problem++];  // the caller's copy lives in the slot
          return &slot_data[slot];
        },
        [&](size_t slot, Kmeans1dResult& r) {
          CHECK(in_slot[slot] >= 0);
          const size_t p = static_cast<size_t>(in_slot[slot]);
          ++answered[p];
          mismatches += !(r.centroids == want[p].centroids && r.assignment == want[p].assignment &&
                          r.cost == want[p].cost && r.lagrangian == want[p].lagrangian);
          slot_data[slot].values.assign(slot_data[slot].values.size(), 1e300);  // must not be read again
          in_slot[slot] = -1;
        });
    CHECK_EQ(mismatches, 0);
    CHECK(std::all_of(answered.begin(), answered.end(), [](int a) { return a == 1; }));
    // fp16 centroids: each one the fp16 rounding of the exact running mean, same clusters.
    size_t at = 0;
    std::vector<size_t> given(kKmeans1dStreamSlots);
    int fp16_mismatches = 0, fp16_answers = 0;
    kmeans1d_fp16_distinct_stream(
        k,
        [&](size_t slot) -> const DistinctValues* {
          if (at == problems.size()) return nullptr;
          given[slot] = at;
          return &problems[at++];
        },
        [&](size_t slot, Kmeans1dResult& r) {
          const Kmeans1dResult& w = want[given[slot]];
          ++fp16_answers;
          bool same = r.assignment == w.assignment && r.centroids.size() == w.centroids.size();
          for (size_t c = 0; same && c < r.centroids.size(); ++c)
            same = double_to_half(r.centroids[c]) == double_to_half(w.centroids[c]) &&
                   static_cast<double>(cmo::half_to_float(double_to_half(r.centroids[c]))) == r.centroids[c];
          fp16_mismatches += !same;
        },
        {}, /*fp16_centroids=*/true);
    CHECK_EQ(fp16_mismatches, 0);
    CHECK_EQ(fp16_answers, static_cast<int>(problems.size()));
  }
  // Cancellation between passes, and the single entry's errors.
  int polled = 0;
  bool cancelled = false;
  try {
    size_t i = 0;
    kmeans1d_fp16_distinct_stream(
        16, [&](size_t) { return i < problems.size() ? &problems[i++] : nullptr; }, [&](size_t, Kmeans1dResult&) {},
        [&] { return ++polled > 2; });
  } catch (const cmo::Cancelled&) {
    cancelled = true;
  }
  CHECK(cancelled);
  DistinctValues empty;
  bool named = false;
  try {
    kmeans1d_fp16_distinct_stream(16, [&](size_t) { return &empty; }, [&](size_t, Kmeans1dResult&) {});
  } catch (const cmo::Error& e) {
    named = std::string(e.what()).find("no values") != std::string::npos;
  }
  CHECK(named);
}

// Weight-like data (fp16 Gaussian groups, as palettization sees them): the λ search must find
// k clusters itself — not pass every group to the layered fallback — and give the layered DP's
// segmentation, bit for bit.
TEST(lagrangian_search_solves_weight_groups) {
  std::mt19937_64 rng(5);
  int solved = 0, cases = 0;
  for (size_t fan_in : {320, 1280, 11520}) {
    std::normal_distribution<double> nd(0, 1 / std::sqrt(static_cast<double>(fan_in)));
    for (size_t k : {16, 64, 256}) {
      std::vector<uint16_t> h(16 * fan_in);
      for (uint16_t& v : h) v = double_to_half(nd(rng));
      Fp16Histogram hist;
      hist.add(h.data(), h.size());
      DistinctValues d;
      hist.distinct(d, nullptr);
      const size_t n = d.values.size();
      Kmeans1dResult lagrangian = kmeans1d_sorted(d.values.data(), d.counts.data(), n, k);
      Kmeans1dResult dc = kmeans1d_sorted(d.values.data(), d.counts.data(), n, k, Kmeans1dAlgorithm::kDivideConquer);
      Kmeans1dResult unchecked = kmeans1d_fp16_distinct(d, k);  // palettization's entry (no input sweep)
      ++cases;
      solved += lagrangian.lagrangian;
      CHECK(lagrangian.assignment == dc.assignment);
      CHECK(lagrangian.centroids == dc.centroids);
      CHECK(unchecked.assignment == dc.assignment);
      CHECK(unchecked.centroids == dc.centroids);
      CHECK_EQ(unchecked.cost, lagrangian.cost);
    }
  }
  CHECK_EQ(solved, cases);
}

// >= 256 values per cluster: the λ search starts from the sparse (every 4th value) density estimate.
// Against the library's brute-force DP (every admissible column, O(k·n²)) bit for bit on fp16 groups
// with edge values, and on integer data (exact ties: then only the cost must agree).
TEST(lagrangian_with_sparse_first_lambda_matches_bruteforce) {
  std::mt19937_64 rng(2024);
  const size_t k = 16;
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<double> x, w;
    if (trial < 2) {
      std::normal_distribution<double> nd(0, trial == 0 ? 0.02 : 0.3);
      std::vector<uint16_t> h(14000);
      for (uint16_t& v : h) v = double_to_half(nd(rng));
      for (uint16_t edge : {0x7BFF, 0xFBFF, 0x0001, 0x8001, 0x0000, 0x8000}) h.push_back(edge);
      Fp16Histogram hist;
      hist.add(h.data(), h.size());
      DistinctValues d;
      hist.distinct(d, nullptr);
      x = d.values;
      w = d.counts;
    } else {
      for (int v = -2100; v <= 2100; ++v) {
        x.push_back(v);
        w.push_back(static_cast<double>(1 + rng() % 3));
      }
    }
    const size_t n = x.size();
    CHECK(n >= 256 * k);
    Kmeans1dResult fast = kmeans1d_sorted(x.data(), w.data(), n, k);
    Kmeans1dResult ref = kmeans1d_sorted_ref(x.data(), w.data(), n, k);
    CHECK(fast.lagrangian);
    if (trial < 2) {
      CHECK(fast.assignment == ref.assignment);
      CHECK(fast.centroids == ref.centroids);
    } else {
      CHECK_NEAR(fast.cost, ref.cost, 1e-12 * ref.cost);
    }
  }
}

// Evenly spaced unit-weight values: OPT(4) = 8, OPT(5) = 5.5, OPT(6) = 3 for 12 values lie on one
// line, so no penalty gives exactly 5 clusters. The search must notice and fall back to the
// layered DP (and still return the optimum).
TEST(lagrangian_falls_back_when_k_is_on_a_hull_edge) {
  std::vector<double> x(12);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
  Kmeans1dResult r = kmeans1d_sorted(x.data(), nullptr, x.size(), 5);
  Kmeans1dResult ref = kmeans1d_sorted_ref(x.data(), nullptr, x.size(), 5);
  CHECK(!r.lagrangian);
  CHECK_EQ(r.centroids.size(), size_t{5});
  CHECK_NEAR(r.cost, 5.5, 1e-12);
  CHECK_NEAR(ref.cost, 5.5, 1e-12);
  Kmeans1dResult four = kmeans1d_sorted(x.data(), nullptr, x.size(), 4);
  CHECK(four.lagrangian);  // a hull vertex: found by the search
  CHECK_NEAR(four.cost, 8.0, 1e-12);
}

TEST(k_one_and_k_n) {
  std::vector<double> x = {-3, -1, 0.5, 2, 7};
  std::vector<double> w = {1, 2, 3, 4, 5};
  Kmeans1dResult one = kmeans1d_sorted(x.data(), w.data(), x.size(), 1);
  double mean = (-3 * 1 + -1 * 2 + 0.5 * 3 + 2 * 4 + 7 * 5) / 15.0;
  CHECK_NEAR(one.centroids[0], mean, 1e-15);
  CHECK(std::all_of(one.assignment.begin(), one.assignment.end(), [](uint32_t a) { return a == 0; }));
  for (size_t k : {5, 6, 100}) {  // k >= n: every value is its own centroid, cost 0
    Kmeans1dResult all = kmeans1d_sorted(x.data(), w.data(), x.size(), k);
    CHECK(all.centroids == x);
    CHECK_EQ(all.cost, 0.0);
    for (size_t i = 0; i < x.size(); ++i) CHECK_EQ(all.assignment[i], static_cast<uint32_t>(i));
  }
}

TEST(unsorted_with_duplicates_all_equal_and_signed_zero) {
  std::vector<double> x = {5, 5, 5, 5};
  Kmeans1dResult r = kmeans1d(x.data(), nullptr, x.size(), 3);
  CHECK_EQ(r.centroids.size(), size_t{1});
  CHECK_EQ(r.centroids[0], 5.0);
  std::vector<double> z = {-0.0, 0.0, 1.0, -0.0, 1.0};
  Kmeans1dResult rz = kmeans1d(z.data(), nullptr, z.size(), 4);
  CHECK_EQ(rz.centroids.size(), size_t{2});  // ±0 are one value
  CHECK(rz.assignment[0] == rz.assignment[1] && rz.assignment[1] == rz.assignment[3]);
  CHECK(!std::signbit(rz.centroids[0]));
  std::vector<double> u = {10, 1, 11, 2, 12, 3};
  Kmeans1dResult ru = kmeans1d(u.data(), nullptr, u.size(), 2);
  std::vector<uint32_t> want = {1, 0, 1, 0, 1, 0};
  CHECK(ru.assignment == want);
}

TEST(huge_tiny_and_denormal_magnitudes) {
  std::vector<double> x = {-65504, -1e-7, 5.960464477539063e-08, 6e-5, 1, 65504};
  Kmeans1dResult r = kmeans1d_sorted(x.data(), nullptr, x.size(), 3);
  Kmeans1dResult ref = kmeans1d_sorted_ref(x.data(), nullptr, x.size(), 3);
  CHECK(r.assignment == ref.assignment);
  CHECK_EQ(r.centroids.front(), -65504.0);
  CHECK_EQ(r.centroids.back(), 65504.0);
  // fp32 subnormals (the smallest magnitudes real weights have); squares stay normal in double.
  std::vector<double> d = {1.401298464324817e-45, 2.802596928649634e-45, 4.203895392974451e-45, 1e-38};
  Kmeans1dResult rd = kmeans1d_sorted(d.data(), nullptr, d.size(), 2);
  CHECK_EQ(rd.assignment[3], 1u);
  CHECK_EQ(rd.assignment[2], 0u);
}

TEST(bad_input_raises) {
  std::vector<double> nan = {1, std::nan(""), 2};
  CHECK_THROWS(kmeans1d(nan.data(), nullptr, nan.size(), 2));
  std::vector<double> inf = {1, std::numeric_limits<double>::infinity()};
  CHECK_THROWS(kmeans1d(inf.data(), nullptr, inf.size(), 2));
  std::vector<double> unsorted = {2, 1};
  CHECK_THROWS(kmeans1d_sorted(unsorted.data(), nullptr, 2, 1));
  std::vector<double> ok = {1, 2};
  CHECK_THROWS(kmeans1d_sorted(ok.data(), nullptr, 2, 0));
  CHECK_THROWS(kmeans1d_sorted(ok.data(), nullptr, 0, 1));
  std::vector<double> negw = {1, -1};
  CHECK_THROWS(kmeans1d_sorted(ok.data(), negw.data(), 2, 1));
  // Each reject of the branch-free validity sweep, at the first and at a later element.
  const double inf_v = std::numeric_limits<double>::infinity();
  for (std::vector<double> bad : {std::vector<double>{-inf_v, 1, 2}, {std::nan(""), 1, 2}, {0, 1, inf_v}, {0, 1, std::nan("")},
                                  {0, 1, 1}, {0, 2, 1}})
    CHECK_THROWS(kmeans1d_sorted(bad.data(), nullptr, bad.size(), 2));
  std::vector<double> x3 = {0, 1, 2};
  for (std::vector<double> bad_w : {std::vector<double>{1, 0, 1}, {1, 1, inf_v}, {std::nan(""), 1, 1}, {1, 1, -2}})
    CHECK_THROWS(kmeans1d_sorted(x3.data(), bad_w.data(), x3.size(), 2));
  DistinctValues none;
  CHECK_THROWS(kmeans1d_fp16_distinct(none, 4));
  DistinctValues one{{0.5}, {3}};
  CHECK_THROWS(kmeans1d_fp16_distinct(one, 0));
  CHECK(kmeans1d_fp16_distinct(one, 4).centroids == std::vector<double>{0.5});
  bool named = false;
  try {
    Fp16Histogram h;
    h.add_one(0x7E00);
  } catch (const cmo::Error& e) {
    named = std::string(e.what()).find("NaN") != std::string::npos && e.code() == "EINVAL";
  }
  CHECK(named);
  CHECK_THROWS([] {
    Fp16Histogram h;
    h.add_one(0xFC00);  // -Inf
    return 0;
  }());
}

TEST(fp16_histogram_orders_values_and_merges_zero) {
  std::vector<uint16_t> bits = {0x3C00, 0xBC00, 0x0000, 0x8000, 0x0001, 0x8001, 0x7BFF, 0xFBFF, 0x3C00};
  Fp16Histogram h;
  h.add(bits.data(), bits.size());
  DistinctValues d;
  std::vector<uint16_t> keys;
  h.distinct(d, &keys);
  std::vector<double> want = {-65504, -1, -5.960464477539063e-08, 0, 5.960464477539063e-08, 1, 65504};
  CHECK(d.values == want);
  std::vector<double> counts = {1, 1, 1, 2, 1, 2, 1};
  CHECK(d.counts == counts);
  CHECK_EQ(h.distinct_count(), size_t{7});
  h.clear();
  CHECK_EQ(h.distinct_count(), size_t{0});
  // Every finite fp16 pattern sorts like its value.
  for (uint32_t a = 0; a < 65536; a += 7)
    for (uint32_t b = 0; b < 65536; b += 4099) {
      uint16_t ha = static_cast<uint16_t>(a), hb = static_cast<uint16_t>(b);
      if ((ha & 0x7C00) == 0x7C00 || (hb & 0x7C00) == 0x7C00) continue;
      float fa = cmo::half_to_float(ha), fb = cmo::half_to_float(hb);
      CHECK_EQ(fa < fb, fp16_order_key(ha) < fp16_order_key(hb));
      CHECK_EQ(fp16_from_order_key(fp16_order_key(ha)), (ha == 0x8000 ? uint16_t{0} : ha));
    }
}

// The histogram's blocked key pass, key-range scan and clear against an independent reference
// (values sorted as doubles, ±0 merged): dense weight-like groups, a few values spread over the
// whole fp16 range, several add() calls (strided, add_one, more than one 4,096-key block), reuse
// after clear(), and a NaN in a later block (the histogram is left empty and usable). Both
// collects: the portable loop and the AVX-512 one (where the CPU has it).
static void check_fp16_histogram(bool vector_collect) {
  std::mt19937_64 rng(11);
  auto finite_bits = [&] {
    for (;;) {
      const uint16_t h = static_cast<uint16_t>(rng());
      if ((h & 0x7C00) != 0x7C00) return h;
    }
  };
  std::normal_distribution<double> nd(0, 0.02);
  Fp16Histogram hist(vector_collect);
  for (int round = 0; round < 8; ++round) {
    std::vector<uint16_t> all;  // every value added this round
    // Rounds 6 and 7: one value, then every finite pattern (the whole key range, all counters set).
    const size_t n = round == 6 ? 1 : round == 7 ? 65536 : round % 3 == 0 ? 20000 : round % 3 == 1 ? 37 : 9000;
    std::vector<uint16_t> data(n * 3);
    for (uint16_t& h : data) h = round % 3 == 1 ? finite_bits() : double_to_half(nd(rng));
    if (round == 7)
      for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint16_t>((i & 0x7C00) == 0x7C00 ? 0x3C00 : i);
    if (round % 3 == 2 && round < 6) {  // strided, then single values, then a plain block
      hist.add(data.data(), n, 3);
      for (size_t i = 0; i < n; ++i) all.push_back(data[i * 3]);
      for (size_t i = 0; i < 5; ++i) {
        hist.add_one(data[i * 3 + 1]);
        all.push_back(data[i * 3 + 1]);
      }
      hist.add(data.data() + 1, 4100);
      all.insert(all.end(), data.begin() + 1, data.begin() + 4101);
    } else {
      if (n > 8) {
        data[7] = 0x8000;  // −0
        data[8] = 0x0000;
      }
      hist.add(data.data(), n);
      all.assign(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    }
    std::vector<std::pair<double, uint16_t>> ref;  // (value, order key), ±0 as +0
    for (uint16_t h : all) ref.push_back({static_cast<double>(cmo::half_to_float(h == 0x8000 ? 0 : h)), fp16_order_key(h)});
    std::sort(ref.begin(), ref.end());
    std::vector<double> want_values, want_counts;
    std::vector<uint16_t> want_keys;
    for (const auto& [v, key] : ref) {
      if (want_values.empty() || v != want_values.back()) {
        want_values.push_back(v);
        want_counts.push_back(0);
        want_keys.push_back(key);
      }
      want_counts.back() += 1;
      CHECK_EQ(key, want_keys.back());
    }
    auto matches_reference = [&](const DistinctValues& got, const std::vector<uint16_t>& got_keys) {
      CHECK(got.values == want_values);
      CHECK(got.counts == want_counts);
      CHECK(got_keys == want_keys);
    };
    DistinctValues d;
    std::vector<uint16_t> keys;
    hist.distinct(d, &keys);
    matches_reference(d, keys);
    CHECK_EQ(hist.distinct_count(), want_values.size());
    for (size_t i = 0; i < keys.size(); ++i) CHECK_EQ(static_cast<double>(hist.count_of_key(keys[i])), want_counts[i]);
    if (round % 2 == 0) {
      hist.clear();
    } else {  // take_distinct: the same answer, and the histogram is left empty
      DistinctValues taken;
      std::vector<uint16_t> taken_keys;
      hist.take_distinct(taken, &taken_keys);
      matches_reference(taken, taken_keys);
      for (uint16_t key : want_keys) CHECK_EQ(hist.count_of_key(key), 0u);
    }
    CHECK_EQ(hist.distinct_count(), size_t{0});
    hist.distinct(d, &keys);
    CHECK(d.values.empty() && keys.empty());
  }
  // NaN in the second block: throws naming it; counters of the first block are gone.
  std::vector<uint16_t> data(6000, 0x3C00);
  data[5000] = 0x7E01;
  CHECK_THROWS(hist.add(data.data(), data.size()));
  CHECK_EQ(hist.distinct_count(), size_t{0});
  hist.add(data.data(), 100);
  CHECK_EQ(hist.count_of_key(fp16_order_key(0x3C00)), 100u);
  CHECK_EQ(hist.distinct_count(), size_t{1});
  hist.clear();
  // The vectorized key pass equals the scalar key for every pattern and flags NaN/Inf.
  std::vector<uint16_t> every(65536), keys(65536);
  for (uint32_t h = 0; h < 65536; ++h) every[h] = static_cast<uint16_t>(h);
  CHECK(fp16_order_keys(every.data(), every.size(), keys.data()) != 0);
  for (uint32_t h = 0; h < 65536; ++h) CHECK_EQ(keys[h], fp16_order_key(static_cast<uint16_t>(h)));
  std::vector<uint16_t> finite(1000);
  for (uint16_t& h : finite) h = finite_bits();
  CHECK_EQ(fp16_order_keys(finite.data(), finite.size(), keys.data()), 0u);
}

TEST(fp16_histogram_matches_sorted_reference) {
  check_fp16_histogram(false);
  check_fp16_histogram(true);
}

TEST(double_to_half_is_correctly_rounded) {
  // 1 + 2^-11 + 2^-40 is just above the tie: double -> float rounds to the tie, then RNE would give 1.
  double d = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  CHECK_EQ(double_to_half(d), 0x3C01);
  CHECK_EQ(double_to_half(1.0 + std::ldexp(1.0, -11)), 0x3C00);  // exact tie -> even
  CHECK_EQ(double_to_half(-2.5), cmo::float_to_half(-2.5f));
  CHECK_EQ(double_to_half(1e-9), 0x0000);
}

CMO_TEST_MAIN()
