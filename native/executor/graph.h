// Executable graph: ops resolved to kernels, values to slots, constants (const and constexpr_*) built
// once at load. Execution walks the (already topologically sorted) ops and frees each intermediate
// after its last use.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "graph_desc.h"
#include "tensor.h"

namespace cmo::exec {

class OpContext;
using Kernel = void (*)(OpContext&);

struct Block;
struct DerivedBudget;

struct Node {
  std::string type;
  std::string name;
  Kernel kernel = nullptr;                                      // null for cond/while_loop
  std::vector<std::pair<std::string, std::vector<int>>> inputs;  // param -> slots
  std::vector<int> outputs;
  std::vector<TypeDesc> output_types;
  std::vector<std::shared_ptr<Block>> blocks;
  std::vector<int> free_after;  // slots whose last use is this node (top-level liveness)
  // A node fused at build time from a chain of ops (fusion.h): the original ops, run in its place
  // when its kernel declines the runtime shapes.
  std::vector<Node> unfused;
};

struct Block {
  std::vector<int> inputs;
  std::vector<int> outputs;
  std::vector<Node> nodes;
};

class Graph;

// What a kernel sees: its resolved inputs (by parameter name) and the outputs it must set.
class OpContext {
 public:
  OpContext(const Node& node, std::vector<std::vector<const Tensor*>> args, int opset_version, unsigned threads)
      : node_(node), args_(std::move(args)), outputs_(node.outputs.size()), opset_(opset_version), threads_(threads) {}

  const Node& node() const { return node_; }
  int opset() const { return opset_; }  // 15 (iOS15) .. 26
  unsigned threads() const { return threads_; }

  bool has(const char* param) const { return find(param) != nullptr; }
  const Tensor* find(const char* param) const;
  const Tensor& in(const char* param) const;
  std::vector<const Tensor*> list(const char* param) const;

  // Scalar / vector parameter helpers; the default is used when the parameter is absent.
  double num(const char* param, double dflt) const;
  double num(const char* param) const;
  bool flag(const char* param, bool dflt) const;
  std::string str(const char* param, const std::string& dflt) const;
  std::vector<int64_t> ints(const char* param) const;
  std::vector<int64_t> ints(const char* param, std::vector<int64_t> dflt) const;

  void set(size_t k, Tensor t);
  std::vector<Tensor>& outputs() { return outputs_; }
  const std::vector<Tensor>& outputs() const { return outputs_; }
  // Resolved inputs in the node's parameter order (profiling: shapes for FLOP / byte counts).
  const std::vector<std::vector<const Tensor*>>& args() const { return args_; }
  size_t num_outputs() const { return outputs_.size(); }
  const TypeDesc& output_type(size_t k) const { return node_.output_types.at(k); }

  // An error whose message names the op.
  [[noreturn]] void fail(const std::string& msg) const;

  // A fused node's kernel: these inputs do not fit the fused path; run the original ops instead.
  void decline() { declined_ = true; }
  bool declined() const { return declined_; }

 private:
  const Node& node_;
  std::vector<std::vector<const Tensor*>> args_;
  std::vector<Tensor> outputs_;
  int opset_;
  unsigned threads_;
  bool declined_ = false;
};

// Kernel registry: each ops/*.cc file has a register_*_ops function listed in registry.cc.
void register_kernel(const std::string& type, Kernel kernel);
Kernel find_kernel(const std::string& type);
std::vector<std::string> supported_ops();  // includes const, constexpr_*, cond, while_loop

struct RunOptions {
  unsigned threads = 0;  // 0 = pool size
  std::function<void(double, double)> progress;
  std::function<void()> check_cancelled;
  // Called after each kernel op (not cond / while_loop themselves: their inner ops report) with its
  // context, outputs still in place, and its wall time in milliseconds (profiling; null = off).
  std::function<void(const Node&, const OpContext&, double)> profile;
  // fp16 compute, as Core ML runs an ML Program on a Mac's GPU / Neural Engine: inputs, fp32 weights
  // and every op's float output are rounded to fp16 (round to nearest even); kernels still compute in
  // fp32 in between, so each op is one fp16 rounding of the fp32 result.
  bool fp16_compute = false;
  // Called after each kernel op, before its inputs are released (calibration reads activations here;
  // null = off).
  std::function<void(const Node&, const OpContext&)> observe;
};

struct FeatureValue {
  std::string name;
  Tensor tensor;
};

class Graph {
 public:
  // Builds the graph; throws cmo::Error("EUNSUPPORTED", ...) naming the op type, op name and
  // function/block for an op without a kernel, and cmo::Error("EMODELFORMAT"/"EWEIGHTS", ...) for
  // malformed programs or weights.
  static std::shared_ptr<Graph> build(const GraphDesc& desc);

