// constexpr_* ops (spec §4): run once at load, their outputs become constants. Decoding is done by
// the compression kernels (native/kernels/decompress.h, both the iOS16 attribute form and the iOS18
// input form); this file only converts between executor tensors and the kernels' typed views.
#include <cstring>
#include <map>

#include "../../kernels/decompress.h"
#include "common.h"

namespace cmo::exec {
namespace {

// Executor tensor -> kernel tensor in its declared MIL dtype (sub-byte types unpacked, one per byte).
kernels::Tensor to_kernel(const OpContext& c, const std::string& param, const Tensor& t) {
  std::string dtype = t.declared.empty() ? dtype_name(t.dtype) : t.declared;
  kernels::DType kd;
  try {
    kd = kernels::mil_dtype_from_name(dtype);
  } catch (const Error&) {
    c.fail("input '" + param + "' has dtype " + dtype + ", which compression ops do not take");
  }
  kernels::Tensor out(kd, t.shape);
  const int64_t n = t.size();
  if (t.is_half_backed() && kd == kernels::DType::Float16) {
    std::memcpy(out.bytes.data(), t.h.get(), static_cast<size_t>(n) * 2);
  } else if (t.is_half_backed()) {
    Tensor w = as_f32(t);
    for (int64_t k = 0; k < n; ++k) out.set_float(static_cast<size_t>(k), w.fdata()[k]);
  } else if (t.dtype == DType::F32) {
    for (int64_t k = 0; k < n; ++k) out.set_float(static_cast<size_t>(k), t.fdata()[k]);
  } else if (t.dtype == DType::Str) {
    c.fail("input '" + param + "' is a string");
  } else {
    const size_t width = kernels::dtype_unpacked_size(kd);
    for (int64_t k = 0; k < n; ++k) {
      int32_t v = t.idata()[k];
      if (kernels::dtype_is_float(kd)) out.set_float(static_cast<size_t>(k), static_cast<float>(v));
      else std::memcpy(out.bytes.data() + static_cast<size_t>(k) * width, &v, width);  // little-endian truncation
    }
  }
  return out;
}

Tensor from_kernel(kernels::Tensor&& t) {
  kernels::TensorData v = t.view();
  if (t.dtype == kernels::DType::Float16) {
    // Keep decoded fp16 weights as halves (half the memory); ops widen them when they run.
    auto holder = std::make_shared<std::vector<uint8_t>>(std::move(t.bytes));
    Tensor out;
    out.dtype = DType::F32;
    out.shape = t.shape;
    out.h = std::shared_ptr<const uint16_t>(holder, reinterpret_cast<const uint16_t*>(holder->data()));
    return out;
  }
  if (kernels::dtype_is_float(t.dtype)) {
    Tensor out = Tensor::f32(t.shape);
    std::vector<float> f = kernels::to_float32(v);
    std::copy(f.begin(), f.end(), out.fdata());
    return out;
  }
  Tensor out = Tensor::i32(t.shape);
  for (int64_t k = 0; k < t.numel(); ++k) out.idata()[k] = static_cast<int32_t>(v.get_int(static_cast<size_t>(k)));
  return out;
}

void k_decompress(OpContext& c) {
  std::map<std::string, kernels::Tensor> owned;
  for (const auto& in : c.node().inputs)
    if (const Tensor* t = c.find(in.first.c_str())) owned.emplace(in.first, to_kernel(c, in.first, *t));
  kernels::ParamMap params;
  for (const auto& kv : owned) params[kv.first] = kv.second.view();
  auto outs = kernels::decompress_op(c.node().type, c.opset() < 18 ? kernels::Opset::IOS16 : kernels::Opset::IOS18, params,
                                     "op '" + c.node().name + "' (" + c.node().type + ")");
  if (outs.size() != c.num_outputs()) c.fail("decoder returned " + std::to_string(outs.size()) + " outputs");
  for (size_t k = 0; k < outs.size(); ++k) c.set(k, from_kernel(std::move(outs[k])));
}

}  // namespace

void register_constexpr_ops() {
  for (const char* op : {"constexpr_lut_to_dense", "constexpr_sparse_to_dense", "constexpr_blockwise_shift_scale",
                         "constexpr_sparse_blockwise_shift_scale", "constexpr_lut_to_sparse", "constexpr_affine_dequantize",
                         "constexpr_cast"})
    register_kernel(op, k_decompress);
}

}  // namespace cmo::exec
