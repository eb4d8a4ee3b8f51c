#include "kmeans1d_streams.h"

#include "kmeans1d_duel.h"

namespace cmo::kernels {

namespace {

using namespace duel;

// Keeps a value opaque to the optimizer: without it GCC turns the arithmetic select below back into
// branches, which mispredict as often as the loop it replaces.
#if defined(__GNUC__) || defined(__clang__)
#define CMO_OPAQUE(x) asm("" : "+r"(x))
#else
#define CMO_OPAQUE(x) (void)0
#endif

// The single pass's insertion (kmeans1d_duel.h), for the rare cases.
template <class Probe>
inline void insert_general(PenalizedStream& st, const Later& later) {
  insert_candidate<Probe>(*st.ct, st.best, st.cand, st.from, st.head, st.tail, st.i, st.n, later);
}

// Each mask kind with its probe's insertion for the rare cases, kept out of line (inlined into the
// interleaved loop it made the common path slower) but compiled for the same target.
struct MaskScalar {
  static unsigned mask8(const Duel& d, size_t s) { return outcome_mask8_scalar(d, s); }
  __attribute__((noinline)) static void insert(PenalizedStream& st, const Later& later) {
    insert_general<ScalarProbe>(st, later);
  }
};
#ifdef CMO_PENALIZED_AVX512
struct MaskAvx2 {
  __attribute__((target("avx2"))) static unsigned mask8(const Duel& d, size_t s) { return outcome_mask8_avx2(d, s); }
  __attribute__((target("avx2"), noinline)) static void insert(PenalizedStream& st, const Later& later) {
    insert_general<Avx2Probe>(st, later);
  }
};
struct MaskAvx512 {
  __attribute__((target("avx512f"))) static unsigned mask8(const Duel& d, size_t s) { return outcome_mask8_avx512(d, s); }
  __attribute__((target("avx512f"), noinline)) static void insert(PenalizedStream& st, const Later& later) {
    insert_general<Avx512Probe>(st, later);
  }
};
#endif

template <class M>
inline void step(PenalizedStream& st) {
  const size_t i = st.i, n = st.n;
  const double* best = st.best;
  uint32_t* cand = st.cand;
  uint32_t* from = st.from;
  const double *cw = st.cw, *cs = st.cs, *cs2 = st.cs2;
  const Later later{cw[i], cs[i], best[i], cs2[i]};
  const size_t tail = st.tail;
  bool inserted = false;
  if (tail - st.head >= 2) {
    const size_t s1 = from[tail - 1] > i ? from[tail - 1] : i;
    const size_t s2 = from[tail - 2] > i ? from[tail - 2] : i;  // <= s1
    if (s1 + 8 <= n) {
      const size_t r1 = kGallop8.at[M::mask8(Duel(cw, cs, cs2, best, later, cand[tail - 1]), s1)];
      const size_t r2 = kGallop8.at[M::mask8(Duel(cw, cs, cs2, best, later, cand[tail - 2]), s2)];
      // r1 == 0: the back loses from its first row on and is popped; the answer is then the duel
      // with the one before it, exactly as the loop would have gone on.
      const size_t pop = r1 == 0, keep_second = 0 - pop;
      size_t r = r1 ^ ((r1 ^ r2) & keep_second);
      size_t s = s1 ^ ((s1 ^ s2) & keep_second);
      CMO_OPAQUE(r);
      CMO_OPAQUE(s);
      if (r - 1 < 7) {  // 1..7: wins within the tested rows
        const size_t t = tail - pop;
        cand[t] = static_cast<uint32_t>(i);
        from[t] = static_cast<uint32_t>(s + r);
        st.tail = t + 1;
        inserted = true;
      } else if (r == 0) {  // both backs lose from their first rows on: pop both, go on as the loop would
        st.tail = tail - 2;
      } else {  // r == 8: still losing at s + 7, gallop on from there as the probe would
        const Duel d(cw, cs, cs2, best, later, cand[tail - 1 - pop]);
        const size_t first_win = gallop_from(d, s + 7, 8, s + 15, n);
        st.tail = tail - pop;
        if (first_win < n) {
          cand[st.tail] = static_cast<uint32_t>(i);
          from[st.tail] = static_cast<uint32_t>(first_win);
          ++st.tail;
        }
        inserted = true;
      }
    }
  }
  if (!inserted) M::insert(st, later);
  // Front hand-over: one step without a branch, more (rare) in a loop.
  size_t head = st.head;
  head += static_cast<size_t>(st.tail - head > 1) & static_cast<size_t>(from[head + 1] <= i);
  while (st.tail - head > 1 && from[head + 1] <= i) ++head;
  st.head = head;
  const size_t start = cand[head];
  st.best[i + 1] = (st.best[start] + CostTable::cost(cw, cs, cs2, start, i)) + st.lambda;
  st.last[i + 1] = static_cast<uint32_t>(start);
  st.i = i + 1;
}

template <class M, size_t S>
inline void rounds(PenalizedStream* st, size_t steps) {
  for (size_t t = 0; t < steps; ++t)
    for (size_t q = 0; q < S; ++q) step<M>(st[q]);
}

template <class M>
inline void dispatch(PenalizedStream* st, size_t count, size_t steps) {
  switch (count) {
    case 1: rounds<M, 1>(st, steps); break;
    case 2: rounds<M, 2>(st, steps); break;
    case 3: rounds<M, 3>(st, steps); break;
    default: rounds<M, 4>(st, steps); break;
  }
}

void advance_scalar(PenalizedStream* st, size_t count, size_t steps) { dispatch<MaskScalar>(st, count, steps); }
#ifdef CMO_PENALIZED_AVX512
// flatten: the target-specific masks can only be inlined into functions of the same target.
__attribute__((target("avx2"), flatten)) void advance_avx2(PenalizedStream* st, size_t count, size_t steps) {
  dispatch<MaskAvx2>(st, count, steps);
}
__attribute__((target("avx512f"), flatten)) void advance_avx512(PenalizedStream* st, size_t count, size_t steps) {
  dispatch<MaskAvx512>(st, count, steps);
}

struct Cpu {
  bool avx2 = false, avx512 = false;
  Cpu() {
    __builtin_cpu_init();
    avx2 = __builtin_cpu_supports("avx2") != 0;
    avx512 = __builtin_cpu_supports("avx512f") != 0;
  }
};
const Cpu& cpu() {
  static const Cpu c;
  return c;
}
#endif

}  // namespace

bool penalized_stream_isa_supported(StreamIsa isa) {
#ifdef CMO_PENALIZED_AVX512
  if (isa == StreamIsa::kAvx512) return cpu().avx512;
  if (isa == StreamIsa::kAvx2) return cpu().avx2;
#else
  if (isa == StreamIsa::kAvx512 || isa == StreamIsa::kAvx2) return false;
#endif
  return true;
}

bool penalized_streams_preferred() {
#ifdef CMO_PENALIZED_AVX512
  return cpu().avx512 || cpu().avx2;
#else
  return false;
#endif
}

void advance_penalized_streams(PenalizedStream* streams, size_t count, size_t steps, StreamIsa isa) {
  void (*advance)(PenalizedStream*, size_t, size_t) = &advance_scalar;
#ifdef CMO_PENALIZED_AVX512
  if ((isa == StreamIsa::kWidest || isa == StreamIsa::kAvx512) && cpu().avx512) advance = &advance_avx512;
  else if ((isa == StreamIsa::kWidest || isa == StreamIsa::kAvx2) && cpu().avx2) advance = &advance_avx2;
#endif
  (void)isa;
  for (size_t off = 0; off < count; off += kMaxPenalizedStreams)
    advance(streams + off, count - off < kMaxPenalizedStreams ? count - off : kMaxPenalizedStreams, steps);
}

}  // namespace cmo::kernels
