#include "decompress_internal.h"

#include <cstring>

namespace cmo::kernels::detail {

void bad_param(const std::string& where, const std::string& msg) {
  throw Error("EINVAL", (where.empty() ? std::string("decompress") : where) + ": " + msg);
}

std::vector<int64_t> row_major_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t k = shape.size(); k-- > 1;) s[k - 1] = s[k] * shape[k];
  return s;
}

std::vector<int64_t> block_factors(const std::vector<int64_t>& out_shape, const std::vector<int64_t>& param_shape,
                                   const std::string& where, const std::string& param_name) {
  if (out_shape.size() != param_shape.size())
    bad_param(where, param_name + " has shape " + shape_string(param_shape) + " but must have the rank of " +
                         shape_string(out_shape));
  std::vector<int64_t> b(out_shape.size());
  for (size_t k = 0; k < out_shape.size(); ++k) {
    if (param_shape[k] <= 0 || out_shape[k] % param_shape[k] != 0)
      bad_param(where, param_name + " shape " + shape_string(param_shape) + " does not divide " +
                           shape_string(out_shape) + " on axis " + std::to_string(k));
    b[k] = out_shape[k] / param_shape[k];
  }
  return b;
}

LutGeometry lut_geometry(const TensorData& indices, const TensorData& lut, std::optional<int64_t> vector_axis,
                         const std::string& where) {
  indices.validate(where + " indices");
  lut.validate(where + " lut");
  if (dtype_is_float(indices.dtype) || dtype_is_signed_int(indices.dtype) || dtype_bits(indices.dtype) > 8)
    bad_param(where, std::string("indices must be uint1..uint8, got ") + mil_dtype_name(indices.dtype));
  LutGeometry g;
  g.rank = indices.shape.size();
  if (g.rank == 0) bad_param(where, "indices must have rank >= 1");
  if (lut.shape.size() != g.rank + 2)
    bad_param(where, "lut shape " + shape_string(lut.shape) + " must have rank " + std::to_string(g.rank + 2) +
                         " for indices " + shape_string(indices.shape));
  g.palette = lut.shape[g.rank];
  g.vector_size = lut.shape[g.rank + 1];
  if (g.palette <= 0 || g.vector_size <= 0) bad_param(where, "empty lut " + shape_string(lut.shape));
  if (g.palette > (int64_t{1} << dtype_bits(indices.dtype)) && indices.dtype != DType::UInt8)
    bad_param(where, "lut has " + std::to_string(g.palette) + " entries, more than " + mil_dtype_name(indices.dtype) +
                         " indices can address");
  std::vector<int64_t> lead(lut.shape.begin(), lut.shape.begin() + static_cast<long>(g.rank));
  g.groups = block_factors(indices.shape, lead, where, "lut");
  g.lut_strides = row_major_strides(lut.shape);
  g.out_shape = indices.shape;
  if (g.vector_size > 1) {
    if (!vector_axis) bad_param(where, "vector_axis is required for a lut with vectors of " + std::to_string(g.vector_size));
    int64_t a = *vector_axis;
    int64_t k = static_cast<int64_t>(g.rank);
    if (a < -k || a >= k) bad_param(where, "vector_axis " + std::to_string(a) + " out of range for rank " + std::to_string(k));
    g.axis = a < 0 ? a + k : a;
    g.out_shape[static_cast<size_t>(g.axis)] *= g.vector_size;
  }
  return g;
}

void check_float_out(DType t, const std::string& where, const std::string& param) {
  if (t != DType::Float16 && t != DType::Float32)
    bad_param(where, param + " must be fp16 or fp32, got " + mil_dtype_name(t));
}

void check_shift_scale(const TensorData& data, const TensorData& scale, const TensorData* offset,
                       const std::string& where) {
  data.validate(where + " data");
  scale.validate(where + " scale");
  check_float_out(scale.dtype, where, "scale");
  block_factors(data.shape, scale.shape, where, "scale");
  if (offset) {
    offset->validate(where + " offset");
    if (offset->shape != scale.shape)
      bad_param(where, "offset shape " + shape_string(offset->shape) + " differs from scale shape " +
                           shape_string(scale.shape));
  }
}

