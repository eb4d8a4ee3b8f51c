// N-API surface of calibration capture:
//   createHessianSet(columns[]) -> { bytes(), peakBytes(), release(i), samples(i), data(i) -> Float32Array }
//   createCaptureGraph(description, watches[{op, kind, hessians[]}], hessianSet)
//     [, cacheLimits {widen, pack, derived, pool} bytes (exec::CacheLimits; absent = the executor's defaults)]
//     -> { run(inputs, {threads}, onProgress, cancelToken) -> Promise<{outputs, hits, hessianSeconds}>,
//          cacheStats() -> {widen, pack, derived, pool, *Limit} bytes, close() }
// run() executes the graph on a worker with RunOptions::observe feeding the watched ops' inputs into
// the set's Hessians (executor/hessian_capture.h): activations stay in C++. Float outputs come back
// as fp32 whatever the program declares, so values cached between sub-programs are not rounded.
#include <napi.h>

#include <algorithm>
#include <cstring>

#include "../executor/graph.h"
#include "../executor/hessian_capture.h"
#include "../util/free_memory.h"
#include "async_job.h"
#include "executor_js.h"
#include "hessian_set.h"
#include "module_registry.h"

namespace cmo::addon {

namespace {

[[noreturn]] void throw_coded(Napi::Env env, const std::string& code, const std::string& msg) {
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  throw err;
}

const char* kSetTag = "coreml-optimize:hessian-set";

Napi::Value CreateHessianSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "createHessianSet(columns): columns must be an array");
  Napi::Array cols = info[0].As<Napi::Array>();
  auto set = std::make_shared<HessianSet>();
  try {
    for (uint32_t k = 0; k < cols.Length(); ++k) {
      Napi::Value v = cols.Get(k);
      if (!v.IsNumber() || v.As<Napi::Number>().Int64Value() < 1)
        throw Napi::TypeError::New(env, "createHessianSet: column counts must be positive integers");
      set->items.push_back(std::make_shared<kernels::Hessian>(v.As<Napi::Number>().Int64Value()));
    }
  } catch (const std::bad_alloc&) {
    throw_coded(env, "ENOMEM", "createHessianSet: out of memory for " + std::to_string(cols.Length()) + " Hessians");
  }
  set->peak_bytes = set->bytes();
  Napi::Object handle = Napi::Object::New(env);
  auto* holder = new std::shared_ptr<HessianSet>(set);
  handle.Set("_set", Napi::External<std::shared_ptr<HessianSet>>::New(env, holder, [](Napi::Env, std::shared_ptr<HessianSet>* p) { delete p; }));
  handle.Set("_tag", kSetTag);
  handle.Set("bytes", Napi::Function::New(env, [set](const Napi::CallbackInfo& ci) { return Napi::Number::New(ci.Env(), static_cast<double>(set->bytes())); }));
  handle.Set("peakBytes", Napi::Function::New(env, [set](const Napi::CallbackInfo& ci) { return Napi::Number::New(ci.Env(), static_cast<double>(set->peak_bytes)); }));
  handle.Set("release", Napi::Function::New(env, [set](const Napi::CallbackInfo& ci) {
               if (ci[0].IsNumber()) {
                 set->release(static_cast<size_t>(ci[0].As<Napi::Number>().Int64Value()));
                 release_free_memory();
               }
               return ci.Env().Undefined();
             }));
  auto at = [set](const Napi::CallbackInfo& ci) {
    size_t k = ci[0].IsNumber() ? static_cast<size_t>(ci[0].As<Napi::Number>().Int64Value()) : SIZE_MAX;
    auto h = set->get(k);
    if (!h) throw_coded(ci.Env(), "EINVAL", "Hessian " + std::to_string(k) + " does not exist or was released");
    return h;
  };
  handle.Set("samples", Napi::Function::New(env, [at](const Napi::CallbackInfo& ci) { return Napi::Number::New(ci.Env(), static_cast<double>(at(ci)->samples())); }));
  handle.Set("data", Napi::Function::New(env, [at](const Napi::CallbackInfo& ci) {
               std::vector<float> d = at(ci)->dense();
               auto arr = Napi::Float32Array::New(ci.Env(), d.size());
               std::memcpy(arr.Data(), d.data(), d.size() * sizeof(float));
               return arr;
             }));
  return handle;
}

