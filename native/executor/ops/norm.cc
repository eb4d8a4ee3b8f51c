// layer_norm (any axes), instance_norm, batch_norm, l2_norm. Statistics in double; biased variance,
// epsilon inside the sqrt.
#include <cmath>

#include "common.h"
#include "norm.h"
#include "vecmath.h"

namespace cmo::exec {

void layer_norm_rows(const float* x, int64_t rows, int64_t n, double eps, const float* gamma, const float* beta, float* y,
                     unsigned threads) {
  parallel_range(
      rows, threads,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const float* xp = x + r * n;
          double sum, sumsq;
          vec::sum_sumsq(xp, n, sum, sumsq);
          const double mean = sum / static_cast<double>(n);
          const double var = std::max(0.0, sumsq / static_cast<double>(n) - mean * mean);
          const double inv = 1.0 / std::sqrt(var + eps);
          vec::normalize_affine(xp, static_cast<float>(mean), static_cast<float>(inv), gamma, beta, y + r * n, n,
                                vec::Act::Identity);
        }
      },
      std::max<int64_t>(1, 16384 / n));
}
void batch_norm_act(OpContext& c, vec::Act act) {
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
  std::vector<float> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  for (int64_t k = 0; k < C; ++k) {
    const double s = (g.f ? g.fdata()[k] : 1.0) / std::sqrt(static_cast<double>(var.fdata()[k]) + eps);
    scale[k] = static_cast<float>(s);
    shift[k] = static_cast<float>((b.f ? b.fdata()[k] : 0.0) - mean.fdata()[k] * s);
  }
  const int64_t rows = x.shape[0] * C, inner = rows > 0 ? x.size() / rows : 0;
  Tensor y = Tensor::f32(x.shape);
  parallel_range(
      rows, c.threads(),
      [&](int64_t bgn, int64_t end) {
        for (int64_t r = bgn; r < end; ++r) {
          const int64_t ch = r % C;
          vec::affine_scalar(x.fdata() + r * inner, scale[ch], shift[ch], y.fdata() + r * inner, inner, act);
        }
      },
      std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)));
  c.set(0, std::move(y));
}

namespace {

// Offsets of every element of the sub-shape spanned by `axes` (in axes order), and of every
// element of the remaining axes.
void split_offsets(const Shape& s, const std::vector<char>& in_axes, std::vector<int64_t>& inner, std::vector<int64_t>& outer) {
  auto st = strides_of(s);
  inner.assign(1, 0);
  outer.assign(1, 0);
  for (size_t d = 0; d < s.size(); ++d) {
    auto& v = in_axes[d] ? inner : outer;
    std::vector<int64_t> next;
    next.reserve(v.size() * static_cast<size_t>(s[d]));
    for (int64_t base : v)
      for (int64_t i = 0; i < s[d]; ++i) next.push_back(base + i * st[d]);
    v.swap(next);
  }
}

void normalize(OpContext& c, const Tensor& x, const std::vector<char>& in_axes, const float* gamma, const float* beta,
               bool per_inner, int64_t channel_axis, float eps, Tensor& y) {
  std::vector<int64_t> inner, outer;
  split_offsets(x.shape, in_axes, inner, outer);
  int64_t ch_stride = 1, C = 1;
  if (!per_inner && channel_axis >= 0) {
    ch_stride = strides_of(x.shape)[channel_axis];
    C = x.shape[channel_axis];
  }
  const int64_t n = static_cast<int64_t>(inner.size());
  parallel_range(
      static_cast<int64_t>(outer.size()), c.threads(),
      [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          const float* xp = x.fdata() + outer[o];
          float* yp = y.fdata() + outer[o];
          double mean = 0;
          for (int64_t j = 0; j < n; ++j) mean += xp[inner[j]];
          mean /= static_cast<double>(n);
          double var = 0;
          for (int64_t j = 0; j < n; ++j) {
            double dv = xp[inner[j]] - mean;
            var += dv * dv;
          }
          var /= static_cast<double>(n);
          double inv = 1.0 / std::sqrt(var + eps);
          int64_t ch = per_inner ? 0 : (outer[o] / ch_stride) % C;
          for (int64_t j = 0; j < n; ++j) {
            double g = gamma ? (per_inner ? gamma[j] : gamma[ch]) : 1.0;
            double bb = beta ? (per_inner ? beta[j] : beta[ch]) : 0.0;
            yp[inner[j]] = static_cast<float>((xp[inner[j]] - mean) * inv * g + bb);
          }
        }
      },
      std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)));
}

