#include "graph.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

#include "../util/error.h"
#include "../util/fp16.h"
#include "../linalg/blas.h"
#include "../linalg/sgemm_kernels.h"
#include "../blob/storage_reader.h"
#include "derived_cache.h"
#include "fusion.h"
#include "ops/gemm.h"
#include "registry.h"

namespace cmo::exec {

// ---------------------------------------------------------------------------------------------
// OpContext

const Tensor* OpContext::find(const char* param) const {
  for (size_t k = 0; k < node_.inputs.size(); ++k)
    if (node_.inputs[k].first == param) return args_[k].empty() ? nullptr : args_[k][0];
  return nullptr;
}

const Tensor& OpContext::in(const char* param) const {
  const Tensor* t = find(param);
  if (!t) fail(std::string("required input '") + param + "' is missing");
  return *t;
}

std::vector<const Tensor*> OpContext::list(const char* param) const {
  for (size_t k = 0; k < node_.inputs.size(); ++k)
    if (node_.inputs[k].first == param) return args_[k];
  return {};
}

double OpContext::num(const char* param, double dflt) const {
  const Tensor* t = find(param);
  if (!t) return dflt;
  if (t->size() != 1) fail(std::string("input '") + param + "' must be a scalar, got shape " + shape_str(t->shape));
  return t->at(0);
}

double OpContext::num(const char* param) const {
  const Tensor& t = in(param);
  if (t.size() != 1) fail(std::string("input '") + param + "' must be a scalar, got shape " + shape_str(t.shape));
  return t.at(0);
}

bool OpContext::flag(const char* param, bool dflt) const { return has(param) ? num(param) != 0 : dflt; }

std::string OpContext::str(const char* param, const std::string& dflt) const {
  const Tensor* t = find(param);
  if (!t) return dflt;
  if (t->dtype != DType::Str || t->s->size() != 1) fail(std::string("input '") + param + "' must be a string");
  return (*t->s)[0];
}

std::vector<int64_t> OpContext::ints(const char* param) const {
  const Tensor& t = in(param);
  std::vector<int64_t> out(static_cast<size_t>(t.size()));
  for (int64_t k = 0; k < t.size(); ++k) out[static_cast<size_t>(k)] = static_cast<int64_t>(t.at(k));
  return out;
}

std::vector<int64_t> OpContext::ints(const char* param, std::vector<int64_t> dflt) const {
  return has(param) ? ints(param) : dflt;
}

void OpContext::set(size_t k, Tensor t) {
  if (k >= outputs_.size()) fail("kernel produced more outputs than the op declares");
  outputs_[k] = std::move(t);
}

void OpContext::fail(const std::string& msg) const {
  throw Error("EINVAL", "op '" + node_.name + "' (" + node_.type + "): " + msg);
}

// ---------------------------------------------------------------------------------------------
// Registry

namespace {
std::unordered_map<std::string, Kernel>& raw_kernels() {
  static std::unordered_map<std::string, Kernel> map;
  return map;
}
}  // namespace

void register_kernel(const std::string& type, Kernel kernel) { raw_kernels()[type] = kernel; }

Kernel find_kernel(const std::string& type) {
  static std::once_flag once;
  std::call_once(once, [] { register_all_ops(); });
  auto& m = raw_kernels();
  auto it = m.find(type);
  return it == m.end() ? nullptr : it->second;
}

std::vector<std::string> supported_ops() {
  find_kernel("const");
  std::vector<std::string> out{"const", "cond", "while_loop"};
  for (auto& kv : raw_kernels()) out.push_back(kv.first);
  std::sort(out.begin(), out.end());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Constants

DType compute_dtype(const std::string& d) {
  if (d == "fp16" || d == "fp32" || d == "fp64" || d == "bf16" || d == "fp8e4m3" || d == "fp8e5m2") return DType::F32;
  if (d == "bool") return DType::Bool;
  if (d == "string") return DType::Str;
  return DType::I32;
}

// Weight files opened while building one graph (validated by the blob layer's StorageReader).
class BlobCache {
 public:
  // Shared so that zero-copy fp32 constants can keep their mapping alive.
  const std::shared_ptr<blob::StorageReader>& open(const std::string& path) {
    auto it = files_.find(path);
    if (it == files_.end()) it = files_.emplace(path, std::make_shared<blob::StorageReader>(path)).first;
    return it->second;
  }

 private:
  std::map<std::string, std::shared_ptr<blob::StorageReader>> files_;
};

namespace {

int sub_byte_bits(const std::string& d) {
  if (d == "uint1") return 1;
  if (d == "uint2") return 2;
  if (d == "uint3") return 3;
  if (d == "int4" || d == "uint4") return 4;
  if (d == "uint6") return 6;
  return 0;
}

int byte_width(const std::string& d) {
  if (d == "fp32" || d == "int32" || d == "uint32") return 4;
  if (d == "fp16" || d == "bf16" || d == "int16" || d == "uint16") return 2;
  if (d == "int8" || d == "uint8" || d == "bool" || d == "fp8e4m3" || d == "fp8e5m2") return 1;
  if (d == "fp64" || d == "int64" || d == "uint64") return 8;
  return 0;
}

uint32_t blob_code(const std::string& d) {
  static const std::map<std::string, uint32_t> codes = {
      {"fp16", 1}, {"fp32", 2}, {"uint8", 3}, {"int8", 4}, {"bf16", 5}, {"int16", 6}, {"uint16", 7}, {"int4", 8},
      {"uint1", 9}, {"uint2", 10}, {"uint4", 11}, {"uint3", 12}, {"uint6", 13}, {"int32", 14}, {"uint32", 15},
      {"fp8e4m3", 16}, {"fp8e5m2", 17}};
  auto it = codes.find(d);
  return it == codes.end() ? 0 : it->second;
}

float bf16_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Decodes `count` elements of MIL dtype `d` stored raw (little-endian, sub-byte LSB-first).
Tensor decode_raw(const std::string& d, const uint8_t* p, size_t nbytes, const Shape& shape, const std::string& what) {
  int64_t n = numel(shape);
  int bits = sub_byte_bits(d);
  size_t need = bits ? static_cast<size_t>((n * bits + 7) / 8) : static_cast<size_t>(n) * byte_width(d);
  if (!bits && byte_width(d) == 0) throw Error("EMODELFORMAT", what + ": dtype " + d + " cannot be stored as raw bytes");
  if (nbytes < need)
    throw Error("EMODELFORMAT", what + ": " + std::to_string(nbytes) + " bytes hold fewer than the " + std::to_string(n) +
                                    " " + d + " elements of shape " + shape_str(shape));
  DType ct = compute_dtype(d);
  // Dispatch on the dtype once, outside the element loops (weights can be billions of elements).
  auto each = [n](auto&& f) {
    for (int64_t k = 0; k < n; ++k) f(k);
  };
  if (ct == DType::F32) {
    Tensor t = Tensor::f32(shape);
    float* o = t.fdata();
    if (d == "fp32") std::memcpy(o, p, static_cast<size_t>(n) * 4);
    else if (d == "fp16") each([&](int64_t k) { uint16_t h; std::memcpy(&h, p + 2 * k, 2); o[k] = half_to_float(h); });
    else if (d == "bf16") each([&](int64_t k) { uint16_t h; std::memcpy(&h, p + 2 * k, 2); o[k] = bf16_to_float(h); });
    else if (d == "fp64") each([&](int64_t k) { double v; std::memcpy(&v, p + 8 * k, 8); o[k] = static_cast<float>(v); });
    else throw Error("EUNSUPPORTED", what + ": dtype " + d + " is not supported");
    t.declared = d;
    return t;
  }
  Tensor t = ct == DType::Bool ? Tensor::boolean(shape) : Tensor::i32(shape);
  int32_t* o = t.idata();
  if (bits) {
    const bool sign = d == "int4";
    each([&](int64_t k) {
      uint64_t bit = static_cast<uint64_t>(k) * bits;
      uint32_t v = 0;
      for (int b = 0; b < bits; ++b, ++bit) v |= ((p[bit >> 3] >> (bit & 7)) & 1u) << b;
      o[k] = sign ? (static_cast<int32_t>(v << 28) >> 28) : static_cast<int32_t>(v);
    });
  } else if (d == "int8") each([&](int64_t k) { o[k] = static_cast<int8_t>(p[k]); });
  else if (d == "uint8" || d == "bool") each([&](int64_t k) { o[k] = p[k]; });
  else if (d == "int16") each([&](int64_t k) { int16_t v; std::memcpy(&v, p + 2 * k, 2); o[k] = v; });
  else if (d == "uint16") each([&](int64_t k) { uint16_t v; std::memcpy(&v, p + 2 * k, 2); o[k] = v; });
  else if (d == "int32" || d == "uint32") std::memcpy(o, p, static_cast<size_t>(n) * 4);
  else if (d == "int64" || d == "uint64") each([&](int64_t k) { int64_t v; std::memcpy(&v, p + 8 * k, 8); o[k] = static_cast<int32_t>(v); });
  else throw Error("EUNSUPPORTED", what + ": dtype " + d + " is not supported");
  if (ct == DType::Bool)
    for (int64_t k = 0; k < n; ++k) o[k] = o[k] != 0;
  t.declared = d;
  return t;
}

}  // namespace

Tensor value_to_tensor(const ValueDesc& v, const std::string& model_dir, BlobCache* cache) {
  const std::string what = "constant of type " + v.dtype + shape_str(v.shape);
  for (int64_t d : v.shape)
    if (d < 0) throw Error("EMODELFORMAT", what + ": constants need a fully known shape");
  int64_t n = numel(v.shape);
  using E = ValueDesc::Encoding;
  switch (v.encoding) {
    case E::Strings:
      if (static_cast<int64_t>(v.strings.size()) != n) throw Error("EMODELFORMAT", what + ": wrong number of strings");
      return Tensor::str(v.strings, v.shape);
    case E::Floats:
    case E::Ints:
    case E::Doubles:
    case E::Bools: {
      size_t w = v.encoding == E::Doubles ? 8 : v.encoding == E::Bools ? 1 : 4;
      if (v.bytes.size() != static_cast<size_t>(n) * w)
        throw Error("EMODELFORMAT", what + ": holds " + std::to_string(v.bytes.size() / w) + " values, the shape needs " +
                                        std::to_string(n));
      DType ct = compute_dtype(v.dtype);
      Tensor t = ct == DType::F32 ? Tensor::f32(v.shape) : ct == DType::Bool ? Tensor::boolean(v.shape) : Tensor::i32(v.shape);
      if (ct == DType::Str) throw Error("EMODELFORMAT", what + ": numbers given for a string value");
      for (int64_t k = 0; k < n; ++k) {
        double x;
        if (v.encoding == E::Floats) { float f; std::memcpy(&f, &v.bytes[4 * k], 4); x = f; }
        else if (v.encoding == E::Ints) { int32_t i; std::memcpy(&i, &v.bytes[4 * k], 4); x = i; }
        else if (v.encoding == E::Doubles) std::memcpy(&x, &v.bytes[8 * k], 8);
        else x = v.bytes[k] != 0;
        if (ct == DType::F32) t.fdata()[k] = static_cast<float>(x);
        else t.idata()[k] = ct == DType::Bool ? (x != 0) : static_cast<int32_t>(x);
      }
      t.declared = v.dtype;
      return t;
    }
    case E::Bytes:
      return decode_raw(v.dtype, v.bytes.data(), v.bytes.size(), v.shape, what);
    case E::Blob: {
      if (!cache) throw Error("EWEIGHTS", what + ": blob value without a weight file");
      std::string path = v.blob_file;
      const std::string prefix = "@model_path";
      if (path.rfind(prefix, 0) == 0) path = model_dir + path.substr(prefix.size());
      const std::shared_ptr<blob::StorageReader>& reader_ptr = cache->open(path);
      const blob::StorageReader& reader = *reader_ptr;
      blob::Record rec = reader.record(v.blob_offset);
      if (static_cast<uint32_t>(rec.dtype) != blob_code(v.dtype))
        throw Error("EWEIGHTS", path + ": blob at offset " + std::to_string(v.blob_offset) + " has dtype " +
                                    blob::dtype_name(rec.dtype) + ", the program declares " + v.dtype);
      const uint8_t* data = reader.data(rec);
      if (v.dtype == "fp32" && rec.size_in_bytes >= static_cast<uint64_t>(numel(v.shape)) * 4 &&
          reinterpret_cast<uintptr_t>(data) % alignof(float) == 0) {
        // fp32 weights are used in place: a read-only view into the mapping, no copy.
        Tensor t;
        t.dtype = DType::F32;
        t.shape = v.shape;
        t.declared = "fp32";
        t.f = std::shared_ptr<float>(reader_ptr, const_cast<float*>(reinterpret_cast<const float*>(data)));
        return t;
      }
      if (v.dtype == "fp16" && rec.size_in_bytes >= static_cast<uint64_t>(numel(v.shape)) * 2 &&
          reinterpret_cast<uintptr_t>(data) % alignof(uint16_t) == 0) {
        // fp16 weights stay halves in the mapping; each op converts what it uses (see run_node).
        Tensor t;
        t.dtype = DType::F32;
        t.shape = v.shape;
        t.declared = "fp16";
        t.h = std::shared_ptr<const uint16_t>(reader_ptr, reinterpret_cast<const uint16_t*>(data));
        return t;
      }
      return decode_raw(v.dtype, data, static_cast<size_t>(rec.size_in_bytes), v.shape,
                        path + " blob at " + std::to_string(v.blob_offset));
    }
  }
  throw Error("EMODELFORMAT", what + ": unknown value encoding");
}

// ---------------------------------------------------------------------------------------------
// Weight cache limits: the description's, else the environment's, else the default (MiB).

namespace {
size_t limit_of(int64_t given, const char* env_name, size_t default_mb) {
  if (given >= 0) return static_cast<size_t>(given);
  size_t mb = default_mb;
  if (const char* env = env_name ? std::getenv(env_name) : nullptr) mb = static_cast<size_t>(std::strtoull(env, nullptr, 10));
  return mb << 20;
}
size_t widen_limit(const CacheLimits& l) { return limit_of(l.widen, "COREML_OPTIMIZE_WIDEN_MB", 2048); }
size_t pack_limit(const CacheLimits& l) { return limit_of(l.pack, "COREML_OPTIMIZE_PACK_MB", 2048); }
size_t derived_limit(const CacheLimits& l) { return limit_of(l.derived, "COREML_OPTIMIZE_DERIVED_MB", 1024); }
size_t pool_limit(const CacheLimits& l) { return limit_of(l.pool, nullptr, 1024); }
}  // namespace

// ---------------------------------------------------------------------------------------------
// Builder

class GraphBuilder {
 public:
  GraphBuilder(Graph& g, const GraphDesc& d) : g_(g), d_(d) {}

  void build() {
    g_.function_ = d_.function;
    g_.opset_ = opset_version(d_.opset);
    g_.input_types_ = d_.inputs;
    for (const auto& in : d_.inputs) {
      g_.input_slots_.push_back(define(in.name, "function '" + d_.function + "' inputs", in.type));
      std::shared_ptr<StateCell> cell;
      if (in.type.dtype == "state") {
        // ---- states (iOS18): one cell per state input, zero-initialised (see Graph::reset_state)
        for (int64_t dim : in.type.shape)
          if (dim < 0 || !in.type.rank_known)
            throw Error("EMODELFORMAT", "function '" + d_.function + "' state '" + in.name + "' needs a fully known shape");
        cell = std::make_shared<StateCell>();
        cell->dtype = in.type.elem_dtype.empty() ? "fp32" : in.type.elem_dtype;
        cell->shape = in.type.shape;
      }
      g_.state_cells_.push_back(std::move(cell));
    }
    g_.reset_state();
    build_block(d_.block, g_.main_, "function '" + d_.function + "'");
    for (const auto& name : d_.block.outputs) g_.output_names_.push_back(name);
    for (int slot : g_.main_.outputs) g_.output_types_.push_back(slot_types_[slot]);
    if (fusion_enabled()) {
      FusionEnv env{g_.constants_, g_.is_const_, slot_types_, [this](Tensor t) { return const_slot(std::move(t)); }};
      fuse_graph(g_.main_, env);
    }
    prepare_linear_weights(g_.main_);
    g_.const_used_.assign(g_.is_const_.size(), 0);
    mark_used(g_.main_);
    compute_liveness();
  }

 private:
  static int opset_version(const std::string& opset) {
    // "CoreML5" -> iOS15, "CoreML6" -> iOS16, ...; "CoreML9" -> iOS26.
    if (opset.rfind("CoreML", 0) == 0) {
      int v = std::atoi(opset.c_str() + 6);
      if (v >= 9) return 26;
      if (v >= 5) return v + 10;
    }
    return 18;
  }

  int define(const std::string& name, const std::string& where, const TypeDesc& type = {}) {
    if (scope_.count(name)) throw Error("EMODELFORMAT", where + ": value '" + name + "' is defined twice");
    int slot = new_slot(name, type);
    scope_[name] = slot;
    return slot;
  }

  int new_slot(const std::string& name, const TypeDesc& type) {
    g_.slot_names_.push_back(name);
    g_.constants_.emplace_back();
    g_.is_const_.push_back(0);
    slot_types_.push_back(type);
    return static_cast<int>(g_.slot_names_.size()) - 1;
  }

  int const_slot(Tensor t) {
    int slot = new_slot("<inline constant>", {});
    g_.constants_[slot] = std::move(t);
    g_.is_const_[slot] = 1;
    return slot;
  }

  static bool is_constexpr(const std::string& type) { return type.rfind("constexpr_", 0) == 0; }

  void build_block(const BlockDesc& bd, Block& block, const std::string& where) {
    for (const auto& in : bd.inputs) block.inputs.push_back(define(in.name, where + " block inputs", in.type));
    for (const auto& od : bd.ops) {
      const std::string op_where = "op '" + od.name + "' (" + od.type + ") in " + where;
      if (od.type == "const") {
        const ValueDesc* val = nullptr;
        for (const auto& a : od.attributes)
          if (a.first == "val") val = &a.second;
        if (!val) throw Error("EMODELFORMAT", op_where + ": const without a 'val' attribute");
        if (od.outputs.size() != 1) throw Error("EMODELFORMAT", op_where + ": const must have one output");
        Tensor t = wrap(op_where, [&] { return value_to_tensor(*val, d_.model_dir, &blobs_); });
        int slot = define(od.outputs[0].name, op_where, od.outputs[0].type);
        g_.constants_[slot] = std::move(t);
        g_.is_const_[slot] = 1;
        continue;
      }
      Node node;
      node.type = od.type;
      node.name = od.name;
      if (od.type != "cond" && od.type != "while_loop") {
        node.kernel = find_kernel(od.type);
        if (!node.kernel)
          throw Error("EUNSUPPORTED", "op type '" + od.type + "' (op '" + od.name + "' in " + where +
                                          ") is not supported by the reference executor");
      }
      // Non-const ops may carry parameters as attributes in hand-written programs; treat them as inputs.
      for (const auto& a : od.attributes) {
        Tensor t = wrap(op_where, [&] { return value_to_tensor(a.second, d_.model_dir, &blobs_); });
        node.inputs.push_back({a.first, {const_slot(std::move(t))}});
      }
      for (const auto& in : od.inputs) {
        std::vector<int> slots;
        for (const auto& b : in.second) {
          if (b.is_name) {
            auto it = scope_.find(b.name);
            if (it == scope_.end())
              throw Error("EMODELFORMAT", op_where + ": input '" + in.first + "' refers to undefined value '" + b.name + "'");
            slots.push_back(it->second);
          } else {
            slots.push_back(const_slot(wrap(op_where, [&] { return value_to_tensor(b.value, d_.model_dir, &blobs_); })));
          }
        }
        node.inputs.push_back({in.first, std::move(slots)});
      }
      for (size_t k = 0; k < od.blocks.size(); ++k) {
        auto nested = std::make_shared<Block>();
        build_block(od.blocks[k], *nested, op_where + " block " + std::to_string(k));
        node.blocks.push_back(std::move(nested));
      }
      for (const auto& o : od.outputs) {
        node.outputs.push_back(define(o.name, op_where, o.type));
        node.output_types.push_back(o.type);
      }
      if (is_constexpr(od.type)) {
        materialize(node, op_where);
        continue;
      }
      block.nodes.push_back(std::move(node));
    }
    for (const auto& name : bd.outputs) {
      auto it = scope_.find(name);
      if (it == scope_.end()) throw Error("EMODELFORMAT", where + ": block output '" + name + "' is not defined");
      block.outputs.push_back(it->second);
    }
  }

  template <class F>
  Tensor wrap(const std::string& where, F&& f) {
    try {
      return f();
    } catch (const Error& e) {
      throw Error(e.code(), where + ": " + e.what());
    }
  }

  // constexpr_* ops run once here; their outputs become constants.
  void materialize(const Node& node, const std::string& where) {
    std::vector<std::vector<const Tensor*>> args;
    for (const auto& in : node.inputs) {
      std::vector<const Tensor*> a;
      for (int s : in.second) {
        if (!g_.is_const_[s]) throw Error("EMODELFORMAT", where + ": input '" + in.first + "' is not a constant");
        a.push_back(&g_.constants_[s]);
      }
      args.push_back(std::move(a));
    }
    OpContext ctx(node, std::move(args), g_.opset_, 0);
    node.kernel(ctx);
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      Tensor& t = ctx.outputs()[k];
      if (!t.produced()) throw Error("EINVAL", where + ": output " + std::to_string(k) + " was not produced");
      t.declared = node.output_types[k].dtype;
      g_.constants_[node.outputs[k]] = std::move(t);
      g_.is_const_[node.outputs[k]] = 1;
    }
  }

  // linear's constant weights [D_out, D_in] are prepared once per executor, within COREML_OPTIMIZE_PACK_MB
  // (default 2048) MiB of fp32; the rest keep the plain path (packed per call):
  //  - when the executor's GEMM is the portable one: packed in its B-panel layout (input "weight_packed",
  //    shape [D_in, D_out rounded up to the kernel's NR], plus "weight_packed_n" = D_out), so a call packs
  //    only the activations. Packing is a permutation plus zero padding, so fp16 compute's elementwise
  //    rounding of the constants (fp16_constants) keeps it valid.
  //  - with a system BLAS: transposed ([D_in, D_out], input "weight_t"): the BLAS then packs with row copies
  //    instead of a scalar gather (measured 1.5-2x on 77-row products).
  void prepare_linear_weights(Block& b) {
    const bool pack = linalg::executor_prefers_portable_gemm();
    const linalg::detail::GemmKernel& kern = linalg::detail::best_kernel();
    for (Node& n : b.nodes) {
      for (auto& nb : n.blocks) prepare_linear_weights(*nb);
      if (n.type != "linear") continue;
      int n_slot = -1;
      for (auto& in : n.inputs) {
        if (in.first != "weight" || in.second.size() != 1 || !g_.is_const_[in.second[0]]) continue;
        const int slot = in.second[0];
        auto done = prepared_.find(slot);
        if (done == prepared_.end()) {
          const Tensor& w = g_.constants_[slot];
          if (w.dtype != DType::F32 || w.rank() != 2 || (!w.f && !w.h)) break;
          const int64_t rows = w.shape[0], cols = w.shape[1];  // D_out, D_in
          const size_t floats = pack ? linalg::packed_b_floats(kern, cols, rows) : static_cast<size_t>(w.size());
          if (g_.pack_used_ + floats * 4 > pack_limit(d_.cache_limits)) break;
          g_.pack_used_ += floats * 4;
          BufferPool::Scope no_pool(nullptr);  // kept for the graph's lifetime
          const Tensor wf = as_f32(w);
          Tensor t;
          if (pack) {
            // op(B) = Wᵀ [D_in × D_out]: W read as a transposed B.
            t = Tensor::f32({cols, static_cast<int64_t>(floats) / std::max<int64_t>(cols, 1)});
            if (floats > 0) linalg::pack_b_full(kern, true, cols, rows, wf.fdata(), cols, t.fdata());
          } else {
            t = Tensor::f32({cols, rows});
            const float* src = wf.fdata();
            float* dst = t.fdata();
            constexpr int64_t kTile = 32;  // cache-blocked transpose
            for (int64_t r0 = 0; r0 < rows; r0 += kTile)
              for (int64_t c0 = 0; c0 < cols; c0 += kTile)
                for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
                  for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) dst[c * rows + r] = src[r * cols + c];
          }
          t.declared = w.declared;
          const int data_slot = const_slot(std::move(t));
          const int dout_slot = pack ? const_slot(Tensor::scalar_i32(static_cast<int32_t>(rows))) : -1;
          done = prepared_.emplace(slot, std::make_pair(data_slot, dout_slot)).first;
        }
        in.first = done->second.second >= 0 ? "weight_packed" : "weight_t";
        in.second[0] = done->second.first;
        n_slot = done->second.second;
        break;
      }
      if (n_slot >= 0) n.inputs.push_back({"weight_packed_n", {n_slot}});  // after the loop: push_back moves `in`
    }
  }
  // Constants some node (or a fused node's original ops) reads: only those are widened from fp16.
  void mark_used(const Block& b) {
    for (const Node& n : b.nodes) {
      for (const auto& in : n.inputs)
        for (int s : in.second) g_.const_used_[static_cast<size_t>(s)] = 1;
      for (const auto& nb : n.blocks) mark_used(*nb);
      Block orig;
      orig.nodes = n.unfused;
      if (!orig.nodes.empty()) mark_used(orig);
    }
    for (int s : b.outputs) g_.const_used_[static_cast<size_t>(s)] = 1;
  }

