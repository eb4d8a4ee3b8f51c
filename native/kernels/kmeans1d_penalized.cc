#include "kmeans1d_penalized.h"

#include <cstdint>

#include "kmeans1d_duel.h"

namespace cmo::kernels {

namespace {

using namespace duel;

struct PassBuffers {
  double* best;
  uint32_t* last;
  uint32_t* cand;
  uint32_t* from;
};

// One penalized pass (see the header): fills best[0..n] and last[1..n].
template <class Probe>
inline void penalized_pass(const CostTable& ct, size_t n, double lambda, const PassBuffers& b) {
  double* best = b.best;
  uint32_t* last = b.last;
  uint32_t* cand = b.cand;
  uint32_t* from = b.from;
  best[0] = 0;
  size_t head = 0, tail = 0;  // deque cand[head, tail): starts, each best from row from[·] on
  for (size_t i = 0; i < n; ++i) {
    // Candidate start i (a cluster beginning at value i) joins once best[i] is known.
    const Later later{ct.cumw[i], ct.cumsum[i], best[i], ct.cumsum2[i]};
    insert_candidate<Probe>(ct, best, cand, from, head, tail, i, n, later);
    while (tail - head > 1 && from[head + 1] <= i) ++head;
    const size_t start = cand[head];
    best[i + 1] = (best[start] + ct.cost(start, i)) + lambda;
    last[i + 1] = static_cast<uint32_t>(start);
  }
}

void pass_scalar(const CostTable& ct, size_t n, double lambda, const PassBuffers& b) {
  penalized_pass<ScalarProbe>(ct, n, lambda, b);
}

#ifdef CMO_PENALIZED_AVX512
// flatten: a probe compiled for AVX-512 / AVX2 can only be inlined into a function of that target.
__attribute__((target("avx512f"), flatten)) void pass_avx512(const CostTable& ct, size_t n, double lambda,
                                                              const PassBuffers& b) {
  penalized_pass<Avx512Probe>(ct, n, lambda, b);
}
__attribute__((target("avx2"), flatten)) void pass_avx2(const CostTable& ct, size_t n, double lambda,
                                                         const PassBuffers& b) {
  penalized_pass<Avx2Probe>(ct, n, lambda, b);
}

#endif

using PassFn = void (*)(const CostTable&, size_t, double, const PassBuffers&);

struct CpuProbes {
  bool avx2 = false, avx512 = false;
  CpuProbes() {
#ifdef CMO_PENALIZED_AVX512
    // __builtin_cpu_supports also checks that the OS saves the wider registers (XGETBV).
    __builtin_cpu_init();
    avx2 = __builtin_cpu_supports("avx2") != 0;
    avx512 = __builtin_cpu_supports("avx512f") != 0;
#endif
  }
};
const CpuProbes& cpu() {
  static const CpuProbes c;
  return c;
}

PassFn pass_for(PenalizedDp::Probe p) {
#ifdef CMO_PENALIZED_AVX512
  if ((p == PenalizedDp::Probe::kWidest || p == PenalizedDp::Probe::kAvx512) && cpu().avx512) return &pass_avx512;
  if ((p == PenalizedDp::Probe::kWidest || p == PenalizedDp::Probe::kAvx2) && cpu().avx2) return &pass_avx2;
#endif
  (void)p;
  return &pass_scalar;
}

}  // namespace

bool PenalizedDp::supported(Probe p) {
  switch (p) {
    case Probe::kAvx2: return cpu().avx2;
    case Probe::kAvx512: return cpu().avx512;
    default: return true;
  }
}

void PenalizedDp::solve(const CostTable& ct, size_t n, double lambda, PenalizedSegmentation& out) {
  best_.resize(n + 1);
  last_.resize(n + 1);
  cand_.resize(n);
  from_.resize(n);
  uint32_t* last = last_.data();
  const PassBuffers buffers{best_.data(), last, cand_.data(), from_.data()};
  pass_for(probe_)(ct, n, lambda, buffers);
  penalized_segmentation(ct, n, last, out);
}

void penalized_segmentation(const CostTable& ct, size_t n, const uint32_t* last, PenalizedSegmentation& out) {
  // Cluster count and Σ cost from the chain of last starts (not carried per row: two fewer arrays
  // in the loop). The sum runs left to right from 0, as a per-row running sum would: same bits.
  size_t clusters = 0;
  for (size_t end = n; end > 0; end = last[end]) ++clusters;
  out.clusters = clusters;
  out.starts.resize(clusters);
  size_t end = n;
  for (size_t c = clusters; c-- > 0;) {
    out.starts[c] = last[end];
    end = last[end];
  }
  double cost = 0;
  for (size_t c = 0; c < clusters; ++c) cost = cost + ct.cost(out.starts[c], (c + 1 < clusters ? out.starts[c + 1] : n) - 1);
  out.cost = cost;
}

}  // namespace cmo::kernels
