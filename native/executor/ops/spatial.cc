// Spatial rearrangement and windowing: space_to_batch / batch_to_space (TensorFlow's *_nd in NCHW
// layout, one or two spatial axes), sliding_windows, local_response_norm.
#include <cmath>

#include "common.h"

namespace cmo::exec {
namespace {

// Shared index walk of space_to_batch (pad + split) and batch_to_space (merge + crop): x is
// [B, C, S...] on the spatial side, [B * prod(block), C, S'...] on the batch side. TF order: the
// batch-side image index is (block offset) * B + b, block offsets row-major over the spatial axes.
void rearrange_batch(OpContext& c, bool to_batch) {
  const Tensor& x = c.in("x");
  if (x.rank() < 3) c.fail("x must be [N, C, spatial...] with one or two spatial axes");
  const int64_t M = x.rank() - 2;
  std::vector<int64_t> block = c.ints("block_shape");
  std::vector<int64_t> pads = c.ints(to_batch ? "paddings" : "crops");
  if (static_cast<int64_t>(block.size()) != M || static_cast<int64_t>(pads.size()) != 2 * M)
    c.fail("block_shape must have one entry and paddings/crops two per spatial axis (" + std::to_string(M) + ")");
  int64_t prod = 1;
  for (int64_t b : block) {
    if (b < 1) c.fail("block_shape entries must be >= 1");
    prod *= b;
  }
  for (int64_t p : pads)
    if (p < 0) c.fail("paddings/crops must be >= 0");
  // Spatial-side shape [B, C, S...] (S = padded size) and batch-side shape [B*prod, C, S/block...].
  Shape big, small;
  if (to_batch) {
    big = x.shape;
    for (int64_t k = 0; k < M; ++k) big[2 + k] += pads[2 * k] + pads[2 * k + 1];
    small = big;
    small[0] *= prod;
    for (int64_t k = 0; k < M; ++k) {
      if (big[2 + k] % block[k]) c.fail("padded spatial size " + std::to_string(big[2 + k]) + " is not a multiple of the block");
      small[2 + k] = big[2 + k] / block[k];
    }
  } else {
    small = x.shape;
    if (small[0] % prod) c.fail("batch " + std::to_string(small[0]) + " is not a multiple of prod(block_shape)");
    big = small;
    big[0] /= prod;
    for (int64_t k = 0; k < M; ++k) big[2 + k] = small[2 + k] * block[k];
  }
  Shape out_shape = to_batch ? small : big;
  if (!to_batch)
    for (int64_t k = 0; k < M; ++k) {
      out_shape[2 + k] -= pads[2 * k] + pads[2 * k + 1];
      if (out_shape[2 + k] < 0) c.fail("crops exceed the spatial size");
    }
  const Shape& in_shape = x.shape;
  Tensor xf = x.is_float() ? as_f32(x) : as_i32(x);
  Tensor y = x.is_float() ? Tensor::f32(out_shape) : Tensor::i32(out_shape);
  if (!x.is_float()) y.dtype = x.dtype;
  const int64_t B = big[0], C = big[1];
  auto in_st = strides_of(in_shape), out_st = strides_of(out_shape);
  // Walk every element of the batch side (small) and map it to the spatial side (big).
  const int64_t total = numel(small);
  std::vector<int64_t> idx(static_cast<size_t>(small.size()));
  for (int64_t e = 0; e < total; ++e) {
    int64_t rem = e;
    for (size_t d = small.size(); d-- > 0;) {
      idx[d] = rem % small[d];
      rem /= small[d];
    }
    int64_t nb = idx[0] / B, b = idx[0] % B;  // block offset index, image
    int64_t off_big = 0, off_small = 0;
    bool inside = true;
    // block offsets, row-major over the spatial axes
    std::vector<int64_t> boff(static_cast<size_t>(M));
    for (int64_t k = M; k-- > 0;) {
      boff[k] = nb % block[k];
      nb /= block[k];
    }
    const Shape& big_real = to_batch ? in_shape : out_shape;
    const std::vector<int64_t>& big_st = to_batch ? in_st : out_st;
    off_big = b * big_st[0] + idx[1] * big_st[1];
    for (int64_t k = 0; k < M; ++k) {
      int64_t pos = idx[2 + k] * block[k] + boff[k] - pads[2 * k];  // position in the unpadded/uncropped image
      if (pos < 0 || pos >= big_real[2 + k]) inside = false;
      off_big += pos * big_st[2 + k];
    }
    const std::vector<int64_t>& small_st = to_batch ? out_st : in_st;
    for (size_t d = 0; d < small.size(); ++d) off_small += idx[d] * small_st[d];
    (void)C;
    if (to_batch) {
      if (y.dtype == DType::F32) y.fdata()[off_small] = inside ? xf.fdata()[off_big] : 0.f;
      else y.idata()[off_small] = inside ? xf.idata()[off_big] : 0;
    } else if (inside) {
      if (y.dtype == DType::F32) y.fdata()[off_big] = xf.fdata()[off_small];
      else y.idata()[off_big] = xf.idata()[off_small];
    }
  }
  c.set(0, std::move(y));
}

void k_space_to_batch(OpContext& c) { rearrange_batch(c, true); }
void k_batch_to_space(OpContext& c) { rearrange_batch(c, false); }

// [*d0, L, *dn] -> [*d0, (L - size) / stride + 1, size, *dn].
void k_sliding_windows(OpContext& c) {
  const Tensor& x = c.in("x");
  const int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis")), x.rank(), "sliding_windows");
  const int64_t size = static_cast<int64_t>(c.num("size")), stride = static_cast<int64_t>(c.num("stride", 1));
  const int64_t L = x.shape[axis];
  if (size < 1 || stride < 1 || size > L) c.fail("need 1 <= size <= axis length and stride >= 1");
  const int64_t n = (L - size) / stride + 1;
  Shape os = x.shape;
  os[axis] = n;
  os.insert(os.begin() + axis + 1, size);
  // A strided view: window index steps stride elements of the axis, the in-window index one.
  std::vector<int64_t> st = strides_of(x.shape), vst;
  for (int64_t d = 0; d < x.rank(); ++d) {
    if (d == axis) {
      vst.push_back(st[d] * stride);
      vst.push_back(st[d]);
    } else {
      vst.push_back(st[d]);
    }
  }
  Tensor src = x.is_half_backed() ? as_f32(x) : x;
  c.set(0, strided_tensor(src, vst, 0, os, c.threads()));
}

// y = x / (k + alpha / size * sum of x^2 over the channel window)^beta; the window around channel i
// is [i - floor((size - 1) / 2), i + ceil((size - 1) / 2)] clipped to the channels.
void k_local_response_norm(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  if (x.rank() < 3) c.fail("x must be [N, C, spatial...]");
  const int64_t size = static_cast<int64_t>(c.num("size"));
  if (size < 1) c.fail("size must be >= 1");
  const double alpha = c.num("alpha", 1e-4), beta = c.num("beta", 0.75), k = c.num("k", 1.0);
  const int64_t N = x.shape[0], C = x.shape[1], S = x.size() / std::max<int64_t>(N * C, 1);
  const int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
  Tensor y = Tensor::f32(x.shape);
  parallel_range(N * S, c.threads(), [&](int64_t b0, int64_t e0) {
    for (int64_t r = b0; r < e0; ++r) {
      int64_t n = r / S, s = r % S;
      const float* p = x.fdata() + n * C * S + s;
      for (int64_t ch = 0; ch < C; ++ch) {
        double acc = 0;
        for (int64_t j = std::max<int64_t>(0, ch - lo); j <= std::min(C - 1, ch + hi); ++j) acc += double(p[j * S]) * p[j * S];
        y.fdata()[n * C * S + ch * S + s] = static_cast<float>(p[ch * S] / std::pow(k + alpha / size * acc, beta));
      }
    }
  }, 256);
  c.set(0, std::move(y));
}

}  // namespace

void register_spatial_ops() {
  register_kernel("space_to_batch", k_space_to_batch);
  register_kernel("batch_to_space", k_batch_to_space);
  register_kernel("sliding_windows", k_sliding_windows);
  register_kernel("local_response_norm", k_local_response_norm);
}

}  // namespace cmo::exec
