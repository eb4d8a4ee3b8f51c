// N-API binding of native/util/safetensors: SafetensorsFile(path) with tensors(), metadata(),
// read(name, 'fp32' | 'fp16') → a new Float32Array / Uint16Array (one tensor at a time, straight
// from the mapping; the tensor's pages are released after the copy) and close().
#include <memory>
#include <string>

#include "../util/error.h"
#include "../util/safetensors.h"
#include "js_errors.h"
#include "module_registry.h"

namespace cmo::addon {

namespace {

using cmo::safetensors::File;
using cmo::safetensors::TensorInfo;

class SafetensorsWrap : public Napi::ObjectWrap<SafetensorsWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SafetensorsFile",
                       {InstanceAccessor<&SafetensorsWrap::Path>("path"),
                        InstanceAccessor<&SafetensorsWrap::Size>("size"),
                        InstanceMethod<&SafetensorsWrap::Tensors>("tensors"),
                        InstanceMethod<&SafetensorsWrap::Metadata>("metadata"),
                        InstanceMethod<&SafetensorsWrap::Read>("read"),
                        InstanceMethod<&SafetensorsWrap::Close>("close")});
  }

  explicit SafetensorsWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SafetensorsWrap>(info) {
    if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "path must be a string");
    path_ = info[0].As<Napi::String>().Utf8Value();
    file_ = guarded(info.Env(), [&] { return std::make_unique<File>(path_); });
  }

 private:
  const File& file(Napi::Env env) const {
    if (!file_) throw_js(env, cmo::Error("EMODELFORMAT", path_ + ": the safetensors file is closed"));
    return *file_;
  }
  Napi::Value Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), path_); }
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(file(info.Env()).file_size()));
  }

  Napi::Value Tensors(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto& all = file(env).tensors();
    Napi::Array out = Napi::Array::New(env, all.size());
    for (uint32_t i = 0; i < all.size(); ++i) {
      const TensorInfo& t = all[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", Napi::String::New(env, t.name));
      o.Set("dtype", Napi::String::New(env, safetensors::dtype_name(t.dtype)));
      Napi::Array shape = Napi::Array::New(env, t.shape.size());
      for (uint32_t k = 0; k < t.shape.size(); ++k) shape.Set(k, Napi::Number::New(env, static_cast<double>(t.shape[k])));
      o.Set("shape", shape);
      Napi::Array offsets = Napi::Array::New(env, 2);
      offsets.Set(0u, Napi::Number::New(env, static_cast<double>(t.begin)));
      offsets.Set(1u, Napi::Number::New(env, static_cast<double>(t.end)));
      o.Set("dataOffsets", offsets);
      out.Set(i, o);
    }
    return out;
  }

  Napi::Value Metadata(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    for (const auto& [k, v] : file(env).metadata()) out.Set(k, Napi::String::New(env, v));
    return out;
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const File& f = file(env);
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "tensor name must be a string");
    if (!info[1].IsString()) throw Napi::TypeError::New(env, "dtype must be 'fp32' or 'fp16'");
    std::string name = info[0].As<Napi::String>().Utf8Value();
    std::string dtype = info[1].As<Napi::String>().Utf8Value();
    if (dtype != "fp32" && dtype != "fp16") throw Napi::TypeError::New(env, "dtype must be 'fp32' or 'fp16', got '" + dtype + "'");
    const TensorInfo* t = f.find(name);
    if (!t) throw_js(env, cmo::Error("EMODELFORMAT", path_ + ": no tensor named '" + name + "'"));
    const bool half = dtype == "fp16";
    const size_t width = half ? 2 : 4;
    if (t->element_count > (uint64_t{1} << 40) / width)
      throw_js(env, cmo::Error("EUNSUPPORTED", path_ + ": tensor '" + name + "' is too large to read at once"));
    const size_t n = static_cast<size_t>(t->element_count);
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, n * width);
    guarded(env, [&] {
      if (half) f.read_fp16(*t, static_cast<uint16_t*>(buffer.Data()));
      else f.read_fp32(*t, static_cast<float*>(buffer.Data()));
      f.release(*t);
      return 0;
    });
    if (half) return Napi::Uint16Array::New(env, n, buffer, 0);
    return Napi::Float32Array::New(env, n, buffer, 0);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    file_.reset();
    return info.Env().Undefined();
  }

  std::string path_;
  std::unique_ptr<File> file_;
};

void Init(Napi::Env env, Napi::Object exports) { exports.Set("SafetensorsFile", SafetensorsWrap::Define(env)); }

}  // namespace

CMO_ADDON_MODULE(safetensors, Init);

}  // namespace cmo::addon
