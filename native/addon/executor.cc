// N-API surface of the reference executor:
//   createExecutor(graphDescription) -> { predict(inputs, {threads}, onProgress, cancelToken) -> Promise, info() }
//   executorSupportedOps() -> string[]
// The description (see src/runtime/executor.ts, GraphDescription) is converted into plain C++ once,
// on the JS thread; predict copies its inputs and runs on a libuv worker via run_job.
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "../executor/graph.h"
#include "../executor/profile.h"
#include "../util/fp16.h"
#include "async_job.h"
#include "executor_js.h"
#include "module_registry.h"

namespace cmo::addon {
namespace {

using exec::BindingDesc;
using exec::BlockDesc;
using exec::DType;
using exec::GraphDesc;
using exec::NamedType;
using exec::OpDesc;
using exec::Shape;
using exec::Tensor;
using exec::TypeDesc;
using exec::ValueDesc;

[[noreturn]] void throw_coded(Napi::Env env, const std::string& code, const std::string& msg) {
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  throw err;
}

std::string get_string(const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw_coded(o.Env(), "EINVAL", where + ": '" + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Shape get_shape(const Napi::Value& v, const std::string& where) {
  if (!v.IsArray()) throw_coded(v.Env(), "EINVAL", where + ": shape must be an array");
  Napi::Array a = v.As<Napi::Array>();
  Shape s;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value d = a.Get(k);
    s.push_back(d.IsNumber() ? d.As<Napi::Number>().Int64Value() : -1);
  }
  return s;
}

template <class T>
std::vector<uint8_t> typed_bytes(const Napi::Value& v, napi_typedarray_type want, const std::string& where) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want)
    throw_coded(v.Env(), "EINVAL", where + ": value data has the wrong array type");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  return std::vector<uint8_t>(p, p + ta.ByteLength());
}

ValueDesc to_value(const Napi::Value& v, const std::string& where) {
  if (!v.IsObject()) throw_coded(v.Env(), "EINVAL", where + ": value must be an object");
  Napi::Object o = v.As<Napi::Object>();
  ValueDesc d;
  d.dtype = get_string(o, "dtype", where);
  d.shape = get_shape(o.Get("shape"), where);
  using E = ValueDesc::Encoding;
  if (o.Has("blob")) {
    Napi::Object b = o.Get("blob").As<Napi::Object>();
    d.encoding = E::Blob;
    d.blob_file = get_string(b, "file", where);
    d.blob_offset = static_cast<uint64_t>(b.Get("offset").As<Napi::Number>().Int64Value());
  } else if (o.Has("floats")) {
    d.encoding = E::Floats;
    d.bytes = typed_bytes<float>(o.Get("floats"), napi_float32_array, where);
  } else if (o.Has("ints")) {
    d.encoding = E::Ints;
    d.bytes = typed_bytes<int32_t>(o.Get("ints"), napi_int32_array, where);
  } else if (o.Has("doubles")) {
    d.encoding = E::Doubles;
    d.bytes = typed_bytes<double>(o.Get("doubles"), napi_float64_array, where);
  } else if (o.Has("bools")) {
    d.encoding = E::Bools;
    d.bytes = typed_bytes<uint8_t>(o.Get("bools"), napi_uint8_array, where);
  } else if (o.Has("bytes")) {
    d.encoding = E::Bytes;
    d.bytes = typed_bytes<uint8_t>(o.Get("bytes"), napi_uint8_array, where);
  } else if (o.Has("strings")) {
    d.encoding = E::Strings;
    Napi::Array a = o.Get("strings").As<Napi::Array>();
    for (uint32_t k = 0; k < a.Length(); ++k) d.strings.push_back(a.Get(k).As<Napi::String>().Utf8Value());
  } else {
    throw_coded(v.Env(), "EINVAL", where + ": value has no data");
  }
  return d;
}

TypeDesc to_type(const Napi::Value& v, const std::string& where) {
  TypeDesc t;
  if (!v.IsObject()) return t;
  Napi::Object o = v.As<Napi::Object>();
  t.dtype = get_string(o, "dtype", where);
  if (o.Get("shape").IsArray()) t.shape = get_shape(o.Get("shape"), where);
  else t.rank_known = false;
  if (o.Get("elemDtype").IsString()) t.elem_dtype = o.Get("elemDtype").As<Napi::String>().Utf8Value();
  return t;
}

std::vector<NamedType> to_named(const Napi::Value& v, const std::string& where) {
  std::vector<NamedType> out;
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Object o = a.Get(k).As<Napi::Object>();
    out.push_back({get_string(o, "name", where), to_type(o.Get("type"), where)});
  }
  return out;
}

