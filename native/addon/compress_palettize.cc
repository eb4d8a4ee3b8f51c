// "palettize" entries of compressWeights: cluster one weight with kernels/palettize and emit the
// blobs of its constexpr ops in coremltools' order (spec §2.6 / §4.4):
//   plain:              indices, lut
//   per-channel scale:  lut repeated over the scale's positions (shift_scale data), scale, indices
// iOS16 indices are the same LSB-first bit stream typed as packed uint8 bytes; iOS18 as uint{n}.
#include <cstring>

#include "../blob/blob.h"
#include "../kernels/palettize.h"
#include "../util/error.h"
#include "compress_entries.h"

namespace cmo::addon {

namespace {

struct PalettizeEntry {
  std::vector<int64_t> shape;
  kernels::PalettizeParams params;
  bool ios16 = false;
  std::shared_ptr<CancelToken> cancel;
};

template <class T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

std::vector<double> dims(const std::vector<int64_t>& s) { return std::vector<double>(s.begin(), s.end()); }

// The LUT broadcast over the scale's leading positions: shape = max(lut lead, scale) per axis,
// then [2^n, V]. The LUT's group axes and the scale's axes never both exceed 1 on one axis
// (groups lie on the output axis, the scale is reduced over it).
template <class T>
std::vector<T> repeat_lut(const std::vector<T>& lut, const std::vector<int64_t>& lut_shape,
                          const std::vector<int64_t>& scale_shape, std::vector<int64_t>* out_shape) {
  const size_t rank = scale_shape.size();
  const int64_t tail = lut_shape[rank] * lut_shape[rank + 1];
  out_shape->assign(rank + 2, 1);
  for (size_t a = 0; a < rank; ++a) (*out_shape)[a] = std::max(lut_shape[a], scale_shape[a]);
  (*out_shape)[rank] = lut_shape[rank];
  (*out_shape)[rank + 1] = lut_shape[rank + 1];
  int64_t positions = 1;
  for (size_t a = 0; a < rank; ++a) positions *= (*out_shape)[a];
  std::vector<T> out(static_cast<size_t>(positions * tail));
  std::vector<int64_t> idx(rank, 0);
  for (int64_t p = 0; p < positions; ++p) {
    int64_t src = 0;
    for (size_t a = 0; a < rank; ++a) src = src * lut_shape[a] + (lut_shape[a] == 1 ? 0 : idx[a]);
    std::memcpy(&out[static_cast<size_t>(p * tail)], &lut[static_cast<size_t>(src * tail)], static_cast<size_t>(tail) * sizeof(T));
    for (size_t a = rank; a-- > 0;) {
      if (++idx[a] < (*out_shape)[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

stream::TransformOutput run(const PalettizeEntry& e, const blob::Record& record, const uint8_t* data) {
  kernels::WeightView view;
  if (record.dtype == blob::DType::Float16) {
    view.type = kernels::WeightType::kFloat16;
  } else if (record.dtype == blob::DType::Float32) {
    view.type = kernels::WeightType::kFloat32;
  } else {
    throw Error("EINVAL", std::string("palettize: weight at offset ") + std::to_string(record.metadata_offset) +
                              " is " + blob::dtype_name(record.dtype) + ", expected float16 or float32");
  }
  view.data = data;
  view.shape = e.shape;
  if (view.elements() != record.element_count)
    throw Error("EINVAL", "palettize: shape does not match the " + std::to_string(record.element_count) +
                              " elements of the blob at offset " + std::to_string(record.metadata_offset));
  kernels::PalettizeHooks hooks;
  auto cancel = e.cancel;
  hooks.cancelled = [cancel] { return cancel && cancel->cancelled.load(); };
  kernels::PalettizeResult r = kernels::palettize_tensor(view, e.params, hooks);
  stream::TransformOutput out;
  if (r.skipped) {
    out.skipped = r.skip_reason.empty() ? "skipped" : r.skip_reason;
    return out;
  }
  const bool f16 = r.lut_type == kernels::WeightType::kFloat16;
  const blob::DType lut_dtype = f16 ? blob::DType::Float16 : blob::DType::Float32;

  stream::OutputBlob indices;
  blob::DType index_dtype = uint_dtype_for_bits(r.nbits);
  // Packed in place: the unpacked indices' buffer becomes the blob (no second multi-megabyte
  // buffer to allocate and fault in per weight).
  const size_t index_count = r.indices.size();
  indices.bytes = std::move(r.indices);
  blob::pack_sub_byte(index_dtype, indices.bytes.data(), index_count, indices.bytes.data());
  indices.bytes.resize(blob::packed_size(index_dtype, index_count));
  if (e.ios16) {
    indices.dtype = blob::DType::UInt8;
    indices.element_count = indices.bytes.size();
  } else {
    indices.dtype = index_dtype;
    indices.element_count = index_count;
  }
  indices.inline_if_small = true;

  stream::OutputBlob lut;
  lut.dtype = lut_dtype;
  lut.inline_if_small = true;
  if (e.params.per_channel_scale) {
    std::vector<int64_t> data_shape;
    lut.bytes = f16 ? as_bytes(repeat_lut(r.lut_f16, r.lut_shape, r.scale_shape, &data_shape))
                    : as_bytes(repeat_lut(r.lut_f32, r.lut_shape, r.scale_shape, &data_shape));
    lut.element_count = lut.bytes.size() / (f16 ? 2 : 4);
    stream::OutputBlob scale;
    scale.dtype = lut_dtype;
    scale.bytes = f16 ? as_bytes(r.scale_f16) : as_bytes(r.scale_f32);
    scale.element_count = f16 ? r.scale_f16.size() : r.scale_f32.size();
    scale.inline_if_small = true;
    out.blobs.push_back(std::move(lut));
    out.blobs.push_back(std::move(scale));
    out.blobs.push_back(std::move(indices));
    out.info.push_back({"dataShape", dims(data_shape)});
    out.info.push_back({"scaleShape", dims(r.scale_shape)});
  } else {
    lut.bytes = f16 ? as_bytes(r.lut_f16) : as_bytes(r.lut_f32);
    lut.element_count = f16 ? r.lut_f16.size() : r.lut_f32.size();
    out.blobs.push_back(std::move(indices));
    out.blobs.push_back(std::move(lut));
  }
  out.info.push_back({"nbits", {static_cast<double>(r.nbits)}});
  out.info.push_back({"lutShape", dims(r.lut_shape)});
  out.info.push_back({"indicesShape", dims(r.indices_shape)});
  out.info.push_back({"vectorAxis", {static_cast<double>(r.vector_axis)}});
  out.info.push_back({"sse", {r.sse}});
  out.info.push_back({"signal", {r.signal}});
  out.info.push_back({"groups", {static_cast<double>(r.groups)}});
  return out;
}

stream::Transform parse(const Napi::Object& o, const std::shared_ptr<CancelToken>& cancel) {
  auto e = std::make_shared<PalettizeEntry>();
  e->shape = get_shape(o, "shape");
  e->params = get_palettize_params(o, "palettize");
  e->ios16 = get_bool(o, "ios16", false);
  e->cancel = cancel;
  return [e](const std::vector<stream::Source>& sources) { return run(*e, sources[0].record, sources[0].data); };
}

}  // namespace

CMO_COMPRESS_ENTRY(palettize, parse);

}  // namespace cmo::addon
