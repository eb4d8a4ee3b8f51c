// "decompress" entries of compressWeights: materialize one constexpr chain (kernels/decompress, the
// op semantics of spec §4.1/§4.2) into one dense blob of the chain's output dtype, so the chain can
// be replaced by a plain const. The entry lists the chain's ops in order; each parameter is an
// input record (`source`: index into the entry's sources), an immediate ({dtype, shape, bytes},
// unpacked layout) or the output of an earlier op of the chain (`ref`: [op, output]).
#include "../kernels/decompress.h"
#include "compress_entries.h"
#include "compress_sources.h"

namespace cmo::addon {

namespace {

struct ParamSpec {
  enum class Kind { Source, Immediate, Ref } kind = Kind::Source;
  size_t source = 0;
  std::vector<int64_t> shape;
  kernels::Tensor immediate;
  size_t op = 0, output = 0;
};

struct OpSpec {
  std::string type;
  std::string name;
  std::vector<std::pair<std::string, ParamSpec>> params;
};

struct DecompressEntry {
  std::vector<OpSpec> ops;
  kernels::Opset opset = kernels::Opset::IOS18;
  size_t result_op = 0, result_output = 0;
};

stream::TransformOutput run(const DecompressEntry& e, const std::vector<stream::Source>& sources) {
  std::vector<SourceTensor> inputs;
  inputs.reserve(sources.size());
  std::vector<std::vector<kernels::Tensor>> produced(e.ops.size());
  for (size_t i = 0; i < e.ops.size(); ++i) {
    const OpSpec& op = e.ops[i];
    kernels::ParamMap params;
    std::vector<SourceTensor> views;
    views.reserve(op.params.size());
    for (const auto& [key, p] : op.params) {
      switch (p.kind) {
        case ParamSpec::Kind::Source:
          if (p.source >= sources.size()) throw Error("EINVAL", "decompress: " + op.name + "." + key + " names a missing source");
          views.push_back(source_tensor(sources[p.source], p.shape, (op.name + "." + key).c_str()));
          params[key] = views.back().view;
          break;
        case ParamSpec::Kind::Immediate: params[key] = p.immediate.view(); break;
        case ParamSpec::Kind::Ref:
          if (p.op >= i || p.output >= produced[p.op].size()) throw Error("EINVAL", "decompress: " + op.name + "." + key + " refers to a later op");
          params[key] = produced[p.op][p.output].view();
          break;
      }
    }
    produced[i] = kernels::decompress_op(op.type, e.opset, params, op.name);
  }
  if (e.result_op >= produced.size() || e.result_output >= produced[e.result_op].size())
    throw Error("EINVAL", "decompress: the result refers to a missing output");
  stream::TransformOutput out;
  const kernels::Tensor& t = produced[e.result_op][e.result_output];
  out.blobs.push_back(blob_of(t, false));
  out.info.push_back({"shape", dims_of(t.shape)});
  return out;
}

stream::Transform parse(const Napi::Object& o, const std::shared_ptr<CancelToken>&) {
  auto e = std::make_shared<DecompressEntry>();
  e->opset = get_string(o, "opset", "ios18") == "ios16" ? kernels::Opset::IOS16 : kernels::Opset::IOS18;
  Napi::Value ops_v = o.Get("ops");
  if (!ops_v.IsArray()) throw Napi::TypeError::New(o.Env(), "decompress entry: ops must be an array");
  Napi::Array ops = ops_v.As<Napi::Array>();
  for (uint32_t i = 0; i < ops.Length(); ++i) {
    Napi::Object jo = ops.Get(i).As<Napi::Object>();
    OpSpec op;
    op.type = get_string(jo, "type", "");
    op.name = get_string(jo, "name", op.type);
    Napi::Value pv = jo.Get("params");
    if (!pv.IsObject()) throw Napi::TypeError::New(o.Env(), "decompress entry: op params must be an object");
    Napi::Object po = pv.As<Napi::Object>();
    Napi::Array keys = po.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); ++k) {
      const std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
      Napi::Object spec = po.Get(key).As<Napi::Object>();
      ParamSpec p;
      if (spec.Has("source")) {
        p.kind = ParamSpec::Kind::Source;
        p.source = static_cast<size_t>(get_int(spec, "source", 0));
        p.shape = get_shape(spec, "shape");
      } else if (spec.Has("ref")) {
        p.kind = ParamSpec::Kind::Ref;
        Napi::Array r = spec.Get("ref").As<Napi::Array>();
        p.op = static_cast<size_t>(r.Get(0u).As<Napi::Number>().Int64Value());
        p.output = static_cast<size_t>(r.Get(1u).As<Napi::Number>().Int64Value());
      } else {
        p.kind = ParamSpec::Kind::Immediate;
        const auto dtype = kernels::dtype_from_name(get_string(spec, "dtype", ""));
        p.immediate = kernels::Tensor(dtype, get_shape(spec, "shape"));
        Napi::Value bv = spec.Get("bytes");
        if (!bv.IsTypedArray()) throw Napi::TypeError::New(o.Env(), "decompress entry: immediate bytes must be a Uint8Array");
        Napi::Uint8Array b = bv.As<Napi::Uint8Array>();
        if (b.ByteLength() != p.immediate.bytes.size())
          throw Napi::TypeError::New(o.Env(), "decompress entry: immediate " + key + " of " + op.name + " has the wrong byte length");
        std::copy(b.Data(), b.Data() + b.ByteLength(), p.immediate.bytes.begin());
      }
      op.params.emplace_back(key, std::move(p));
    }
    e->ops.push_back(std::move(op));
  }
  e->result_op = static_cast<size_t>(get_int(o, "resultOp", static_cast<int64_t>(e->ops.size()) - 1));
  e->result_output = static_cast<size_t>(get_int(o, "resultOutput", 0));
  const std::string name = get_string(o, "name", "");
  return [e, name](const std::vector<stream::Source>& sources) { return named_transform(name, [&] { return run(*e, sources); }); };
}

}  // namespace

CMO_COMPRESS_ENTRY(decompress, parse);

}  // namespace cmo::addon