BlockDesc to_block(const Napi::Value& v, const std::string& where);

OpDesc to_op(const Napi::Object& o, const std::string& block_where) {
  OpDesc op;
  op.type = get_string(o, "type", block_where);
  op.name = o.Get("name").IsString() ? o.Get("name").As<Napi::String>().Utf8Value() : "";
  const std::string where = block_where + ", op '" + op.name + "' (" + op.type + ")";
  if (o.Get("inputs").IsObject()) {
    Napi::Object ins = o.Get("inputs").As<Napi::Object>();
    Napi::Array keys = ins.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); ++k) {
      std::string param = keys.Get(k).As<Napi::String>().Utf8Value();
      Napi::Array binds = ins.Get(param).As<Napi::Array>();
      std::vector<BindingDesc> bs;
      for (uint32_t j = 0; j < binds.Length(); ++j) {
        Napi::Object b = binds.Get(j).As<Napi::Object>();
        BindingDesc bd;
        if (b.Get("name").IsString()) {
          bd.name = b.Get("name").As<Napi::String>().Utf8Value();
        } else {
          bd.is_name = false;
          bd.value = to_value(b.Get("value"), where + " input '" + param + "'");
        }
        bs.push_back(std::move(bd));
      }
      op.inputs.push_back({param, std::move(bs)});
    }
  }
  if (o.Get("attributes").IsObject()) {
    Napi::Object at = o.Get("attributes").As<Napi::Object>();
    Napi::Array keys = at.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); ++k) {
      std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
      op.attributes.push_back({key, to_value(at.Get(key), where + " attribute '" + key + "'")});
    }
  }
  op.outputs = to_named(o.Get("outputs"), where);
  if (o.Get("blocks").IsArray()) {
    Napi::Array bl = o.Get("blocks").As<Napi::Array>();
    for (uint32_t k = 0; k < bl.Length(); ++k) op.blocks.push_back(to_block(bl.Get(k), where + " block " + std::to_string(k)));
  }
  return op;
}

BlockDesc to_block(const Napi::Value& v, const std::string& where) {
  BlockDesc b;
  if (!v.IsObject()) throw_coded(v.Env(), "EINVAL", where + ": block must be an object");
  Napi::Object o = v.As<Napi::Object>();
  b.inputs = to_named(o.Get("inputs"), where);
  Napi::Array outs = o.Get("outputs").As<Napi::Array>();
  for (uint32_t k = 0; k < outs.Length(); ++k) b.outputs.push_back(outs.Get(k).As<Napi::String>().Utf8Value());
  Napi::Array ops = o.Get("ops").As<Napi::Array>();
  for (uint32_t k = 0; k < ops.Length(); ++k) b.ops.push_back(to_op(ops.Get(k).As<Napi::Object>(), where));
  return b;
}

