// Several penalized passes (kmeans1d_penalized.h) over different problems, advanced in lockstep:
// one value of each per round.
//
// Why: a single pass is one chain of dependent steps — the new start's duel with the deque's back
// decides whether the back is popped, which decides the next duel — and that decision is a coin
// toss (0 or 1 pops, ~47 % each), so the CPU mispredicts it about once per value and waits for the
// chain every time. Here the common case (0 or 1 pop, the first winning row within 8 rows: ~93 %)
// is decided without a branch: the duels with the back and the one before it are both computed
// and the outcome is selected arithmetically. The chain is still there, so four independent passes
// are interleaved to fill the core. The rare cases take the single pass's own code path.
//
// Same duels, same rows, same arithmetic as PenalizedDp::solve: the best/last arrays are identical
// (tested), so a batch of problems gets exactly the answers one-by-one solving gives.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kmeans1d_cost.h"

namespace cmo::kernels {

// One pass in progress: prefix optima best[0..i] and last starts last[1..i] of values [0, i).
struct PenalizedStream {
  const CostTable* ct = nullptr;
  const double* cw = nullptr;   // ct's prefix sums, held here: one load less per use in the loop
  const double* cs = nullptr;
  const double* cs2 = nullptr;
  size_t n = 0;
  double lambda = 0;
  double* best = nullptr;    // n + 1 entries
  uint32_t* last = nullptr;  // n + 1 entries
  uint32_t* cand = nullptr;  // n + 1 entries (the deque of candidate starts)
  uint32_t* from = nullptr;  // n + 1 entries (first row each candidate wins)
  size_t i = 0, head = 0, tail = 0;

  // Starts a pass over ct's n values with penalty lambda (buffers set by the caller).
  void start(const CostTable& table, size_t values, double penalty) {
    ct = &table;
    cw = table.cumw.data();
    cs = table.cumsum.data();
    cs2 = table.cumsum2.data();
    n = values;
    lambda = penalty;
    best[0] = 0;
    i = head = tail = 0;
  }
  size_t remaining() const { return n - i; }
};

constexpr size_t kMaxPenalizedStreams = 4;

// Outcome masks of the duels: the widest the CPU has (default), or one kind (tests compare them).
enum class StreamIsa { kWidest, kScalar, kAvx2, kAvx512 };
bool penalized_stream_isa_supported(StreamIsa isa);

// Advances streams[0..count) by `steps` values each (kMaxPenalizedStreams at a time); every stream
// must have at least `steps` values left.
void advance_penalized_streams(PenalizedStream* streams, size_t count, size_t steps,
                               StreamIsa isa = StreamIsa::kWidest);

// Whether interleaving pays on this CPU (it does where the duels are vector compares).
bool penalized_streams_preferred();

}  // namespace cmo::kernels
