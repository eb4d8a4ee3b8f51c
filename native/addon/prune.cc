// pruneTensor({data, shape, dtype?, kind: 'magnitude'|'block'|'nm'|'threshold', targetSparsity, blockSize,
//              n, m, dim, threshold, minimumSparsity}, onProgress?, cancelToken?)
//   → Promise<{mask, maskPackedLsb, nonzero, sparsity, skipped?: string}>
#include <memory>

#include "../kernels/decompress_bitpack.h"
#include "../kernels/prune.h"
#include "async_job.h"
#include "kernel_args.h"
#include "module_registry.h"

namespace cmo::addon {
namespace {

using namespace kernels;

enum class Kind { Magnitude, Block, NM, Threshold };

struct PruneJob {
  Tensor weight;
  Kind kind = Kind::Magnitude;
  double target = 0.5, threshold = 1e-12, minimum_sparsity = -1;
  int64_t block_size = 0, n = 0, m = 0, dim = 0;
};

struct PruneOut {
  PruneResult result;
  std::string skipped;
};

double num_opt(Napi::Object o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("pruneTensor: ") + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

Napi::Value PruneTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "pruneTensor(request): request must be an object");
  Napi::Object req = info[0].As<Napi::Object>();
  auto job = std::make_shared<PruneJob>();
  job->weight = float_tensor_from_js(req, "pruneTensor");
  const std::string kind = req.Get("kind").IsString() ? req.Get("kind").As<Napi::String>().Utf8Value() : "";
  if (kind == "magnitude") job->kind = Kind::Magnitude;
  else if (kind == "block") job->kind = Kind::Block;
  else if (kind == "nm") job->kind = Kind::NM;
  else if (kind == "threshold") job->kind = Kind::Threshold;
  else throw Napi::TypeError::New(env, "pruneTensor: kind must be 'magnitude', 'block', 'nm' or 'threshold'");
  job->target = num_opt(req, "targetSparsity", 0.5);
  job->threshold = num_opt(req, "threshold", 1e-12);
  job->block_size = static_cast<int64_t>(num_opt(req, "blockSize", 2));
  job->n = static_cast<int64_t>(num_opt(req, "n", 2));
  job->m = static_cast<int64_t>(num_opt(req, "m", 4));
  // coremltools defaults: dim 0 for block sparsity, 1 for n:m.
  job->dim = static_cast<int64_t>(num_opt(req, "dim", job->kind == Kind::NM ? 1 : 0));
  job->minimum_sparsity = num_opt(req, "minimumSparsity", job->kind == Kind::Threshold ? 0.5 : -1);
  return run_job<PruneOut>(
      env, info[1], info[2],
      [job](JobContext& ctx) {
        ctx.check_cancelled();
        const TensorData w = job->weight.view();
        PruneOut out;
        std::vector<uint8_t> keep;
        switch (job->kind) {
          case Kind::Magnitude: keep = magnitude_prune_mask(w, job->target); break;
          case Kind::Block:
            out.skipped = block_prune_skip_reason(w.shape, job->block_size, job->dim);
            if (out.skipped.empty()) keep = block_prune_mask(w, job->target, job->block_size, job->dim);
            break;
          case Kind::NM:
            out.skipped = nm_prune_skip_reason(w.shape, job->m, job->dim);
            if (out.skipped.empty()) keep = nm_prune_mask(w, job->n, job->m, job->dim);
            break;
          case Kind::Threshold: keep = threshold_prune_mask(w, job->threshold); break;
        }
        if (keep.empty()) keep.assign(static_cast<size_t>(w.numel()), 1);
        out.result = prune_result(w, std::move(keep));
        if (out.skipped.empty() && out.result.sparsity < job->minimum_sparsity)
          out.skipped = "weight value has sparsity of " + std::to_string(out.result.sparsity) +
                        " < minimum_sparsity_percentile " + std::to_string(job->minimum_sparsity);
        ctx.progress(1, 1);
        return out;
      },
      [](Napi::Env env, PruneOut& out) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        const auto& mask = out.result.mask;
        Napi::Uint8Array m = Napi::Uint8Array::New(env, mask.size());
        std::copy(mask.begin(), mask.end(), m.Data());
        o.Set("mask", m);
        auto packed = pack_bits_lsb(mask.data(), mask.size(), 1);
        Napi::Uint8Array p = Napi::Uint8Array::New(env, packed.size());
        std::copy(packed.begin(), packed.end(), p.Data());
        o.Set("maskPackedLsb", p);
        o.Set("nonzero", typed_array_from(env, out.result.nonzero));
        o.Set("sparsity", Napi::Number::New(env, out.result.sparsity));
        if (!out.skipped.empty()) o.Set("skipped", Napi::String::New(env, out.skipped));
        return o;
      });
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("pruneTensor", Napi::Function::New(env, PruneTensor, "pruneTensor"));
}

}  // namespace
}  // namespace cmo::addon

CMO_ADDON_MODULE(prune, cmo::addon::Init);
