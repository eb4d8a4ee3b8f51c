// gemmBenchmark({ m, n, k, repeats, threads }): the achieved GFLOP/s of the executor's GEMM path
// (BLAS single-threaded per block, split over our pool), the peak the executor benchmark compares
// its own throughput against.
#include <chrono>
#include <vector>

#include "../executor/ops/gemm.h"
#include "../linalg/blas.h"
#include "async_job.h"
#include "module_registry.h"

namespace cmo::addon {

namespace {

struct GemmBench {
  double seconds = 0;
  double gflops = 0;
};

Napi::Value GemmBenchmark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "gemmBenchmark(options): options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto num = [&](const char* key, double fallback) {
    Napi::Value v = o.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
  };
  const int64_t m = static_cast<int64_t>(num("m", 1024)), n = static_cast<int64_t>(num("n", 1024)), k = static_cast<int64_t>(num("k", 1024));
  const int repeats = static_cast<int>(num("repeats", 5));
  const unsigned threads = static_cast<unsigned>(num("threads", 0));
  if (m <= 0 || n <= 0 || k <= 0 || m * k > (1ll << 28) || k * n > (1ll << 28) || m * n > (1ll << 28) || repeats < 1)
    throw Napi::RangeError::New(env, "gemmBenchmark: sizes must be positive and below 2^28 elements per matrix");
  return run_job<GemmBench>(
      env, env.Undefined(), env.Undefined(),
      [=](JobContext&) {
        std::vector<float> a(static_cast<size_t>(m * k), 0.5f), b(static_cast<size_t>(k * n), 0.25f), c(static_cast<size_t>(m * n));
        exec::use_single_threaded_blas();
        exec::gemm(threads, false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);  // warm-up
        double best = 1e30;
        for (int r = 0; r < repeats; ++r) {
          auto t0 = std::chrono::steady_clock::now();
          exec::gemm(threads, false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
          best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        GemmBench r;
        r.seconds = best;
        r.gflops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) / best / 1e9;
        return r;
      },
      [](Napi::Env env, GemmBench& r) {
        Napi::Object out = Napi::Object::New(env);
        out.Set("seconds", r.seconds);
        out.Set("gflops", r.gflops);
        out.Set("blas", linalg::blas_backend_name());
        return out;
      });
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("gemmBenchmark", Napi::Function::New(env, GemmBenchmark, "gemmBenchmark"));
}

}  // namespace

}  // namespace cmo::addon

CMO_ADDON_MODULE(linalg, cmo::addon::Init);
