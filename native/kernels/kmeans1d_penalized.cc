#include "kmeans1d_penalized.h"

namespace cmo::kernels {

namespace {

// Penalized cost of the rows [0, i] when the last cluster starts at j, less λ (which every
// candidate pays alike): best[j] + cost(j, i). Same operations and order as CostTable::cost.
struct Candidates {
  const double* cw;
  const double* cs;
  const double* cs2;
  const double* best;
  double cost(size_t j, size_t i) const {
    double w = cw[i + 1] - cw[j];
    double s1 = cs[i + 1] - cs[j];
    double mu = s1 / w;
    double r = cs2[i + 1] - cs2[j];
    r += w * (mu * mu);
    r -= (2 * mu) * s1;
    return r;
  }
  double at(size_t j, size_t i) const { return best[j] + cost(j, i); }
  // The later start `later` (> earlier) is strictly better at row i.
  bool wins(size_t later, size_t earlier, size_t i) const { return at(later, i) < at(earlier, i); }
};

}  // namespace

void PenalizedDp::solve(const CostTable& ct, size_t n, double lambda, PenalizedSegmentation& out) {
  best_.resize(n + 1);
  cost_sum_.resize(n + 1);
  count_.resize(n + 1);
  last_.resize(n + 1);
  cand_.resize(n);
  from_.resize(n);
  best_[0] = cost_sum_[0] = 0;
  count_[0] = 0;
  const Candidates f{ct.cumw.data(), ct.cumsum.data(), ct.cumsum2.data(), best_.data()};
  size_t head = 0, tail = 0;  // deque cand_[head, tail): starts, each best from row from_[·] on
  for (size_t i = 0; i < n; ++i) {
    // Candidate start j = i (a cluster beginning at value i) joins once best_[i] is known.
    const size_t j = i;
    size_t first_win = i;
    while (tail > head) {
      const size_t b = cand_[tail - 1];
      const size_t s = from_[tail - 1] > i ? from_[tail - 1] : i;
      if (f.wins(j, b, s)) {  // j wins from the back's first row on: the back never wins again
        --tail;
        continue;
      }
      // First row r > s where j wins against b: gallop, then bisect (lo loses, hi wins or = n).
      size_t lo = s, hi = s + 1, step = 1;
      while (hi < n && !f.wins(j, b, hi)) {
        lo = hi;
        step *= 2;
        hi = lo + step;
      }
      if (hi > n) hi = n;
      while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (f.wins(j, b, mid)) hi = mid;
        else lo = mid;
      }
      first_win = hi;
      break;
    }
    if (first_win < n) {
      cand_[tail] = static_cast<uint32_t>(j);
      from_[tail] = static_cast<uint32_t>(first_win);
      ++tail;
    }
    while (tail - head > 1 && from_[head + 1] <= i) ++head;
    const size_t start = cand_[head];
    const double cost = f.cost(start, i);
    best_[i + 1] = (best_[start] + cost) + lambda;
    cost_sum_[i + 1] = cost_sum_[start] + cost;
    count_[i + 1] = count_[start] + 1;
    last_[i + 1] = static_cast<uint32_t>(start);
  }
  out.clusters = count_[n];
  out.cost = cost_sum_[n];
  out.starts.assign(out.clusters, 0);
  size_t end = n;
  for (size_t c = out.clusters; c-- > 0;) {
    out.starts[c] = last_[end];
    end = last_[end];
  }
}

}  // namespace cmo::kernels
