// Candidate duels of the penalized 1-D k-means pass (kmeans1d_penalized.cc, kmeans1d_streams.cc):
// does a cluster starting at a later value beat one starting at an earlier value, for the prefix
// ending at row i? Shared so that the single-pass and the interleaved-pass engines make the same
// comparisons with the same operations (same bits). Internal to the k-means kernels.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kmeans1d_cost.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

namespace cmo::kernels::duel {

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
      : Duel(ct.cumw.data(), ct.cumsum.data(), ct.cumsum2.data(), best, l, earlier) {}
  Duel(const double* cumw, const double* cumsum, const double* cumsum2, const double* best, const Later& l, size_t earlier)
      : cw(cumw), cs(cumsum), wl(l.w), sl(l.s), we(cw[earlier]), se(cs[earlier]),
        k((l.best - best[earlier]) + (cumsum2[earlier] - l.s2)) {}
  bool later_wins(size_t i) const {
    const double w_l = cw[i + 1] - wl, s_l = cs[i + 1] - sl;
    const double w_e = cw[i + 1] - we, s_e = cs[i + 1] - se;
    return (k * w_l) * w_e < (s_l * s_l) * w_e - (s_e * s_e) * w_l;
  }
};

// Scalar galloping from lo (where `later` loses) with the next probe at hi = lo + step, then
// bisection (Monge: once `later` wins, it keeps winning).
inline size_t gallop_from(const Duel& d, size_t lo, size_t step, size_t hi, size_t n) {
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
inline constexpr GallopTable<8> kGallop8{};
inline constexpr GallopTable<4> kGallop4{};

// Outcome mask of one duel at rows s .. s+7 (bit t: `later` wins at s + t; needs s + 8 <= n): the
// input of kGallop8. The plain loop is the portable version and the oracle of the vector ones.
inline unsigned outcome_mask8_scalar(const Duel& d, size_t s) {
  unsigned m = 0;
  for (unsigned t = 0; t < 8; ++t) m |= static_cast<unsigned>(d.later_wins(s + t)) << t;
  return m;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CMO_PENALIZED_AVX512 1  // AVX-512 and AVX2 probes, picked at run time


// Several rows per duel test (one vector compare): a scalar probe sequence costs ~3.5 tests per
// new candidate. Same IEEE operations in the same order per lane as Duel::later_wins (explicit
// multiplies and subtractions, no fusion): same outcomes.
__attribute__((target("avx512f"))) inline unsigned outcome_mask8_avx512(const Duel& d, size_t s) {
  const __m512d cw = _mm512_loadu_pd(d.cw + s + 1), cs = _mm512_loadu_pd(d.cs + s + 1);
  const __m512d w_l = _mm512_sub_pd(cw, _mm512_set1_pd(d.wl)), s_l = _mm512_sub_pd(cs, _mm512_set1_pd(d.sl));
  const __m512d w_e = _mm512_sub_pd(cw, _mm512_set1_pd(d.we)), s_e = _mm512_sub_pd(cs, _mm512_set1_pd(d.se));
  const __m512d lhs = _mm512_mul_pd(_mm512_mul_pd(_mm512_set1_pd(d.k), w_l), w_e);
  const __m512d rhs = _mm512_sub_pd(_mm512_mul_pd(_mm512_mul_pd(s_l, s_l), w_e), _mm512_mul_pd(_mm512_mul_pd(s_e, s_e), w_l));
  return static_cast<unsigned>(_mm512_cmp_pd_mask(lhs, rhs, _CMP_LT_OQ));
}

__attribute__((target("avx2"))) inline unsigned outcome_mask4_avx2(const Duel& d, size_t s) {
  const __m256d cw = _mm256_loadu_pd(d.cw + s + 1), cs = _mm256_loadu_pd(d.cs + s + 1);
  const __m256d w_l = _mm256_sub_pd(cw, _mm256_set1_pd(d.wl)), s_l = _mm256_sub_pd(cs, _mm256_set1_pd(d.sl));
  const __m256d w_e = _mm256_sub_pd(cw, _mm256_set1_pd(d.we)), s_e = _mm256_sub_pd(cs, _mm256_set1_pd(d.se));
  const __m256d lhs = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(d.k), w_l), w_e);
  const __m256d rhs = _mm256_sub_pd(_mm256_mul_pd(_mm256_mul_pd(s_l, s_l), w_e), _mm256_mul_pd(_mm256_mul_pd(s_e, s_e), w_l));
  return static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(lhs, rhs, _CMP_LT_OQ)));
}

__attribute__((target("avx2"))) inline unsigned outcome_mask8_avx2(const Duel& d, size_t s) {
  return outcome_mask4_avx2(d, s) | (outcome_mask4_avx2(d, s + 4) << 4);
}

struct Avx512Probe {
  __attribute__((target("avx512f"))) static size_t first_win_row(const Duel& d, size_t s, size_t n) {
    if (s + 8 > n) return ScalarProbe::first_win_row(d, s, n);
    const unsigned r = kGallop8.at[outcome_mask8_avx512(d, s)];
    if (r < 8) return s + r;
    return gallop_from(d, s + 7, 8, s + 15, n);
  }
};

struct Avx2Probe {
  __attribute__((target("avx2"))) static size_t first_win_row(const Duel& d, size_t s, size_t n) {
    if (s + 4 > n) return ScalarProbe::first_win_row(d, s, n);
    const unsigned r = kGallop4.at[outcome_mask4_avx2(d, s)];
    if (r < 4) return s + r;
    return gallop_from(d, s + 3, 4, s + 7, n);
  }
};
#endif

// Inserts start i (its sums in `later`) at the back of the deque cand[head, tail) of candidate
// starts, each best from row from[·] on: pops the backs it beats from their first row on (Monge:
// for good), then pushes it with the row where it starts winning (none: it never wins, not pushed).
// The single pass's step and the interleaved passes' rare cases (kmeans1d_streams.cc).
template <class Probe>
inline void insert_candidate(const CostTable& ct, const double* best, uint32_t* cand, uint32_t* from, size_t head,
                             size_t& tail, size_t i, size_t n, const Later& later) {
  size_t first_win = i;
  while (tail > head) {
    const size_t back = cand[tail - 1];
    const size_t s = from[tail - 1] > i ? from[tail - 1] : i;
    const size_t r = Probe::first_win_row(Duel(ct, best, later, back), s, n);
    if (r == s) {
      --tail;
      continue;
    }
    first_win = r;
    break;
  }
  if (first_win < n) {
    cand[tail] = static_cast<uint32_t>(i);
    from[tail] = static_cast<uint32_t>(first_win);
    ++tail;
  }
}

}  // namespace cmo::kernels::duel
