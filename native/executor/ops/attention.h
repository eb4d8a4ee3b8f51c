// Attention softmax(scale · Q·Kᵀ + mask)·V computed in tiles (flash-attention style): each task owns
// a block of query rows of one batch entry and walks the keys in blocks, keeping a running row max and
// sum (online softmax) and rescaling its partial output, so only one [rows × key block] tile of the
// score matrix ever exists. Used by scaled_dot_product_attention and by the matmul → [mul/real_div
// scale] → [add mask] → softmax → matmul chains coremltools emits (fused at graph build, fusion.h).
#pragma once
#include <string>

#include "../graph.h"
#include "../tensor.h"

namespace cmo::exec {

struct AttentionInputs {
  const Tensor* q = nullptr;     // [qb..., L, E] fp32
  const Tensor* k = nullptr;     // [kb..., S, E], or [kb..., E, S] when k_transposed
  const Tensor* v = nullptr;     // [vb..., S, Ev], or [vb..., Ev, S] when v_transposed
  const Tensor* mask = nullptr;  // optional; broadcasts to the scores [batch..., L, S]; fp32 (added) or bool (keep where true) or int (added)
  bool k_transposed = false;
  bool v_transposed = false;
  float scale = 1.f;
  // A row whose every score is -inf: SDPA's convention gives a zero row; softmax (exp / sum = 0/0)
  // gives NaN, which the fused matmul-softmax-matmul chain must reproduce.
  bool masked_rows_zero = false;
};

// Why the inputs cannot be computed as attention ("" when they can): ranks, inner sizes, batch axes
// that do not broadcast, a mask that does not broadcast to the scores without enlarging them.
std::string attention_problem(const AttentionInputs& in);

// The output [batch..., L, Ev]; throws cmo::Error EINVAL (prefixed by `what`) on attention_problem.
// key_block: keys per tile (tests pass small values to exercise the online rescaling).
Tensor attention(const AttentionInputs& in, const std::string& what, unsigned threads, int64_t key_block = 256);

// Plain reference (the test oracle): the whole score matrix, double accumulation, no tiling.
Tensor attention_reference(const AttentionInputs& in, const std::string& what);

// The kernel of a graph node fused from a matmul-softmax-matmul chain (fusion.cc): inputs query, key,
// value, optional attn_mask, constants scale / key_transposed / value_transposed. It declines (the
// graph then runs the original ops) when attention_problem finds the runtime shapes unfit.
void fused_attention_kernel(OpContext& c);

}  // namespace cmo::exec
