#include "decompress.h"

#include <algorithm>
#include <cstring>

#include "../util/fp16.h"
#include "../util/thread_pool.h"
#include "decompress_bitpack.h"
#include "decompress_internal.h"

namespace cmo::kernels {

using namespace detail;

float round_to(DType t, float v) { return t == DType::Float16 ? half_to_float(float_to_half(v)) : v; }

namespace {

// Rows = all axes but the last; large tensors are split over the pool by rows.
constexpr size_t kRowGrainElements = 1 << 14;

size_t row_grain(int64_t row_len) {
  return std::max<size_t>(1, kRowGrainElements / static_cast<size_t>(std::max<int64_t>(row_len, 1)));
}

// Offset of the block-broadcast parameter for the row starting at flat element row*last.
int64_t param_row_base(int64_t row, const std::vector<int64_t>& shape, const std::vector<int64_t>& blocks,
                       const std::vector<int64_t>& pstrides) {
  int64_t base = 0;
  for (size_t k = shape.size() - 1; k-- > 0;) {
    int64_t ik = row % shape[k];
    row /= shape[k];
    base += (ik / blocks[k]) * pstrides[k];
  }
  return base;
}

}  // namespace

Tensor lut_to_dense(const TensorData& indices, const TensorData& lut, std::optional<int64_t> vector_axis,
                    const std::string& where) {
  LutGeometry g = lut_geometry(indices, lut, vector_axis, where);
  Tensor out(lut.dtype, g.out_shape);
  const size_t es = dtype_unpacked_size(lut.dtype);
  const int64_t last = indices.shape.back();
  const int64_t rows = last == 0 ? 0 : indices.numel() / last;
  const size_t K = g.rank;
  const int64_t V = g.vector_size;
  auto out_strides = row_major_strides(g.out_shape);
  uint8_t* dst = out.bytes.data();
  parallel_for(static_cast<size_t>(rows), [&](size_t r) {
    const int64_t row = static_cast<int64_t>(r);
    const int64_t base = param_row_base(row, indices.shape, g.groups, g.lut_strides);
    const uint8_t* idx = indices.data + row * last;
    int64_t out_row = 0;  // output offset of element (row, 0) for the vector case
    if (V > 1) {
      int64_t rem = row;
      for (size_t k = K - 1; k-- > 0;) {
        int64_t ik = rem % indices.shape[k];
        rem /= indices.shape[k];
        out_row += (static_cast<int64_t>(k) == g.axis ? ik * V : ik) * out_strides[k];
      }
    }
    const int64_t glast = g.groups[K - 1], lstride_last = g.lut_strides[K - 1];
    for (int64_t j = 0; j < last; ++j) {
      const int64_t index = idx[j];
      if (index >= g.palette) bad_param(where, "index " + std::to_string(index) + " outside a lut of " + std::to_string(g.palette));
      const int64_t lut_off = base + (j / glast) * lstride_last + index * V;
      if (V == 1) {
        std::memcpy(dst + static_cast<size_t>(row * last + j) * es, lut.data + static_cast<size_t>(lut_off) * es, es);
      } else {
        const int64_t o = out_row + (static_cast<int64_t>(K - 1) == g.axis ? j * V : j) * out_strides[K - 1];
        const int64_t astride = out_strides[static_cast<size_t>(g.axis)];
        for (int64_t v = 0; v < V; ++v)
          std::memcpy(dst + static_cast<size_t>(o + v * astride) * es, lut.data + static_cast<size_t>(lut_off + v) * es, es);
      }
    }
  }, row_grain(last));
  return out;
}

Tensor sparse_to_dense(const TensorData& nonzero, const TensorData& mask, const std::string& where) {
  nonzero.validate(where + " nonzero_data");
  mask.validate(where + " mask");
  if (nonzero.shape.size() != 1) bad_param(where, "nonzero_data must be 1-D, got " + shape_string(nonzero.shape));
  Tensor out(nonzero.dtype, mask.shape);
  const size_t es = dtype_unpacked_size(nonzero.dtype);
  const size_t n = static_cast<size_t>(mask.numel());
  constexpr size_t chunk = 1 << 16;
  const size_t chunks = (n + chunk - 1) / chunk;
  std::vector<int64_t> start(chunks + 1, 0);
  parallel_for(chunks, [&](size_t c) {
    int64_t cnt = 0;
    for (size_t i = c * chunk, e = std::min(n, (c + 1) * chunk); i < e; ++i) cnt += mask.data[i] != 0;
    start[c + 1] = cnt;
  });
  for (size_t c = 0; c < chunks; ++c) start[c + 1] += start[c];
  if (start[chunks] != nonzero.numel())
    bad_param(where, "mask has " + std::to_string(start[chunks]) + " set bits but nonzero_data has " +
                         std::to_string(nonzero.numel()) + " values");
  parallel_for(chunks, [&](size_t c) {
    size_t j = static_cast<size_t>(start[c]);
    for (size_t i = c * chunk, e = std::min(n, (c + 1) * chunk); i < e; ++i)
      if (mask.data[i]) std::memcpy(out.bytes.data() + i * es, nonzero.data + es * j++, es);
  });
  return out;
}

namespace {

// Element readers chosen once per tensor, so the inner loops carry no per-element type switch.
using Reader = float (*)(const uint8_t*, size_t);
float read_f16(const uint8_t* p, size_t i) {
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return half_to_float(h);
}
float read_f32(const uint8_t* p, size_t i) {
  float f;
  std::memcpy(&f, p + 4 * i, 4);
  return f;
}
float read_s8(const uint8_t* p, size_t i) { return static_cast<float>(static_cast<int8_t>(p[i])); }
float read_u8(const uint8_t* p, size_t i) { return static_cast<float>(p[i]); }

Reader reader_for(DType t) {
  switch (t) {
    case DType::Float16: return &read_f16;
    case DType::Float32: return &read_f32;
    case DType::Int8: case DType::Int4: return &read_s8;
    case DType::UInt8: case DType::UInt1: case DType::UInt2: case DType::UInt3: case DType::UInt4: case DType::UInt6:
      return &read_u8;
    default: return nullptr;  // wider integer types: use TensorData::get_float
  }
}

// A reader bound to a view, falling back to get_float for the rare wide integer types.
struct ElementReader {
  const TensorData* t;
  Reader fn;
  explicit ElementReader(const TensorData& v) : t(&v), fn(reader_for(v.dtype)) {}
  float operator()(size_t i) const { return fn ? fn(t->data, i) : t->get_float(i); }
};

void store(Tensor& out, bool fp16, size_t i, float v) {
  if (fp16) {
    const uint16_t h = float_to_half(v);
    std::memcpy(out.bytes.data() + 2 * i, &h, 2);
  } else {
    std::memcpy(out.bytes.data() + 4 * i, &v, 4);
  }
}

}  // namespace

Tensor blockwise_shift_scale(const TensorData& data, const TensorData& scale, const TensorData* offset,
                             const std::string& where) {
  check_shift_scale(data, scale, offset, where);
  if (data.shape.empty()) bad_param(where, "data must have rank >= 1");
  const DType odt = scale.dtype;
  const bool fp16 = odt == DType::Float16;
  Tensor out(odt, data.shape);
  auto blocks = block_factors(data.shape, scale.shape, where, "scale");
  auto pstrides = row_major_strides(scale.shape);
  const int64_t last = data.shape.back();
  const int64_t rows = last == 0 ? 0 : data.numel() / last;
  const int64_t blast = blocks.back();
  const ElementReader rd(data), rs(scale);
  const TensorData off_view = offset ? *offset : TensorData{};
  const ElementReader ro(off_view);
  // Integer data up to 8 bits is exact in fp16, so its astype(fp16) rounding can be skipped.
  const bool data_exact = !dtype_is_float(data.dtype) && dtype_bits(data.dtype) <= 8;
  parallel_for(static_cast<size_t>(rows), [&](size_t r) {
    const int64_t row = static_cast<int64_t>(r);
    const int64_t base = param_row_base(row, data.shape, blocks, pstrides);
    for (int64_t j = 0; j < last; ++j) {
      const size_t i = static_cast<size_t>(row * last + j);
      const size_t p = static_cast<size_t>(base + j / blast);
      float d = rd(i);
      if (fp16 && !data_exact) d = round_to(odt, d);
      if (offset) d = round_to(odt, d - round_to(odt, ro(p)));
      store(out, fp16, i, d * rs(p));
    }
  }, row_grain(last));
  return out;
}

Tensor affine_dequantize(const TensorData& q, const TensorData& zp, const TensorData& scale, int64_t axis,
                         const std::string& where) {
  axis = normalize_affine(q, zp, scale, axis, where);
  Tensor out(scale.dtype, q.shape);
  const bool fp16 = scale.dtype == DType::Float16;
  int64_t inner = 1;
  for (size_t k = static_cast<size_t>(axis) + 1; k < q.shape.size(); ++k) inner *= q.shape[k];
  const int64_t c = q.shape[static_cast<size_t>(axis)];
  const size_t n = static_cast<size_t>(q.numel());
  const bool zp_vec = !zp.shape.empty();
  const bool sc_vec = !scale.shape.empty();
  const ElementReader rq(q), rz(zp), rs(scale);
  parallel_for((n + 4095) / 4096, [&](size_t b) {
    for (size_t i = b * 4096, e = std::min(n, (b + 1) * 4096); i < e; ++i) {
      const size_t ch = static_cast<size_t>((static_cast<int64_t>(i) / inner) % c);
      const float z = rz(zp_vec ? ch : 0);
      const float s = rs(sc_vec ? ch : 0);
      store(out, fp16, i, s * (rq(i) - z));  // fp32 math, one rounding to the scale's dtype
    }
  });
  return out;
}

Tensor cast_tensor(const TensorData& source, DType out_dtype, const std::string& where) {
  source.validate(where + " source_val");
  Tensor out(out_dtype, source.shape);
  for (size_t i = 0, n = static_cast<size_t>(source.numel()); i < n; ++i) out.set_float(i, source.get_float(i));
  return out;
}

Ios16Lut ios16_lut_params(const TensorData& packed, const TensorData& lut, const TensorData& shape,
                          const std::string& where) {
  packed.validate(where + " indices");
  lut.validate(where + " lut");
  if (lut.shape.size() != 1) bad_param(where, "iOS16 lut must be 1-D, got " + shape_string(lut.shape));
  const int64_t n = lut.shape[0];
  int bits = 0;
  switch (n) {
    case 2: bits = 1; break;
    case 4: bits = 2; break;
    case 16: bits = 4; break;
    case 64: bits = 6; break;
    case 256: bits = 8; break;
    default: bad_param(where, "lut should be a vector of size from one of {2, 4, 16, 64, 256}, got " + std::to_string(n));
  }
  std::vector<int64_t> out_shape = shape_from_tensor(shape, where);
  if (out_shape.empty()) bad_param(where, "shape must have at least one dimension");
  const size_t count = static_cast<size_t>(shape_numel(out_shape));
  if (packed.numel() != static_cast<int64_t>(packed_size_bytes(count, bits)))
    bad_param(where, "indices hold " + std::to_string(packed.numel()) + " bytes, expected " +
                         std::to_string(packed_size_bytes(count, bits)) + " for " + std::to_string(count) + " " +
                         std::to_string(bits) + "-bit indices");
  static const DType kIdx[9] = {DType::UInt8, DType::UInt1, DType::UInt2, DType::UInt3, DType::UInt4,
                                DType::UInt8, DType::UInt6, DType::UInt8, DType::UInt8};
  Ios16Lut r;
  r.indices.dtype = kIdx[bits];
  r.indices.shape = out_shape;
  r.indices.bytes = unpack_bits_lsb(packed.data, static_cast<size_t>(packed.numel()), count, bits, false);
  std::vector<int64_t> lshape(out_shape.size(), 1);
  lshape.push_back(n);
  lshape.push_back(1);
  r.lut.dtype = lut.dtype;
  r.lut.shape = lshape;
  r.lut.bytes.assign(lut.data, lut.data + static_cast<size_t>(n) * dtype_unpacked_size(lut.dtype));
  return r;
}

Tensor ios16_mask(const TensorData& packed, const TensorData& shape, const std::string& where) {
  packed.validate(where + " mask");
  std::vector<int64_t> out_shape = shape_from_tensor(shape, where);
  const size_t count = static_cast<size_t>(shape_numel(out_shape));
  if (packed.numel() != static_cast<int64_t>(packed_size_bytes(count, 1)))
    bad_param(where, "mask holds " + std::to_string(packed.numel()) + " bytes, expected " +
                         std::to_string(packed_size_bytes(count, 1)) + " for shape " + shape_string(out_shape));
  if (count % 8 != 0 && (packed.data[packed.numel() - 1] >> (count % 8)) != 0)
    bad_param(where, "mask padding bits after the last element must be 0");
  Tensor m;
  m.dtype = DType::UInt1;
  m.shape = out_shape;
  m.bytes = unpack_bits_lsb(packed.data, static_cast<size_t>(packed.numel()), count, 1, false);
  return m;
}

namespace {

const TensorData& need(const ParamMap& p, const std::string& name, const std::string& op, const std::string& where) {
  auto it = p.find(name);
  if (it == p.end()) bad_param(where, op + " is missing parameter '" + name + "'");
  return it->second;
}
const TensorData* opt(const ParamMap& p, const std::string& name) {
  auto it = p.find(name);
  return it == p.end() ? nullptr : &it->second;
}
std::optional<int64_t> opt_int(const ParamMap& p, const std::string& name, const std::string& where) {
  const TensorData* t = opt(p, name);
  if (!t) return std::nullopt;
  return scalar_int(*t, where, name);
}

struct Kernels {
  decltype(&lut_to_dense) lut;
  decltype(&sparse_to_dense) sparse;
  decltype(&blockwise_shift_scale) shift_scale;
  decltype(&affine_dequantize) affine;
};

// lut_to_sparse / sparse_blockwise_shift_scale built from the dense kernels of `k`.
std::vector<Tensor> lut_to_sparse_with(const Kernels& k, const TensorData& mask, const TensorData& nz,
                                       const TensorData& lut, std::optional<int64_t> va, const std::string& where) {
  Tensor dense_idx = k.sparse(nz, mask, where);
  Tensor dense = k.lut(dense_idx.view(), lut, va, where);
  LutGeometry g = lut_geometry(dense_idx.view(), lut, va, where);
  Tensor m(DType::UInt1, mask.shape);
  for (size_t i = 0; i < m.bytes.size(); ++i) m.bytes[i] = mask.data[i] != 0;
  if (g.vector_size > 1) m = expand_mask(m.view(), g.axis, g.vector_size);
  Tensor values = gather_masked(dense, m.view(), where);
  return {std::move(m), std::move(values)};
}

std::vector<Tensor> sparse_shift_scale_with(const Kernels& k, const TensorData& mask, const TensorData& nz,
                                            const TensorData& scale, const TensorData* offset, const std::string& where) {
  Tensor dense_data = k.sparse(nz, mask, where);
  Tensor dense = k.shift_scale(dense_data.view(), scale, offset, where);
  Tensor m(DType::UInt1, mask.shape);
  for (size_t i = 0; i < m.bytes.size(); ++i) m.bytes[i] = mask.data[i] != 0;
  Tensor values = gather_masked(dense, m.view(), where);
  return {std::move(m), std::move(values)};
}

std::vector<Tensor> dispatch(const Kernels& k, const std::string& op, Opset opset, const ParamMap& p,
                             const std::string& where_in) {
  const std::string where = where_in.empty() ? op : where_in;
  std::vector<Tensor> out;
  if (op == "constexpr_lut_to_dense") {
    if (opset == Opset::IOS16 || p.count("shape")) {
      Ios16Lut l = ios16_lut_params(need(p, "indices", op, where), need(p, "lut", op, where), need(p, "shape", op, where), where);
      out.push_back(k.lut(l.indices.view(), l.lut.view(), std::nullopt, where));
    } else {
      out.push_back(k.lut(need(p, "indices", op, where), need(p, "lut", op, where), opt_int(p, "vector_axis", where), where));
    }
  } else if (op == "constexpr_sparse_to_dense") {
    if (opset == Opset::IOS16 || p.count("shape")) {
      Tensor m = ios16_mask(need(p, "mask", op, where), need(p, "shape", op, where), where);
      out.push_back(k.sparse(need(p, "nonzero_data", op, where), m.view(), where));
    } else {
      out.push_back(k.sparse(need(p, "nonzero_data", op, where), need(p, "mask", op, where), where));
    }
  } else if (op == "constexpr_affine_dequantize") {
    int64_t axis = scalar_int(need(p, "axis", op, where), where, "axis");
    out.push_back(k.affine(need(p, "quantized_data", op, where), need(p, "zero_point", op, where),
                           need(p, "scale", op, where), axis, where));
  } else if (op == "constexpr_cast") {
    out.push_back(cast_tensor(need(p, "source_val", op, where), DType::Float32, where));
  } else if (op == "constexpr_blockwise_shift_scale") {
    out.push_back(k.shift_scale(need(p, "data", op, where), need(p, "scale", op, where), opt(p, "offset"), where));
  } else if (op == "constexpr_lut_to_sparse") {
    out = lut_to_sparse_with(k, need(p, "indices_mask", op, where), need(p, "indices_nonzero_data", op, where),
                             need(p, "lut", op, where), opt_int(p, "vector_axis", where), where);
  } else if (op == "constexpr_sparse_blockwise_shift_scale") {
    out = sparse_shift_scale_with(k, need(p, "data_mask", op, where), need(p, "nonzero_data", op, where),
                                  need(p, "scale", op, where), opt(p, "offset"), where);
  } else {
    throw Error("EUNSUPPORTED", where + ": unsupported compression op '" + op + "'");
  }
  return out;
}

}  // namespace

static const Kernels kFast{&lut_to_dense, &sparse_to_dense, &blockwise_shift_scale, &affine_dequantize};
static const Kernels kRef{&lut_to_dense_ref, &sparse_to_dense_ref, &blockwise_shift_scale_ref, &affine_dequantize_ref};

std::vector<Tensor> lut_to_sparse(const TensorData& mask, const TensorData& nz, const TensorData& lut,
                                  std::optional<int64_t> vector_axis, const std::string& where) {
  return lut_to_sparse_with(kFast, mask, nz, lut, vector_axis, where);
}

std::vector<Tensor> sparse_blockwise_shift_scale(const TensorData& mask, const TensorData& nz, const TensorData& scale,
                                                 const TensorData* offset, const std::string& where) {
  return sparse_shift_scale_with(kFast, mask, nz, scale, offset, where);
}

std::vector<Tensor> decompress_op(const std::string& op, Opset opset, const ParamMap& p, const std::string& where) {
  return dispatch(kFast, op, opset, p, where);
}

std::vector<Tensor> decompress_op_ref(const std::string& op, Opset opset, const ParamMap& p, const std::string& where) {
  return dispatch(kRef, op, opset, p, where);
}

}  // namespace cmo::kernels