  // Runs the main block. Inputs are matched by name; returns the block outputs in order.
  std::vector<FeatureValue> run(const std::vector<FeatureValue>& inputs, const RunOptions& opts) const;

  const std::vector<NamedType>& inputs() const { return input_types_; }
  const std::vector<std::string>& output_names() const { return output_names_; }
  const std::vector<TypeDesc>& output_types() const { return output_types_; }
  int opset_version() const { return opset_; }
  // The pool the runs recycle buffers through: callers copying inputs in draw from it too (BufferPool::Scope),
  // so a predict's input copies land on pages already faulted in rather than fresh ones.
  BufferPool* buffer_pool() const { return pool_.get(); }

  // State-typed function inputs (iOS18 stateful models) are not fed by the caller: the graph keeps
  // one cell per state, zero-initialised, carried from one run to the next (runs of a stateful
  // graph are serialised). A caller may still pass a tensor under the state's name to set it.
  bool has_state() const { return !state_cells_.empty(); }
  void reset_state() const;

  // Bytes the weight caches hold now (see CacheLimits) and their limits after defaults.
  struct CacheStats {
    size_t widen = 0, pack = 0, derived = 0, pool = 0;
    size_t widen_limit = 0, pack_limit = 0, derived_limit = 0, pool_limit = 0;
  };
  CacheStats cache_stats() const;

 private:
  friend class GraphBuilder;
  void run_block(const Block& block, std::vector<Tensor>& env, std::vector<char>& live, const RunOptions& opts,
                 bool top_level) const;
  void run_node(const Node& node, std::vector<Tensor>& env, std::vector<char>& live, const RunOptions& opts) const;

  std::string function_;
  int opset_ = 15;
  std::vector<NamedType> input_types_;
  std::vector<int> input_slots_;
  std::vector<std::string> output_names_;
  std::vector<TypeDesc> output_types_;
  std::vector<std::string> slot_names_;
  std::vector<Tensor> constants_;    // indexed by slot; valid where is_const_
  // constants_ with fp16 weights widened to fp32 once (not per call), up to a memory budget
  // (COREML_OPTIMIZE_WIDEN_MB, default 2048 MiB of fp32); beyond it the rest stay halves and are
  // widened per op as before, so a multi-GB fp16 model is not doubled in memory.
  const std::vector<Tensor>& widened_constants() const;
  mutable std::once_flag widened_once_;
  mutable std::vector<Tensor> widened_constants_;
  const std::vector<Tensor>& fp16_constants() const;  // widened constants with fp32 values rounded to fp16 (built once)
  mutable std::once_flag fp16_once_;
  mutable std::vector<Tensor> fp16_constants_;
  // Derived forms of constants (Winograd weights), one budget per graph: see derived_cache.h.
  void attach_derived_caches(std::vector<Tensor>& constants) const;
  mutable std::once_flag derived_budget_once_;
  mutable std::shared_ptr<DerivedBudget> derived_budget_;
  CacheLimits limits_;            // as given; resolved by the *_limit() helpers in graph.cc
  mutable size_t widen_used_ = 0;  // set once by widened_constants()
  size_t pack_used_ = 0;
  std::vector<char> is_const_;
  std::vector<char> const_used_;  // by slot: read by some node (constants nobody reads are not widened)
  Block main_;
  std::shared_ptr<BufferPool> pool_;  // intermediates recycled across ops and runs
  std::vector<std::shared_ptr<StateCell>> state_cells_;  // per input; null for tensor inputs
  std::shared_ptr<std::mutex> state_mutex_ = std::make_shared<std::mutex>();
};

// Converts a constant description (immediate or blob) into a runtime tensor. Blob files are
// memory-mapped and cached per path by the caller-provided loader.
class BlobCache;
Tensor value_to_tensor(const ValueDesc& v, const std::string& model_dir, BlobCache* cache);

// MIL dtype name -> compute dtype (fp* -> F32, int*/uint* -> I32, bool, string).
DType compute_dtype(const std::string& mil_dtype);

}  // namespace cmo::exec
