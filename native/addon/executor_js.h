// Conversions between JS values and the executor's C++ types, shared by the addon files that run
// graphs (executor.cc, calibrate.cc). Call on the JS thread only.
#pragma once
#include <napi.h>

#include <string>

#include "../executor/graph_desc.h"
#include "../executor/tensor.h"

namespace cmo::addon {

// The graph description src/runtime/executor.ts lowers a MIL function into.
exec::GraphDesc graph_desc_from_js(const Napi::Object& description);
// {dtype, shape, data} (fp32 / fp16 halves / int32 / bool) -> tensor; `name` is used in errors.
exec::Tensor tensor_from_js(const Napi::Env& env, const std::string& name, const Napi::Value& value);
// Tensor -> {dtype, shape, data}; `declared` (a MIL dtype) picks the JS representation (fp16 = halves).
Napi::Value tensor_to_js(Napi::Env env, const exec::Tensor& t, const std::string& declared);

}  // namespace cmo::addon
