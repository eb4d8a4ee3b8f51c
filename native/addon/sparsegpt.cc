// SparseGPT / GPTQ bindings (kernels/hessian.h, kernels/sparsegpt.h). Hessians are opaque handles
// (an External holding a shared_ptr, freed by the GC or hessianRelease); the work runs on libuv
// threads and settles Promises.
//   createHessian(columns) → handle
//   hessianAddRows(h, x: Float32Array, rows, samplesInBatch, onProgress?, token?) → Promise<void>
//   hessianAddConvInput(h, x, {batch, height, width}, geometry, group, onProgress?, token?) → Promise<void>
//   hessianFromRows(x, rows, columns, samplesInBatch) / hessianFromConvInput(x, input, geometry, group) → Promise<handle>
//   hessianInfo(h) → {columns, samples, bytes, factored};  hessianData(h) → Float32Array (dense; tests)
//   hessianRelease(h)  (frees the matrix now; the handle becomes unusable)
//   sparseGptLayer(weight, rows, columns, h, options, onProgress?, token?) → Promise<{weight, mask, ...}>
//   gptqLayer(weight, rows, columns, h, options, onProgress?, token?) → Promise<{weight, q, scales, ...}>
//   relativeReconstructionError(weight, weightHat, rows, columns, h) → Promise<number>
//   sparseGptReferencePath / hessianAddRowsGemm / benchConvUnfold: the benchmark's reference baseline.
// Inputs (activations, weights) are NOT copied: each typed array is kept alive by a reference until
// the job ends and must not be modified meanwhile. Large results are handed over without a copy.
#include <cstring>
#include <memory>

#include "../kernels/hessian.h"
#include "../kernels/sparsegpt.h"
#include "async_job.h"
#include "kernel_args.h"
#include "module_registry.h"

