// "precomputed" entries of compressWeights: blobs computed in JS (e.g. a user's custom LUT
// function) that still have to land in the new weight.bin at their place in op order.
#include "../blob/blob.h"
#include "compress_entries.h"

namespace cmo::addon {

namespace {

stream::Transform parse(const Napi::Object& o, const std::shared_ptr<CancelToken>&) {
  auto out = std::make_shared<stream::TransformOutput>();
  Napi::Value blobs_v = o.Get("blobs");
  if (!blobs_v.IsArray()) throw Napi::TypeError::New(o.Env(), "precomputed entry: blobs must be an array");
  Napi::Array blobs = blobs_v.As<Napi::Array>();
  for (uint32_t i = 0; i < blobs.Length(); ++i) {
    Napi::Value bv = blobs.Get(i);
    if (!bv.IsObject()) throw Napi::TypeError::New(o.Env(), "precomputed entry: each blob must be an object");
    Napi::Object b = bv.As<Napi::Object>();
    stream::OutputBlob blob;
    std::string dtype = get_string(b, "dtype", "");
    if (!blob::dtype_from_name(dtype, &blob.dtype)) throw Napi::TypeError::New(o.Env(), "precomputed entry: unknown blob dtype " + dtype);
    Napi::Value data = b.Get("bytes");
    if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(o.Env(), "precomputed entry: bytes must be a Uint8Array");
    Napi::Uint8Array bytes = data.As<Napi::Uint8Array>();
    blob.bytes.assign(bytes.Data(), bytes.Data() + bytes.ElementLength());
    blob.element_count = static_cast<uint64_t>(get_number(b, "elementCount", 0));
    if (blob::packed_size(blob.dtype, blob.element_count) != blob.bytes.size())
      throw Napi::RangeError::New(o.Env(), "precomputed entry: " + std::to_string(blob.bytes.size()) + " bytes do not hold " +
                                               std::to_string(blob.element_count) + " " + dtype + " values");
    blob.inline_if_small = get_bool(b, "inlineIfSmall", true);
    out->blobs.push_back(std::move(blob));
  }
  Napi::Value info_v = o.Get("info");
  if (info_v.IsObject()) {
    Napi::Object info = info_v.As<Napi::Object>();
    Napi::Array keys = info.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string key = keys.Get(i).ToString().Utf8Value();
      Napi::Value v = info.Get(key);
      std::vector<double> values;
      if (v.IsArray()) {
        Napi::Array a = v.As<Napi::Array>();
        for (uint32_t k = 0; k < a.Length(); ++k) values.push_back(a.Get(k).ToNumber().DoubleValue());
      } else {
        values.push_back(v.ToNumber().DoubleValue());
      }
      out->info.push_back({key, std::move(values)});
    }
  }
  // Each entry runs once; hand the prepared output over (the stream frees it after writing).
  return [out](const std::vector<stream::Source>&) { return *out; };
}

}  // namespace

CMO_COMPRESS_ENTRY(precomputed, parse);

}  // namespace cmo::addon
