// JS <-> plain-C++ tensor conversion shared by the kernel bindings (quantize.cc, prune.cc,
// decompress.cc). Inputs are copied on the JS thread so the libuv worker never touches JS memory.
#pragma once
#include <napi.h>

#include <string>

#include "../kernels/tensor_view.h"

namespace cmo::addon {

// Bytes of a TypedArray / Buffer / DataView / ArrayBuffer (copied). Throws a JS TypeError otherwise.
std::vector<uint8_t> bytes_from_js(Napi::Value v, const std::string& what);
std::vector<int64_t> shape_from_js(Napi::Value v, const std::string& what);

// {dtype, shape, data}. Sub-byte dtypes accept packed (LSB-first, ceil(n*bits/8) bytes) or unpacked
// (one value per byte) data, told apart by length; int4 unpacked values are sign-extended.
kernels::Tensor tensor_from_js(Napi::Object o, const std::string& what);
// dtype inferred from the TypedArray when `dtype` is absent: Float32Array → fp32, Uint16Array → fp16.
kernels::Tensor float_tensor_from_js(Napi::Object o, const std::string& what);

// Typed array holding the tensor's elements: Float32Array (fp32), Uint16Array (fp16 bits), Int8Array
// (int8/int4), Uint8Array (uint8/uint1..uint6), Int32Array, Uint32Array, Int16Array, Uint16Array.
Napi::Value typed_array_from(Napi::Env env, const kernels::Tensor& t);
Napi::Array shape_to_js(Napi::Env env, const std::vector<int64_t>& shape);
Napi::Float32Array float32_from(Napi::Env env, const std::vector<float>& v);

}  // namespace cmo::addon
