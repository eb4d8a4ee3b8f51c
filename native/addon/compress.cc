// compressWeights(): one native job that writes a model's new weight.bin from its old one, entry by
// entry in op order — copying weights that stay and compressing the others with the transform of
// their kind — with progress, cancellation and bounded memory (see stream/weight_stream.h).
#include <map>

#include "../blob/blob.h"
#include "../util/error.h"
#include "compress_entries.h"
#include "module_registry.h"

namespace cmo::addon {

namespace {

std::map<std::string, EntryParser>& parsers() {
  static std::map<std::string, EntryParser> p;
  return p;
}

struct CompressJob {
  std::string input_path;
  std::string output_path;
  std::vector<stream::Entry> entries;
  uint64_t window_bytes = 256ull << 20;
};

Napi::Value ResultsToJs(Napi::Env env, std::vector<stream::EntryResult>& results) {
  Napi::Array out = Napi::Array::New(env, results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    stream::EntryResult& r = results[i];
    Napi::Object e = Napi::Object::New(env);
    Napi::Array outputs = Napi::Array::New(env, r.outputs.size());
    for (size_t k = 0; k < r.outputs.size(); ++k) {
      stream::EntryOutput& o = r.outputs[k];
      Napi::Object jo = Napi::Object::New(env);
      jo.Set("dtype", blob::dtype_name(o.dtype));
      jo.Set("elementCount", Napi::Number::New(env, static_cast<double>(o.element_count)));
      if (o.in_file) {
        jo.Set("offset", Napi::Number::New(env, static_cast<double>(o.offset)));
      } else {
        jo.Set("bytes", Napi::Buffer<uint8_t>::Copy(env, o.bytes.data(), o.bytes.size()));
      }
      outputs.Set(static_cast<uint32_t>(k), jo);
    }
    e.Set("outputs", outputs);
    Napi::Object info = Napi::Object::New(env);
    for (auto& [key, values] : r.info) {
      Napi::Array arr = Napi::Array::New(env, values.size());
      for (size_t k = 0; k < values.size(); ++k) arr.Set(static_cast<uint32_t>(k), Napi::Number::New(env, values[k]));
      info.Set(key, arr);
    }
    e.Set("info", info);
    if (!r.skipped.empty()) e.Set("skipped", r.skipped);
    if (!r.passed_through.empty()) e.Set("passedThrough", r.passed_through);
    out.Set(static_cast<uint32_t>(i), e);
  }
  return out;
}

// compressWeights({ input, output, entries: [{ source, kind, ... }], windowBytes? }, onProgress?, cancelToken?)
Napi::Value CompressWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "compressWeights(job): job must be an object");
  Napi::Object job_js = info[0].As<Napi::Object>();
  auto cancel = cancel_token_from(info[2]);
  auto job = std::make_shared<CompressJob>();
  job->input_path = get_string(job_js, "input", "");
  job->output_path = get_string(job_js, "output", "");
  if (job->input_path.empty() || job->output_path.empty()) throw Napi::TypeError::New(env, "compressWeights: input and output paths are required");
  job->window_bytes = static_cast<uint64_t>(get_number(job_js, "windowBytes", static_cast<double>(job->window_bytes)));
  Napi::Value entries_v = job_js.Get("entries");
  if (!entries_v.IsArray()) throw Napi::TypeError::New(env, "compressWeights: entries must be an array");
  Napi::Array entries = entries_v.As<Napi::Array>();
  job->entries.resize(entries.Length());
  for (uint32_t i = 0; i < entries.Length(); ++i) {
    Napi::Value v = entries.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "compressWeights: entry " + std::to_string(i) + " is not an object");
    Napi::Object e = v.As<Napi::Object>();
    double source = get_number(e, "source", -1);
    if (source < 0) throw Napi::TypeError::New(env, "compressWeights: entry " + std::to_string(i) + " has no source offset");
    job->entries[i].source_offset = static_cast<uint64_t>(source);
    Napi::Value extra = e.Get("extraSources");
    if (extra.IsArray()) {
      Napi::Array a = extra.As<Napi::Array>();
      for (uint32_t k = 0; k < a.Length(); ++k) {
        Napi::Value x = a.Get(k);
        if (!x.IsNumber() || x.As<Napi::Number>().DoubleValue() < 0)
          throw Napi::TypeError::New(env, "compressWeights: entry " + std::to_string(i) + " has a bad extraSources offset");
        job->entries[i].extra_sources.push_back(static_cast<uint64_t>(x.As<Napi::Number>().DoubleValue()));
      }
    }
    std::string kind = get_string(e, "kind", "copy");
    if (kind == "copy") continue;
    auto it = parsers().find(kind);
    if (it == parsers().end()) throw Napi::TypeError::New(env, "compressWeights: unknown entry kind \"" + kind + "\"");
    job->entries[i].transform = it->second(e, cancel);
  }
  return run_job<std::vector<stream::EntryResult>>(
      env, info[1], info[2],
      [job](JobContext& ctx) {
        blob::StorageReader input(job->input_path);
        blob::StorageWriter output(job->output_path);
        stream::StreamOptions opts;
        opts.window_bytes = job->window_bytes;
        opts.progress = [&ctx](double d, double t) { ctx.progress(d, t); };
        opts.cancelled = [&ctx] { return ctx.cancelled(); };
        auto results = stream::run_weight_stream(input, output, job->entries, opts);
        output.close();
        return results;
      },
      ResultsToJs);
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("compressWeights", Napi::Function::New(env, CompressWeights, "compressWeights"));
  Napi::Array kinds = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto& [kind, parser] : parsers()) kinds.Set(i++, kind);
  exports.Set("compressEntryKinds", kinds);
}

}  // namespace