Tensor input_tensor(const Napi::Env& env, const std::string& name, const Napi::Value& v) {
  const std::string where = "input '" + name + "'";
  if (!v.IsObject()) throw_coded(env, "EINVAL", where + ": must be {dtype, shape, data}");
  Napi::Object o = v.As<Napi::Object>();
  std::string dtype = get_string(o, "dtype", where);
  Shape shape = get_shape(o.Get("shape"), where);
  for (int64_t d : shape)
    if (d < 0) throw_coded(env, "EINVAL", where + ": shape must be non-negative integers");
  Napi::Value data = o.Get("data");
  if (!data.IsTypedArray()) throw_coded(env, "EINVAL", where + ": data must be a typed array");
  Napi::TypedArray ta = data.As<Napi::TypedArray>();
  const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  size_t n = static_cast<size_t>(exec::numel(shape));
  auto need = [&](napi_typedarray_type t, size_t width) {
    if (ta.TypedArrayType() != t || ta.ByteLength() != n * width)
      throw_coded(env, "EINVAL", where + ": " + dtype + " data of shape " + exec::shape_str(shape) + " needs " +
                                     std::to_string(n) + " elements of the matching typed array");
  };
  Tensor t;
  if (dtype == "fp32") {
    need(napi_float32_array, 4);
    t = Tensor::f32_for_overwrite(shape);  // every element is copied in
    std::memcpy(t.fdata(), p, n * 4);
  } else if (dtype == "fp16") {
    need(napi_uint16_array, 2);
    t = Tensor::f32_for_overwrite(shape);
    for (size_t k = 0; k < n; ++k) {
      uint16_t h;
      std::memcpy(&h, p + 2 * k, 2);
      t.fdata()[k] = half_to_float(h);
    }
  } else if (dtype == "int32") {
    need(napi_int32_array, 4);
    t = Tensor::i32(shape);
    std::memcpy(t.idata(), p, n * 4);
  } else if (dtype == "bool") {
    need(napi_uint8_array, 1);
    t = Tensor::boolean(shape);
    for (size_t k = 0; k < n; ++k) t.idata()[k] = p[k] != 0;
  } else {
    throw_coded(env, "EINVAL", where + ": dtype '" + dtype + "' is not supported (fp32, fp16, int32, bool)");
  }
  t.declared = dtype;
  return t;
}

// A large fp32 output handed to JS without a copy: the typed array views the tensor's own buffer (a
// pooled one, its pages already faulted in) and keeps it alive until GC, when it returns to the graph's
// pool. Copying meant a fresh zero-filled V8 buffer per predict: on a VM every one of its pages faults
// (~1 ms for the SD block's 320 KiB output, more than the hop to the worker thread). Only a buffer this
// result owns alone (use_count 1: not a constant, a memory-mapped weight, a state or an input) is
// adopted, so JS writing into the array can change nothing else. Empty when not adopted.
Napi::Value adopt_f32(Napi::Env env, const Tensor& t, size_t n) {
  if (t.dtype != DType::F32 || !t.f || t.f.use_count() != 1 || n < 1024) return Napi::Value();
  auto* hold = new std::shared_ptr<float>(t.f);
  napi_value ab = nullptr;
  const napi_status st = napi_create_external_arraybuffer(
      env, hold->get(), n * sizeof(float), [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<float>*>(hint); }, hold,
      &ab);
  if (st != napi_ok) {  // e.g. a runtime that forbids external buffers (V8 sandbox): copy instead
    delete hold;
    napi_value pending = nullptr;
    napi_get_and_clear_last_exception(env, &pending);
    return Napi::Value();
  }
  return Napi::Float32Array::New(env, n, Napi::ArrayBuffer(env, ab), 0);
}

Napi::Value output_value(Napi::Env env, const Tensor& t, const std::string& declared) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array shape = Napi::Array::New(env, t.shape.size());
  for (size_t k = 0; k < t.shape.size(); ++k) shape.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(t.shape[k])));
  size_t n = static_cast<size_t>(t.size());
  // A dictionary output (classify's probabilities) arrives as its value vector.
  DType want = declared.empty() || declared == "dict" ? t.dtype : exec::compute_dtype(declared);
  std::string dtype;
  Napi::Value data;
  if (t.dtype == DType::Str) {
    Napi::Array a = Napi::Array::New(env, n);
    for (size_t k = 0; k < n; ++k) a.Set(static_cast<uint32_t>(k), Napi::String::New(env, (*t.s)[k]));
    dtype = "string";
    data = a;
  } else if (want == DType::F32) {
    // Adopted before as_f32, whose copy of the handle would make the buffer look shared.
    Napi::Value adopted = declared == "fp16" ? Napi::Value() : adopt_f32(env, t, n);
    Tensor f = adopted.IsEmpty() ? exec::as_f32(t) : Tensor();
    if (!adopted.IsEmpty()) {
      dtype = "fp32";
      data = adopted;
    } else if (declared == "fp16") {
      auto arr = Napi::Uint16Array::New(env, n);
      for (size_t k = 0; k < n; ++k) arr[k] = float_to_half(f.fdata()[k]);
      dtype = "fp16";
      data = arr;
    } else {
      auto arr = Napi::Float32Array::New(env, n);
      std::memcpy(arr.Data(), f.fdata(), n * 4);
      dtype = "fp32";
      data = arr;
    }
  } else if (want == DType::Bool) {
    auto arr = Napi::Uint8Array::New(env, n);
    for (size_t k = 0; k < n; ++k) arr[k] = t.at(static_cast<int64_t>(k)) != 0;
    dtype = "bool";
    data = arr;
  } else {
    Tensor i = exec::as_i32(t);
    auto arr = Napi::Int32Array::New(env, n);
    std::memcpy(arr.Data(), i.idata(), n * 4);
    dtype = "int32";
    data = arr;
  }
  o.Set("dtype", dtype);
  o.Set("shape", shape);
  o.Set("data", data);
  return o;
}

