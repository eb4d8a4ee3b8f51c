// "decompress" entries of compressWeights: materialize one constexpr chain (kernels/decompress, the
// op semantics of spec §4.1/§4.2) into one dense blob of the chain's output dtype, so the chain can
// be replaced by a plain const. The entry lists the chain's ops in order; each parameter is an
// input record (`source`: index into the entry's sources), an immediate ({dtype, shape, bytes},
// unpacked layout) or the output of an earlier op of the chain (`ref`: [op, output]).
#include "../kernels/decompress.h"
#include "compress_chain.h"
#include "compress_entries.h"
#include "compress_sources.h"

namespace cmo::addon {

namespace {

struct DecompressEntry {
  ChainSpec chain;
};

stream::TransformOutput run(const DecompressEntry& e, const std::vector<stream::Source>& sources) {
  stream::TransformOutput out;
  kernels::Tensor t = run_chain(e.chain, sources);
  out.info.push_back({"shape", dims_of(t.shape)});
  out.blobs.push_back(blob_of(t, false));
  return out;
}

stream::Transform parse(const Napi::Object& o, const std::shared_ptr<CancelToken>&) {
  auto e = std::make_shared<DecompressEntry>();
  e->chain = parse_chain(o);
  const std::string name = get_string(o, "name", "");
  return [e, name](const std::vector<stream::Source>& sources) { return named_transform(name, [&] { return run(*e, sources); }); };
}

}  // namespace


kernels::Tensor run_chain(const ChainSpec& e, const std::vector<stream::Source>& sources) {
  std::vector<std::vector<kernels::Tensor>> produced(e.ops.size());
  for (size_t i = 0; i < e.ops.size(); ++i) {
    const ChainOp& op = e.ops[i];
    kernels::ParamMap params;
    std::vector<SourceTensor> views;
    views.reserve(op.params.size());
    for (const auto& [key, p] : op.params) {
      switch (p.kind) {
        case ChainParam::Kind::Source:
          if (p.source >= sources.size()) throw Error("EINVAL", "decompress: " + op.name + "." + key + " names a missing source");
          views.push_back(source_tensor(sources[p.source], p.shape, (op.name + "." + key).c_str()));
          params[key] = views.back().view;
          break;
        case ChainParam::Kind::Immediate: params[key] = p.immediate.view(); break;
        case ChainParam::Kind::Ref:
          if (p.op >= i || p.output >= produced[p.op].size()) throw Error("EINVAL", "decompress: " + op.name + "." + key + " refers to a later op");
          params[key] = produced[p.op][p.output].view();
          break;
      }
    }
    produced[i] = kernels::decompress_op(op.type, e.opset, params, op.name);
  }
  if (e.result_op >= produced.size() || e.result_output >= produced[e.result_op].size())
    throw Error("EINVAL", "decompress: the result refers to a missing output");
  return std::move(produced[e.result_op][e.result_output]);
}

ChainSpec parse_chain(const Napi::Object& o) {
  ChainSpec e;
  e.opset = get_string(o, "opset", "ios18") == "ios16" ? kernels::Opset::IOS16 : kernels::Opset::IOS18;
  Napi::Value ops_v = o.Get("ops");
  if (!ops_v.IsArray()) throw Napi::TypeError::New(o.Env(), "chain entry: ops must be an array");
  Napi::Array ops = ops_v.As<Napi::Array>();
  for (uint32_t i = 0; i < ops.Length(); ++i) {
    Napi::Value ov = ops.Get(i);
    if (!ov.IsObject()) throw Napi::TypeError::New(o.Env(), "chain entry: each op must be an object");
    Napi::Object jo = ov.As<Napi::Object>();
    ChainOp op;
    op.type = get_string(jo, "type", "");
    op.name = get_string(jo, "name", op.type);
    Napi::Value pv = jo.Get("params");
    if (!pv.IsObject()) throw Napi::TypeError::New(o.Env(), "chain entry: op params must be an object");
    Napi::Object po = pv.As<Napi::Object>();
    Napi::Array keys = po.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); ++k) {
      const std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
      Napi::Value sv = po.Get(key);
      if (!sv.IsObject()) throw Napi::TypeError::New(o.Env(), "chain entry: parameter " + key + " of " + op.name + " must be an object");
      Napi::Object spec = sv.As<Napi::Object>();
      ChainParam p;
      if (spec.Has("source")) {
        p.kind = ChainParam::Kind::Source;
        p.source = static_cast<size_t>(get_int(spec, "source", 0));
        p.shape = get_shape(spec, "shape");
      } else if (spec.Has("ref")) {
        p.kind = ChainParam::Kind::Ref;
        std::vector<int64_t> r = get_shape(spec, "ref");
        if (r.size() != 2) throw Napi::TypeError::New(o.Env(), "chain entry: ref must be [op, output]");
        p.op = static_cast<size_t>(r[0]);
        p.output = static_cast<size_t>(r[1]);
      } else {
        p.kind = ChainParam::Kind::Immediate;
        kernels::DType dtype;
        try {
          dtype = kernels::mil_dtype_from_name(get_string(spec, "dtype", ""));
        } catch (const Error& err) {
          throw Napi::TypeError::New(o.Env(), "chain entry: " + op.name + "." + key + ": " + err.what());
        }
        p.immediate = kernels::Tensor(dtype, get_shape(spec, "shape"));
        Napi::Value bv = spec.Get("bytes");
        if (!bv.IsTypedArray() || bv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
          throw Napi::TypeError::New(o.Env(), "chain entry: immediate bytes must be a Uint8Array");
        Napi::Uint8Array b = bv.As<Napi::Uint8Array>();
        if (b.ByteLength() != p.immediate.bytes.size())
          throw Napi::TypeError::New(o.Env(), "chain entry: immediate " + key + " of " + op.name + " has the wrong byte length");
        std::copy(b.Data(), b.Data() + b.ByteLength(), p.immediate.bytes.begin());
      }
      op.params.emplace_back(key, std::move(p));
    }
    e.ops.push_back(std::move(op));
  }
  if (e.ops.empty()) throw Napi::TypeError::New(o.Env(), "chain entry: ops is empty");
  e.result_op = static_cast<size_t>(get_int(o, "resultOp", static_cast<int64_t>(e.ops.size()) - 1));
  e.result_output = static_cast<size_t>(get_int(o, "resultOutput", 0));
  return e;
}

CMO_COMPRESS_ENTRY(decompress, parse);

}  // namespace cmo::addon
