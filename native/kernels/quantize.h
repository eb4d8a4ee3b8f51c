// Linear weight quantization with coremltools' numerics (spec §5.4, `_utils.quantize_weight_by_dtype`).
//
// Arithmetic happens in the weight's own float type, one numpy operation at a time: for fp16 weights
// every intermediate (hi - lo, the scale, w / scale, the LINEAR zero point) is rounded to fp16 exactly
// as numpy's half ufuncs do (compute in fp32, round to nearest even). np.round is half-to-even; the
// zero point is added after rounding; then clip. This reproduces the stored data/scale/offset of
// coremltools 9.0 bit for bit (tested against the golden q_* packages).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "tensor_view.h"

namespace cmo::kernels {

enum class QuantMode { LinearSymmetric, Linear };
enum class QuantGranularity { PerTensor, PerChannel, PerBlock };

struct QuantizeOptions {
  QuantMode mode = QuantMode::LinearSymmetric;
  DType dtype = DType::Int8;          // Int8, UInt8, Int4, UInt4
  std::vector<int64_t> block_sizes;   // one per axis: 0 = whole axis, b > 0 = blocks of b (coremltools block_sizes)
};

struct QuantizeResult {
  Tensor quantized;                   // dtype = options.dtype, one value per byte, weight shape
  Tensor scale;                       // weight's float dtype, scale_shape (same rank as the weight)
  std::optional<Tensor> zero_point;   // dtype = options.dtype, scale_shape; none for signed symmetric
};

// [qmin, qmax] for a dtype and mode (int8 symmetric: [-127,127], uint4 symmetric: [0,14], ...).
std::pair<int, int> quant_range(DType dtype, QuantMode mode);

// Block sizes from a granularity: per_tensor → all 0; per_channel → 1 on output_axis;
// per_block → 1 on output_axis, block_size on input_axis, 0 elsewhere. Axes may be negative.
std::vector<int64_t> quant_block_sizes(QuantGranularity g, const std::vector<int64_t>& shape, int64_t output_axis,
                                       int64_t input_axis, int64_t block_size);
// The input-channel axis that goes with an output-channel axis for the common layouts (spec §4.3):
// 0 → 1; last → second-to-last; second-to-last → last; else 0.
int64_t default_input_axis(int64_t output_axis, size_t rank);

// Empty when the block sizes fit the shape; otherwise why coremltools would skip the weight.
std::string check_block_sizes(const std::vector<int64_t>& shape, const std::vector<int64_t>& block_sizes);

// Fast (parallel over blocks). Weight must be fp16 or fp32. Throws cmo::Error on bad options.
QuantizeResult quantize_linear(const TensorData& weight, const QuantizeOptions& options);
// Scalar reference: one pass per element with unravelled indices.
QuantizeResult quantize_linear_ref(const TensorData& weight, const QuantizeOptions& options);

}  // namespace cmo::kernels