Napi::Value type_to_js(Napi::Env env, const NamedType& nt) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", nt.name);
  o.Set("dtype", nt.type.dtype);
  Napi::Array s = Napi::Array::New(env, nt.type.shape.size());
  for (size_t k = 0; k < nt.type.shape.size(); ++k) s.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(nt.type.shape[k])));
  o.Set("shape", s);
  return o;
}

Napi::Value Predict(const Napi::CallbackInfo& info, std::shared_ptr<exec::Graph> graph) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw_coded(env, "EINVAL", "predict(inputs): inputs must be an object");
  Napi::Object ins = info[0].As<Napi::Object>();
  std::vector<exec::FeatureValue> inputs;
  exec::BufferPool::Scope pooled(graph->buffer_pool());  // input copies from the graph's recycled buffers
  Napi::Array keys = ins.GetPropertyNames();
  for (uint32_t k = 0; k < keys.Length(); ++k) {
    std::string name = keys.Get(k).As<Napi::String>().Utf8Value();
    inputs.push_back({name, input_tensor(env, name, ins.Get(name))});
  }
  unsigned threads = 0;
  bool want_profile = false, fp16 = false;
  if (info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    Napi::Value t = o.Get("threads");
    if (t.IsNumber()) threads = static_cast<unsigned>(std::max<int64_t>(0, t.As<Napi::Number>().Int64Value()));
    want_profile = o.Get("profile").ToBoolean().Value();
    Napi::Value prec = o.Get("computePrecision");
    if (prec.IsString()) {
      const std::string p = prec.As<Napi::String>().Utf8Value();
      if (p != "fp16" && p != "fp32") throw_coded(env, "EINVAL", "predict: computePrecision must be 'fp32' or 'fp16', got '" + p + "'");
      fp16 = p == "fp16";
    }
  }
  // COREML_OPTIMIZE_PROFILE=1 also prints the per-op-type table to stderr after each predict.
  const char* env_profile = std::getenv("COREML_OPTIMIZE_PROFILE");
  const bool print_profile = env_profile && *env_profile && *env_profile != '0';
  std::vector<std::string> declared;
  for (const auto& t : graph->output_types()) declared.push_back(t.dtype);
  struct Result {
    std::vector<exec::FeatureValue> outputs;
    std::vector<exec::ProfileRow> profile;
    double total_ms = 0;
  };
  return run_job<Result>(
      env, info[2], info[3],
      [graph, inputs = std::move(inputs), threads, want_profile, print_profile, fp16](JobContext& ctx) {
        exec::RunOptions opts;
        opts.threads = threads;
        opts.fp16_compute = fp16;
        opts.progress = [&ctx](double d, double t) { ctx.progress(d, t); };
        opts.check_cancelled = [&ctx] { ctx.check_cancelled(); };
        exec::Profiler profiler;
        if (want_profile || print_profile)
          opts.profile = [&profiler](const exec::Node& n, const exec::OpContext& c, double ms) { profiler.add(n, c, ms); };
        Result r;
        auto t0 = std::chrono::steady_clock::now();
        r.outputs = graph->run(inputs, opts);
        r.total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (opts.profile) r.profile = profiler.rows();
        if (print_profile)
          for (const auto& row : r.profile)
            std::fprintf(stderr, "[executor] %-28s %9.3f ms  (%lld ops, %.2f GFLOP)\n", row.type.c_str(), row.ms,
                         static_cast<long long>(row.calls), row.flops / 1e9);
        if (!want_profile) r.profile.clear();
        return r;
      },
      [declared, want_profile](Napi::Env env, Result& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        for (size_t k = 0; k < r.outputs.size(); ++k) o.Set(r.outputs[k].name, output_value(env, r.outputs[k].tensor, declared[k]));
        if (!want_profile) return o;
        // With `profile: true` the result is { outputs, profile: { totalMs, ops: [...] } }.
        Napi::Array rows = Napi::Array::New(env, r.profile.size());
        for (size_t k = 0; k < r.profile.size(); ++k) {
          const auto& p = r.profile[k];
          Napi::Object row = Napi::Object::New(env);
          row.Set("type", p.type);
          row.Set("calls", Napi::Number::New(env, static_cast<double>(p.calls)));
          row.Set("ms", Napi::Number::New(env, p.ms));
          row.Set("flops", Napi::Number::New(env, p.flops));
          row.Set("bytes", Napi::Number::New(env, p.bytes));
          rows.Set(static_cast<uint32_t>(k), row);
        }
        Napi::Object prof = Napi::Object::New(env);
        prof.Set("totalMs", Napi::Number::New(env, r.total_ms));
        prof.Set("ops", rows);
        Napi::Object wrapped = Napi::Object::New(env);
        wrapped.Set("outputs", o);
        wrapped.Set("profile", prof);
        return wrapped;
      });
}