namespace cmo::addon {
namespace {

using kernels::Hessian;

const napi_type_tag kHessianTag = {0x8f3c2a61d4b74e05ULL, 0xa9e1c3b5d7f90246ULL};

struct HessianBox {
  std::shared_ptr<Hessian> h;
};

Napi::Value wrap_hessian(Napi::Env env, std::shared_ptr<Hessian> h) {
  auto ext = Napi::External<HessianBox>::New(env, new HessianBox{std::move(h)}, [](Napi::Env, HessianBox* b) { delete b; });
  ext.TypeTag(&kHessianTag);
  return ext;
}

std::shared_ptr<Hessian> hessian_of(Napi::Value v, const char* what) {
  Napi::Env env = v.Env();
  if (!v.IsExternal() || !v.As<Napi::External<HessianBox>>().CheckTypeTag(&kHessianTag))
    throw Napi::TypeError::New(env, std::string(what) + ": expected a Hessian handle (createHessian / hessianFromRows)");
  auto h = v.As<Napi::External<HessianBox>>().Data()->h;
  if (!h) throw Napi::Error::New(env, std::string(what) + ": the Hessian was released");
  return h;
}

// A Float32Array borrowed for the duration of a job: the Reference lives in the job's lambdas,
// which are destroyed on the JS thread when the worker completes.
struct Borrowed {
  const float* data = nullptr;
  size_t length = 0;
  std::shared_ptr<Napi::Reference<Napi::Value>> keep;
};

Borrowed borrow_f32(Napi::Value v, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(v.Env(), what + " must be a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  Borrowed b;
  b.data = a.Data();
  b.length = a.ElementLength();
  b.keep = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(v));
  return b;
}


int64_t int_arg(Napi::Value v, const std::string& what, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), what + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw Napi::RangeError::New(v.Env(), what + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int64_t>(d);
}

double num_opt(Napi::Object o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}
bool bool_opt(Napi::Object o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}
Napi::Object obj_arg(Napi::Value v, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return Napi::Object::New(v.Env());
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an object");
  return v.As<Napi::Object>();
}

kernels::ConvGeometry geometry_from(Napi::Value v) {
  Napi::Object o = obj_arg(v, "conv geometry");
  auto pair = [&](const char* key, int64_t dflt, int64_t& a, int64_t& b) {
    Napi::Value x = o.Get(key);
    if (x.IsUndefined()) {
      a = b = dflt;
      return;
    }
    if (!x.IsArray() || x.As<Napi::Array>().Length() != 2)
      throw Napi::TypeError::New(v.Env(), std::string("conv geometry: ") + key + " must be [h, w]");
    a = int_arg(x.As<Napi::Array>().Get(0u), key, 0, 1 << 20);
    b = int_arg(x.As<Napi::Array>().Get(1u), key, 0, 1 << 20);
  };
  kernels::ConvGeometry g;
  g.in_channels = int_arg(o.Get("inChannels"), "conv geometry: inChannels", 1, 1 << 20);
  g.groups = o.Get("groups").IsUndefined() ? 1 : int_arg(o.Get("groups"), "conv geometry: groups", 1, 1 << 20);
  pair("kernel", 1, g.kernel_h, g.kernel_w);
  pair("strides", 1, g.stride_h, g.stride_w);
  pair("dilations", 1, g.dilation_h, g.dilation_w);
  Napi::Value pad = o.Get("pad");  // [top, bottom, left, right] as MIL's custom pad
  if (!pad.IsUndefined()) {
    if (!pad.IsArray() || pad.As<Napi::Array>().Length() != 4)
      throw Napi::TypeError::New(v.Env(), "conv geometry: pad must be [top, bottom, left, right]");
    Napi::Array p = pad.As<Napi::Array>();
    g.pad_top = int_arg(p.Get(0u), "pad", 0, 1 << 20);
    g.pad_bottom = int_arg(p.Get(1u), "pad", 0, 1 << 20);
    g.pad_left = int_arg(p.Get(2u), "pad", 0, 1 << 20);
    g.pad_right = int_arg(p.Get(3u), "pad", 0, 1 << 20);
  }
  return g;
}

struct ConvInput {
  int64_t batch, height, width;
};
ConvInput conv_input_from(Napi::Value v) {
  Napi::Object o = obj_arg(v, "conv input");
  return {int_arg(o.Get("batch"), "conv input: batch", 1, 1 << 20), int_arg(o.Get("height"), "conv input: height", 1, 1 << 20),
          int_arg(o.Get("width"), "conv input: width", 1, 1 << 20)};
}

// Validated on the JS thread so a bad call is a synchronous TypeError / RangeError.
void check_conv_lengths(Napi::Env env, const Borrowed& x, const ConvInput& in, const kernels::ConvGeometry& g) {
  try {
    g.validate(in.height, in.width);
  } catch (const Error& e) {
    throw Napi::RangeError::New(env, e.what());
  }
  if (x.length != static_cast<size_t>(in.batch * g.in_channels * in.height * in.width))
    throw Napi::RangeError::New(env, "conv input: expected batch·inChannels·height·width = " +
                                         std::to_string(in.batch * g.in_channels * in.height * in.width) + " floats, got " +
                                         std::to_string(x.length));
}

struct Empty {};

Napi::Value CreateHessian(const Napi::CallbackInfo& info) {
  const int64_t cols = int_arg(info[0], "createHessian(columns): columns", 1, 1 << 17);
  try {
    return wrap_hessian(info.Env(), std::make_shared<Hessian>(cols));
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "createHessian: out of memory for a " + std::to_string(cols) + "² Hessian");
  }
}

Napi::Value HessianAddRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = hessian_of(info[0], "hessianAddRows");
  Borrowed x = borrow_f32(info[1], "hessianAddRows: x");
  const int64_t rows = int_arg(info[2], "hessianAddRows: rows", 0, int64_t{1} << 40);
  const int64_t samples = int_arg(info[3], "hessianAddRows: samplesInBatch", 1, int64_t{1} << 40);
  if (x.length != static_cast<size_t>(rows * h->columns()))
    throw Napi::RangeError::New(env, "hessianAddRows: x has " + std::to_string(x.length) + " floats, expected rows·columns = " +
                                         std::to_string(rows * h->columns()));
  return run_job<Empty>(
      env, info[4], info[5],
      [h, x, rows, samples](JobContext& ctx) {
        ctx.check_cancelled();
        h->add_rows(x.data, rows, samples);
        return Empty{};
      },
      [](Napi::Env env, Empty&) { return env.Undefined(); });
}

