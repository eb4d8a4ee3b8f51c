// Per-op cost for `predict --profile`: floating-point operations of the GEMM-like ops and the bytes
// each op reads and writes, summed per op type. FLOPs count a multiply-add as 2 (the GFLOP/s column
// is then comparable with a GEMM peak); ops whose work is not a GEMM report 0 FLOPs.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graph.h"

namespace cmo::exec {

struct OpCost {
  double flops = 0;  // 2 per multiply-add of conv / conv_transpose / linear / matmul / einsum / sdpa
  double bytes = 0;  // every input and output tensor once (4 bytes per element, 2 for fp16 weights)
};

// Cost of one executed op, from its resolved inputs and produced outputs.
OpCost op_cost(const Node& node, const OpContext& ctx);

struct ProfileRow {
  std::string type;
  int64_t calls = 0;
  double ms = 0, flops = 0, bytes = 0;
};

// Accumulates op_cost and times per op type over one or more runs.
class Profiler {
 public:
  void add(const Node& node, const OpContext& ctx, double ms);
  // Rows sorted by total time, largest first.
  std::vector<ProfileRow> rows() const;

 private:
  std::map<std::string, ProfileRow> by_type_;
};

}  // namespace cmo::exec
