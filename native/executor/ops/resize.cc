// Resampling ops beyond upsample_*: crop, crop_resize (iOS15 roi / iOS17 boxes + box_indices),
// resize_bilinear, resize_nearest_neighbor, resize (iOS17, any number of trailing axes), affine and
// resample (grid sampling with the constant / border / reflection / symmetric padding modes).
// Grid points follow the sampling modes documented for resize_bilinear in coremltools
// (ops/defs/iOS15/image_resizing.py, the NeuralNetwork SamplingMode linspace rules).
#include <cmath>
#include <string>

#include "common.h"

namespace cmo::exec {
namespace {

enum class Sampling { StrictAlign, Align, Default, Offset, Unalign };

Sampling sampling_mode(OpContext& c, const char* param = "sampling_mode") {
  std::string m = c.str(param, "DEFAULT");
  if (m == "STRICT_ALIGN_CORNERS") return Sampling::StrictAlign;
  if (m == "ALIGN_CORNERS") return Sampling::Align;
  if (m == "DEFAULT") return Sampling::Default;
  if (m == "OFFSET_CORNERS") return Sampling::Offset;
  if (m == "UNALIGN_CORNERS") return Sampling::Unalign;
  c.fail("unknown sampling_mode '" + m + "' (STRICT_ALIGN_CORNERS, ALIGN_CORNERS, DEFAULT, OFFSET_CORNERS, UNALIGN_CORNERS)");
}

// Grid point i of n sampled from [0, x - 1] (x may be fractional for crop boxes: x - 1 = box extent).
double grid_point(Sampling m, int64_t i, double x, int64_t n) {
  double g = 0;
  switch (m) {
    case Sampling::StrictAlign: g = n > 1 ? i * (x - 1) / (n - 1) : 0.0; break;
    case Sampling::Align: g = n > 1 ? i * (x - 1) / (n - 1) : (x - 1) / 2; break;
    case Sampling::Default: g = n > 1 ? i * (x - x / n) / (n - 1) : 0.0; break;
    case Sampling::Offset: {
      double delta = std::max(1.0, x - 1) / n;
      g = 0.5 * delta + i * delta;
      break;
    }
    case Sampling::Unalign: g = i * x / n + 0.5 * x / n - 0.5; break;
  }
  return std::min(std::max(g, 0.0), std::max(x - 1, 0.0));
}

// How a grid point becomes samples: linear interpolation, or one of two nearest-neighbour rules.
// resize_nearest_neighbor is TensorFlow's asymmetric rule (floor(i * in / out)); iOS17 resize rounds
// the grid point (its documented example maps 2 -> 3 rows as 0, 1, 1).
enum class Interp { Linear, NearestFloor, NearestRound };

// 1-D resampling of axis `axis` of x to `n` points; returns the new tensor.
Tensor resample_axis(const Tensor& x, int64_t axis, int64_t n, Sampling m, Interp how, unsigned threads) {
  const int64_t in = x.shape[axis];
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.shape[d];
  Shape os = x.shape;
  os[axis] = n;
  Tensor y = Tensor::f32(os);
  std::vector<int64_t> i0(n), i1(n);
  std::vector<float> w(n);
  for (int64_t i = 0; i < n; ++i) {
    double g = grid_point(m, i, static_cast<double>(in), n);
    if (how != Interp::Linear) {
      int64_t k = static_cast<int64_t>(how == Interp::NearestFloor ? std::floor(g) : std::floor(g + 0.5));
      i0[i] = i1[i] = std::min(std::max<int64_t>(k, 0), in - 1);
      w[i] = 0;
    } else {
      i0[i] = static_cast<int64_t>(std::floor(g));
      i1[i] = std::min(i0[i] + 1, in - 1);
      w[i] = static_cast<float>(g - i0[i]);
    }
  }
  const float* src = x.fdata();
  float* dst = y.fdata();
  parallel_range(outer * n, threads, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      int64_t o = r / n, i = r % n;
      const float* a = src + (o * in + i0[i]) * inner;
      const float* c = src + (o * in + i1[i]) * inner;
      float* out = dst + r * inner;
      const float wi = w[i];
      for (int64_t k = 0; k < inner; ++k) out[k] = a[k] + wi * (c[k] - a[k]);
    }
  }, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)));
  return y;
}

