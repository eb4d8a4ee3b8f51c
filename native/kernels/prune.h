// Weight pruning with coremltools' numerics (spec §5.3, `_quantization_passes.prune_weights`).
// Every function returns a keep-mask (1 = value kept) over the row-major weight; the stored
// sparse form is then mask = (pruned != 0) (prune_result), exactly like coremltools.
#pragma once
#include <string>
#include <vector>

#include "tensor_view.h"

namespace cmo::kernels {

// numpy.percentile(values, q) with the default 'linear' method as numpy 1.24 evaluates it for a
// float16/float32 array: (b - a) is computed in the array dtype, the lerp in float64. Returns the
// float64 result.
double numpy_percentile(std::vector<float> values, double q, DType dtype);

// `w[|w| <= percentile(|w|, 100·target)] = 0` — the comparison runs in the weight dtype (numpy 1.x
// casts the float64 threshold scalar to the array's dtype), so ties at the threshold are all pruned.
std::vector<uint8_t> magnitude_prune_mask(const TensorData& w, double target_sparsity);
// Block sparsity: L2 norm of each block of `block_size` consecutive channels along `dim` (0 or 1),
// broadcast to the block's members, then the percentile rule on those norms.
std::vector<uint8_t> block_prune_mask(const TensorData& w, double target_sparsity, int64_t block_size, int64_t dim);
// n:m: in each group of m consecutive values along `dim` (after moving the kernel axes first), zero
// the n smallest magnitudes. Ties keep numpy's order for m <= 16 (insertion sort = stable: the
// earlier element is pruned first).
std::vector<uint8_t> nm_prune_mask(const TensorData& w, int64_t n, int64_t m, int64_t dim);
std::vector<uint8_t> nm_prune_mask_ref(const TensorData& w, int64_t n, int64_t m, int64_t dim);
// References: full sort + numpy's formulas, literal zero-pad/reshape for blocks.
std::vector<uint8_t> magnitude_prune_mask_ref(const TensorData& w, double target_sparsity);
std::vector<uint8_t> block_prune_mask_ref(const TensorData& w, double target_sparsity, int64_t block_size, int64_t dim);
// |w| <= threshold → 0.
std::vector<uint8_t> threshold_prune_mask(const TensorData& w, double threshold);

// Why coremltools skips a structured config for this shape (empty = applicable).
std::string block_prune_skip_reason(const std::vector<int64_t>& shape, int64_t block_size, int64_t dim);
std::string nm_prune_skip_reason(const std::vector<int64_t>& shape, int64_t m, int64_t dim);

struct PruneResult {
  std::vector<uint8_t> mask;  // 1 = stored non-zero (pruned value != 0), one per element
  Tensor nonzero;             // 1-D, weight dtype, the values where mask = 1 in row-major order
  double sparsity = 0;        // fraction of zeros after pruning
};
// Applies a keep-mask to the weight.
PruneResult prune_result(const TensorData& w, const std::vector<uint8_t>& keep);
// Same, reusing `keep`'s storage for the mask.
PruneResult prune_result(const TensorData& w, std::vector<uint8_t>&& keep);

}  // namespace cmo::kernels
