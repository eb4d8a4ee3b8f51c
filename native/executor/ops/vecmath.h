// Row kernels of the softmax / activation / normalization loops, compiled three times (AVX-512,
// AVX2+FMA, the build's baseline) and picked at run time from the CPU, like the SGEMM's micro-kernels.
// Every variant runs the same branch-free code (fastmath.h's exp_fast / erf_fast; no FMA contraction,
// -ffp-contract=off), so the levels agree to the last bit on the maps and to summation order on the
// reductions; the tests compare each level against plain double-precision references
// (vecmath_reference below).
#pragma once
#include <cstdint>

namespace cmo::exec::vec {

enum class Act { Identity, Sigmoid, Silu, GeluExact, GeluTanh, GeluSigmoid };

// "avx512", "avx2", or "baseline" (the build's own ISA: SSE2 on x86-64, NEON on arm64).
const char* level();
// Tests: run every later call at `name`'s level ("avx512" / "avx2" / "baseline"); false when this CPU
// lacks it. nullptr restores the detected level.
bool force_level(const char* name);

// y = act(x), in place allowed. GeluSigmoid is x·sigmoid(alpha·x) (MIL's SIGMOID_APPROXIMATION: alpha 1.702;
// CLIP's quick_gelu written as mul → sigmoid → mul fuses to it too).
void activation(Act act, const float* x, float* y, int64_t n, float alpha = 1.702f);
// y = g · act(x) (GEGLU's x·gelu(gate) with the operands swapped as needed), in place allowed.
void activation_mul(Act act, const float* x, const float* g, float* y, int64_t n, float alpha = 1.702f);
// Largest element (-inf for n = 0; NaNs are skipped like std::max(m, x) with m first).
float max_of(const float* x, int64_t n);
// y = exp(x - shift), returns Σy (lanes in float, the lane totals in double). In place allowed.
double exp_shift_sum(const float* x, float shift, float* y, int64_t n);
// y *= s.
void scale(float* y, float s, int64_t n);
// (Σx, Σx²) in double (layer / group norm statistics).
void sum_sumsq(const float* x, int64_t n, double& sum, double& sumsq);
// y = (x - mean) · inv · g + b with per-element g, b (either may be null: 1 / 0), then act.
void normalize_affine(const float* x, float mean, float inv, const float* g, const float* b, float* y, int64_t n, Act act);
// y = x · a + c (a, c scalars; group-norm's per-channel affine), then act.
void affine_scalar(const float* x, float a, float c, float* y, int64_t n, Act act);

// Plain references (the tests' oracles): double precision, std:: functions, one element at a time.
double act_reference(Act act, double x, double alpha = 1.702);

}  // namespace cmo::exec::vec