Tensor resize_last_two(OpContext& c, const Tensor& x, int64_t oh, int64_t ow, Sampling m, Interp how) {
  if (x.rank() < 3) c.fail("x must have rank >= 3");
  if (oh < 1 || ow < 1) c.fail("target sizes must be >= 1");
  if (x.shape[x.rank() - 2] < 1 || x.shape[x.rank() - 1] < 1) c.fail("x has an empty spatial dimension");
  Tensor t = resample_axis(x, x.rank() - 2, oh, m, how, c.threads());
  return resample_axis(t, x.rank() - 1, ow, m, how, c.threads());
}

void k_resize_bilinear(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  c.set(0, resize_last_two(c, x, static_cast<int64_t>(c.num("target_size_height", 1)),
                           static_cast<int64_t>(c.num("target_size_width", 1)), sampling_mode(c), Interp::Linear));
}

void k_resize_nearest_neighbor(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  c.set(0, resize_last_two(c, x, static_cast<int64_t>(c.num("target_size_height")),
                           static_cast<int64_t>(c.num("target_size_width")), Sampling::Default, Interp::NearestFloor));
}

// iOS17 resize: the last `resized_dims` axes take their size from the tail of `shape` (0 = keep).
void k_resize(OpContext& c) {
  const Tensor& xin = c.in("x");
  Tensor x = as_f32(xin);
  std::vector<int64_t> shape = c.ints("shape");
  int64_t r = static_cast<int64_t>(c.num("resized_dims"));
  if (r < 0 || r > static_cast<int64_t>(shape.size()) || static_cast<int64_t>(shape.size()) > x.rank())
    c.fail("need resized_dims <= size(shape) <= rank(x)");
  std::string interp = c.str("interpolation_mode", "LINEAR");
  if (interp != "LINEAR" && interp != "NEAREST_NEIGHBOR") c.fail("unknown interpolation_mode '" + interp + "'");
  Sampling m = sampling_mode(c);
  Tensor y = x;
  for (int64_t k = 0; k < r; ++k) {
    int64_t axis = x.rank() - r + k;
    int64_t n = shape[shape.size() - static_cast<size_t>(r) + static_cast<size_t>(k)];
    if (n == 0) n = x.shape[axis];
    if (n < 0) c.fail("target sizes must be >= 0");
    if (x.shape[axis] < 1) c.fail("x has an empty axis to resize");
    y = resample_axis(y, axis, n, m, interp == "NEAREST_NEIGHBOR" ? Interp::NearestRound : Interp::Linear, c.threads());
  }
  if (xin.dtype != DType::F32) y = as_i32(y);
  c.set(0, std::move(y));
}

void k_crop(OpContext& c) {
  const Tensor& x = c.in("x");
  if (x.rank() < 3) c.fail("x must have rank >= 3");
  std::vector<int64_t> ch = c.ints("crop_height"), cw = c.ints("crop_width");
  if (ch.size() != 2 || cw.size() != 2) c.fail("crop_height and crop_width must have 2 elements");
  const int64_t r = x.rank(), H = x.shape[r - 2], W = x.shape[r - 1];
  Shape os = x.shape;
  os[r - 2] = H - ch[0] - ch[1];
  os[r - 1] = W - cw[0] - cw[1];
  if (ch[0] < 0 || ch[1] < 0 || cw[0] < 0 || cw[1] < 0 || os[r - 2] < 0 || os[r - 1] < 0)
    c.fail("crop amounts must be >= 0 and leave a non-negative size of " + shape_str(x.shape));
  std::vector<int64_t> st = strides_of(x.shape);
  c.set(0, strided_tensor(x, st, ch[0] * st[r - 2] + cw[0] * st[r - 1], os, c.threads()));
}

// A box in input pixel coordinates.
struct Box {
  double y0, x0, y1, x1;
};

Box decode_box(OpContext& c, const double v[4], const std::string& mode, bool normalized, double scale, int64_t H, int64_t W) {
  Box b{};
  if (mode == "CORNERS_HEIGHT_FIRST" || mode == "CONRNERS_HEIGHT_FIRST") b = {v[0], v[1], v[2], v[3]};
  else if (mode == "CORNERS_WIDTH_FIRST") b = {v[1], v[0], v[3], v[2]};
  else if (mode == "CENTER_SIZE_HEIGHT_FIRST") b = {v[0] - v[2] / 2, v[1] - v[3] / 2, v[0] + v[2] / 2, v[1] + v[3] / 2};
  else if (mode == "CENTER_SIZE_WIDTH_FIRST") b = {v[1] - v[3] / 2, v[0] - v[2] / 2, v[1] + v[3] / 2, v[0] + v[2] / 2};
  else c.fail("unknown box_coordinate_mode '" + mode + "'");
  double sy = scale * (normalized ? static_cast<double>(H - 1) : 1.0);
  double sx = scale * (normalized ? static_cast<double>(W - 1) : 1.0);
  return {b.y0 * sy, b.x0 * sx, b.y1 * sy, b.x1 * sx};
}

