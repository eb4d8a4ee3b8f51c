// A constexpr chain as a weight-stream entry describes it (parsed on the JS thread): the chain's
// ops in order, each parameter an input record (`source`: index into the entry's sources, with its
// shape), an immediate ({dtype, shape, bytes} in the unpacked layout) or an earlier op's output
// (`ref`: [op, output]). Shared by the "decompress" and "prune_compressed" transforms.
#pragma once
#include <napi.h>

#include <string>
#include <utility>
#include <vector>

#include "../kernels/decompress.h"
#include "../stream/weight_stream.h"

namespace cmo::addon {

struct ChainParam {
  enum class Kind { Source, Immediate, Ref } kind = Kind::Source;
  size_t source = 0;
  std::vector<int64_t> shape;
  kernels::Tensor immediate;
  size_t op = 0, output = 0;
};

struct ChainOp {
  std::string type;
  std::string name;
  std::vector<std::pair<std::string, ChainParam>> params;
};

struct ChainSpec {
  std::vector<ChainOp> ops;
  kernels::Opset opset = kernels::Opset::IOS18;
  size_t result_op = 0, result_output = 0;
};

// Reads `ops`, `opset`, `resultOp`, `resultOutput` of a JS entry.
ChainSpec parse_chain(const Napi::Object& o);
// Materializes the chain's result (kernels::decompress_op op by op).
kernels::Tensor run_chain(const ChainSpec& chain, const std::vector<stream::Source>& sources);

}  // namespace cmo::addon
