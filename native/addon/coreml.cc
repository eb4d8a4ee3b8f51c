// N-API surface of the Core ML bridge (native/coreml/, macOS only):
//   coremlAvailable() -> boolean                      (false on every other platform)
//   coremlCompile(sourcePath) -> Promise<string>      temporary .mlmodelc; src/pipeline/backends caches it
//   coremlLoad(compiledPath, computeUnits) -> Promise<{ inputs(), outputs(), predict(inputs, cancelToken) }>
// Inputs are { data: Float32Array | Int32Array, shape } per feature, copied into C++ on the JS thread
// (the worker may not touch JS memory); outputs come back as Float32Array.
// CMO_COREML_SYNTAX_CHECK compiles the macOS part on Linux for scripts/check-coreml-bridge.sh.
#include <napi.h>

#include "module_registry.h"

#if defined(__APPLE__) || defined(CMO_COREML_SYNTAX_CHECK)
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "../coreml/coreml_bridge.h"
#include "async_job.h"
#define CMO_HAS_COREML 1
#endif

namespace cmo::addon {
namespace {

Napi::Value CoremlAvailable(const Napi::CallbackInfo& info) {
#if defined(__APPLE__)
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

#if defined(CMO_HAS_COREML)

using ModelPtr = std::shared_ptr<coreml::Model>;

[[noreturn]] void throw_invalid(Napi::Env env, const std::string& message) {
  Napi::Error err = Napi::TypeError::New(env, message);
  err.Set("code", Napi::String::New(env, "EINVAL"));
  throw err;
}

Napi::Array features_to_js(Napi::Env env, const std::vector<coreml::FeatureInfo>& features) {
  Napi::Array out = Napi::Array::New(env, features.size());
  for (size_t i = 0; i < features.size(); ++i) {
    Napi::Object f = Napi::Object::New(env);
    f.Set("name", features[i].name);
    f.Set("dtype", features[i].dtype);
    Napi::Array shape = Napi::Array::New(env, features[i].shape.size());
    for (size_t d = 0; d < features[i].shape.size(); ++d) shape.Set(d, Napi::Number::New(env, static_cast<double>(features[i].shape[d])));
    f.Set("shape", features[i].shape.empty() ? env.Null() : Napi::Value(shape));
    out.Set(i, f);
  }
  return out;
}

coreml::InputTensor input_from_js(const Napi::Value& v, const std::string& name) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) throw_invalid(env, "input '" + name + "' must be { data, shape }");
  Napi::Object o = v.As<Napi::Object>();
  coreml::InputTensor t;
  Napi::Value shape = o.Get("shape");
  if (!shape.IsArray()) throw_invalid(env, "input '" + name + "': shape must be an array");
  size_t count = 1;
  for (uint32_t k = 0; k < shape.As<Napi::Array>().Length(); ++k) {
    Napi::Value d = shape.As<Napi::Array>().Get(k);
    if (!d.IsNumber() || d.As<Napi::Number>().Int64Value() < 0) throw_invalid(env, "input '" + name + "': shape must be non-negative integers");
    t.shape.push_back(d.As<Napi::Number>().Int64Value());
    count *= static_cast<size_t>(t.shape.back());
  }
  Napi::Value data = o.Get("data");
  if (!data.IsTypedArray()) throw_invalid(env, "input '" + name + "': data must be a Float32Array or Int32Array");
  Napi::TypedArray ta = data.As<Napi::TypedArray>();
  if (ta.ElementLength() != count) throw_invalid(env, "input '" + name + "': data length does not match its shape");
  const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (ta.TypedArrayType() == napi_float32_array) {
    t.f32.resize(count);
    if (count > 0) std::memcpy(t.f32.data(), p, count * sizeof(float));
  } else if (ta.TypedArrayType() == napi_int32_array) {
    t.is_int32 = true;
    t.i32.resize(count);
    if (count > 0) std::memcpy(t.i32.data(), p, count * sizeof(int32_t));
  } else {
    throw_invalid(env, "input '" + name + "': data must be a Float32Array or Int32Array");
  }
  return t;
}

Napi::Value outputs_to_js(Napi::Env env, std::map<std::string, coreml::OutputTensor>& outputs) {
  Napi::Object out = Napi::Object::New(env);
  for (auto& [name, t] : outputs) {
    Napi::Float32Array data = Napi::Float32Array::New(env, t.data.size());
    if (!t.data.empty()) std::memcpy(data.Data(), t.data.data(), t.data.size() * sizeof(float));
    Napi::Array shape = Napi::Array::New(env, t.shape.size());
    for (size_t d = 0; d < t.shape.size(); ++d) shape.Set(d, Napi::Number::New(env, static_cast<double>(t.shape[d])));
    Napi::Object o = Napi::Object::New(env);
    o.Set("data", data);
    o.Set("shape", shape);
    out.Set(name, o);
  }
  return out;
}

Napi::Value predict_js(const Napi::CallbackInfo& info, const ModelPtr& m) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw_invalid(env, "predict(inputs): inputs must be an object");
  Napi::Object values = info[0].As<Napi::Object>();
  auto inputs = std::make_shared<std::map<std::string, coreml::InputTensor>>();
  for (const coreml::FeatureInfo& f : m->inputs()) {
    if (!values.Has(f.name)) throw_invalid(env, "predict: missing input '" + f.name + "'");
    (*inputs)[f.name] = input_from_js(values.Get(f.name), f.name);
  }
  return run_job<std::map<std::string, coreml::OutputTensor>>(
      env, env.Undefined(), info[1],
      [m, inputs](JobContext& ctx) {
        ctx.check_cancelled();  // a Core ML prediction cannot be interrupted: cancellation acts between calls
        return m->predict(*inputs);
      },
      [](Napi::Env env, std::map<std::string, coreml::OutputTensor>& r) { return outputs_to_js(env, r); });
}