// Bilinear sample of one [H, W] plane at (y, x); outside [0, H-1] x [0, W-1] gives pad.
float sample_plane(const float* p, int64_t H, int64_t W, double y, double x, float pad) {
  if (!(y >= 0 && y <= H - 1 && x >= 0 && x <= W - 1)) return pad;  // also NaN boxes: never index with them
  int64_t y0 = static_cast<int64_t>(std::floor(y)), x0 = static_cast<int64_t>(std::floor(x));
  int64_t y1 = std::min(y0 + 1, H - 1), x1 = std::min(x0 + 1, W - 1);
  double wy = y - y0, wx = x - x0;
  double top = p[y0 * W + x0] + wx * (p[y0 * W + x1] - p[y0 * W + x0]);
  double bot = p[y1 * W + x0] + wx * (p[y1 * W + x1] - p[y1 * W + x0]);
  return static_cast<float>(top + wy * (bot - top));
}

// One crop: the box's grid (sampling mode applied to the box extent) sampled from image b.
void crop_one(const Tensor& x, int64_t b, const Box& box, int64_t th, int64_t tw, Sampling m, float pad, float* out) {
  const int64_t C = x.shape[1], H = x.shape[2], W = x.shape[3];
  // Grid over [start, end]: the mode's points on [0, X - 1] with X - 1 = |end - start|, walked from
  // start towards end (an inverted box samples backwards, as coremltools' crop_resize test expects).
  auto points = [m](double start, double end, int64_t n) {
    std::vector<double> p(static_cast<size_t>(n));
    const double dir = end < start ? -1.0 : 1.0;
    for (int64_t i = 0; i < n; ++i) p[i] = start + dir * grid_point(m, i, std::fabs(end - start) + 1, n);
    return p;
  };
  const std::vector<double> ys = points(box.y0, box.y1, th), xs = points(box.x0, box.x1, tw);
  for (int64_t ch = 0; ch < C; ++ch) {
    const float* p = x.fdata() + (b * C + ch) * H * W;
    for (int64_t i = 0; i < th; ++i)
      for (int64_t j = 0; j < tw; ++j) out[(ch * th + i) * tw + j] = sample_plane(p, H, W, ys[i], xs[j], pad);
  }
}

void k_crop_resize(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  if (x.rank() != 4) c.fail("x must be [B, C, H, W]");
  const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t th = static_cast<int64_t>(c.num("target_height", 1)), tw = static_cast<int64_t>(c.num("target_width", 1));
  if (th < 1 || tw < 1) c.fail("target_height and target_width must be >= 1");
  const bool normalized = c.flag("normalized_coordinates", false);
  const double scale = c.num("spatial_scale", 1.0);
  const std::string mode = c.str("box_coordinate_mode", "CORNERS_HEIGHT_FIRST");
  const Sampling m = sampling_mode(c);
  const float pad = static_cast<float>(c.num("pad_value", 0.0));
  const int64_t plane = C * th * tw;
  if (c.has("boxes")) {  // iOS17: boxes [N, 4], box_indices [N] (default 0..N-1) -> [N, C, th, tw]
    Tensor boxes = as_f32(c.in("boxes"));
    if (boxes.rank() != 2 || boxes.shape[1] != 4) c.fail("boxes must be [N, 4]");
    const int64_t N = boxes.shape[0];
    std::vector<int64_t> idx = c.ints("box_indices", {});
    if (!c.has("box_indices"))
      for (int64_t k = 0; k < N; ++k) idx.push_back(k);
    if (static_cast<int64_t>(idx.size()) != N) c.fail("box_indices must have one entry per box");
    Tensor y = Tensor::f32({N, C, th, tw});
    for (int64_t n = 0; n < N; ++n) {
      if (idx[n] < 0 || idx[n] >= B) c.fail("box index " + std::to_string(idx[n]) + " is outside the batch of " + std::to_string(B));
      double v[4];
      for (int k = 0; k < 4; ++k) v[k] = boxes.fdata()[n * 4 + k];
      crop_one(x, idx[n], decode_box(c, v, mode, normalized, scale, H, W), th, tw, m, pad, y.fdata() + n * plane);
    }
    c.set(0, std::move(y));
    return;
  }
  // iOS15/16: roi [N, 1, 4 or 5, 1, 1]; 4 -> every box on every image ([N, B, C, th, tw]),
  // 5 -> the first value is the image index ([N, 1, C, th, tw]).
  Tensor roi = as_f32(c.in("roi"));
  if (roi.rank() != 5 || (roi.shape[2] != 4 && roi.shape[2] != 5) || roi.size() != roi.shape[0] * roi.shape[2])
    c.fail("roi must be [N, 1, 4, 1, 1] or [N, 1, 5, 1, 1]");
  const int64_t N = roi.shape[0], K = roi.shape[2];
  const int64_t per = K == 4 ? B : 1;
  Tensor y = Tensor::f32({N, per, C, th, tw});
  for (int64_t n = 0; n < N; ++n) {
    const float* r = roi.fdata() + n * K;
    double v[4] = {r[K - 4], r[K - 3], r[K - 2], r[K - 1]};
    Box box = decode_box(c, v, mode, normalized, scale, H, W);
    for (int64_t j = 0; j < per; ++j) {
      if (K == 5 && !(r[0] >= 0 && r[0] < B)) c.fail("roi batch index " + std::to_string(r[0]) + " is outside the batch of " + std::to_string(B));
      int64_t b = K == 4 ? j : static_cast<int64_t>(r[0]);
      crop_one(x, b, box, th, tw, m, pad, y.fdata() + (n * per + j) * plane);
    }
  }
  c.set(0, std::move(y));
}