Napi::Value HessianAddConvInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = hessian_of(info[0], "hessianAddConvInput");
  Borrowed x = borrow_f32(info[1], "hessianAddConvInput: x");
  const ConvInput in = conv_input_from(info[2]);
  const kernels::ConvGeometry g = geometry_from(info[3]);
  const int64_t group = int_arg(info[4], "hessianAddConvInput: group", 0, g.groups - 1);
  check_conv_lengths(env, x, in, g);
  if (g.columns() != h->columns())
    throw Napi::RangeError::New(env, "hessianAddConvInput: the geometry has " + std::to_string(g.columns()) +
                                         " columns, the Hessian " + std::to_string(h->columns()));
  return run_job<Empty>(
      env, info[5], info[6],
      [h, x, in, g, group](JobContext& ctx) {
        ctx.check_cancelled();
        h->add_conv_input(x.data, in.batch, in.height, in.width, g, group);
        return Empty{};
      },
      [](Napi::Env env, Empty&) { return env.Undefined(); });
}

struct HessianOut {
  std::shared_ptr<Hessian> h;
};

Napi::Value HessianFromRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Borrowed x = borrow_f32(info[0], "hessianFromRows: x");
  const int64_t rows = int_arg(info[1], "hessianFromRows: rows", 0, int64_t{1} << 40);
  const int64_t cols = int_arg(info[2], "hessianFromRows: columns", 1, 1 << 17);
  const int64_t samples = int_arg(info[3], "hessianFromRows: samplesInBatch", 1, int64_t{1} << 40);
  if (x.length != static_cast<size_t>(rows * cols))
    throw Napi::RangeError::New(env, "hessianFromRows: x has " + std::to_string(x.length) + " floats, expected rows·columns");
  return run_job<HessianOut>(
      env, info[4], info[5],
      [x, rows, cols, samples](JobContext& ctx) {
        ctx.check_cancelled();
        HessianOut out{std::make_shared<Hessian>(cols)};
        out.h->add_rows(x.data, rows, samples);
        return out;
      },
      [](Napi::Env env, HessianOut& r) { return wrap_hessian(env, r.h); });
}

Napi::Value HessianFromConvInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Borrowed x = borrow_f32(info[0], "hessianFromConvInput: x");
  const ConvInput in = conv_input_from(info[1]);
  const kernels::ConvGeometry g = geometry_from(info[2]);
  const int64_t group = info[3].IsUndefined() ? 0 : int_arg(info[3], "hessianFromConvInput: group", 0, g.groups - 1);
  check_conv_lengths(env, x, in, g);
  return run_job<HessianOut>(
      env, info[4], info[5],
      [x, in, g, group](JobContext& ctx) {
        ctx.check_cancelled();
        HessianOut out{std::make_shared<Hessian>(g.columns())};
        out.h->add_conv_input(x.data, in.batch, in.height, in.width, g, group);
        return out;
      },
      [](Napi::Env env, HessianOut& r) { return wrap_hessian(env, r.h); });
}

Napi::Value HessianInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = hessian_of(info[0], "hessianInfo");
  Napi::Object o = Napi::Object::New(env);
  o.Set("columns", static_cast<double>(h->columns()));
  o.Set("samples", static_cast<double>(h->samples()));
  o.Set("bytes", static_cast<double>(h->bytes()));
  o.Set("factored", h->factored());
  return o;
}

Napi::Value HessianData(const Napi::CallbackInfo& info) {
  return float32_from(info.Env(), hessian_of(info[0], "hessianData")->dense());
}

Napi::Value HessianRelease(const Napi::CallbackInfo& info) {
  if (info[0].IsExternal() && info[0].As<Napi::External<HessianBox>>().CheckTypeTag(&kHessianTag))
    info[0].As<Napi::External<HessianBox>>().Data()->h.reset();  // running jobs keep their own reference
  return info.Env().Undefined();
}