void k_layer_norm(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  std::vector<char> in_axes(static_cast<size_t>(x.rank()), 0);
  int64_t norm_n = 1;
  if (c.has("axes")) {
    for (int64_t a : c.ints("axes")) in_axes[norm_axis(a, x.rank(), "op '" + c.node().name + "'")] = 1;
  } else {
    std::fill(in_axes.begin(), in_axes.end(), 1);
  }
  for (int64_t d = 0; d < x.rank(); ++d)
    if (in_axes[d]) norm_n *= x.shape[d];
  Tensor g, b;
  if (const Tensor* t = c.find("gamma")) {
    g = as_f32(*t);
    if (g.size() != norm_n) c.fail("gamma must have the shape of x over the normalized axes");
  }
  if (const Tensor* t = c.find("beta")) {
    b = as_f32(*t);
    if (b.size() != norm_n) c.fail("beta must have the shape of x over the normalized axes");
  }
  Tensor y = Tensor::f32(x.shape);
  const float eps = static_cast<float>(c.num("epsilon", 1e-5));
  // The usual case, the last axes (transformers' LayerNorm): contiguous rows, one vectorized pass for
  // the statistics (Σx, Σx² in double) and one for the affine output.
  int64_t first = x.rank();
  while (first > 0 && in_axes[static_cast<size_t>(first - 1)]) --first;
  bool trailing = first < x.rank();
  for (int64_t d = 0; d < first; ++d) trailing = trailing && !in_axes[static_cast<size_t>(d)];
  if (trailing && norm_n > 0) {
    const int64_t rows = x.size() / norm_n;
    const float* gp = g.f ? g.fdata() : nullptr;
    const float* bp = b.f ? b.fdata() : nullptr;
    layer_norm_rows(x.fdata(), rows, norm_n, eps, gp, bp, y.fdata(), c.threads());
    c.set(0, std::move(y));
    return;
  }
  normalize(c, x, in_axes, g.f ? g.fdata() : nullptr, b.f ? b.fdata() : nullptr, true, -1, eps, y);
  c.set(0, std::move(y));
}

void k_instance_norm(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  if (x.rank() < 3) c.fail("x must be [N, C, *spatial]");
  std::vector<char> in_axes(static_cast<size_t>(x.rank()), 1);
  in_axes[0] = in_axes[1] = 0;
  Tensor g, b;
  if (const Tensor* t = c.find("gamma")) g = as_f32(*t);
  if (const Tensor* t = c.find("beta")) b = as_f32(*t);
  if ((g.f && g.size() != x.shape[1]) || (b.f && b.size() != x.shape[1])) c.fail("gamma/beta must have C elements");
  Tensor y = Tensor::f32(x.shape);
  normalize(c, x, in_axes, g.f ? g.fdata() : nullptr, b.f ? b.fdata() : nullptr, false, 1,
            static_cast<float>(c.num("epsilon", 1e-5)), y);
  c.set(0, std::move(y));
}

void k_batch_norm(OpContext& c) { batch_norm_act(c, vec::Act::Identity); }

// l2_norm: x / sqrt(max(sum(x^2), epsilon)) over `axes` (default: all but the first axis).
void k_l2_norm(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  std::vector<char> in_axes(static_cast<size_t>(x.rank()), 1);
  if (c.has("axes")) {
    std::fill(in_axes.begin(), in_axes.end(), 0);
    for (int64_t a : c.ints("axes")) in_axes[norm_axis(a, x.rank(), "op '" + c.node().name + "'")] = 1;
  } else if (x.rank() > 1) {
    in_axes[0] = 0;
  }
  double eps = c.num("epsilon", 1e-6);
  std::vector<int64_t> inner, outer;
  split_offsets(x.shape, in_axes, inner, outer);
  Tensor y = Tensor::f32(x.shape);
  for (int64_t o : outer) {
    double ss = 0;
    for (int64_t j : inner) ss += static_cast<double>(x.fdata()[o + j]) * x.fdata()[o + j];
    double inv = 1.0 / std::sqrt(std::max(ss, eps));
    for (int64_t j : inner) y.fdata()[o + j] = static_cast<float>(x.fdata()[o + j] * inv);
  }
  c.set(0, std::move(y));
}

}  // namespace

void register_norm_ops() {
  register_kernel("layer_norm", k_layer_norm);
  register_kernel("instance_norm", k_instance_norm);
  register_kernel("batch_norm", k_batch_norm);
  register_kernel("l2_norm", k_l2_norm);
}

}  // namespace cmo::exec
