// quantizeTensor({data, shape, dtype?, mode, quantDtype, granularity, blockSize, axis, inputAxis, blockSizes},
//                onProgress?, cancelToken?)
//   → Promise<{quantized, scale, scaleDtype, scaleShape, blockSizes, zeroPoint?}>
#include <memory>

#include "../kernels/quantize.h"
#include "async_job.h"
#include "kernel_args.h"
#include "module_registry.h"

namespace cmo::addon {
namespace {

using namespace kernels;

struct QuantJob {
  Tensor weight;
  QuantizeOptions options;
};

std::string str_opt(Napi::Object o, const char* key, const std::string& dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("quantizeTensor: ") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int64_t int_opt(Napi::Object o, const char* key, int64_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("quantizeTensor: ") + key + " must be an integer");
  return v.As<Napi::Number>().Int64Value();
}

Napi::Value QuantizeTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "quantizeTensor(request): request must be an object");
  Napi::Object req = info[0].As<Napi::Object>();
  auto job = std::make_shared<QuantJob>();
  job->weight = float_tensor_from_js(req, "quantizeTensor");
  const std::string mode = str_opt(req, "mode", "linear_symmetric");
  if (mode == "linear_symmetric") job->options.mode = QuantMode::LinearSymmetric;
  else if (mode == "linear") job->options.mode = QuantMode::Linear;
  else throw Napi::TypeError::New(env, "quantizeTensor: mode must be 'linear_symmetric' or 'linear', got '" + mode + "'");
  // Target type: quantDtype, or `dtype` when it names an integer type (the brief's spelling).
  std::string dflt = "int8";
  if (req.Get("dtype").IsString()) {
    const std::string d = req.Get("dtype").As<Napi::String>().Utf8Value();
    if (d == "int8" || d == "uint8" || d == "int4" || d == "uint4") dflt = d;
  }
  const std::string qd = str_opt(req, "quantDtype", dflt);
  if (qd == "int8") job->options.dtype = DType::Int8;
  else if (qd == "uint8") job->options.dtype = DType::UInt8;
  else if (qd == "int4") job->options.dtype = DType::Int4;
  else if (qd == "uint4") job->options.dtype = DType::UInt4;
  else throw Napi::TypeError::New(env, "quantizeTensor: quantDtype must be int8, uint8, int4 or uint4, got '" + qd + "'");
  const auto& shape = job->weight.shape;
  if (req.Get("blockSizes").IsArray()) {
    job->options.block_sizes = shape_from_js(req.Get("blockSizes"), "quantizeTensor blockSizes");
  } else {
    const std::string g = str_opt(req, "granularity", "per_channel");
    QuantGranularity gr;
    if (g == "per_tensor") gr = QuantGranularity::PerTensor;
    else if (g == "per_channel") gr = QuantGranularity::PerChannel;
    else if (g == "per_block") gr = QuantGranularity::PerBlock;
    else throw Napi::TypeError::New(env, "quantizeTensor: granularity must be per_tensor, per_channel or per_block, got '" + g + "'");
    const int64_t axis = int_opt(req, "axis", 0);
    const int64_t in_axis = int_opt(req, "inputAxis", default_input_axis(axis, shape.size()));
    try {
      job->options.block_sizes =
          shape.empty() ? std::vector<int64_t>{} : quant_block_sizes(gr, shape, axis, in_axis, int_opt(req, "blockSize", 32));
    } catch (const Error& e) {
      throw Napi::RangeError::New(env, std::string("quantizeTensor: ") + e.what());
    }
  }
  return run_job<QuantizeResult>(
      env, info[1], info[2],
      [job](JobContext& ctx) {
        ctx.check_cancelled();
        auto r = quantize_linear(job->weight.view(), job->options);
        ctx.progress(1, 1);
        return r;
      },
      [job](Napi::Env env, QuantizeResult& r) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("quantized", typed_array_from(env, r.quantized));
        o.Set("quantizedDtype", Napi::String::New(env, mil_dtype_name(r.quantized.dtype)));
        o.Set("scale", typed_array_from(env, r.scale));
        o.Set("scaleDtype", Napi::String::New(env, mil_dtype_name(r.scale.dtype)));
        o.Set("scaleShape", shape_to_js(env, r.scale.shape));
        o.Set("blockSizes", shape_to_js(env, job->options.block_sizes));
        if (r.zero_point) o.Set("zeroPoint", typed_array_from(env, *r.zero_point));
        return o;
      });
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("quantizeTensor", Napi::Function::New(env, QuantizeTensor, "quantizeTensor"));
}

}  // namespace
}  // namespace cmo::addon

CMO_ADDON_MODULE(quantize, cmo::addon::Init);