  static void collect_uses(const Block& b, std::vector<int>& uses) {
    for (const auto& n : b.nodes) {
      for (const auto& in : n.inputs) uses.insert(uses.end(), in.second.begin(), in.second.end());
      for (const auto& nb : n.blocks) {
        collect_uses(*nb, uses);
        uses.insert(uses.end(), nb->outputs.begin(), nb->outputs.end());
      }
    }
  }

  void compute_liveness() {
    std::vector<int> last(g_.slot_names_.size(), -1);
    auto& nodes = g_.main_.nodes;
    for (size_t k = 0; k < nodes.size(); ++k) {
      std::vector<int> uses;
      for (const auto& in : nodes[k].inputs) uses.insert(uses.end(), in.second.begin(), in.second.end());
      for (const auto& nb : nodes[k].blocks) {
        collect_uses(*nb, uses);
        uses.insert(uses.end(), nb->outputs.begin(), nb->outputs.end());
      }
      for (int s : uses) last[s] = static_cast<int>(k);
      for (int s : nodes[k].outputs) last[s] = std::max(last[s], static_cast<int>(k));
    }
    for (int s : g_.main_.outputs) last[s] = -2;  // kept to the end
    for (size_t s = 0; s < last.size(); ++s)
      if (last[s] >= 0 && !g_.is_const_[s]) nodes[static_cast<size_t>(last[s])].free_after.push_back(static_cast<int>(s));
  }