exec::CaptureKind kind_of(Napi::Env env, const std::string& k) {
  if (k == "linear") return exec::CaptureKind::Linear;
  if (k == "matmul") return exec::CaptureKind::Matmul;
  if (k == "conv") return exec::CaptureKind::Conv;
  throw_coded(env, "EINVAL", "createCaptureGraph: unknown watch kind '" + k + "'");
}

struct RunResult {
  std::vector<exec::FeatureValue> outputs;
  std::vector<std::string> declared;
  std::vector<int64_t> hits;
  double hessian_seconds = 0;  // total so far, for this graph
};

Napi::Value CreateCaptureGraph(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[1].IsArray())
    throw Napi::TypeError::New(env, "createCaptureGraph(description, watches, hessianSet): bad arguments");
  exec::GraphDesc desc = graph_desc_from_js(info[0].As<Napi::Object>());
  std::shared_ptr<HessianSet> set = hessian_set_from(info[2]);
  std::vector<exec::CaptureWatch> watches;
  Napi::Array ws = info[1].As<Napi::Array>();
  for (uint32_t k = 0; k < ws.Length(); ++k) {
    Napi::Object w = ws.Get(k).As<Napi::Object>();
    exec::CaptureWatch cw;
    cw.op = w.Get("op").As<Napi::String>().Utf8Value();
    cw.kind = kind_of(env, w.Get("kind").As<Napi::String>().Utf8Value());
    if (w.Get("hessians").IsArray()) {
      Napi::Array hs = w.Get("hessians").As<Napi::Array>();
      for (uint32_t j = 0; j < hs.Length(); ++j) {
        auto h = set->get(static_cast<size_t>(hs.Get(j).As<Napi::Number>().Int64Value()));
        if (!h) throw_coded(env, "EINVAL", "createCaptureGraph: watch '" + cw.op + "' names a missing Hessian");
        cw.hessians.push_back(std::move(h));
      }
    }
    watches.push_back(std::move(cw));
  }
  if (info.Length() > 3 && info[3].IsObject()) {
    Napi::Object lim = info[3].As<Napi::Object>();
    auto read = [&](const char* key, int64_t& dst) {
      Napi::Value v = lim.Get(key);
      if (v.IsUndefined()) return;
      if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 0)
        throw_coded(env, "EINVAL", std::string("createCaptureGraph: cacheLimits.") + key + " must be a number of bytes >= 0");
      dst = v.As<Napi::Number>().Int64Value();
    };
    read("widen", desc.cache_limits.widen);
    read("pack", desc.cache_limits.pack);
    read("derived", desc.cache_limits.derived);
    read("pool", desc.cache_limits.pool);
  }
  std::shared_ptr<exec::Graph> graph;
  try {
    graph = exec::Graph::build(desc);
  } catch (const Error& e) {
    throw_coded(env, e.code(), e.what());
  }
  // The graph (its weights) and the capture (references to the wave's Hessians) live in a state that
  // close() empties: waiting for the GC to collect the handle kept a finished wave's Hessians alive
  // (compressLayers could not free them layer by layer) while the next wave allocated its own.
  struct State {
    std::shared_ptr<exec::Graph> graph;
    std::shared_ptr<exec::HessianCapture> capture;
  };
  auto state = std::make_shared<State>(State{graph, std::make_shared<exec::HessianCapture>(std::move(watches))});
  graph.reset();
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("close", Napi::Function::New(env, [state](const Napi::CallbackInfo& ci) -> Napi::Value {
    state->graph.reset();  // a run in flight holds its own references
    state->capture.reset();
    release_free_memory();
    return ci.Env().Undefined();
  }, "close"));
  handle.Set("cacheStats", Napi::Function::New(env, [state](const Napi::CallbackInfo& ci) -> Napi::Value {
    Napi::Env e = ci.Env();
    if (!state->graph) throw Napi::Error::New(e, "cacheStats: the capture graph was closed");
    const exec::Graph::CacheStats st = state->graph->cache_stats();
    Napi::Object o = Napi::Object::New(e);
    auto put = [&](const char* k, size_t v) { o.Set(k, Napi::Number::New(e, static_cast<double>(v))); };
    put("widen", st.widen), put("pack", st.pack), put("derived", st.derived), put("pool", st.pool);
    put("widenLimit", st.widen_limit), put("packLimit", st.pack_limit), put("derivedLimit", st.derived_limit), put("poolLimit", st.pool_limit);
    return o;
  }, "cacheStats"));
  handle.Set("run", Napi::Function::New(env, [state](const Napi::CallbackInfo& ci) -> Napi::Value {
    Napi::Env e = ci.Env();
    if (!state->graph) throw Napi::Error::New(e, "run: the capture graph was closed");
    auto graph = state->graph;
    auto capture = state->capture;
    if (!ci[0].IsObject()) throw Napi::TypeError::New(e, "run(inputs): inputs must be an object");
    Napi::Object ins = ci[0].As<Napi::Object>();
    std::vector<exec::FeatureValue> inputs;
    Napi::Array keys = ins.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); ++k) {
      std::string name = keys.Get(k).As<Napi::String>().Utf8Value();
      inputs.push_back({name, tensor_from_js(e, name, ins.Get(name))});
    }
    unsigned threads = 0;
    if (ci[1].IsObject() && ci[1].As<Napi::Object>().Get("threads").IsNumber())
      threads = static_cast<unsigned>(std::max<int64_t>(0, ci[1].As<Napi::Object>().Get("threads").As<Napi::Number>().Int64Value()));
    std::vector<std::string> declared;
    for (const auto& t : graph->output_types()) declared.push_back(t.dtype);
    return run_job<RunResult>(
        e, ci[2], ci[3],
        [graph, capture, inputs = std::move(inputs), threads, declared](JobContext& ctx) {
          exec::RunOptions opts;
          opts.threads = threads;
          opts.progress = [&ctx](double d, double t) { ctx.progress(d, t); };
          opts.check_cancelled = [&ctx] { ctx.check_cancelled(); };
          opts.observe = [&capture](const exec::Node& n, const exec::OpContext& c) { capture->observe(n, c); };
          RunResult r;
          r.outputs = graph->run(inputs, opts);
          r.declared = declared;
          r.hits = capture->hits();
          r.hessian_seconds = capture->seconds();
          return r;
        },
        [](Napi::Env env, RunResult& r) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          Napi::Object outs = Napi::Object::New(env);
          for (size_t k = 0; k < r.outputs.size(); ++k) {
            const exec::Tensor& t = r.outputs[k].tensor;
            // Float values stay fp32 (no rounding to the declared fp16 between sub-programs).
            outs.Set(r.outputs[k].name, tensor_to_js(env, t, t.dtype == exec::DType::F32 ? "fp32" : r.declared[k]));
          }
          o.Set("outputs", outs);
          Napi::Array hits = Napi::Array::New(env, r.hits.size());
          for (size_t k = 0; k < r.hits.size(); ++k) hits.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(r.hits[k])));
          o.Set("hits", hits);
          o.Set("hessianSeconds", r.hessian_seconds);
          return o;
        });
  }, "run"));
  return handle;
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("createHessianSet", Napi::Function::New(env, CreateHessianSet, "createHessianSet"));
  exports.Set("createCaptureGraph", Napi::Function::New(env, CreateCaptureGraph, "createCaptureGraph"));
}

}  // namespace

std::shared_ptr<HessianSet> hessian_set_from(const Napi::Value& handle) {
  Napi::Env env = handle.Env();
  if (!handle.IsObject() || !handle.As<Napi::Object>().Get("_set").IsExternal())
    throw Napi::TypeError::New(env, "expected a Hessian set from createHessianSet()");
  return *handle.As<Napi::Object>().Get("_set").As<Napi::External<std::shared_ptr<HessianSet>>>().Data();
}

}  // namespace cmo::addon

CMO_ADDON_MODULE(calibrate, cmo::addon::Init);
