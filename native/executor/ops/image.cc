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
  // Source index floor(i * in / out): the output size's real ratio, not the requested factor (Core ML
  // maps 3 -> floor(3 * 1.12) = 3 columns one to one; coremltools' fractional-scale test).
  parallel_range(B * OH, c.threads(), [&](int64_t b0, int64_t e0) {
    for (int64_t r = b0; r < e0; ++r) {
      int64_t b = r / OH, i = r % OH;
      int64_t si = std::min<int64_t>(H - 1, i * H / OH);
      for (int64_t j = 0; j < OW; ++j) {
        int64_t sj = std::min<int64_t>(W - 1, j * W / OW);
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
  bool align = c.flag("align_corners", true);  // the MIL default (coremltools writes it out anyway)
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

namespace cmo::exec {
namespace {

// Rearranges [N, C, H, W] blocks: `to_depth` moves bs×bs spatial blocks into channels. `dcr` selects
// the channel order: depth_to_space/space_to_depth use (i, j, c) (TF DCR), pixel_(un)shuffle (c, i, j).
void rearrange(OpContext& c, int64_t bs, bool to_depth, bool dcr) {
  Tensor x = as_f32(c.in("x"));
  if (x.rank() != 4 || bs < 1) c.fail("x must be [N, C, H, W] and the block size positive");
  int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  int64_t Cs = to_depth ? C : C / (bs * bs);  // channels of the spatial (large) side
  if (!to_depth && C % (bs * bs)) c.fail("channels must be a multiple of block_size^2");
  if (to_depth && (H % bs || W % bs)) c.fail("H and W must be multiples of the block size");
  int64_t Hs = to_depth ? H : H * bs, Ws = to_depth ? W : W * bs;  // spatial side
  Shape os = to_depth ? Shape{N, C * bs * bs, H / bs, W / bs} : Shape{N, Cs, Hs, Ws};
  Tensor y = Tensor::f32(os);
  const int64_t Hd = Hs / bs, Wd = Ws / bs, Cd = Cs * bs * bs;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t cs = 0; cs < Cs; ++cs)
      for (int64_t h = 0; h < Hs; ++h)
        for (int64_t w = 0; w < Ws; ++w) {
          int64_t i = h % bs, j = w % bs;
          int64_t cd = dcr ? (i * bs + j) * Cs + cs : (cs * bs + i) * bs + j;
          int64_t s_off = ((n * Cs + cs) * Hs + h) * Ws + w;
          int64_t d_off = ((n * Cd + cd) * Hd + h / bs) * Wd + w / bs;
          if (to_depth) y.fdata()[d_off] = x.fdata()[s_off];
          else y.fdata()[s_off] = x.fdata()[d_off];
        }
  c.set(0, std::move(y));
}

void k_depth_to_space(OpContext& c) { rearrange(c, static_cast<int64_t>(c.num("block_size")), false, true); }
void k_space_to_depth(OpContext& c) { rearrange(c, static_cast<int64_t>(c.num("block_size")), true, true); }
void k_pixel_shuffle(OpContext& c) { rearrange(c, static_cast<int64_t>(c.num("upscale_factor")), false, false); }
void k_pixel_unshuffle(OpContext& c) { rearrange(c, static_cast<int64_t>(c.num("downscale_factor")), true, false); }

}  // namespace

void register_rearrange_ops() {
  register_kernel("depth_to_space", k_depth_to_space);
  register_kernel("space_to_depth", k_space_to_depth);
  register_kernel("pixel_shuffle", k_pixel_shuffle);
  register_kernel("pixel_unshuffle", k_pixel_unshuffle);
}

}  // namespace cmo::exec