  Graph& g_;
  const GraphDesc& d_;
  std::unordered_map<std::string, int> scope_;
  std::vector<TypeDesc> slot_types_;
  BlobCache blobs_;
  std::unordered_map<int, std::pair<int, int>> prepared_;  // weight slot -> its packed / transposed copy's slot, D_out's slot (-1: transposed)
};

Graph::CacheStats Graph::cache_stats() const {
  CacheStats st;
  st.widen_limit = widen_limit(limits_);
  st.pack_limit = pack_limit(limits_);
  st.derived_limit = derived_limit(limits_);
  st.pool_limit = pool_limit(limits_);
  st.widen = widen_used_;  // written inside widened_constants()'s call_once, before any run returns
  st.pack = pack_used_;
  if (derived_budget_) {
    std::lock_guard<std::mutex> lock(derived_budget_->mutex);
    st.derived = st.derived_limit - std::min(st.derived_limit, derived_budget_->left);
  }
  st.pool = pool_->pooled_bytes();
  return st;
}

std::shared_ptr<Graph> Graph::build(const GraphDesc& desc) {
  use_single_threaded_blas();
  auto g = std::make_shared<Graph>();
  g->limits_ = desc.cache_limits;
  g->pool_ = std::make_shared<BufferPool>(pool_limit(desc.cache_limits));
  GraphBuilder(*g, desc).build();
  return g;
}