struct LayerArgs {
  Borrowed weight;  // not copied: a 1280×23040 weight is 118 MB, and peak memory is the point
  int64_t rows, cols;
  std::shared_ptr<Hessian> h;
};

// A result vector handed to JS without a copy: the ArrayBuffer owns the vector's storage.
template <class T, class Array>
Array adopt(Napi::Env env, std::vector<T>&& v) {
  if (v.empty()) return Array::New(env, 0);
  auto* holder = new std::vector<T>(std::move(v));
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, holder->data(), holder->size() * sizeof(T),
                                                 [](Napi::Env, void*, std::vector<T>* h) { delete h; }, holder);
  return Array::New(env, holder->size(), buf, 0);
}

LayerArgs layer_args(const Napi::CallbackInfo& info, const char* what) {
  LayerArgs a;
  a.weight = borrow_f32(info[0], std::string(what) + ": weight");
  a.rows = int_arg(info[1], std::string(what) + ": rows", 1, int64_t{1} << 31);
  a.cols = int_arg(info[2], std::string(what) + ": columns", 1, 1 << 17);
  a.h = hessian_of(info[3], what);
  if (a.weight.length != static_cast<size_t>(a.rows * a.cols))
    throw Napi::RangeError::New(info.Env(), std::string(what) + ": weight has " + std::to_string(a.weight.length) +
                                                " floats, expected rows·columns = " + std::to_string(a.rows * a.cols));
  if (a.cols != a.h->columns())
    throw Napi::RangeError::New(info.Env(), std::string(what) + ": the weight has " + std::to_string(a.cols) +
                                                " columns but the Hessian " + std::to_string(a.h->columns()));
  return a;
}

kernels::QuantGrid quant_from(Napi::Object o, int dflt_bits) {
  kernels::QuantGrid q;
  q.bits = static_cast<int>(num_opt(o, "bits", dflt_bits));
  q.symmetric = bool_opt(o, "symmetric", true);
  q.group_size = static_cast<int64_t>(num_opt(o, "groupSize", 0));
  if (q.bits < 0 || q.bits > 8) throw Napi::RangeError::New(o.Env(), "bits must be in [1, 8] (0 = no quantization)");
  if (q.group_size < -1) throw Napi::RangeError::New(o.Env(), "groupSize must be -1 (per tensor), 0 (per channel) or positive");
  return q;
}

kernels::SparseGptOptions sparse_options_from(Napi::Value v) {
  Napi::Object o = obj_arg(v, "sparseGptLayer options");
  kernels::SparseGptOptions s;
  s.target_sparsity = num_opt(o, "targetSparsity", 0.5);
  s.n = static_cast<int>(num_opt(o, "n", 0));
  s.m = static_cast<int>(num_opt(o, "m", 0));
  s.block_size = static_cast<int64_t>(num_opt(o, "blockSize", 128));
  s.dampening = num_opt(o, "dampening", 0.01);
  s.quant = quant_from(o, 0);
  return s;
}

Napi::Object sparse_to_js(Napi::Env env, kernels::SparseGptResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("weight", adopt<float, Napi::Float32Array>(env, std::move(r.weight)));
  out.Set("mask", adopt<uint8_t, Napi::Uint8Array>(env, std::move(r.keep_mask)));
  out.Set("deadColumns", static_cast<double>(r.dead_columns));
  out.Set("error", r.error);
  out.Set("sparsity", r.sparsity);
  out.Set("tailNote", r.tail_note);
  if (!r.scales.empty()) {
    out.Set("scales", float32_from(env, r.scales));
    out.Set("zeroPoints", float32_from(env, r.zero_points));
  }
  return out;
}

// Progress and cancellation between the column blocks of one layer job.
std::function<void(int64_t, int64_t)> block_progress(JobContext& ctx) {
  return [&ctx](int64_t done, int64_t total) {
    ctx.progress(static_cast<double>(done), static_cast<double>(total));
    ctx.check_cancelled();
  };
}

