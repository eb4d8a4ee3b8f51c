// Materialization of Core ML compression ops (constexpr_*, spec §4.1/§4.2/§4.5).
//
// Inputs are TensorData views in the unpacked layout (tensor_view.h); iOS16 packed uint8 indices/masks
// are unpacked here. Outputs are owned Tensors in the op's output dtype, computed with the op's own
// arithmetic: blockwise_shift_scale in the scale's float type step by step (numpy semantics:
// data.astype(scale.dtype) - offset, then * scale, each rounded to fp16 when the scale is fp16);
// affine_dequantize in fp32 then cast to the scale's dtype (coremltools' dequantize_by_scale_and_zp).
//
// Every op has a fast version (parallel, stride arithmetic) and a `_ref` version (one element at a
// time, multi-index unravel) used as the test oracle.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tensor_view.h"

namespace cmo::kernels {

enum class Opset { IOS16, IOS18 };

using ParamMap = std::map<std::string, TensorData>;

// Decodes op `op_type` ("constexpr_lut_to_dense", ...). Outputs in op order: one tensor, or
// [mask (uint1), values] for constexpr_lut_to_sparse / constexpr_sparse_blockwise_shift_scale.
// `where` names the op (or file) in error messages.
std::vector<Tensor> decompress_op(const std::string& op_type, Opset opset, const ParamMap& params,
                                  const std::string& where = "");
std::vector<Tensor> decompress_op_ref(const std::string& op_type, Opset opset, const ParamMap& params,
                                      const std::string& where = "");

// Individual decoders (fast). Parameter checks throw cmo::Error(EINVAL) naming `where`.
Tensor lut_to_dense(const TensorData& indices, const TensorData& lut, std::optional<int64_t> vector_axis,
                    const std::string& where);
Tensor sparse_to_dense(const TensorData& nonzero_data, const TensorData& mask, const std::string& where);
Tensor blockwise_shift_scale(const TensorData& data, const TensorData& scale, const TensorData* offset,
                             const std::string& where);
Tensor affine_dequantize(const TensorData& quantized, const TensorData& zero_point, const TensorData& scale,
                         int64_t axis, const std::string& where);
Tensor cast_tensor(const TensorData& source, DType out, const std::string& where);
std::vector<Tensor> lut_to_sparse(const TensorData& mask, const TensorData& nonzero_indices, const TensorData& lut,
                                  std::optional<int64_t> vector_axis, const std::string& where);
std::vector<Tensor> sparse_blockwise_shift_scale(const TensorData& mask, const TensorData& nonzero_data,
                                                 const TensorData& scale, const TensorData* offset,
                                                 const std::string& where);

// Scalar references.
Tensor lut_to_dense_ref(const TensorData& indices, const TensorData& lut, std::optional<int64_t> vector_axis,
                        const std::string& where);
Tensor sparse_to_dense_ref(const TensorData& nonzero_data, const TensorData& mask, const std::string& where);
Tensor blockwise_shift_scale_ref(const TensorData& data, const TensorData& scale, const TensorData* offset,
                                 const std::string& where);
Tensor affine_dequantize_ref(const TensorData& quantized, const TensorData& zero_point, const TensorData& scale,
                             int64_t axis, const std::string& where);

// iOS16 → iOS18 parameter forms (unpack packed indices / masks, reshape the 1-D LUT to rank K+2).
struct Ios16Lut {
  Tensor indices;  // uint{nbits}, output shape
  Tensor lut;      // [1,...,1, N, 1]
};
Ios16Lut ios16_lut_params(const TensorData& packed_indices, const TensorData& lut, const TensorData& shape,
                          const std::string& where);
Tensor ios16_mask(const TensorData& packed_mask, const TensorData& shape, const std::string& where);

// Rounds v to the float type `t` (fp16: RNE; fp32: identity). Used for step-wise fp16 arithmetic.
float round_to(DType t, float v);

}  // namespace cmo::kernels
