#include "kernel_args.h"

#include <cstring>

#include "../kernels/decompress_bitpack.h"

namespace cmo::addon {

using kernels::DType;
using kernels::Tensor;

std::vector<uint8_t> bytes_from_js(Napi::Value v, const std::string& what) {
  Napi::Env env = v.Env();
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    return std::vector<uint8_t>(p, p + ta.ByteLength());
  }
  if (v.IsDataView()) {
    Napi::DataView dv = v.As<Napi::DataView>();
    const uint8_t* p = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    return std::vector<uint8_t>(p, p + dv.ByteLength());
  }
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    const uint8_t* p = static_cast<const uint8_t*>(ab.Data());
    return std::vector<uint8_t>(p, p + ab.ByteLength());
  }
  throw Napi::TypeError::New(env, what + ": data must be a TypedArray, Buffer or ArrayBuffer");
}

std::vector<int64_t> shape_from_js(Napi::Value v, const std::string& what) {
  Napi::Env env = v.Env();
  if (!v.IsArray()) throw Napi::TypeError::New(env, what + ": shape must be an array of non-negative integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> s;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    if (!d.IsNumber()) throw Napi::TypeError::New(env, what + ": shape must be an array of non-negative integers");
    double x = d.As<Napi::Number>().DoubleValue();
    if (x < 0 || x != static_cast<double>(static_cast<int64_t>(x)))
      throw Napi::TypeError::New(env, what + ": shape must be an array of non-negative integers");
    s.push_back(static_cast<int64_t>(x));
  }
  return s;
}

static Tensor finish(DType dt, std::vector<int64_t> shape, std::vector<uint8_t> bytes, Napi::Env env,
                     const std::string& what) {
  Tensor t;
  t.dtype = dt;
  t.shape = std::move(shape);
  int64_t n;
  try {
    n = kernels::shape_numel(t.shape);
  } catch (const Error& e) {
    throw Napi::RangeError::New(env, what + ": " + e.what());
  }
  const size_t count = static_cast<size_t>(n);
  if (kernels::dtype_is_subbyte(dt)) {
    const int bits = kernels::dtype_bits(dt);
    if (bytes.size() == count) {
      if (dt == DType::Int4)
        for (auto& b : bytes) b = static_cast<uint8_t>(static_cast<int8_t>(static_cast<uint8_t>(b << 4)) >> 4);
      t.bytes = std::move(bytes);
    } else if (bytes.size() == kernels::packed_size_bytes(count, bits)) {
      t.bytes = kernels::unpack_bits_lsb(bytes.data(), bytes.size(), count, bits, dt == DType::Int4);
    } else {
      throw Napi::RangeError::New(env, what + ": " + std::to_string(bytes.size()) + " bytes fit neither " +
                                           std::to_string(count) + " unpacked nor packed " + kernels::mil_dtype_name(dt) + " values");
    }
  } else {
    if (bytes.size() != count * kernels::dtype_unpacked_size(dt))
      throw Napi::RangeError::New(env, what + ": " + std::to_string(bytes.size()) + " bytes do not match " +
                                           kernels::mil_dtype_name(dt) + " shape " + kernels::shape_string(t.shape));
    t.bytes = std::move(bytes);
  }
  return t;
}

Tensor tensor_from_js(Napi::Object o, const std::string& what) {
  Napi::Env env = o.Env();
  Napi::Value dv = o.Get("dtype");
  if (!dv.IsString()) throw Napi::TypeError::New(env, what + ": dtype must be a string such as 'fp16' or 'uint4'");
  DType dt;
  try {
    dt = kernels::mil_dtype_from_name(dv.As<Napi::String>().Utf8Value());
  } catch (const Error& e) {
    throw Napi::TypeError::New(env, what + ": " + e.what());
  }
  return finish(dt, shape_from_js(o.Get("shape"), what), bytes_from_js(o.Get("data"), what), env, what);
}

Tensor float_tensor_from_js(Napi::Object o, const std::string& what) {
  Napi::Env env = o.Env();
  Napi::Value data = o.Get("data");
  DType dt;
  Napi::Value dv = o.Get("dtype");
  // quantizeTensor also accepts the target integer type in `dtype` (the weight type is then inferred).
  const bool weight_dtype_given =
      dv.IsString() && (dv.As<Napi::String>().Utf8Value().rfind("fp", 0) == 0 || dv.As<Napi::String>().Utf8Value().rfind("float", 0) == 0);
  if (weight_dtype_given) {
    try {
      dt = kernels::mil_dtype_from_name(dv.As<Napi::String>().Utf8Value());
    } catch (const Error& e) {
      throw Napi::TypeError::New(env, what + ": " + e.what());
    }
  } else if (data.IsTypedArray() && data.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    dt = DType::Float32;
  } else if (data.IsTypedArray() && data.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
    dt = DType::Float16;
  } else {
    throw Napi::TypeError::New(env, what + ": data must be a Float32Array (fp32) or Uint16Array (fp16 bits), or give dtype");
  }
  if (dt != DType::Float16 && dt != DType::Float32) throw Napi::TypeError::New(env, what + ": weight dtype must be fp16 or fp32");
  return finish(dt, shape_from_js(o.Get("shape"), what), bytes_from_js(data, what), env, what);
}

template <class TA, class T>
static Napi::Value make_typed(Napi::Env env, const Tensor& t) {
  const size_t n = t.bytes.size() / sizeof(T);
  TA arr = TA::New(env, n);
  if (n) std::memcpy(arr.Data(), t.bytes.data(), n * sizeof(T));
  return arr;
}

Napi::Value typed_array_from(Napi::Env env, const Tensor& t) {
  switch (t.dtype) {
    case DType::Float32: return make_typed<Napi::Float32Array, float>(env, t);
    case DType::Float16: case DType::UInt16: case DType::BFloat16: return make_typed<Napi::Uint16Array, uint16_t>(env, t);
    case DType::Int16: return make_typed<Napi::Int16Array, int16_t>(env, t);
    case DType::Int8: case DType::Int4: return make_typed<Napi::Int8Array, int8_t>(env, t);
    case DType::Int32: return make_typed<Napi::Int32Array, int32_t>(env, t);
    case DType::UInt32: return make_typed<Napi::Uint32Array, uint32_t>(env, t);
    default: return make_typed<Napi::Uint8Array, uint8_t>(env, t);
  }
}

Napi::Array shape_to_js(Napi::Env env, const std::vector<int64_t>& shape) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  return a;
}

Napi::Float32Array float32_from(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
  return a;
}

}  // namespace cmo::addon