Napi::Value SparseGptLayer(const Napi::CallbackInfo& info) {
  auto a = std::make_shared<LayerArgs>(layer_args(info, "sparseGptLayer"));
  kernels::SparseGptOptions o = sparse_options_from(info[4]);
  return run_job<kernels::SparseGptResult>(
      info.Env(), info[5], info[6],
      [a, o](JobContext& ctx) mutable {
        ctx.check_cancelled();
        o.on_block = block_progress(ctx);
        return kernels::sparse_gpt(a->weight.data, a->rows, a->cols, *a->h, o);
      },
      [](Napi::Env env, kernels::SparseGptResult& r) -> Napi::Value { return sparse_to_js(env, r); });
}

Napi::Value SparseGptReferencePath(const Napi::CallbackInfo& info) {
  auto a = std::make_shared<LayerArgs>(layer_args(info, "sparseGptReferencePath"));
  kernels::SparseGptOptions o = sparse_options_from(info[4]);
  return run_job<kernels::SparseGptResult>(
      info.Env(), info[5], info[6],
      [a, o](JobContext& ctx) {
        ctx.check_cancelled();
        return kernels::sparse_gpt_three_factorizations(a->weight.data, a->rows, a->cols, *a->h, o);
      },
      [](Napi::Env env, kernels::SparseGptResult& r) -> Napi::Value { return sparse_to_js(env, r); });
}

Napi::Value HessianAddRowsGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = hessian_of(info[0], "hessianAddRowsGemm");
  Borrowed x = borrow_f32(info[1], "hessianAddRowsGemm: x");
  const int64_t rows = int_arg(info[2], "hessianAddRowsGemm: rows", 0, int64_t{1} << 40);
  const int64_t samples = int_arg(info[3], "hessianAddRowsGemm: samplesInBatch", 1, int64_t{1} << 40);
  if (x.length != static_cast<size_t>(rows * h->columns())) throw Napi::RangeError::New(env, "hessianAddRowsGemm: x has the wrong length");
  return run_job<Empty>(
      env, env.Undefined(), env.Undefined(),
      [h, x, rows, samples](JobContext&) {
        kernels::hessian_add_rows_gemm(*h, x.data, rows, samples);
        return Empty{};
      },
      [](Napi::Env env, Empty&) { return env.Undefined(); });
}

Napi::Value GptqLayer(const Napi::CallbackInfo& info) {
  auto a = std::make_shared<LayerArgs>(layer_args(info, "gptqLayer"));
  Napi::Object oo = obj_arg(info[4], "gptqLayer options");
  kernels::GptqOptions o;
  o.quant = quant_from(oo, 4);
  if (o.quant.bits < 1) throw Napi::RangeError::New(info.Env(), "gptqLayer: bits must be in [1, 8]");
  o.act_order = bool_opt(oo, "actOrder", false);
  o.static_groups = bool_opt(oo, "staticGroups", o.act_order);  // coremltools: static whenever act-order
  o.block_size = static_cast<int64_t>(num_opt(oo, "blockSize", 128));
  o.dampening = num_opt(oo, "dampening", 0.01);
  return run_job<kernels::GptqResult>(
      info.Env(), info[5], info[6],
      [a, o](JobContext& ctx) mutable {
        ctx.check_cancelled();
        o.on_block = block_progress(ctx);
        return kernels::gptq(a->weight.data, a->rows, a->cols, *a->h, o);
      },
      [](Napi::Env env, kernels::GptqResult& r) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("weight", adopt<float, Napi::Float32Array>(env, std::move(r.weight)));
        out.Set("q", adopt<uint8_t, Napi::Uint8Array>(env, std::move(r.q)));
        out.Set("scales", float32_from(env, r.scales));
        out.Set("zeroPoints", float32_from(env, r.zero_points));
        auto gi = Napi::Int32Array::New(env, r.group_index.size());
        if (!r.group_index.empty()) std::memcpy(gi.Data(), r.group_index.data(), r.group_index.size() * sizeof(int32_t));
        out.Set("groupIndex", gi);
        auto perm = Napi::Int32Array::New(env, r.perm.size());
        if (!r.perm.empty()) std::memcpy(perm.Data(), r.perm.data(), r.perm.size() * sizeof(int32_t));
        out.Set("perm", perm);
        out.Set("deadColumns", static_cast<double>(r.dead_columns));
        out.Set("error", r.error);
        return out;
      });
}

