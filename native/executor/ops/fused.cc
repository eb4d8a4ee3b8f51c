// Kernels of the elementwise nodes fusion.cc builds: one pass instead of two or three.
#include <cmath>

#include "../fusion.h"
#include "common.h"
#include "norm.h"
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
  batch_norm_act(c, static_cast<vec::Act>(static_cast<int>(c.num("act"))));
}

// (x - mean) / sqrt(var + eps) with mean and biased variance over `axes` (kept): the axes must be the
// trailing ones (rows of x), else the original ops run.
void fused_group_norm_kernel(OpContext& c) {
  const Tensor* xin = c.find("x");
  if (!xin || !xin->is_float() || xin->rank() == 0) {
    c.decline();
    return;
  }
  Tensor x = as_f32(*xin);
  const int64_t r = x.rank();
  std::vector<char> in_axes(static_cast<size_t>(r), 0);
  for (int64_t a : c.ints("axes")) {
    if (a < -r || a >= r) {
      c.decline();
      return;
    }
    in_axes[static_cast<size_t>(a < 0 ? a + r : a)] = 1;
  }
  int64_t first = r;
  while (first > 0 && in_axes[static_cast<size_t>(first - 1)]) --first;
  for (int64_t d = 0; d < first; ++d)
    if (in_axes[static_cast<size_t>(d)] || first == r) {
      c.decline();
      return;
    }
  int64_t n = 1;
  for (int64_t d = first; d < r; ++d) n *= x.shape[static_cast<size_t>(d)];
  if (n == 0 || first == r) {
    c.decline();
    return;
  }
  const int64_t rows = x.size() / n;
  const double eps = c.num("epsilon");
  Tensor y = Tensor::f32(x.shape);
  layer_norm_rows(x.fdata(), rows, n, eps, nullptr, nullptr, y.fdata(), c.threads());
  c.set(0, std::move(y));
}

// y = act(x · scale[ch] + bias[ch]) for x [N, C, ...] and scale / bias of C elements shaped [1, C, 1, ...]
// (or [C, 1, ...] / any shape that broadcasts only along axis 1); anything else runs the original ops.
void fused_channel_affine_kernel(OpContext& c) {
  const Tensor* xin = c.find("x");
  const Tensor* sin = c.find("scale");
  const Tensor* bin = c.find("bias");
  auto per_channel = [](const Tensor& t, const Tensor& x) {
    // t must broadcast to x and vary only along axis 1.
    if (!t.is_float() || x.rank() < 2 || t.rank() > x.rank() || t.size() != x.shape[1]) return false;
    const int64_t off = x.rank() - t.rank();
    for (int64_t d = 0; d < t.rank(); ++d) {
      const int64_t xd = d + off;
      if (xd == 1 ? t.shape[static_cast<size_t>(d)] != x.shape[1] : t.shape[static_cast<size_t>(d)] != 1) return false;
    }
    return true;
  };
  if (!xin || !sin || !bin || !xin->is_float() || !per_channel(*sin, *xin) || !per_channel(*bin, *xin)) {
    c.decline();
    return;
  }
  Tensor x = as_f32(*xin), w = as_f32(*sin), b = as_f32(*bin);
  const auto act = static_cast<vec::Act>(static_cast<int>(c.num("act")));
  const int64_t C = x.shape[1], rows = x.shape[0] * C, inner = rows > 0 ? x.size() / rows : 0;
  Tensor y = Tensor::f32(x.shape);
  parallel_range(
      rows, c.threads(),
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          vec::affine_scalar(x.fdata() + r * inner, w.fdata()[r % C], b.fdata()[r % C], y.fdata() + r * inner, inner, act);
      },
      std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)));
  c.set(0, std::move(y));
}

}  // namespace cmo::exec
