// N-API surface of the palettization kernels (small tensors and tests; the streaming pass over a
// mapped weight.bin calls kernels::palettize_tensor directly).
//   kmeans1d(values: Float32Array|Float64Array, counts: Float64Array|null, k, reference?)
//     -> { centroids: Float64Array, assignments: Uint32Array, cost }
//   palettizeTensor(opts, onProgress?, cancelToken?) -> Promise<result>
//   decompressLut({ indices, indicesShape, lut, lutShape, vectorAxis?, scale?, scaleShape? })
//     -> Uint16Array (fp16 bits) | Float32Array
#include <napi.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../kernels/kmeans1d.h"
#include "../kernels/palettize.h"
#include "../kernels/vector_kmeans.h"
#include "async_job.h"
#include "module_registry.h"

namespace cmo::addon {

namespace {

using kernels::WeightType;

std::vector<double> to_doubles(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Float32Array or Float64Array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  std::vector<double> out(ta.ElementLength());
  if (ta.TypedArrayType() == napi_float32_array) {
    Napi::Float32Array f = v.As<Napi::Float32Array>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = f[i];
  } else if (ta.TypedArrayType() == napi_float64_array) {
    Napi::Float64Array f = v.As<Napi::Float64Array>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = f[i];
  } else {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Float32Array or Float64Array");
  }
  return out;
}

std::vector<int64_t> to_shape(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of dimensions");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> s(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    if (!d.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must contain numbers");
    s[i] = d.As<Napi::Number>().Int64Value();
  }
  return s;
}

Napi::Array shape_to_js(Napi::Env env, const std::vector<int64_t>& s) {
  Napi::Array a = Napi::Array::New(env, s.size());
  for (uint32_t i = 0; i < s.size(); ++i) a.Set(i, Napi::Number::New(env, static_cast<double>(s[i])));
  return a;
}

template <class T, class Arr>
Arr copy_out(Napi::Env env, const std::vector<T>& v) {
  Arr a = Arr::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(T));
  return a;
}

// Rethrows cmo::Error as a JS Error carrying `code` (synchronous functions).
[[noreturn]] void throw_js(Napi::Env env, const cmo::Error& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, e.code()));
  throw err;
}