// The handle's functions capture the model; node-addon-api frees each capture when its function is
// collected, so the MLModel lives exactly as long as something in JS can call it.
Napi::Value model_to_js(Napi::Env env, const ModelPtr& model) {
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("inputs", Napi::Function::New(env, [model](const Napi::CallbackInfo& info) -> Napi::Value {
    return features_to_js(info.Env(), model->inputs());
  }, "inputs"));
  handle.Set("outputs", Napi::Function::New(env, [model](const Napi::CallbackInfo& info) -> Napi::Value {
    return features_to_js(info.Env(), model->outputs());
  }, "outputs"));
  handle.Set("predict", Napi::Function::New(env, [model](const Napi::CallbackInfo& info) -> Napi::Value {
    return predict_js(info, model);
  }, "predict"));
  return handle;
}

Napi::Value CoremlCompile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw_invalid(env, "coremlCompile(path): path must be a string");
  std::string source = info[0].As<Napi::String>().Utf8Value();
  return run_job<std::string>(
      env, env.Undefined(), env.Undefined(), [source](JobContext&) { return coreml::compile_model(source); },
      [](Napi::Env env, std::string& path) { return Napi::String::New(env, path); });
}

Napi::Value CoremlLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw_invalid(env, "coremlLoad(path, computeUnits): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string units_name = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "ALL";
  coreml::ComputeUnits units;
  if (!coreml::parse_compute_units(units_name, &units)) {
    throw_invalid(env, "compute units must be ALL, CPU_ONLY, CPU_AND_GPU or CPU_AND_NE, got '" + units_name + "'");
  }
  return run_job<ModelPtr>(
      env, env.Undefined(), env.Undefined(), [path, units](JobContext&) { return coreml::load_model(path, units); },
      [](Napi::Env env, ModelPtr& m) { return model_to_js(env, m); });
}

#endif  // CMO_HAS_COREML

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("coremlAvailable", Napi::Function::New(env, CoremlAvailable, "coremlAvailable"));
#if defined(CMO_HAS_COREML)
  exports.Set("coremlCompile", Napi::Function::New(env, CoremlCompile, "coremlCompile"));
  exports.Set("coremlLoad", Napi::Function::New(env, CoremlLoad, "coremlLoad"));
#endif
}

}  // namespace

CMO_ADDON_MODULE(coreml, Init);

}  // namespace cmo::addon
