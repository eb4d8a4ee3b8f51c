// Scalar reference decoders: one output element at a time, written straight from the element rules
// of spec §4.1/§4.2 (unravel the output index, divide by the block/group factors, look up). Slow on
// purpose; they are the oracle for the fast kernels in decompress.cc.
#include <cstring>

#include "decompress.h"
#include "decompress_internal.h"

namespace cmo::kernels {

using namespace detail;

namespace {
std::vector<int64_t> unravel(int64_t flat, const std::vector<int64_t>& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    idx[k] = flat % shape[k];
    flat /= shape[k];
  }
  return idx;
}
int64_t ravel(const std::vector<int64_t>& idx, const std::vector<int64_t>& shape) {
  int64_t f = 0;
  for (size_t k = 0; k < shape.size(); ++k) f = f * shape[k] + idx[k];
  return f;
}
}  // namespace

Tensor lut_to_dense_ref(const TensorData& indices, const TensorData& lut, std::optional<int64_t> vector_axis,
                        const std::string& where) {
  LutGeometry g = lut_geometry(indices, lut, vector_axis, where);
  Tensor out(lut.dtype, g.out_shape);
  const size_t es = dtype_unpacked_size(lut.dtype);
  const int64_t V = g.vector_size;
  for (int64_t o = 0, n = out.numel(); o < n; ++o) {
    std::vector<int64_t> oi = unravel(o, g.out_shape);
    int64_t j = 0;
    if (V > 1) {  // out[..., ia*V + j, ...] comes from indices[..., ia, ...], vector component j
      j = oi[static_cast<size_t>(g.axis)] % V;
      oi[static_cast<size_t>(g.axis)] /= V;
    }
    const int64_t index = indices.data[ravel(oi, indices.shape)];
    if (index >= g.palette) bad_param(where, "index " + std::to_string(index) + " outside a lut of " + std::to_string(g.palette));
    std::vector<int64_t> li(g.rank + 2);
    for (size_t k = 0; k < g.rank; ++k) li[k] = oi[k] / g.groups[k];
    li[g.rank] = index;
    li[g.rank + 1] = j;
    std::memcpy(out.bytes.data() + static_cast<size_t>(o) * es, lut.data + static_cast<size_t>(ravel(li, lut.shape)) * es, es);
  }
  return out;
}

Tensor sparse_to_dense_ref(const TensorData& nonzero, const TensorData& mask, const std::string& where) {
  nonzero.validate(where + " nonzero_data");
  mask.validate(where + " mask");
  if (nonzero.shape.size() != 1) bad_param(where, "nonzero_data must be 1-D, got " + shape_string(nonzero.shape));
  if (count_mask(mask) != nonzero.numel())
    bad_param(where, "mask has " + std::to_string(count_mask(mask)) + " set bits but nonzero_data has " +
                         std::to_string(nonzero.numel()) + " values");
  Tensor out(nonzero.dtype, mask.shape);
  const size_t es = dtype_unpacked_size(nonzero.dtype);
  size_t j = 0;
  for (int64_t i = 0, n = mask.numel(); i < n; ++i)
    if (mask.data[i]) std::memcpy(out.bytes.data() + static_cast<size_t>(i) * es, nonzero.data + es * j++, es);
  return out;
}

Tensor blockwise_shift_scale_ref(const TensorData& data, const TensorData& scale, const TensorData* offset,
                                 const std::string& where) {
  check_shift_scale(data, scale, offset, where);
  auto blocks = block_factors(data.shape, scale.shape, where, "scale");
  const DType odt = scale.dtype;
  Tensor out(odt, data.shape);
  for (int64_t i = 0, n = data.numel(); i < n; ++i) {
    std::vector<int64_t> idx = unravel(i, data.shape);
    for (size_t k = 0; k < idx.size(); ++k) idx[k] /= blocks[k];
    const size_t p = static_cast<size_t>(ravel(idx, scale.shape));
    // numpy: data.astype(scale.dtype) - offset.astype(scale.dtype), then scale * that.
    float d = round_to(odt, data.get_float(static_cast<size_t>(i)));
    if (offset) d = round_to(odt, d - round_to(odt, offset->get_float(p)));
    out.set_float(static_cast<size_t>(i), scale.get_float(p) * d);
  }
  return out;
}

Tensor affine_dequantize_ref(const TensorData& q, const TensorData& zp, const TensorData& scale, int64_t axis,
                             const std::string& where) {
  axis = normalize_affine(q, zp, scale, axis, where);
  Tensor out(scale.dtype, q.shape);
  for (int64_t i = 0, n = q.numel(); i < n; ++i) {
    const int64_t ch = unravel(i, q.shape)[static_cast<size_t>(axis)];
    const float z = zp.shape.empty() ? zp.get_float(0) : zp.get_float(static_cast<size_t>(ch));
    const float s = scale.shape.empty() ? scale.get_float(0) : scale.get_float(static_cast<size_t>(ch));
    const float centered = q.get_float(static_cast<size_t>(i)) - z;
    out.set_float(static_cast<size_t>(i), s * centered);
  }
  return out;
}

}  // namespace cmo::kernels
