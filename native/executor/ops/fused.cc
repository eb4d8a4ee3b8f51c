// Kernels of the elementwise nodes fusion.cc builds: one pass instead of two or three.
#include <cmath>

#include "../fusion.h"
#include "common.h"
#include "vecmath.h"

namespace cmo::exec {

// y = act(x) or gate · act(x) (same shapes; otherwise the original ops run).
void fused_activation_kernel(OpContext& c) {
  const Tensor* xin = c.find("x");
  const Tensor* gin = c.find("gate");
  if (!xin || !xin->is_float() || (gin && (!gin->is_float() || gin->shape != xin->shape))) {
    c.decline();
    return;
  }
  Tensor x = as_f32(*xin);
  Tensor g = gin ? as_f32(*gin) : Tensor();
  const auto act = static_cast<vec::Act>(static_cast<int>(c.num("act")));
  const float alpha = static_cast<float>(c.num("alpha", 1.702));
  Tensor y = Tensor::f32(x.shape);
  const float* xs = x.fdata();
  const float* gs = gin ? g.fdata() : nullptr;
  float* ys = y.fdata();
  parallel_range(x.size(), c.threads(), [&](int64_t b, int64_t e) {
    if (gs) vec::activation_mul(act, xs + b, gs + b, ys + b, e - b, alpha);
    else vec::activation(act, xs + b, ys + b, e - b, alpha);
  });
  c.set(0, std::move(y));
}

// batch_norm (per-channel scale and shift, axis 1) and an activation in one pass.
void fused_batch_norm_act_kernel(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  if (x.rank() < 2) c.fail("x must be [N, C, ...]");
  const int64_t C = x.shape[1];
  Tensor mean = as_f32(c.in("mean")), var = as_f32(c.in("variance"));
  Tensor g, b;
  if (const Tensor* t = c.find("gamma")) g = as_f32(*t);
  if (const Tensor* t = c.find("beta")) b = as_f32(*t);
  if (mean.size() != C || var.size() != C || (g.f && g.size() != C) || (b.f && b.size() != C))
    c.fail("mean/variance/gamma/beta must have C = " + std::to_string(C) + " elements");
  const double eps = c.num("epsilon", 1e-5);
  const auto act = static_cast<vec::Act>(static_cast<int>(c.num("act")));
  const int64_t rows = x.shape[0] * C, inner = rows > 0 ? x.size() / rows : 0;
  Tensor y = Tensor::f32(x.shape);
  parallel_range(
      x.shape[0] * C, c.threads(),
      [&](int64_t bgn, int64_t end) {
        for (int64_t r = bgn; r < end; ++r) {
          const int64_t ch = r % C;
          // The same per-channel factors as batch_norm's kernel (norm.cc), so the fused result matches it.
          const double s = (g.f ? g.fdata()[ch] : 1.0) / std::sqrt(static_cast<double>(var.fdata()[ch]) + eps);
          const float scale = static_cast<float>(s);
          const float shift = static_cast<float>((b.f ? b.fdata()[ch] : 0.0) - mean.fdata()[ch] * s);
          vec::affine_scalar(x.fdata() + r * inner, scale, shift, y.fdata() + r * inner, inner, act);
        }
      },
      std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)));
  c.set(0, std::move(y));
}

}  // namespace cmo::exec
