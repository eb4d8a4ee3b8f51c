// N-API entry point: process-wide functions (build info, thread pool, cancel tokens), then every
// module registered with CMO_ADDON_MODULE.
#include <napi.h>

#include "../linalg/blas.h"
#include "../util/thread_pool.h"
#include "async_job.h"
#include "module_registry.h"

namespace cmo::addon {

std::vector<ModuleEntry>& module_registry() {
  static std::vector<ModuleEntry> entries;
  return entries;
}

std::shared_ptr<CancelToken> cancel_token_from(Napi::Value value) {
  if (value.IsUndefined() || value.IsNull()) return std::make_shared<CancelToken>();
  if (!value.IsExternal()) throw Napi::TypeError::New(value.Env(), "cancel token must come from createCancelToken()");
  return *value.As<Napi::External<std::shared_ptr<CancelToken>>>().Data();
}

void reject_with(Napi::Env env, Napi::Promise::Deferred& deferred, const std::string& code,
                 const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  if (code == "ABORT_ERR") err.Set("name", Napi::String::New(env, "AbortError"));
  deferred.Reject(err.Value());
}

namespace {

Napi::Value CreateCancelToken(const Napi::CallbackInfo& info) {
  auto* holder = new std::shared_ptr<CancelToken>(std::make_shared<CancelToken>());
  return Napi::External<std::shared_ptr<CancelToken>>::New(
      info.Env(), holder, [](Napi::Env, std::shared_ptr<CancelToken>* p) { delete p; });
}

Napi::Value Cancel(const Napi::CallbackInfo& info) {
  auto token = cancel_token_from(info[0]);
  token->cancelled = true;
  return info.Env().Undefined();
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "setThreads(n): n must be a number (0 = all cores)");
  int64_t n = info[0].As<Napi::Number>().Int64Value();
  if (n < 0 || n > 1024) throw Napi::RangeError::New(info.Env(), "setThreads(n): n must be in [0, 1024]");
  ThreadPool::resize_global(static_cast<unsigned>(n));
  return Napi::Number::New(info.Env(), ThreadPool::global()->size());
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ThreadPool::global()->size());
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("blas", Napi::String::New(env, linalg::blas_backend_name()));
  out.Set("threads", Napi::Number::New(env, ThreadPool::global()->size()));
  out.Set("defaultThreads", Napi::Number::New(env, ThreadPool::default_threads()));
  // The SIMD level the GEMM kernels actually use on this CPU (chosen at run time), and the
  // compiler's baseline for everything else.
  out.Set("simd", Napi::String::New(env, linalg::portable_kernel_name()));
#if defined(__AVX512F__)
  out.Set("simdBaseline", Napi::String::New(env, "avx512f"));
#elif defined(__AVX2__)
  out.Set("simdBaseline", Napi::String::New(env, "avx2"));
#elif defined(__SSE2__)
  out.Set("simdBaseline", Napi::String::New(env, "sse2"));
#elif defined(__ARM_NEON)
  out.Set("simdBaseline", Napi::String::New(env, "neon"));
#else
  out.Set("simdBaseline", Napi::String::New(env, "scalar"));
#endif
  out.Set("blasDetail", Napi::String::New(env, linalg::blas_backend_detail()));
  out.Set("executorGemm", Napi::String::New(env, linalg::executor_gemm_detail()));
#if defined(__APPLE__)
  out.Set("coreml", Napi::Boolean::New(env, true));
#else
  out.Set("coreml", Napi::Boolean::New(env, false));
#endif
#if defined(CMO_BUILD_SYSTEM)
  out.Set("buildSystem", Napi::String::New(env, CMO_BUILD_SYSTEM));
#endif
  out.Set("compiler", Napi::String::New(env, __VERSION__));
  Napi::Array modules = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto& m : module_registry()) modules.Set(i++, Napi::String::New(env, m.name));
  out.Set("modules", modules);
  return out;
}

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("createCancelToken", Napi::Function::New(env, CreateCancelToken, "createCancelToken"));
  exports.Set("cancel", Napi::Function::New(env, Cancel, "cancel"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads, "getThreads"));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  for (const auto& m : module_registry()) m.init(env, exports);
  return exports;
}

}  // namespace

}  // namespace cmo::addon

// NODE_API_MODULE pastes its argument into an identifier, so it needs an unqualified name.
static Napi::Object InitCoremlOptimize(Napi::Env env, Napi::Object exports) {
  return cmo::addon::InitAddon(env, exports);
}
NODE_API_MODULE(coreml_optimize, InitCoremlOptimize)