int64_t normalize_affine(const TensorData& q, const TensorData& zp, const TensorData& scale, int64_t axis,
                         const std::string& where) {
  q.validate(where + " quantized_data");
  zp.validate(where + " zero_point");
  scale.validate(where + " scale");
  check_float_out(scale.dtype, where, "scale");
  int64_t rank = static_cast<int64_t>(q.shape.size());
  if (rank < 1) bad_param(where, "quantized_data must have rank >= 1");
  if (axis < -rank || axis >= rank) bad_param(where, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  if (axis < 0) axis += rank;
  int64_t c = q.shape[static_cast<size_t>(axis)];
  for (const TensorData* p : {&zp, &scale}) {
    if (p->shape.size() > 1) bad_param(where, "scale/zero_point must have rank 0 or 1, got " + shape_string(p->shape));
    if (p->shape.size() == 1 && p->shape[0] != c)
      bad_param(where, "scale/zero_point length " + std::to_string(p->shape[0]) + " differs from quantized_data.shape[" +
                           std::to_string(axis) + "] = " + std::to_string(c));
  }
  return axis;
}

int64_t count_mask(const TensorData& mask) {
  int64_t n = 0, total = mask.numel();
  for (int64_t i = 0; i < total; ++i) n += mask.data[i] != 0;
  return n;
}

int64_t scalar_int(const TensorData& t, const std::string& where, const std::string& name) {
  t.validate(where + " " + name);
  if (t.numel() != 1 || dtype_is_float(t.dtype)) bad_param(where, name + " must be an integer scalar");
  return t.get_int(0);
}

std::vector<int64_t> shape_from_tensor(const TensorData& shape, const std::string& where) {
  shape.validate(where + " shape");
  if (shape.shape.size() != 1 || dtype_is_float(shape.dtype)) bad_param(where, "shape must be a 1-D integer tensor");
  std::vector<int64_t> s(static_cast<size_t>(shape.numel()));
  for (size_t i = 0; i < s.size(); ++i) s[i] = shape.get_int(i);
  shape_numel(s);
  return s;
}

Tensor gather_masked(const Tensor& dense, const TensorData& mask, const std::string& where) {
  if (mask.shape != dense.shape) bad_param(where, "mask shape " + shape_string(mask.shape) + " differs from " + shape_string(dense.shape));
  int64_t d = count_mask(mask);
  Tensor out(dense.dtype, {d});
  size_t es = dtype_unpacked_size(dense.dtype);
  size_t j = 0;
  for (int64_t i = 0, n = dense.numel(); i < n; ++i)
    if (mask.data[i]) std::memcpy(out.bytes.data() + es * j++, dense.bytes.data() + es * static_cast<size_t>(i), es);
  return out;
}

Tensor expand_mask(const TensorData& mask, int64_t axis, int64_t v) {
  std::vector<int64_t> shape = mask.shape;
  shape[static_cast<size_t>(axis)] *= v;
  Tensor out(DType::UInt1, shape);
  auto in_strides = row_major_strides(mask.shape);
  auto out_strides = row_major_strides(shape);
  for (int64_t i = 0, n = mask.numel(); i < n; ++i) {
    if (!mask.data[i]) continue;
    int64_t rem = i, off = 0;
    for (size_t k = 0; k < mask.shape.size(); ++k) {
      int64_t ik = rem / in_strides[k];
      rem %= in_strides[k];
      off += (static_cast<int64_t>(k) == axis ? ik * v : ik) * out_strides[k];
    }
    for (int64_t j = 0; j < v; ++j) out.bytes[static_cast<size_t>(off + j * out_strides[static_cast<size_t>(axis)])] = 1;
  }
  return out;
}

}  // namespace cmo::kernels::detail
