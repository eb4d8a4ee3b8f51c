// Helpers shared by decompress.cc (fast) and decompress_ref.cc (reference): parameter validation
// and shape arithmetic. Validation lives in one place so both versions reject the same inputs.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "decompress.h"

namespace cmo::kernels::detail {

[[noreturn]] void bad_param(const std::string& where, const std::string& msg);

std::vector<int64_t> row_major_strides(const std::vector<int64_t>& shape);

// Block factors B[k] = out[k] / param[k]; ranks must match and divide exactly.
std::vector<int64_t> block_factors(const std::vector<int64_t>& out_shape, const std::vector<int64_t>& param_shape,
                                   const std::string& where, const std::string& param_name);

struct LutGeometry {
  size_t rank = 0;                    // K
  int64_t palette = 0;                // lut.shape[-2]
  int64_t vector_size = 1;            // lut.shape[-1]
  int64_t axis = -1;                  // normalized vector axis (>= 0 when vector_size > 1)
  std::vector<int64_t> groups;        // G[k] = indices.shape[k] / lut.shape[k]
  std::vector<int64_t> lut_strides;   // strides of the lut (rank K+2)
  std::vector<int64_t> out_shape;
};
LutGeometry lut_geometry(const TensorData& indices, const TensorData& lut, std::optional<int64_t> vector_axis,
                         const std::string& where);

void check_float_out(DType t, const std::string& where, const std::string& param);
void check_shift_scale(const TensorData& data, const TensorData& scale, const TensorData* offset,
                       const std::string& where);
int64_t normalize_affine(const TensorData& q, const TensorData& zp, const TensorData& scale, int64_t axis,
                         const std::string& where);
int64_t count_mask(const TensorData& mask);
int64_t scalar_int(const TensorData& t, const std::string& where, const std::string& name);
std::vector<int64_t> shape_from_tensor(const TensorData& shape, const std::string& where);

// Keeps the elements of `dense` where `mask` is set (row-major) → 1-D tensor.
Tensor gather_masked(const Tensor& dense, const TensorData& mask, const std::string& where);
// Repeats a mask V times along `axis` (lut_to_sparse output 0 for vector LUTs).
Tensor expand_mask(const TensorData& mask, int64_t axis, int64_t v);

}  // namespace cmo::kernels::detail
