// syntheticWeights({ count, kind, fanIn, seed, first?, dtype? }) -> Uint16Array (fp16 bits) or
// Float32Array: deterministic trained-looking weights for benchmark models and tests.
#include "../kernels/synthetic.h"
#include "module_registry.h"

namespace cmo::addon {

namespace {

Napi::Value SyntheticWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "syntheticWeights(options): options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto number = [&](const char* key, double fallback) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return fallback;
    if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("syntheticWeights: ") + key + " must be a number");
    return v.As<Napi::Number>().DoubleValue();
  };
  double count = number("count", -1);
  if (!(count >= 0 && count <= 4e9)) throw Napi::RangeError::New(env, "syntheticWeights: count must be in [0, 4e9]");
  kernels::SyntheticParams p;
  std::string kind = o.Has("kind") ? o.Get("kind").ToString().Utf8Value() : "weight";
  if (kind == "weight") p.kind = kernels::SyntheticKind::Weight;
  else if (kind == "bias") p.kind = kernels::SyntheticKind::Bias;
  else if (kind == "norm") p.kind = kernels::SyntheticKind::Norm;
  else throw Napi::TypeError::New(env, "syntheticWeights: kind must be weight, bias or norm");
  p.fan_in = static_cast<uint64_t>(number("fanIn", 1));
  p.seed = static_cast<uint64_t>(number("seed", 0));
  uint64_t first = static_cast<uint64_t>(number("first", 0));
  std::string dtype = o.Has("dtype") ? o.Get("dtype").ToString().Utf8Value() : "float16";
  size_t n = static_cast<size_t>(count);
  if (dtype == "float16") {
    Napi::Uint16Array out = Napi::Uint16Array::New(env, n);
    kernels::synthetic_fp16(p, first, n, out.Data());
    return out;
  }
  if (dtype == "float32") {
    Napi::Float32Array out = Napi::Float32Array::New(env, n);
    kernels::synthetic_f32(p, first, n, out.Data());
    return out;
  }
  throw Napi::TypeError::New(env, "syntheticWeights: dtype must be float16 or float32");
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("syntheticWeights", Napi::Function::New(env, SyntheticWeights, "syntheticWeights"));
}

}  // namespace

}  // namespace cmo::addon

CMO_ADDON_MODULE(synthetic, cmo::addon::Init);
