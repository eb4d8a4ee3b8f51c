// Normalization kernels shared by the plain ops (norm.cc) and their fused forms (fused.cc), so both give
// the same bits.
#pragma once
#include <cstdint>

#include "../graph.h"
#include "vecmath.h"

namespace cmo::exec {

// Layer-norm over contiguous rows of n: y = (x − mean) / sqrt(var + eps) · gamma + beta per row (gamma /
// beta of n elements, either may be null), statistics in double; rows split over threads.
void layer_norm_rows(const float* x, int64_t rows, int64_t n, double eps, const float* gamma, const float* beta, float* y,
                     unsigned threads);

// batch_norm of the op in `c` (inputs x, mean, variance, gamma?, beta?, epsilon; per channel on axis 1), then act.
void batch_norm_act(OpContext& c, vec::Act act);

}  // namespace cmo::exec