// ---- grid sampling (affine, resample)

enum class Padding { Constant, Border, Reflection, Symmetric };

Padding padding_mode(OpContext& c) {
  std::string p = c.str("padding_mode", "constant");
  if (p == "constant") return Padding::Constant;
  if (p == "border") return Padding::Border;
  if (p == "reflection") return Padding::Reflection;
  if (p == "symmetric") return Padding::Symmetric;
  c.fail("unknown padding_mode '" + p + "' (constant, border, reflection, symmetric)");
}

// Reflects v into [lo, hi] (a mirror at each end, as torch.grid_sample does).
double reflect(double v, double lo, double hi) {
  double span = hi - lo;
  if (span <= 0) return lo;
  double d = std::fabs(v - lo);
  double flips = std::floor(d / span);
  double extra = d - flips * span;
  return std::fmod(flips, 2.0) == 0 ? lo + extra : hi - extra;
}

// Samples plane p at pixel coordinate (y, x) with the padding rule; bilinear or nearest.
float grid_sample(const float* p, int64_t H, int64_t W, double y, double x, bool nearest, Padding pad, float pad_value) {
  auto fix = [&](double v, int64_t n) {
    if (pad == Padding::Border) return std::min(std::max(v, 0.0), static_cast<double>(n - 1));
    if (pad == Padding::Reflection) return reflect(v, 0, static_cast<double>(n - 1));
    if (pad == Padding::Symmetric) return std::min(std::max(reflect(v, -0.5, n - 0.5), 0.0), static_cast<double>(n - 1));
    return v;
  };
  if (!std::isfinite(y) || !std::isfinite(x)) return pad_value;
  y = fix(y, H);
  x = fix(x, W);
  // Far outside (constant padding): every neighbour is padding; also keeps the casts below in range.
  if (y <= -1 || y >= H || x <= -1 || x >= W) return pad_value;
  auto at = [&](int64_t i, int64_t j) -> double {
    if (i < 0 || i >= H || j < 0 || j >= W) return pad_value;  // constant padding: per corner
    return p[i * W + j];
  };
  if (nearest) return static_cast<float>(at(static_cast<int64_t>(std::nearbyint(y)), static_cast<int64_t>(std::nearbyint(x))));
  int64_t y0 = static_cast<int64_t>(std::floor(y)), x0 = static_cast<int64_t>(std::floor(x));
  double wy = y - y0, wx = x - x0;
  double v = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) + wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1));
  return static_cast<float>(v);
}

// Normalized coordinate -> pixel coordinate on an axis of n pixels.
double unnormalize(double v, int64_t n, const std::string& mode, bool align) {
  if (mode == "unnormalized") return v;
  if (mode == "normalized_minus_one_to_one") return align ? (v + 1) / 2 * (n - 1) : ((v + 1) * n - 1) / 2;
  return align ? v * (n - 1) : v * n - 0.5;  // normalized_zero_to_one
}

void check_coordinates_mode(OpContext& c, const std::string& mode) {
  if (mode != "unnormalized" && mode != "normalized_minus_one_to_one" && mode != "normalized_zero_to_one")
    c.fail("unknown coordinates_mode '" + mode + "'");
}

