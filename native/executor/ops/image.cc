// Resampling of the last two axes: upsample_nearest_neighbor, upsample_bilinear
// (align_corners / half_pixel_centers), resize_nearest_neighbor.
#include <cmath>

#include "common.h"

namespace cmo::exec {
namespace {

void k_upsample_nearest(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  if (x.rank() < 3) c.fail("x must have rank >= 3");
  double sh = c.num("scale_factor_height", 1), sw = c.num("scale_factor_width", 1);
  int64_t H = x.shape[x.rank() - 2], W = x.shape[x.rank() - 1];
  int64_t OH = static_cast<int64_t>(std::floor(H * sh)), OW = static_cast<int64_t>(std::floor(W * sw));
  Shape os = x.shape;
  os[os.size() - 2] = OH;
  os[os.size() - 1] = OW;
  Tensor y = Tensor::f32(os);
  int64_t B = x.size() / std::max<int64_t>(H * W, 1);
  parallel_range(B * OH, c.threads(), [&](int64_t b0, int64_t e0) {
    for (int64_t r = b0; r < e0; ++r) {
      int64_t b = r / OH, i = r % OH;
      int64_t si = std::min<int64_t>(H - 1, static_cast<int64_t>(std::floor(i / sh)));
      for (int64_t j = 0; j < OW; ++j) {
        int64_t sj = std::min<int64_t>(W - 1, static_cast<int64_t>(std::floor(j / sw)));
        y.fdata()[r * OW + j] = x.fdata()[(b * H + si) * W + sj];
      }
    }
  }, 64);
  c.set(0, std::move(y));
}

// Source coordinate of output index i (see upsample_bilinear in MIL).
double src_coord(int64_t i, int64_t in, int64_t out, double scale, bool align, bool half_pixel) {
  if (align) return out > 1 ? static_cast<double>(i) * (in - 1) / (out - 1) : 0.0;
  if (half_pixel) return std::clamp((i + 0.5) / scale - 0.5, 0.0, static_cast<double>(in - 1));
  return std::min(static_cast<double>(i) / scale, static_cast<double>(in - 1));
}

void k_upsample_bilinear(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  if (x.rank() < 3) c.fail("x must have rank >= 3");
  double sh = c.num("scale_factor_height", 1), sw = c.num("scale_factor_width", 1);
  bool align = c.flag("align_corners", false);
  bool half = c.flag("half_pixel_centers", !align);
  int64_t H = x.shape[x.rank() - 2], W = x.shape[x.rank() - 1];
  int64_t OH = static_cast<int64_t>(std::floor(H * sh)), OW = static_cast<int64_t>(std::floor(W * sw));
  // Scales for the coordinate transform are the real size ratios (what torch/TF use).
  double rh = static_cast<double>(OH) / H, rw = static_cast<double>(OW) / W;
  Shape os = x.shape;
  os[os.size() - 2] = OH;
  os[os.size() - 1] = OW;
  Tensor y = Tensor::f32(os);
  int64_t B = x.size() / std::max<int64_t>(H * W, 1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < OH; ++i) {
      double fy = src_coord(i, H, OH, rh, align, half);
      int64_t y0 = static_cast<int64_t>(std::floor(fy)), y1 = std::min(y0 + 1, H - 1);
      double wy = fy - y0;
      for (int64_t j = 0; j < OW; ++j) {
        double fx = src_coord(j, W, OW, rw, align, half);
        int64_t x0 = static_cast<int64_t>(std::floor(fx)), x1 = std::min(x0 + 1, W - 1);
        double wx = fx - x0;
        const float* p = x.fdata() + b * H * W;
        double v = (1 - wy) * ((1 - wx) * p[y0 * W + x0] + wx * p[y0 * W + x1]) + wy * ((1 - wx) * p[y1 * W + x0] + wx * p[y1 * W + x1]);
        y.fdata()[(b * OH + i) * OW + j] = static_cast<float>(v);
      }
    }
  c.set(0, std::move(y));
}

}  // namespace

void register_image_ops() {
  register_kernel("upsample_nearest_neighbor", k_upsample_nearest);
  register_kernel("upsample_bilinear", k_upsample_bilinear);
}

}  // namespace cmo::exec