Napi::Value Kmeans1d(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<double> values = to_doubles(info[0], "kmeans1d: values");
  std::vector<double> counts;
  bool weighted = !(info[1].IsUndefined() || info[1].IsNull());
  if (weighted) {
    counts = to_doubles(info[1], "kmeans1d: counts");
    if (counts.size() != values.size()) throw Napi::RangeError::New(env, "kmeans1d: counts must have one entry per value");
  }
  if (!info[2].IsNumber()) throw Napi::TypeError::New(env, "kmeans1d: k must be a number");
  int64_t k = info[2].As<Napi::Number>().Int64Value();
  if (k < 1) throw Napi::RangeError::New(env, "kmeans1d: k must be >= 1");
  bool reference = info.Length() > 3 && info[3].ToBoolean().Value();
  kernels::Kmeans1dResult r;
  try {
    r = kernels::kmeans1d(values.data(), weighted ? counts.data() : nullptr, values.size(), static_cast<size_t>(k), reference);
  } catch (const cmo::Error& e) {
    throw_js(env, e);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("centroids", copy_out<double, Napi::Float64Array>(env, r.centroids));
  out.Set("assignments", copy_out<uint32_t, Napi::Uint32Array>(env, r.assignment));
  out.Set("cost", Napi::Number::New(env, r.cost));
  return out;
}

kernels::PalettizeMode mode_from(Napi::Env env, const std::string& m) {
  if (m == "kmeans") return kernels::PalettizeMode::kKmeans;
  if (m == "uniform") return kernels::PalettizeMode::kUniform;
  if (m == "unique") return kernels::PalettizeMode::kUnique;
  throw Napi::TypeError::New(env, "palettizeTensor: mode must be 'kmeans', 'uniform' or 'unique' (got '" + m + "')");
}

int64_t int_opt(const Napi::Object& o, const char* key, int64_t def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("palettizeTensor: ") + key + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

struct Job {
  std::vector<uint16_t> f16;
  std::vector<float> f32;
  kernels::WeightView view;
  kernels::PalettizeParams params;
};

Napi::Value PalettizeTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "palettizeTensor: options object required");
  Napi::Object o = info[0].As<Napi::Object>();
  auto job = std::make_shared<Job>();
  Napi::Value data = o.Get("data");
  if (!data.IsTypedArray()) throw Napi::TypeError::New(env, "palettizeTensor: data must be a Uint16Array (fp16 bits) or Float32Array");
  Napi::TypedArray ta = data.As<Napi::TypedArray>();
  // Copy: the work runs on another thread and the JS buffer may be detached or mutated meanwhile.
  if (ta.TypedArrayType() == napi_uint16_array) {
    Napi::Uint16Array a = data.As<Napi::Uint16Array>();
    job->f16.assign(a.Data(), a.Data() + a.ElementLength());
    job->view.type = WeightType::kFloat16;
    job->view.data = job->f16.data();
  } else if (ta.TypedArrayType() == napi_float32_array) {
    Napi::Float32Array a = data.As<Napi::Float32Array>();
    job->f32.assign(a.Data(), a.Data() + a.ElementLength());
    job->view.type = WeightType::kFloat32;
    job->view.data = job->f32.data();
  } else {
    throw Napi::TypeError::New(env, "palettizeTensor: data must be a Uint16Array (fp16 bits) or Float32Array");
  }
  job->view.shape = to_shape(o.Get("shape"), "palettizeTensor: shape");
  size_t n = 1;
  for (int64_t d : job->view.shape) n *= d > 0 ? static_cast<size_t>(d) : 0;
  if (n != ta.ElementLength())
    throw Napi::RangeError::New(env, "palettizeTensor: shape has " + std::to_string(n) + " elements but data has " +
                                         std::to_string(ta.ElementLength()));
  kernels::PalettizeParams& p = job->params;
  Napi::Value mode = o.Get("mode");
  p.mode = mode.IsString() ? mode_from(env, mode.As<Napi::String>().Utf8Value()) : kernels::PalettizeMode::kKmeans;
  p.nbits = static_cast<int>(int_opt(o, "nbits", p.mode == kernels::PalettizeMode::kUnique ? 0 : 4));
  Napi::Value gran = o.Get("granularity");
  std::string granularity = gran.IsString() ? gran.As<Napi::String>().Utf8Value() : "per_tensor";
  if (granularity == "per_tensor") p.group_size = 0;
  else if (granularity == "per_grouped_channel") p.group_size = int_opt(o, "groupSize", 32);
  else throw Napi::TypeError::New(env, "palettizeTensor: granularity must be 'per_tensor' or 'per_grouped_channel'");
  p.channel_axis = static_cast<int>(int_opt(o, "channelAxis", 0));
  p.cluster_dim = static_cast<int>(int_opt(o, "clusterDim", 1));
  p.per_channel_scale = o.Get("perChannelScale").ToBoolean().Value();
  p.seed = static_cast<uint64_t>(int_opt(o, "seed", 0));
  p.threads = static_cast<unsigned>(int_opt(o, "threads", 0));

  return run_job<kernels::PalettizeResult>(
      env, info[1], info[2],
      [job](JobContext& ctx) {
        kernels::PalettizeHooks hooks;
        hooks.progress = [&ctx](double d, double t) { ctx.progress(d, t); };
        hooks.cancelled = [&ctx] { return ctx.cancelled(); };
        return kernels::palettize_tensor(job->view, job->params, hooks);
      },
      [](Napi::Env env, kernels::PalettizeResult& r) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("skipped", Napi::Boolean::New(env, r.skipped));
        if (r.skipped) {
          out.Set("skipReason", Napi::String::New(env, r.skip_reason));
          return out;
        }
        out.Set("nbits", Napi::Number::New(env, r.nbits));
        out.Set("indices", copy_out<uint8_t, Napi::Uint8Array>(env, r.indices));
        out.Set("indicesShape", shape_to_js(env, r.indices_shape));
        if (r.lut_type == WeightType::kFloat16) {
          out.Set("lut", copy_out<uint16_t, Napi::Uint16Array>(env, r.lut_f16));
        } else {
          out.Set("lut", copy_out<float, Napi::Float32Array>(env, r.lut_f32));
        }
        out.Set("lutShape", shape_to_js(env, r.lut_shape));
        if (r.vector_axis >= 0) out.Set("vectorAxis", Napi::Number::New(env, r.vector_axis));
        if (!r.scale_shape.empty()) {
          if (r.lut_type == WeightType::kFloat16) out.Set("scale", copy_out<uint16_t, Napi::Uint16Array>(env, r.scale_f16));
          else out.Set("scale", copy_out<float, Napi::Float32Array>(env, r.scale_f32));
          out.Set("scaleShape", shape_to_js(env, r.scale_shape));
        }
        out.Set("sse", Napi::Number::New(env, r.sse));
        out.Set("signal", Napi::Number::New(env, r.signal));
        out.Set("groups", Napi::Number::New(env, static_cast<double>(r.groups)));
        return out;
      });
}