struct Scalar {
  double v;
};

Napi::Value RelativeReconstructionError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Borrowed w = borrow_f32(info[0], "relativeReconstructionError: weight");
  Borrowed wh = borrow_f32(info[1], "relativeReconstructionError: weightHat");
  const int64_t rows = int_arg(info[2], "relativeReconstructionError: rows", 1, int64_t{1} << 31);
  const int64_t cols = int_arg(info[3], "relativeReconstructionError: columns", 1, 1 << 17);
  auto h = hessian_of(info[4], "relativeReconstructionError");
  if (w.length != static_cast<size_t>(rows * cols) || wh.length != w.length || cols != h->columns())
    throw Napi::RangeError::New(env, "relativeReconstructionError: weight, weightHat and Hessian sizes differ");
  return run_job<Scalar>(
      env, env.Undefined(), info[5],
      [w, wh, rows, cols, h](JobContext& ctx) {
        ctx.check_cancelled();
        return Scalar{kernels::relative_reconstruction_error(w.data, wh.data, rows, cols, *h)};
      },
      [](Napi::Env env, Scalar& s) -> Napi::Value { return Napi::Number::New(env, s.v); });
}

// Benchmark helper: the explicit unfold of one sample (the reference's nn.Unfold), synchronous.
Napi::Value BenchConvUnfold(const Napi::CallbackInfo& info) {
  Borrowed x = borrow_f32(info[0], "benchConvUnfold: x");
  const ConvInput in = conv_input_from(info[1]);
  const kernels::ConvGeometry g = geometry_from(info[2]);
  const int64_t group = int_arg(info[3], "benchConvUnfold: group", 0, g.groups - 1);
  check_conv_lengths(info.Env(), x, in, g);
  return float32_from(info.Env(), kernels::conv_unfold_ref(x.data, in.batch, in.height, in.width, g, group));
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("benchConvUnfold", Napi::Function::New(env, BenchConvUnfold, "benchConvUnfold"));
  exports.Set("createHessian", Napi::Function::New(env, CreateHessian, "createHessian"));
  exports.Set("hessianAddRows", Napi::Function::New(env, HessianAddRows, "hessianAddRows"));
  exports.Set("hessianAddConvInput", Napi::Function::New(env, HessianAddConvInput, "hessianAddConvInput"));
  exports.Set("hessianFromRows", Napi::Function::New(env, HessianFromRows, "hessianFromRows"));
  exports.Set("hessianFromConvInput", Napi::Function::New(env, HessianFromConvInput, "hessianFromConvInput"));
  exports.Set("hessianInfo", Napi::Function::New(env, HessianInfo, "hessianInfo"));
  exports.Set("hessianData", Napi::Function::New(env, HessianData, "hessianData"));
  exports.Set("hessianRelease", Napi::Function::New(env, HessianRelease, "hessianRelease"));
  exports.Set("sparseGptLayer", Napi::Function::New(env, SparseGptLayer, "sparseGptLayer"));
  exports.Set("gptqLayer", Napi::Function::New(env, GptqLayer, "gptqLayer"));
  exports.Set("relativeReconstructionError", Napi::Function::New(env, RelativeReconstructionError, "relativeReconstructionError"));
  exports.Set("sparseGptReferencePath", Napi::Function::New(env, SparseGptReferencePath, "sparseGptReferencePath"));
  exports.Set("hessianAddRowsGemm", Napi::Function::New(env, HessianAddRowsGemm, "hessianAddRowsGemm"));
}

}  // namespace
}  // namespace cmo::addon

CMO_ADDON_MODULE(sparsegpt, cmo::addon::Init);
