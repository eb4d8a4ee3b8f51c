#include "kmeans1d_penalized.h"

#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

namespace cmo::kernels {

namespace {

// Start `later` against start `earlier` (< later) at rows i >= later, without divisions:
// best[l] + Q_l − S_l²/W_l < best[e] + Q_e − S_e²/W_e with Q_l − Q_e = cs2[e] − cs2[l] independent
// of i, so `later` wins ⟺ K·W_l·W_e < S_l²·W_e − S_e²·W_l, K = best[l] − best[e] + cs2[e] − cs2[l]
// (W > 0). Seven multiplications instead of two divisions (1.7× faster passes: division throughput
// bound them).
// The later start's prefix sums, loaded once for all its duels with the deque's back.
struct Later {
  double w, s, best, s2;
};

struct Duel {
  const double* cw;
  const double* cs;
  double wl, sl, we, se, k;
  Duel(const CostTable& ct, const double* best, const Later& l, size_t earlier)
      : cw(ct.cumw.data()), cs(ct.cumsum.data()), wl(l.w), sl(l.s), we(cw[earlier]), se(cs[earlier]),
        k((l.best - best[earlier]) + (ct.cumsum2[earlier] - l.s2)) {}
  bool later_wins(size_t i) const {
    const double w_l = cw[i + 1] - wl, s_l = cs[i + 1] - sl;
    const double w_e = cw[i + 1] - we, s_e = cs[i + 1] - se;
    return (k * w_l) * w_e < (s_l * s_l) * w_e - (s_e * s_e) * w_l;
  }
};

// Scalar galloping from lo (where `later` loses) with the next probe at hi = lo + step, then
// bisection (Monge: once `later` wins, it keeps winning).
size_t gallop_from(const Duel& d, size_t lo, size_t step, size_t hi, size_t n) {
  while (hi < n && !d.later_wins(hi)) {
    lo = hi;
    step *= 2;
    hi = lo + step;
  }
  if (hi > n) hi = n;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (d.later_wins(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

// First row r >= s (r < n) where `later` wins, or n if it never does: galloping from s, then
// bisection. The row is within 4 of s ~85 % of the time in weight data.
struct ScalarProbe {
  static size_t first_win_row(const Duel& d, size_t s, size_t n) {
    if (d.later_wins(s)) return s;
    return gallop_from(d, s, 1, s + 1, n);
  }
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CMO_PENALIZED_AVX512 1  // AVX-512 and AVX2 probes, picked at run time

// The row ScalarProbe returns, as an offset from s, for each outcome mask of rows s .. s+W−1
// (bit t: `later` wins at s + t) when n > s + W − 1: the same probes (s, s+1, s+3, s+7, then
// bisection), read from the mask instead of evaluated one by one. W: it still loses at s + W − 1
// (gallop on from there, as the scalar probe would). Exactly the scalar probe's answer, even where
// rounding makes the outcomes non-monotone.
template <unsigned W>
struct GallopTable {
  uint8_t at[1u << W];
  constexpr GallopTable() : at() {
    for (unsigned mask = 0; mask < (1u << W); ++mask) {
      unsigned r = 0;
      if (!(mask & 1u)) {
        unsigned lo = 0, step = 1, hi = 1;
        while (hi < W && !((mask >> hi) & 1u)) {
          lo = hi;
          step *= 2;
          hi = lo + step;
        }
        if (hi >= W) {
          r = W;
        } else {
          while (hi - lo > 1) {
            const unsigned mid = lo + (hi - lo) / 2;
            if ((mask >> mid) & 1u) hi = mid;
            else lo = mid;
          }
          r = hi;
        }
      }
      at[mask] = static_cast<uint8_t>(r);
    }
  }
};
constexpr GallopTable<8> kGallop8{};
constexpr GallopTable<4> kGallop4{};

// Several rows per duel test (one vector compare): a scalar probe sequence costs ~3.5 tests per
// new candidate. Same IEEE operations in the same order per lane as Duel::later_wins (explicit
// multiplies and subtractions, no fusion): same outcomes.
struct Avx512Probe {
  __attribute__((target("avx512f"))) static size_t first_win_row(const Duel& d, size_t s, size_t n) {
    if (s + 8 > n) return ScalarProbe::first_win_row(d, s, n);
    const __m512d cw = _mm512_loadu_pd(d.cw + s + 1), cs = _mm512_loadu_pd(d.cs + s + 1);
    const __m512d w_l = _mm512_sub_pd(cw, _mm512_set1_pd(d.wl)), s_l = _mm512_sub_pd(cs, _mm512_set1_pd(d.sl));
    const __m512d w_e = _mm512_sub_pd(cw, _mm512_set1_pd(d.we)), s_e = _mm512_sub_pd(cs, _mm512_set1_pd(d.se));
    const __m512d lhs = _mm512_mul_pd(_mm512_mul_pd(_mm512_set1_pd(d.k), w_l), w_e);
    const __m512d rhs = _mm512_sub_pd(_mm512_mul_pd(_mm512_mul_pd(s_l, s_l), w_e), _mm512_mul_pd(_mm512_mul_pd(s_e, s_e), w_l));
    const unsigned r = kGallop8.at[static_cast<unsigned>(_mm512_cmp_pd_mask(lhs, rhs, _CMP_LT_OQ))];
    if (r < 8) return s + r;
    return gallop_from(d, s + 7, 8, s + 15, n);
  }
};

struct Avx2Probe {
  __attribute__((target("avx2"))) static size_t first_win_row(const Duel& d, size_t s, size_t n) {
    if (s + 4 > n) return ScalarProbe::first_win_row(d, s, n);
    const __m256d cw = _mm256_loadu_pd(d.cw + s + 1), cs = _mm256_loadu_pd(d.cs + s + 1);
    const __m256d w_l = _mm256_sub_pd(cw, _mm256_set1_pd(d.wl)), s_l = _mm256_sub_pd(cs, _mm256_set1_pd(d.sl));
    const __m256d w_e = _mm256_sub_pd(cw, _mm256_set1_pd(d.we)), s_e = _mm256_sub_pd(cs, _mm256_set1_pd(d.se));
    const __m256d lhs = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(d.k), w_l), w_e);
    const __m256d rhs = _mm256_sub_pd(_mm256_mul_pd(_mm256_mul_pd(s_l, s_l), w_e), _mm256_mul_pd(_mm256_mul_pd(s_e, s_e), w_l));
    const unsigned r = kGallop4.at[static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(lhs, rhs, _CMP_LT_OQ)))];
    if (r < 4) return s + r;
    return gallop_from(d, s + 3, 4, s + 7, n);
  }
};
#endif

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
    // Candidate start j = i (a cluster beginning at value i) joins once best[i] is known.
    const size_t j = i;
    const Later later{ct.cumw[j], ct.cumsum[j], best[j], ct.cumsum2[j]};
    size_t first_win = i;
    while (tail > head) {
      const size_t back = cand[tail - 1];
      const size_t s = from[tail - 1] > i ? from[tail - 1] : i;
      const size_t r = Probe::first_win_row(Duel(ct, best, later, back), s, n);
      if (r == s) {  // j wins from the back's first row on (Monge: for good): drop the back
        --tail;
        continue;
      }
      first_win = r;
      break;
    }
    if (first_win < n) {
      cand[tail] = static_cast<uint32_t>(j);
      from[tail] = static_cast<uint32_t>(first_win);
      ++tail;
    }
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
  double* best = best_.data();
  uint32_t* last = last_.data();
  const PassBuffers buffers{best, last, cand_.data(), from_.data()};
  pass_for(probe_)(ct, n, lambda, buffers);
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