void register_entry_parser(const char* kind, EntryParser parser) { parsers()[kind] = parser; }

EntryParser find_entry_parser(const std::string& kind) {
  auto it = parsers().find(kind);
  return it == parsers().end() ? nullptr : it->second;
}

int64_t get_int(const Napi::Object& o, const char* key, int64_t fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("entry field ") + key + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

double get_number(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("entry field ") + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool get_bool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("entry field ") + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string get_string(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("entry field ") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> get_shape(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string("entry field ") + key + " must be an array of sizes");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> shape(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    if (!d.IsNumber() || d.As<Napi::Number>().Int64Value() < 0)
      throw Napi::TypeError::New(o.Env(), std::string("entry field ") + key + " must hold non-negative sizes");
    shape[i] = d.As<Napi::Number>().Int64Value();
  }
  return shape;
}

kernels::PalettizeParams get_palettize_params(const Napi::Object& o, const char* what) {
  kernels::PalettizeParams p;
  const std::string mode = get_string(o, "mode", "kmeans");
  if (mode == "kmeans") p.mode = kernels::PalettizeMode::kKmeans;
  else if (mode == "uniform") p.mode = kernels::PalettizeMode::kUniform;
  else if (mode == "unique") p.mode = kernels::PalettizeMode::kUnique;
  else throw Napi::TypeError::New(o.Env(), std::string(what) + " entry: mode must be kmeans, uniform or unique, got " + mode);
  p.nbits = static_cast<int>(get_int(o, "nbits", 4));
  p.group_size = get_int(o, "groupSize", 0);
  p.channel_axis = static_cast<int>(get_int(o, "channelAxis", 0));
  p.cluster_dim = static_cast<int>(get_int(o, "clusterDim", 1));
  p.per_channel_scale = get_bool(o, "perChannelScale", false);
  p.seed = static_cast<uint64_t>(get_int(o, "seed", 0));
  return p;
}

blob::DType uint_dtype_for_bits(int nbits) {
  switch (nbits) {
    case 1: return blob::DType::UInt1;
    case 2: return blob::DType::UInt2;
    case 3: return blob::DType::UInt3;
    case 4: return blob::DType::UInt4;
    case 6: return blob::DType::UInt6;
    case 8: return blob::DType::UInt8;
    default: throw Error("EINVAL", "no unsigned index dtype for " + std::to_string(nbits) + " bits");
  }
}

}  // namespace cmo::addon

CMO_ADDON_MODULE(compress, cmo::addon::Init);
