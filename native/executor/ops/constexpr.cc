// constexpr_* ops (spec §4): run once at load, their outputs become constants. Both the iOS16
// attribute form (packed uint8 indices/mask + uint32 shape) and the iOS18 input form (logical
// sub-byte tensors, grouped/vector LUTs, block scales) are handled.
#include "common.h"

namespace cmo::exec {
namespace {

// Bit `k` of a byte stream held one byte per int32 element, LSB-first.
inline uint32_t stream_bit(const int32_t* bytes, int64_t k) { return (static_cast<uint32_t>(bytes[k >> 3]) >> (k & 7)) & 1u; }

Tensor make_like_dtype(bool is_float, Shape shape) { return is_float ? Tensor::f32(std::move(shape)) : Tensor::i32(std::move(shape)); }

void put(Tensor& out, int64_t k, const Tensor& src, int64_t s) {
  if (out.dtype == DType::F32) out.fdata()[k] = src.dtype == DType::F32 ? src.fdata()[s] : static_cast<float>(src.idata()[s]);
  else out.idata()[k] = src.idata()[s];
}

// iOS18 LUT lookup shared by lut_to_dense and lut_to_sparse: dense logical indices -> values.
Tensor lut_lookup(OpContext& c, const Tensor& indices, const Tensor& lut, int64_t* vaxis_out) {
  const int64_t K = indices.rank();
  if (lut.rank() != K + 2) c.fail("lut must have rank(indices) + 2 = " + std::to_string(K + 2) + " dims, got " + shape_str(lut.shape));
  const int64_t P = lut.shape[K], V = lut.shape[K + 1];
  std::vector<int64_t> group(static_cast<size_t>(K));
  for (int64_t d = 0; d < K; ++d) {
    if (lut.shape[d] <= 0 || indices.shape[d] % lut.shape[d] != 0) c.fail("indices shape is not a multiple of the lut's leading dims");
    group[d] = indices.shape[d] / lut.shape[d];
  }
  int64_t vaxis = 0;
  if (V > 1) {
    if (!c.has("vector_axis")) c.fail("vector_axis is required when the lut has vectors");
    vaxis = norm_axis(static_cast<int64_t>(c.num("vector_axis")), K, "op '" + c.node().name + "'");
  }
  if (vaxis_out) *vaxis_out = vaxis;
  Shape os = indices.shape;
  if (V > 1) os[vaxis] *= V;
  Tensor out = make_like_dtype(lut.dtype == DType::F32, os);
  auto lst = strides_of(lut.shape);
  auto ost = strides_of(os);
  std::vector<int64_t> pos(static_cast<size_t>(K), 0);
  for (int64_t k = 0; k < indices.size(); ++k) {
    int64_t idx = indices.idata()[k];
    if (idx < 0 || idx >= P) c.fail("palette index " + std::to_string(idx) + " is out of range for a LUT of " + std::to_string(P));
    int64_t lbase = idx * lst[K], obase = 0;
    for (int64_t d = 0; d < K; ++d) {
      lbase += (pos[d] / group[d]) * lst[d];
      obase += (d == vaxis && V > 1 ? pos[d] * V : pos[d]) * ost[d];
    }
    for (int64_t j = 0; j < V; ++j) put(out, obase + j * (V > 1 ? ost[vaxis] : 0), lut, lbase + j);
    for (int64_t d = K - 1; d >= 0; --d) {
      if (++pos[d] < indices.shape[d]) break;
      pos[d] = 0;
    }
  }
  return out;
}

void k_lut_to_dense(OpContext& c) {
  const Tensor& lut = c.in("lut");
  if (c.has("shape")) {  // iOS16: packed uint8 index stream, 1-D LUT, explicit uint32 shape
    Tensor packed = as_i32(c.in("indices"));
    Shape shape = c.ints("shape");
    int64_t P = lut.size();
    int nbits = 0;
    while ((int64_t{1} << nbits) < P) ++nbits;
    if (lut.rank() != 1 || (int64_t{1} << nbits) != P || nbits < 1 || nbits > 8) c.fail("lut must be a 1-D vector of 2^nbits entries");
    int64_t n = numel(shape);
    if (packed.size() * 8 < n * nbits) c.fail("indices hold fewer than " + std::to_string(n) + " " + std::to_string(nbits) + "-bit entries");
    Tensor out = make_like_dtype(lut.dtype == DType::F32, shape);
    for (int64_t k = 0; k < n; ++k) {
      uint32_t v = 0;
      for (int b = 0; b < nbits; ++b) v |= stream_bit(packed.idata(), k * nbits + b) << b;
      put(out, k, lut, v);
    }
    c.set(0, std::move(out));
    return;
  }
  c.set(0, lut_lookup(c, as_i32(c.in("indices")), lut, nullptr));
}

// Scatters nonzero values into positions where mask (one int per element) is set.
Tensor densify(OpContext& c, const Tensor& mask, const Tensor& values, const Shape& shape) {
  Tensor out = make_like_dtype(values.dtype == DType::F32, shape);
  int64_t next = 0;
  for (int64_t k = 0; k < numel(shape); ++k) {
    if (mask.idata()[k]) {
      if (next >= values.size()) c.fail("mask has more set bits than nonzero_data has values");
      put(out, k, values, next++);
    }
  }
  if (next != values.size()) c.fail("mask has " + std::to_string(next) + " set bits but nonzero_data has " + std::to_string(values.size()) + " values");
  return out;
}

void k_sparse_to_dense(OpContext& c) {
  const Tensor& values = c.in("nonzero_data");
  if (c.has("shape")) {  // iOS16: packed uint8 bit mask
    Tensor packed = as_i32(c.in("mask"));
    Shape shape = c.ints("shape");
    int64_t n = numel(shape);
    if (packed.size() * 8 < n) c.fail("mask holds fewer bits than the shape has elements");
    Tensor mask = Tensor::i32(shape);
    for (int64_t k = 0; k < n; ++k) mask.idata()[k] = static_cast<int32_t>(stream_bit(packed.idata(), k));
    c.set(0, densify(c, mask, values, shape));
    return;
  }
  Tensor mask = as_i32(c.in("mask"));
  c.set(0, densify(c, mask, values, mask.shape));
}

// scale[pos / block] · (data - offset[pos / block]) for the element at multi-index pos of `shape`.
struct BlockScale {
  Tensor scale, offset;
  std::vector<int64_t> block, sst;
  bool has_offset = false;
  void init(OpContext& c, const Shape& shape) {
    scale = as_f32(c.in("scale"));
    if (scale.rank() != static_cast<int64_t>(shape.size())) c.fail("scale must have the rank of data");
    if (const Tensor* o = c.find("offset")) {
      offset = as_f32(*o);
      has_offset = true;
      if (offset.shape != scale.shape) c.fail("offset must have the shape of scale");
    }
    for (size_t d = 0; d < shape.size(); ++d) {
      if (scale.shape[d] <= 0 || shape[d] % scale.shape[d] != 0) c.fail("data shape is not a multiple of the scale shape");
      block.push_back(shape[d] / scale.shape[d]);
    }
    sst = strides_of(scale.shape);
  }
  float apply(const std::vector<int64_t>& pos, float v) const {
    int64_t s = 0;
    for (size_t d = 0; d < pos.size(); ++d) s += (pos[d] / block[d]) * sst[d];
    return scale.fdata()[s] * (v - (has_offset ? offset.fdata()[s] : 0.f));
  }
};

void step(std::vector<int64_t>& pos, const Shape& shape) {
  for (size_t d = shape.size(); d-- > 0;) {
    if (++pos[d] < shape[d]) return;
    pos[d] = 0;
  }
}

void k_blockwise_shift_scale(OpContext& c) {
  Tensor data = as_f32(c.in("data"));
  BlockScale bs;
  bs.init(c, data.shape);
  Tensor out = Tensor::f32(data.shape);
  std::vector<int64_t> pos(data.shape.size(), 0);
  for (int64_t k = 0; k < data.size(); ++k, step(pos, data.shape)) out.fdata()[k] = bs.apply(pos, data.fdata()[k]);
  c.set(0, std::move(out));
}

void k_sparse_blockwise_shift_scale(OpContext& c) {
  Tensor mask = as_i32(c.in("data_mask"));
  Tensor nz = as_f32(c.in("nonzero_data"));
  BlockScale bs;
  bs.init(c, mask.shape);
  Tensor vals = Tensor::f32({nz.size()});
  std::vector<int64_t> pos(mask.shape.size(), 0);
  int64_t next = 0;
  for (int64_t k = 0; k < mask.size(); ++k, step(pos, mask.shape))
    if (mask.idata()[k]) {
      if (next >= nz.size()) c.fail("mask has more set bits than nonzero_data has values");
      vals.fdata()[next] = bs.apply(pos, nz.fdata()[next]);
      ++next;
    }
  if (next != nz.size()) c.fail("mask bit count differs from the number of nonzero values");
  Tensor m = mask;
  m.dtype = DType::I32;
  c.set(0, m);
  c.set(1, std::move(vals));
}

void k_lut_to_sparse(OpContext& c) {
  Tensor mask = as_i32(c.in("indices_mask"));
  Tensor nz = as_i32(c.in("indices_nonzero_data"));
  Tensor dense_idx = densify(c, mask, nz, mask.shape);
  int64_t vaxis = 0;
  Tensor dense = lut_lookup(c, dense_idx, c.in("lut"), &vaxis);
  int64_t V = dense.size() / std::max<int64_t>(mask.size(), 1);
  Shape ms = mask.shape;
  if (V > 1) ms[vaxis] *= V;
  Tensor out_mask = Tensor::i32(ms);
  auto mst = strides_of(mask.shape);
  std::vector<int64_t> pos(ms.size(), 0);
  int64_t count = 0;
  for (int64_t k = 0; k < out_mask.size(); ++k, step(pos, ms)) {
    int64_t off = 0;
    for (size_t d = 0; d < ms.size(); ++d) off += (static_cast<int64_t>(d) == vaxis && V > 1 ? pos[d] / V : pos[d]) * mst[d];
    out_mask.idata()[k] = mask.idata()[off] != 0;
    count += out_mask.idata()[k];
  }
  Tensor vals = make_like_dtype(dense.dtype == DType::F32, {count});
  for (int64_t k = 0, n = 0; k < out_mask.size(); ++k)
    if (out_mask.idata()[k]) put(vals, n++, dense, k);
  c.set(0, std::move(out_mask));
  c.set(1, std::move(vals));
}

void k_affine_dequantize(OpContext& c) {
  Tensor q = as_f32(c.in("quantized_data"));
  Tensor zp = as_f32(c.in("zero_point")), sc = as_f32(c.in("scale"));
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", 0)), q.rank(), "op '" + c.node().name + "'");
  int64_t n = q.shape[axis], inner = 1;
  for (int64_t d = axis + 1; d < q.rank(); ++d) inner *= q.shape[d];
  if ((zp.size() != 1 && zp.size() != n) || (sc.size() != 1 && sc.size() != n))
    c.fail("scale/zero_point must be scalars or have shape[axis] = " + std::to_string(n) + " elements");
  Tensor out = Tensor::f32(q.shape);
  for (int64_t k = 0; k < q.size(); ++k) {
    int64_t ch = (k / inner) % n;
    float s = sc.fdata()[sc.size() == 1 ? 0 : ch], z = zp.fdata()[zp.size() == 1 ? 0 : ch];
    out.fdata()[k] = s * (q.fdata()[k] - z);
  }
  c.set(0, std::move(out));
}

void k_constexpr_cast(OpContext& c) { c.set(0, as_f32(c.in("source_val"))); }

}  // namespace

void register_constexpr_ops() {
  register_kernel("constexpr_lut_to_dense", k_lut_to_dense);
  register_kernel("constexpr_sparse_to_dense", k_sparse_to_dense);
  register_kernel("constexpr_blockwise_shift_scale", k_blockwise_shift_scale);
  register_kernel("constexpr_sparse_blockwise_shift_scale", k_sparse_blockwise_shift_scale);
  register_kernel("constexpr_lut_to_sparse", k_lut_to_sparse);
  register_kernel("constexpr_affine_dequantize", k_affine_dequantize);
  register_kernel("constexpr_cast", k_constexpr_cast);
}

}  // namespace cmo::exec