Napi::Value DecompressLut(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "decompressLut: options object required");
  Napi::Object o = info[0].As<Napi::Object>();
  kernels::LutDecodeInput in;
  Napi::Value idx = o.Get("indices");
  if (!idx.IsTypedArray() || idx.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "decompressLut: indices must be a Uint8Array");
  Napi::Uint8Array indices = idx.As<Napi::Uint8Array>();
  in.indices = indices.Data();
  in.indices_shape = to_shape(o.Get("indicesShape"), "decompressLut: indicesShape");
  in.lut_shape = to_shape(o.Get("lutShape"), "decompressLut: lutShape");
  in.vector_axis = static_cast<int>(int_opt(o, "vectorAxis", -1));
  size_t ni = 1, nl = 1;
  for (int64_t d : in.indices_shape) ni *= d > 0 ? static_cast<size_t>(d) : 0;
  for (int64_t d : in.lut_shape) nl *= d > 0 ? static_cast<size_t>(d) : 0;
  if (ni != indices.ElementLength()) throw Napi::RangeError::New(env, "decompressLut: indicesShape does not match indices length");
  Napi::Value lut = o.Get("lut");
  if (!lut.IsTypedArray()) throw Napi::TypeError::New(env, "decompressLut: lut must be a Uint16Array (fp16) or Float32Array");
  Napi::TypedArray lt = lut.As<Napi::TypedArray>();
  if (lt.TypedArrayType() == napi_uint16_array) in.type = WeightType::kFloat16;
  else if (lt.TypedArrayType() == napi_float32_array) in.type = WeightType::kFloat32;
  else throw Napi::TypeError::New(env, "decompressLut: lut must be a Uint16Array (fp16) or Float32Array");
  if (lt.ElementLength() != nl) throw Napi::RangeError::New(env, "decompressLut: lutShape does not match lut length");
  in.lut = static_cast<const uint8_t*>(lt.ArrayBuffer().Data()) + lt.ByteOffset();
  Napi::Value scale = o.Get("scale");
  if (!scale.IsUndefined() && !scale.IsNull()) {
    Napi::TypedArray st = scale.As<Napi::TypedArray>();
    if (st.TypedArrayType() != lt.TypedArrayType()) throw Napi::TypeError::New(env, "decompressLut: scale must have the LUT's type");
    in.scale = static_cast<const uint8_t*>(st.ArrayBuffer().Data()) + st.ByteOffset();
    in.scale_shape = to_shape(o.Get("scaleShape"), "decompressLut: scaleShape");
    size_t ns = 1;
    for (int64_t d : in.scale_shape) ns *= d > 0 ? static_cast<size_t>(d) : 0;
    if (ns != st.ElementLength()) throw Napi::RangeError::New(env, "decompressLut: scaleShape does not match scale length");
  }
  try {
    std::vector<int64_t> oshape = kernels::decompressed_shape(in);
    size_t total = 1;
    for (int64_t d : oshape) total *= static_cast<size_t>(d);
    if (in.type == WeightType::kFloat16) {
      Napi::Uint16Array out = Napi::Uint16Array::New(env, total);
      kernels::decompress_lut(in, out.Data());
      return out;
    }
    Napi::Float32Array out = Napi::Float32Array::New(env, total);
    kernels::decompress_lut(in, out.Data());
    return out;
  } catch (const cmo::Error& e) {
    throw_js(env, e);
  }
}

// vectorKmeans(points: Float32Array, dim, k, seed?, threads?) -> { centers, assignments, k, iterations, inertia }
// k-means++ + Lloyd (also the heuristic baseline the exact 1-D DP is benchmarked against).
Napi::Value VectorKmeans(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, "vectorKmeans: points must be a Float32Array");
  Napi::Float32Array pts = info[0].As<Napi::Float32Array>();
  int64_t dim = info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value() : 0;
  int64_t k = info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 0;
  if (dim < 1 || pts.ElementLength() % static_cast<size_t>(dim) != 0)
    throw Napi::RangeError::New(env, "vectorKmeans: dim must be >= 1 and divide the number of values");
  if (k < 1) throw Napi::RangeError::New(env, "vectorKmeans: k must be >= 1");
  kernels::VectorKmeansParams p;
  p.k = static_cast<size_t>(k);
  p.seed = info[3].IsNumber() ? static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value()) : 0;
  p.threads = info[4].IsNumber() ? static_cast<unsigned>(info[4].As<Napi::Number>().Uint32Value()) : 0;
  kernels::VectorKmeansResult r;
  try {
    r = kernels::vector_kmeans(pts.Data(), pts.ElementLength() / static_cast<size_t>(dim), static_cast<size_t>(dim), p);
  } catch (const cmo::Error& e) {
    throw_js(env, e);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("centers", copy_out<float, Napi::Float32Array>(env, r.centers));
  out.Set("assignments", copy_out<uint32_t, Napi::Uint32Array>(env, r.assignment));
  out.Set("k", Napi::Number::New(env, static_cast<double>(r.k)));
  out.Set("iterations", Napi::Number::New(env, r.iterations));
  out.Set("inertia", Napi::Number::New(env, r.inertia));
  return out;
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("vectorKmeans", Napi::Function::New(env, VectorKmeans, "vectorKmeans"));
  exports.Set("kmeans1d", Napi::Function::New(env, Kmeans1d, "kmeans1d"));
  exports.Set("palettizeTensor", Napi::Function::New(env, PalettizeTensor, "palettizeTensor"));
  exports.Set("decompressLut", Napi::Function::New(env, DecompressLut, "decompressLut"));
}

}  // namespace

CMO_ADDON_MODULE(palettize, Init);

}  // namespace cmo::addon
