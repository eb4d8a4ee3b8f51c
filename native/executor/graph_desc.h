// Plain C++ mirror of the graph description that src/runtime/executor.ts lowers a MIL program into.
// The addon fills it on the JS thread; Graph::build turns it into an executable graph once.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tensor.h"

namespace cmo::exec {

// A constant: inline (immediate) data or a reference into a weight blob file.
struct ValueDesc {
  enum class Encoding { Floats, Ints, Doubles, Bools, Bytes, Strings, Blob };
  std::string dtype;  // MIL dtype name: fp16, fp32, int32, uint4, bool, string, ...
  Shape shape;
  Encoding encoding = Encoding::Floats;
  std::vector<uint8_t> bytes;  // Floats: f32 LE; Ints: i32 LE; Doubles: f64 LE; Bools: u8; Bytes: raw
  std::vector<std::string> strings;
  std::string blob_file;  // as written in the program ("@model_path/weights/weight.bin")
  uint64_t blob_offset = 0;
};

struct TypeDesc {
  std::string dtype;  // MIL dtype name, or "list"/"tuple"/"dict"/"state" for non-tensors
  Shape shape;        // -1 = unknown dimension
  bool rank_known = true;
  std::string elem_dtype = {};  // "state"/"list": the wrapped (element) tensor's dtype; shape is its shape
};

struct NamedType {
  std::string name;
  TypeDesc type;
};

struct BindingDesc {
  bool is_name = true;
  std::string name;
  ValueDesc value;
};

struct BlockDesc;

struct OpDesc {
  std::string type;
  std::string name;
  std::vector<std::pair<std::string, std::vector<BindingDesc>>> inputs;
  std::vector<std::pair<std::string, ValueDesc>> attributes;  // without "name"
  std::vector<NamedType> outputs;
  std::vector<BlockDesc> blocks;
};

struct BlockDesc {
  std::vector<NamedType> inputs;
  std::vector<std::string> outputs;
  std::vector<OpDesc> ops;
};

// Byte limits of a graph's weight caches; -1 = the default (or its COREML_OPTIMIZE_*_MB variable).
// A graph run only a few times (the layerwise SparseGPT driver's capture sub-programs) gets small
// ones carved out of its caller's memory budget: each cache only saves per-call work.
struct CacheLimits {
  int64_t widen = -1;    // fp16 constants widened to fp32 once (COREML_OPTIMIZE_WIDEN_MB, 2048)
  int64_t pack = -1;     // transposed linear weights (COREML_OPTIMIZE_PACK_MB, 2048)
  int64_t derived = -1;  // Winograd / packed conv weights, DerivedCache (COREML_OPTIMIZE_DERIVED_MB, 1024)
  int64_t pool = -1;     // idle intermediate buffers kept between ops and runs (BufferPool, 1024)
};

struct GraphDesc {
  std::string function = "main";
  std::string opset;      // "CoreML5".."CoreML9"; selects op semantics that changed (reshape, gather)
  std::string model_dir;  // replaces "@model_path" in blob file names
  std::vector<NamedType> inputs;
  BlockDesc block;
  CacheLimits cache_limits;
};

}  // namespace cmo::exec
