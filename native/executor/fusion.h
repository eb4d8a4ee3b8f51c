// Graph fusion at executor build time: chains of ops that coremltools emits are replaced by one node
// whose kernel makes a single pass (no intermediate tensors):
//   attention        matmul(q, k) → [mul / real_div by a scalar constant] → [add mask] → softmax(last axis)
//                    → matmul(·, v)   (tiled online softmax, ops/attention.h)
//   quick_gelu       mul(h, c) → sigmoid → mul(h, ·)      = h·sigmoid(c·h)
//   gated gelu       gelu(b) → mul(a, ·)                   = a·gelu(b)   (GEGLU)
//   swish            sigmoid(x) → mul(x, ·)                = silu(x)
//   norm + silu      batch_norm → silu                     (group norm's affine tail + activation)
//   group norm       reduce_mean → sub → square → reduce_mean → add eps → sqrt → real_div
//                    (coremltools' GroupNorm lowering: two passes over x instead of seven)
//   channel affine   mul(x, w[1,C,1..]) → add(·, b[1,C,1..]) [→ silu]   (GroupNorm's weight / bias)
// A chain fuses only when every intermediate has exactly one use, by the next op of the chain in the
// same block, and is no block or function output. The fused node keeps the original ops and runs them
// instead when its kernel declines the runtime shapes (OpContext::decline). COREML_OPTIMIZE_FUSION=0
// turns fusion off (tests compare both; benchmarks measure both).
#pragma once
#include <functional>
#include <vector>

#include "graph.h"

namespace cmo::exec {

struct FusionEnv {
  const std::vector<Tensor>& constants;     // by slot; valid where is_const
  const std::vector<char>& is_const;
  const std::vector<TypeDesc>& types;       // declared type of each slot
  std::function<int(Tensor)> add_constant;  // a new constant slot (the fused nodes' parameters)
};

bool fusion_enabled();  // COREML_OPTIMIZE_FUSION unset or not "0" / "off"

// Fuses chains in `main` and every nested block. function_outputs: the slots the function returns.
// Returns the number of chains fused.
int fuse_graph(Block& main, FusionEnv& env);

// Kernels of the fused nodes (not registered as MIL ops).
void fused_activation_kernel(OpContext& c);
void fused_batch_norm_act_kernel(OpContext& c);
void fused_group_norm_kernel(OpContext& c);
void fused_channel_affine_kernel(OpContext& c);

}  // namespace cmo::exec
