// decompressOp({type, opset, params: {name: {dtype, shape, data}}, name?, values?: bool, data?: bool},
//              onProgress?, cancelToken?)
//   → Promise<{dtype, shape, values: Float32Array, data: TypedArray (output dtype), outputs: [...]}>
// For two-output ops (lut_to_sparse, sparse_blockwise_shift_scale) the top-level fields describe the
// values output (output 1); `outputs` lists every output in op order.
#include <memory>

#include "../kernels/decompress.h"
#include "async_job.h"
#include "kernel_args.h"
#include "module_registry.h"

namespace cmo::addon {
namespace {

using kernels::Tensor;

struct DecompressJob {
  std::string type;
  kernels::Opset opset = kernels::Opset::IOS18;
  std::map<std::string, Tensor> params;
  std::string where;
  bool want_values = true;  // the float32 copy (skip to halve peak memory on big weights)
  bool want_data = true;    // the copy in the output dtype
};

Napi::Object output_to_js(Napi::Env env, const Tensor& t, const DecompressJob& job) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("dtype", Napi::String::New(env, kernels::mil_dtype_name(t.dtype)));
  o.Set("shape", shape_to_js(env, t.shape));
  if (job.want_values) o.Set("values", float32_from(env, kernels::to_float32(t.view())));
  if (job.want_data) o.Set("data", typed_array_from(env, t));
  return o;
}

Napi::Value DecompressOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "decompressOp(request): request must be an object");
  Napi::Object req = info[0].As<Napi::Object>();
  auto job = std::make_shared<DecompressJob>();
  if (!req.Get("type").IsString()) throw Napi::TypeError::New(env, "decompressOp: type must be the op type string");
  job->type = req.Get("type").As<Napi::String>().Utf8Value();
  Napi::Value opset = req.Get("opset");
  std::string os = opset.IsString() ? opset.As<Napi::String>().Utf8Value() : "ios18";
  if (os != "ios16" && os != "ios18") throw Napi::TypeError::New(env, "decompressOp: opset must be 'ios16' or 'ios18'");
  job->opset = os == "ios16" ? kernels::Opset::IOS16 : kernels::Opset::IOS18;
  job->where = req.Get("name").IsString() ? req.Get("name").As<Napi::String>().Utf8Value() : job->type;
  if (req.Get("values").IsBoolean()) job->want_values = req.Get("values").As<Napi::Boolean>().Value();
  if (req.Get("data").IsBoolean()) job->want_data = req.Get("data").As<Napi::Boolean>().Value();
  if (!req.Get("params").IsObject()) throw Napi::TypeError::New(env, "decompressOp: params must be an object");
  Napi::Object params = req.Get("params").As<Napi::Object>();
  Napi::Array keys = params.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value v = params.Get(k);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "decompressOp: param " + k + " must be {dtype, shape, data}");
    job->params[k] = tensor_from_js(v.As<Napi::Object>(), job->where + " param " + k);
  }
  return run_job<std::vector<Tensor>>(
      env, info[1], info[2],
      [job](JobContext& ctx) {
        ctx.check_cancelled();
        kernels::ParamMap views;
        for (auto& [k, t] : job->params) views[k] = t.view();
        auto out = kernels::decompress_op(job->type, job->opset, views, job->where);
        ctx.progress(1, 1);
        return out;
      },
      [job](Napi::Env env, std::vector<Tensor>& outs) -> Napi::Value {
        Napi::Object r = output_to_js(env, outs.back(), *job);
        Napi::Array all = Napi::Array::New(env, outs.size());
        for (size_t i = 0; i < outs.size(); ++i) all.Set(static_cast<uint32_t>(i), output_to_js(env, outs[i], *job));
        r.Set("outputs", all);
        return r;
      });
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("decompressOp", Napi::Function::New(env, DecompressOp, "decompressOp"));
}

}  // namespace
}  // namespace cmo::addon

CMO_ADDON_MODULE(decompress, cmo::addon::Init);
