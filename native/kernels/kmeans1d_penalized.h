// Penalized 1-D k-means: the segmentation minimizing  Σ cluster cost + λ · (number of clusters),
// over any number of clusters, in one pass over the n sorted distinct values.
//
// Why: the optimal k-clustering cost OPT(c) is convex in the cluster count c (the interval costs are
// Monge), so for λ between OPT(k) − OPT(k+1) and OPT(k−1) − OPT(k) the penalized optimum has
// exactly k clusters and is then an optimal k-clustering (Lagrangian relaxation, Aggarwal–Schieber–
// Tokuyama). One pass costs a few interval costs per value whatever k is, where the layered DP
// costs ~k/2 rows per value; kmeans1d.cc searches λ and falls back to the layered DP when no λ
// gives exactly k clusters (ties on the convex hull).
//
// Algorithm: least-weight subsequence with monotone decisions — a deque of candidate cluster starts,
// each owning the rows it wins; a new candidate's first winning row is found by galloping from the
// back's first row, then bisection (Monge: once a later start wins, it keeps winning). Candidates
// are compared without divisions (kmeans1d_penalized.cc). On AVX-512 machines a duel tests eight
// rows per compare and reads the scalar gallop's answer from the outcome mask (same rows, same bits).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kmeans1d_cost.h"

namespace cmo::kernels {

struct PenalizedSegmentation {
  size_t clusters = 0;       // number of clusters of the optimum found
  double cost = 0;           // its Σ cluster cost (without the penalty), as the DP summed it
  std::vector<size_t> starts;  // first value of each cluster, ascending (starts[0] = 0)
};

// The segmentation a finished pass chose: clusters, starts and Σ cost from last[1..n] (the start of
// the last cluster of each prefix).
void penalized_segmentation(const CostTable& ct, size_t n, const uint32_t* last, PenalizedSegmentation& out);

// Reusable buffers: one per thread keeps many small groups allocation-free.
class PenalizedDp {
 public:
  // ct: prefix sums over n values; lambda >= 0. Ties between equal penalized costs keep the earlier
  // (longer) last cluster.
  void solve(const CostTable& ct, size_t n, double lambda, PenalizedSegmentation& out);
  // Duel probes: the widest the CPU has (default), or one kind — kScalar is the test oracle of the
  // vector probes, which test 4 / 8 rows at once and must return the same rows.
  enum class Probe { kWidest, kScalar, kAvx2, kAvx512 };
  void set_probe(Probe p) { probe_ = p; }
  static bool supported(Probe p);  // false for vector probes the CPU (or build) lacks

 private:
  Probe probe_ = Probe::kWidest;
  std::vector<double> best_;      // best_[i]: penalized optimum of values [0, i)
  std::vector<uint32_t> last_;    // start of its last cluster
  std::vector<uint32_t> cand_, from_;
};

}  // namespace cmo::kernels