void k_resample(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  Tensor g = as_f32(c.in("coordinates"));
  if (x.rank() != 4 || g.rank() != 4 || g.shape[3] != 2 || g.shape[0] != x.shape[0])
    c.fail("x must be [B, C, H, W] and coordinates [B, H_out, W_out, 2]");
  std::string sm = c.str("sampling_mode", "bilinear");
  if (sm != "bilinear" && sm != "nearest") c.fail("unknown sampling_mode '" + sm + "' (bilinear, nearest)");
  Padding pad = padding_mode(c);
  float pv = static_cast<float>(c.num("padding_value", 0.0));
  std::string cm = c.str("coordinates_mode", "unnormalized");
  check_coordinates_mode(c, cm);
  bool align = c.flag("align_corners", false);
  const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3], OH = g.shape[1], OW = g.shape[2];
  Tensor y = Tensor::f32({B, C, OH, OW});
  parallel_range(B * C, c.threads(), [&](int64_t b0, int64_t e0) {
    for (int64_t bc = b0; bc < e0; ++bc) {
      int64_t b = bc / C;
      const float* p = x.fdata() + bc * H * W;
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          const float* q = g.fdata() + ((b * OH + i) * OW + j) * 2;
          double px = unnormalize(q[0], W, cm, align), py = unnormalize(q[1], H, cm, align);
          y.fdata()[(bc * OH + i) * OW + j] = grid_sample(p, H, W, py, px, sm == "nearest", pad, pv);
        }
    }
  }, 1);
  c.set(0, std::move(y));
}

// affine: output pixel (w, h) -> normalized (x, y) on the output grid -> [a0 a1 a2; b0 b1 b2] ->
// normalized input coordinate -> bilinear sample (torch affine_grid + grid_sample).
void k_affine(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  Tensor t = as_f32(c.in("transform_matrix"));
  if (x.rank() != 4 || t.rank() != 2 || t.shape[1] != 6 || (t.shape[0] != 1 && t.shape[0] != x.shape[0]))
    c.fail("x must be [B, C, H, W] and transform_matrix [B or 1, 6]");
  const int64_t OH = static_cast<int64_t>(c.num("output_height")), OW = static_cast<int64_t>(c.num("output_width"));
  if (OH < 1 || OW < 1) c.fail("output_height and output_width must be >= 1");
  std::string sm = c.str("sampling_mode", "bilinear");
  if (sm != "bilinear" && sm != "nearest") c.fail("unknown sampling_mode '" + sm + "'");
  Padding pad = padding_mode(c);
  float pv = static_cast<float>(c.num("padding_value", 0.0));
  std::string cm = c.str("coordinates_mode", "normalized_minus_one_to_one");
  check_coordinates_mode(c, cm);
  bool align = c.flag("align_corners", true);
  const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  // Output grid coordinates in the same convention as the input coordinates.
  auto out_coord = [&](int64_t i, int64_t n) -> double {
    if (cm == "unnormalized") return static_cast<double>(i);
    double v = align ? (n > 1 ? -1.0 + 2.0 * i / (n - 1) : 0.0) : (2.0 * i + 1) / n - 1;
    return cm == "normalized_zero_to_one" ? (v + 1) / 2 : v;
  };
  Tensor y = Tensor::f32({B, C, OH, OW});
  for (int64_t b = 0; b < B; ++b) {
    const float* m = t.fdata() + (t.shape[0] == 1 ? 0 : b * 6);
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j) {
        double xo = out_coord(j, OW), yo = out_coord(i, OH);
        double xi = m[0] * xo + m[1] * yo + m[2], yi = m[3] * xo + m[4] * yo + m[5];
        double px = unnormalize(xi, W, cm, align), py = unnormalize(yi, H, cm, align);
        for (int64_t ch = 0; ch < C; ++ch)
          y.fdata()[((b * C + ch) * OH + i) * OW + j] =
              grid_sample(x.fdata() + (b * C + ch) * H * W, H, W, py, px, sm == "nearest", pad, pv);
      }
  }
  c.set(0, std::move(y));
}

}  // namespace

void register_resize_ops() {
  register_kernel("crop", k_crop);
  register_kernel("crop_resize", k_crop_resize);
  register_kernel("resize_bilinear", k_resize_bilinear);
  register_kernel("resize_nearest_neighbor", k_resize_nearest_neighbor);
  register_kernel("resize", k_resize);
  register_kernel("resample", k_resample);
  register_kernel("affine", k_affine);
}

}  // namespace cmo::exec