Napi::Value CreateExecutor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw_coded(env, "EINVAL", "createExecutor(description): description must be an object");
  Napi::Object d = info[0].As<Napi::Object>();
  GraphDesc desc = graph_desc_from_js(d);
  std::shared_ptr<exec::Graph> graph;
  try {
    graph = exec::Graph::build(desc);
  } catch (const Error& e) {
    throw_coded(env, e.code(), e.what());
  }
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("predict", Napi::Function::New(env, [graph](const Napi::CallbackInfo& ci) { return Predict(ci, graph); }, "predict"));
  handle.Set("resetState", Napi::Function::New(env, [graph](const Napi::CallbackInfo& ci) -> Napi::Value {
               graph->reset_state();
               return ci.Env().Undefined();
             }, "resetState"));
  handle.Set("info", Napi::Function::New(env, [graph](const Napi::CallbackInfo& ci) -> Napi::Value {
               Napi::Env e = ci.Env();
               Napi::Object o = Napi::Object::New(e);
               Napi::Array ins = Napi::Array::New(e, graph->inputs().size());
               for (size_t k = 0; k < graph->inputs().size(); ++k) ins.Set(static_cast<uint32_t>(k), type_to_js(e, graph->inputs()[k]));
               Napi::Array outs = Napi::Array::New(e, graph->output_names().size());
               for (size_t k = 0; k < graph->output_names().size(); ++k)
                 outs.Set(static_cast<uint32_t>(k), type_to_js(e, {graph->output_names()[k], graph->output_types()[k]}));
               o.Set("inputs", ins);
               o.Set("outputs", outs);
               return o;
             }, "info"));
  return handle;
}

Napi::Value SupportedOps(const Napi::CallbackInfo& info) {
  auto ops = exec::supported_ops();
  Napi::Array a = Napi::Array::New(info.Env(), ops.size());
  for (size_t k = 0; k < ops.size(); ++k) a.Set(static_cast<uint32_t>(k), ops[k]);
  return a;
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("createExecutor", Napi::Function::New(env, CreateExecutor, "createExecutor"));
  exports.Set("executorSupportedOps", Napi::Function::New(env, SupportedOps, "executorSupportedOps"));
}

}  // namespace

GraphDesc graph_desc_from_js(const Napi::Object& d) {
  GraphDesc desc;
  desc.function = get_string(d, "function", "graph description");
  desc.opset = d.Get("opset").IsString() ? d.Get("opset").As<Napi::String>().Utf8Value() : "";
  desc.model_dir = d.Get("modelDir").IsString() ? d.Get("modelDir").As<Napi::String>().Utf8Value() : ".";
  desc.inputs = to_named(d.Get("inputs"), "function '" + desc.function + "'");
  desc.block = to_block(d.Get("block"), "function '" + desc.function + "'");
  return desc;
}

Tensor tensor_from_js(const Napi::Env& env, const std::string& name, const Napi::Value& v) { return input_tensor(env, name, v); }

Napi::Value tensor_to_js(Napi::Env env, const Tensor& t, const std::string& declared) { return output_value(env, t, declared); }

}  // namespace cmo::addon

CMO_ADDON_MODULE(executor, cmo::addon::Init);