// ---------------------------------------------------------------------------------------------
// Execution

namespace {

// Rounds fp32 values to the nearest fp16 (ties to even), in place.
void round_to_fp16(float* p, int64_t n) {
  for (int64_t k = 0; k < n; ++k) p[k] = half_to_float(float_to_half(p[k]));
}

// An owned fp16-rounded copy of an fp32 tensor (fp16-backed tensors are exact halves already).
Tensor fp16_copy(const Tensor& t) {
  if (t.dtype != DType::F32 || !t.f) return t;
  Tensor r = Tensor::f32(t.shape);
  std::copy(t.fdata(), t.fdata() + t.size(), r.fdata());
  round_to_fp16(r.fdata(), r.size());
  r.declared = t.declared;
  return r;
}

}  // namespace

void Graph::run_node(const Node& node, std::vector<Tensor>& env, std::vector<char>& live, const RunOptions& opts) const {
  auto value = [&](int s) -> const Tensor& {
    if (!live[s]) throw Error("EINVAL", "op '" + node.name + "' (" + node.type + "): value '" + slot_names_[s] + "' is not available");
    return env[s];
  };
  if (node.type == "cond") {
    const Tensor* pred = nullptr;
    for (const auto& in : node.inputs)
      if (in.first == "pred" && !in.second.empty()) pred = &value(in.second[0]);
    if (!pred || pred->size() != 1 || node.blocks.size() != 2)
      throw Error("EINVAL", "op '" + node.name + "' (cond): needs a scalar 'pred' and two blocks");
    const Block& b = *node.blocks[pred->at(0) != 0 ? 0 : 1];
    run_block(b, env, live, opts, false);
    if (b.outputs.size() != node.outputs.size())
      throw Error("EINVAL", "op '" + node.name + "' (cond): branch returns " + std::to_string(b.outputs.size()) + " values");
    for (size_t k = 0; k < b.outputs.size(); ++k) {
      Tensor t = value(b.outputs[k]);
      env[node.outputs[k]] = std::move(t);
      live[node.outputs[k]] = 1;
    }
    return;
  }
  if (node.type == "while_loop") {
    std::vector<Tensor> vars;
    for (const auto& in : node.inputs)
      if (in.first == "loop_vars")
        for (int s : in.second) vars.push_back(value(s));
    if (node.blocks.size() != 2) throw Error("EINVAL", "op '" + node.name + "' (while_loop): needs a cond and a body block");
    const Block& cb = *node.blocks[0];
    const Block& bb = *node.blocks[1];
    if (cb.inputs.size() != vars.size() || bb.inputs.size() != vars.size() || bb.outputs.size() != vars.size() ||
        node.outputs.size() != vars.size() || cb.outputs.size() != 1)
      throw Error("EINVAL", "op '" + node.name + "' (while_loop): loop variables and block inputs/outputs disagree");
    for (int64_t iter = 0;; ++iter) {
      if (opts.check_cancelled) opts.check_cancelled();
      for (size_t k = 0; k < vars.size(); ++k) env[cb.inputs[k]] = vars[k], live[cb.inputs[k]] = 1;
      run_block(cb, env, live, opts, false);
      if (value(cb.outputs[0]).at(0) == 0) break;
      for (size_t k = 0; k < vars.size(); ++k) env[bb.inputs[k]] = vars[k], live[bb.inputs[k]] = 1;
      run_block(bb, env, live, opts, false);
      for (size_t k = 0; k < vars.size(); ++k) vars[k] = value(bb.outputs[k]);
    }
    for (size_t k = 0; k < vars.size(); ++k) env[node.outputs[k]] = std::move(vars[k]), live[node.outputs[k]] = 1;
    return;
  }
  // A fused node's original ops, then their intermediates go: when its kernel declines the runtime
  // shapes, and under fp16 compute (each original op's output is one fp16 rounding, as Core ML does it).
  auto run_unfused = [&] {
    for (const Node& sub : node.unfused) run_node(sub, env, live, opts);
    for (size_t k = 0; k + 1 < node.unfused.size(); ++k)
      for (int s : node.unfused[k].outputs) env[s] = Tensor(), live[s] = 0;
  };
  if (opts.fp16_compute && !node.unfused.empty()) {
    run_unfused();
    return;
  }
  const auto t0 = opts.profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  std::vector<std::vector<const Tensor*>> args;
  args.reserve(node.inputs.size());
  std::deque<Tensor> widened;  // fp32 copies of fp16-backed constants, alive for this op only
  for (const auto& in : node.inputs) {
    std::vector<const Tensor*> a;
    for (int s : in.second) {
      const Tensor& t = value(s);
      if (t.is_half_backed()) {
        widened.push_back(as_f32(t));  // deque: earlier pointers stay valid
        widened.back().derived = t.derived;  // same values: what was derived from them still holds
        a.push_back(&widened.back());
      } else {
        a.push_back(&t);
      }
    }
    args.push_back(std::move(a));
  }
  OpContext ctx(node, std::move(args), opset_, opts.threads);
  node.kernel(ctx);
  if (ctx.declined()) {
    widened.clear();
    run_unfused();
    return;
  }
  if (opts.observe) opts.observe(node, ctx);
  if (opts.fp16_compute) {
    for (Tensor& t : ctx.outputs()) {
      if (t.dtype != DType::F32 || !t.f) continue;
      // Outputs that share an input's buffer (reshape, identity) hold rounded values already, and
      // that buffer may be a shared constant: leave it alone.
      bool aliased = false;
      for (const auto& a : ctx.args())
        for (const Tensor* in : a) aliased = aliased || (in && in->f && in->f.get() == t.f.get());
      if (!aliased) round_to_fp16(t.fdata(), t.size());
    }
  }
  if (opts.profile)
    opts.profile(node, ctx, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  for (size_t k = 0; k < node.outputs.size(); ++k) {
    Tensor& t = ctx.outputs()[k];
    if (!t.produced())
      throw Error("EINVAL", "op '" + node.name + "' (" + node.type + "): output " + std::to_string(k) + " was not produced");
    t.declared = node.output_types[k].dtype;
    env[node.outputs[k]] = std::move(t);
    live[node.outputs[k]] = 1;
  }
}

// One DerivedCache per float constant (fp32 or still fp16-backed), all on the graph's budget.
void Graph::attach_derived_caches(std::vector<Tensor>& constants) const {
  std::call_once(derived_budget_once_, [this] {
    derived_budget_ = std::make_shared<DerivedBudget>(derived_limit(limits_));
  });
  for (Tensor& t : constants)
    if (t.dtype == DType::F32 && (t.f || t.h) && !t.derived) t.derived = std::make_shared<DerivedCache>(derived_budget_);
}

const std::vector<Tensor>& Graph::widened_constants() const {
  std::call_once(widened_once_, [this] {
    BufferPool::Scope no_pool(nullptr);  // kept for the graph's lifetime: plain allocations, not the run's pool
    const size_t budget = widen_limit(limits_);
    widened_constants_ = constants_;
    size_t used = 0;
    for (size_t k = 0; k < widened_constants_.size(); ++k) {
      Tensor& t = widened_constants_[k];
      if (!t.is_half_backed() || !const_used_[k]) continue;  // unused: e.g. a linear weight replaced by its transposed copy
      const size_t bytes = static_cast<size_t>(t.size()) * 4;
      if (used + bytes > budget) continue;
      used += bytes;
      Tensor w = as_f32(t);
      w.declared = t.declared;
      t = std::move(w);
    }
    widen_used_ = used;
    attach_derived_caches(widened_constants_);
  });
  return widened_constants_;
}

const std::vector<Tensor>& Graph::fp16_constants() const {
  std::call_once(fp16_once_, [this] {
    BufferPool::Scope no_pool(nullptr);
    const std::vector<Tensor>& base = widened_constants();
    fp16_constants_.reserve(base.size());
    // fp16_copy makes fresh tensors (no cache) of rounded fp32 values; the fp16-backed ones it returns
    // as they are, cache included (rounding does not change their values).
    for (const Tensor& t : base) fp16_constants_.push_back(fp16_copy(t));
    attach_derived_caches(fp16_constants_);
  });
  return fp16_constants_;
}

void Graph::run_block(const Block& block, std::vector<Tensor>& env, std::vector<char>& live, const RunOptions& opts,
                      bool top_level) const {
  const size_t n = block.nodes.size();
  for (size_t k = 0; k < n; ++k) {
    if (opts.check_cancelled) opts.check_cancelled();
    const Node& node = block.nodes[k];
    run_node(node, env, live, opts);
    if (top_level) {
      for (int s : node.free_after) {
        env[s] = Tensor();
        live[s] = 0;
      }
      if (opts.progress) opts.progress(static_cast<double>(k + 1), static_cast<double>(n));
    }
  }
}

void Graph::reset_state() const {
  std::lock_guard<std::mutex> lock(*state_mutex_);
  for (const auto& cell : state_cells_) {
    if (!cell) continue;
    DType ct = compute_dtype(cell->dtype);
    Tensor zero = ct == DType::F32 ? Tensor::f32(cell->shape) : ct == DType::Bool ? Tensor::boolean(cell->shape)
                                                                                 : Tensor::i32(cell->shape);
    zero.declared = cell->dtype;
    cell->value = std::move(zero);
  }
}

std::vector<FeatureValue> Graph::run(const std::vector<FeatureValue>& inputs, const RunOptions& opts) const {
  std::unique_lock<std::mutex> state_lock(*state_mutex_, std::defer_lock);
  if (has_state()) state_lock.lock();  // a stateful graph's runs read and write the same cells
  BufferPool::Scope pool_scope(pool_.get());
  std::vector<Tensor> env = opts.fp16_compute ? fp16_constants() : widened_constants();
  std::vector<char> live = is_const_;
  for (size_t k = 0; k < input_types_.size(); ++k) {
    const FeatureValue* fv = nullptr;
    for (const auto& in : inputs)
      if (in.name == input_types_[k].name) fv = &in;
    if (const auto& cell = state_cells_[k]) {
      if (fv) {  // the caller sets the state's content
        if (fv->tensor.shape != cell->shape)
          throw Error("EINVAL", "state '" + input_types_[k].name + "' has shape " + shape_str(cell->shape) + ", got " +
                                    shape_str(fv->tensor.shape));
        cell->value = compute_dtype(cell->dtype) == DType::F32 ? as_f32(fv->tensor) : as_i32(fv->tensor);
        if (compute_dtype(cell->dtype) == DType::Bool) cell->value.dtype = DType::Bool;
        cell->value.declared = cell->dtype;
      }
      Tensor handle;
      handle.shape = cell->shape;
      handle.state = cell;
      handle.declared = "state";
      env[input_slots_[k]] = std::move(handle);
      live[input_slots_[k]] = 1;
      continue;
    }
    if (!fv) throw Error("EINVAL", "missing input '" + input_types_[k].name + "' of function '" + function_ + "'");
    env[input_slots_[k]] = opts.fp16_compute ? fp16_copy(fv->tensor) : fv->tensor;
    live[input_slots_[k]] = 1;
  }
  for (const auto& in : inputs) {
    bool known = false;
    for (const auto& t : input_types_) known = known || t.name == in.name;
    if (!known) throw Error("EINVAL", "unknown input '" + in.name + "' (function '" + function_ + "' has no such input)");
  }
  run_block(main_, env, live, opts, true);
  std::vector<FeatureValue> out;
  for (size_t k = 0; k < main_.outputs.size(); ++k) {
    int s = main_.outputs[k];
    if (!live[s]) throw Error("EINVAL", "output '" + output_names_[k] + "' was not computed");
    if (env[s].list || env[s].state)  // lists and states live inside the program; outputs are tensors
      throw Error("EUNSUPPORTED", "output '" + output_names_[k] + "' is a " + (env[s].list ? "list" : "state") +
                                      " value; function outputs must be tensors");
    out.push_back({output_names_[k], env[s]});
  }
  return out;
}

}  // namespace cmo::exec
